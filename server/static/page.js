// The page served at the server's root: the endpoints with their forms, Run ("On click"),
// a card per run, and the Runs view of every run the server keeps. It mirrors the terminal
// UI. Cards take in what arrived once per animation frame, never once per message.

import { StreambindClient } from "./streambind.js";
import { EndpointForm } from "./form.js";
import { FROM_RUNS_VIEW, FROM_THIS_PAGE, RunCard } from "./card.js";
import { formatDuration, progressOf } from "./progress.js";

const RUNS_POLL_MS = 1000;
const ENDPOINTS_RETRY_MAX_MS = 5000;
const TICK_MS = 250; // elapsed time and rates move on this while runs go on

const $ = (selector) => document.querySelector(selector);

const client = new StreambindClient({ askToken });
const cards = [];
const dirty = new Set();
let frame = 0;
let handleStream = true;
let form = null;
let endpoints = [];

// -- one update per frame -----------------------------------------------------------

function changed(card) {
  dirty.add(card);
  if (!frame) frame = requestAnimationFrame(flush);
}

function flush(now) {
  frame = 0;
  for (const card of dirty) {
    card.render(now);
    if (card.announced !== card.run.status) {
      card.announced = card.run.status;
      announce(`${card.run.name}: ${card.run.status}`);
    }
  }
  dirty.clear();
}

setInterval(() => {
  for (const card of cards) if (!card.run.finished) changed(card);
}, TICK_MS);

function announce(text) {
  // A live region announces changes of its text: status words, one at a time.
  $("#announcer").textContent = text;
}

// -- the token ------------------------------------------------------------------------

/** Ask once for the server's token (the client keeps it for this tab only). */
function askToken(why) {
  const dialog = $("#token-dialog");
  $("#token-why").textContent = why;
  $("#token").value = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => resolve(dialog.returnValue === "use" ? $("#token").value.trim() || null : null),
      { once: true },
    );
  });
}

// -- endpoints and the form -------------------------------------------------------

async function loadEndpoints() {
  let wait = 500;
  for (;;) {
    try {
      endpoints = await client.endpoints();
      break;
    } catch (error) {
      showFormMessage(`Cannot list endpoints: ${error.message}. Trying again in ${wait / 1000} s.`);
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, ENDPOINTS_RETRY_MAX_MS);
    }
  }
  const list = $("#endpoint-list");
  list.replaceChildren(
    ...endpoints.map((endpoint) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "endpoint";
      button.dataset.name = endpoint.name;
      const title = document.createElement("span");
      title.className = "endpoint-title";
      title.textContent = endpoint.title || "";
      button.append(endpoint.name, " ", title);
      button.addEventListener("click", () => choose(endpoint.name));
      item.append(button);
      return item;
    }),
  );
  if (endpoints.length) choose(endpoints[0].name);
  else showFormMessage("This server offers no endpoints.");
}

function showFormMessage(text) {
  const message = document.createElement("p");
  message.className = "load-error";
  message.setAttribute("role", "alert");
  message.textContent = text;
  $("#form-area").replaceChildren(message);
}

function choose(name) {
  const endpoint = endpoints.find((e) => e.name === name);
  if (form !== null) handleStream = form.handleStream;
  for (const button of document.querySelectorAll("#endpoint-list .endpoint")) {
    if (button.dataset.name === name) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
  form = new EndpointForm(endpoint, { handleStream, onRun: start });
  $("#form-area").replaceChildren(form.node);
}

/** "On click": start a run of the form's endpoint, shown as a new card. */
function start(values, streamOn) {
  handleStream = streamOn;
  const run = client.start(form.endpoint.name, values, { handleStream: streamOn });
  const card = addCard(run, FROM_THIS_PAGE);
  // On a phone the cards are below the form: bring the new one up to be watched.
  if (card.node.getBoundingClientRect().top > innerHeight * 0.6) {
    card.node.scrollIntoView({ block: "start" });
  }
}

function addCard(run, origin) {
  const card = new RunCard(run, { origin, onCancel: (c) => c.run.cancel() });
  run.onChange = () => changed(card);
  cards.unshift(card);
  $("#no-runs").hidden = true;
  $("#cards").prepend(card.node);
  changed(card);
  return card;
}

// -- the Runs view ------------------------------------------------------------------

let runsTimer = 0;

function showTab(which) {
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const selected = tab.id === `tab-${which}`;
    tab.setAttribute("aria-selected", String(selected));
    $(`#${tab.getAttribute("aria-controls")}`).hidden = !selected;
  }
  clearTimeout(runsTimer);
  if (which === "runs") pollRuns();
}

async function pollRuns() {
  try {
    showRuns(await client.runs());
    $("#runs-error").hidden = true;
  } catch (error) {
    $("#runs-error").textContent = `Cannot list runs: ${error.message}`;
    $("#runs-error").hidden = false;
  }
  // Polled only while shown: a hidden view costs the server nothing.
  if (!$("#panel-runs").hidden) runsTimer = setTimeout(pollRuns, RUNS_POLL_MS);
}

function progressLabel(run) {
  if (run.status === "succeeded") return "100%";
  const progress = progressOf(run.last_message);
  if (progress.fraction !== null) {
    const percent = `${Math.round(progress.fraction * 100)}%`;
    return progress.step ? `${progress.step} ${percent}` : percent;
  }
  const count = run.messages ?? run.events ?? 0;
  return count ? `${count.toLocaleString("en-US")} chunk${count === 1 ? "" : "s"}` : "";
}

function runCells(run) {
  const created = Date.parse(run.created);
  const finished = run.finished ? Date.parse(run.finished) : Date.now();
  return {
    id: run.id,
    endpoint: run.endpoint,
    status: run.status,
    progress: progressLabel(run),
    started: Number.isNaN(created) ? "" : new Date(created).toLocaleTimeString("en-GB"),
    duration: Number.isNaN(created) ? "" : formatDuration(Math.max(0, finished - created) / 1000),
  };
}

/** The table updated in place, row by row, so focus stays on its run's button. */
function showRuns(runs) {
  const body = $("#runs-table tbody");
  const rows = new Map([...body.rows].map((row) => [row.dataset.id, row]));
  let previous = null;
  for (const run of runs) {
    let row = rows.get(run.id);
    const cells = runCells(run);
    if (row === undefined) {
      row = body.insertRow();
      row.dataset.id = run.id;
      // The run's id is the button that opens it: shortened on screen, whole in its name.
      const open = document.createElement("button");
      open.type = "button";
      open.className = "open-run";
      open.textContent = run.id.slice(0, 8);
      open.title = run.id;
      open.setAttribute("aria-label", `Open run ${run.id} (${run.endpoint})`);
      open.addEventListener("click", () => openRun(run.id));
      row.insertCell().append(open);
      for (const key of ["endpoint", "status", "progress", "started", "duration"]) {
        const cell = row.insertCell();
        cell.dataset.key = key;
      }
    }
    rows.delete(run.id);
    row.run = run;
    for (const cell of row.cells) {
      const key = cell.dataset.key;
      if (key && cell.textContent !== cells[key]) cell.textContent = cells[key];
    }
    row.className = `-${run.status}`;
    const wanted = previous === null ? body.firstElementChild : previous.nextElementSibling;
    if (row !== wanted) body.insertBefore(row, wanted);
    previous = row;
  }
  for (const gone of rows.values()) gone.remove();
  $("#runs-empty").hidden = runs.length > 0;
}

/** Open any run as a card: replayed from its first event, then followed live. */
function openRun(runId) {
  const existing = cards.find((card) => card.run.runId === runId);
  if (existing) {
    existing.node.scrollIntoView({ block: "nearest" });
    existing.node.querySelector(".card-title").focus();
    return;
  }
  const record = $(`#runs-table tr[data-id="${CSS.escape(runId)}"]`)?.run ?? {};
  const run = client.follow(runId, {
    name: record.endpoint,
    created: record.created,
    finished: record.finished,
  });
  addCard(run, FROM_RUNS_VIEW);
}

// -- start --------------------------------------------------------------------------

$("#server").textContent = client.base.host + client.base.pathname.replace(/\/$/, "");
$("#tab-endpoints").addEventListener("click", () => showTab("endpoints"));
$("#tab-runs").addEventListener("click", () => showTab("runs"));
loadEndpoints();
