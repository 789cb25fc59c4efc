// streambind's client for web pages: the "call endpoint" action with Handle stream, on
// fetch. One import, no dependencies:
//
//   import { StreambindClient } from "http://127.0.0.1:8787/static/streambind.js";
//   const run = new StreambindClient().start("import", { rows: 100 }, { onChange });
//
// A run is started with POST and its SSE answer read as it arrives (EventSource cannot
// POST, nor send a token in a header); a dropped connection is resumed through
// GET api/runs/{id}/events with Last-Event-ID; it stops on 204, 410 and the terminal
// events, never looping; Cancel is DELETE api/runs/{id}. The same semantics as the
// Python client (app/client.py). docs/browser.md documents every name exported here.

import { SSEDecoder } from "./sse.js";
import { StepTracker, barFraction, progressOf } from "./progress.js";

export { SSEDecoder, StepTracker, barFraction, progressOf };

/** The errors a streambind server answers when it started nothing and asks to be asked again. */
const BUSY_TYPES = new Set([
  "shutting_down",
  "store_unavailable",
  "too_many_runs",
  "too_many_connections",
]);
const TERMINAL = new Set(["succeeded", "failed", "cancelled", "stopped"]);
const DEFAULT_RETRY_MS = 3000;
const MAX_BACKOFF_MS = 30000;
const TOKEN_KEY = "streambind-token:";
/** A stream is decoded and applied this many bytes at a time (about 1,000 small events)... */
const SLICE_BYTES = 64 * 1024;
/** ...and after this many milliseconds of that work, the page gets a turn to draw. */
const BUDGET_MS = 8;

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });

/** Let the browser run its other tasks (drawing a frame among them), then go on. */
function yieldToPage() {
  if (globalThis.scheduler?.yield) return globalThis.scheduler.yield();
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function parseData(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text; // not JSON: the message is its text
  }
}

/** What one call has received: the held-back copy (Handle stream off) has these too. */
function freshContent() {
  return {
    chunk: null,
    chunks: [],
    steps: new StepTracker(),
    lastEventId: "",
    firstChunkAt: null,
    result: null,
    error: null,
    status: "running",
  };
}

/**
 * Apply one network read's events to `into`; true once one of them ended the run.
 * Only streambind's own terminal events end it: an `end` that says succeeded, an `error`
 * that says failed (or fell_behind), a `cancelled` that says cancelled.
 */
function applyEvents(into, events, now) {
  let index = 0;
  const leading = plainMessages(events);
  if (leading > 1) {
    const values = parseAll(events, leading);
    if (values !== null) {
      for (const value of values) {
        into.chunks.push(value);
        into.steps.see(value);
      }
      into.chunk = values[values.length - 1];
      const id = events[leading - 1].id;
      if (id) into.lastEventId = id;
      if (into.firstChunkAt === null) into.firstChunkAt = now;
      index = leading;
    }
  }
  for (; index < events.length; index++) {
    const event = events[index];
    if (event.id) into.lastEventId = event.id;
    const data = parseData(event.data);
    if (event.type !== "message" && data && typeof data === "object") {
      if (event.type === "end" && data.status === "succeeded") {
        into.result = data.result ?? null;
        into.status = "succeeded";
        return true;
      }
      if (event.type === "error" && (data.status === "failed" || data.status === "fell_behind")) {
        into.error =
          data.error && typeof data.error === "object" ? data.error : { message: String(data.error) };
        into.status = "failed";
        return true;
      }
      if (event.type === "cancelled" && data.status === "cancelled") {
        into.status = "cancelled";
        return true;
      }
    }
    into.chunks.push(data);
    into.chunk = data;
    into.steps.see(data);
    if (into.firstChunkAt === null) into.firstChunkAt = now;
  }
  return false;
}

/** How many of the events, from the first, are plain messages (type "message"). */
function plainMessages(events) {
  let count = 0;
  while (count < events.length && events[count].type === "message") count++;
  return count;
}

/**
 * The data of the first `count` events as values, in one JSON.parse of them joined as an
 * array (a firehose's read holds thousands; one call costs far less than one per
 * message), or null. Each message streambind sends is one JSON value, so the array holds
 * exactly one value per event; anything else (a message that is not JSON) fails the parse
 * or the count, and is then read one by one.
 */
function parseAll(events, count) {
  const texts = new Array(count);
  for (let i = 0; i < count; i++) texts[i] = events[i].data;
  try {
    const values = JSON.parse(`[${texts.join(",")}]`);
    return values.length === count ? values : null;
  } catch {
    return null;
  }
}

async function errorOf(response, what) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: described by its status below
  }
  if (body?.error && typeof body.error.message === "string") return { ...body.error };
  return {
    type: `http_${response.status}`,
    message: `${what} answered ${response.status} ${response.statusText}`.trim(),
  };
}

function retryAfterMs(response) {
  const header = (response.headers.get("Retry-After") || "").trim();
  if (/^[0-9]+$/.test(header)) return Number(header) * 1000;
  const when = Date.parse(header);
  return Number.isNaN(when) ? 1000 : Math.max(0, when - Date.now());
}

/** One streambind server, seen from a page. */
export class StreambindClient {
  /**
   * @param {object} [options]
   * @param {string|URL} [options.base] The server's root (with its path prefix when
   *   mounted); by default where this module was served from, one level up.
   * @param {string} [options.token] A token to send; by default the one kept for this tab.
   * @param {(why: string) => Promise<string|null>} [options.askToken] Asked once when the
   *   server answers 401; the token it gives is kept for this tab (sessionStorage).
   * @param {number} [options.busyRetryFor] Milliseconds in all a busy server is asked again.
   */
  constructor({ base, token, askToken, busyRetryFor = 30000, minRetryMs = 100, maxReconnects = 5 } = {}) {
    this.base = new URL(base ?? new URL("../", import.meta.url));
    if (!this.base.pathname.endsWith("/")) this.base.pathname += "/";
    this.askToken = askToken ?? null;
    this.busyRetryFor = busyRetryFor;
    this.minRetryMs = minRetryMs;
    this.maxReconnects = maxReconnects;
    this.maxTotalReconnects = 1000;
    this._storageKey = TOKEN_KEY + this.base.href;
    this.token = token ?? this._stored();
    this._asking = null;
  }

  _stored() {
    try {
      return sessionStorage.getItem(this._storageKey);
    } catch {
      return null; // storage refused (a sandboxed frame): ask again when needed
    }
  }

  /** Use `token` from now on, and keep it for this tab only (never in a URL). */
  setToken(token) {
    this.token = token || null;
    try {
      if (token) sessionStorage.setItem(this._storageKey, token);
      else sessionStorage.removeItem(this._storageKey);
    } catch {
      // kept in memory only
    }
  }

  /** A URL of this server, from a path relative to its root (`api/runs`). */
  url(path) {
    return new URL(path, this.base);
  }

  /**
   * One request with the token; a 401 asks for the token once (one question however many
   * requests got it) and sends the request again with the answer.
   */
  async fetch(path, init = {}) {
    let asked = false;
    for (;;) {
      const headers = new Headers(init.headers);
      if (this.token) headers.set("Authorization", `Bearer ${this.token}`);
      const sentWith = this.token;
      const response = await fetch(this.url(path), { cache: "no-store", ...init, headers });
      if (response.status !== 401 || !this.askToken || asked) return response;
      asked = true;
      if (this.token !== sentWith) continue; // another request got a new token meanwhile
      const why = sentWith
        ? "The server refused the token: give it again."
        : "This server needs a token.";
      this._asking ??= this.askToken(why).finally(() => {
        this._asking = null;
      });
      const given = await this._asking;
      if (!given) return response;
      if (given !== this.token) this.setToken(given);
    }
  }

  /** A JSON object from the server; throws an Error whose message is meant for people. */
  async getJSON(path) {
    const response = await this.fetch(path, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error((await errorOf(response, this.url(path).href)).message);
    return response.json();
  }

  /** The server's workflows, each with its parameters as JSON Schema. */
  async endpoints() {
    return (await this.getJSON("api/endpoints")).endpoints;
  }

  /** The runs the server keeps, newest first. */
  async runs() {
    return (await this.getJSON("api/runs")).runs;
  }

  /** One run's record, with its result or error once finished. */
  async record(runId) {
    return this.getJSON(`api/runs/${encodeURIComponent(runId)}`);
  }

  /**
   * Start a run of endpoint `name`: the "On click" action. It begins at once; `run.done`
   * resolves when it has ended, however (it never rejects).
   * @param {object} [options]
   * @param {boolean} [options.handleStream] Off: what arrives is held back and applied
   *   only at the end (the run's id is still known at once, so Cancel still cancels).
   * @param {(run: Run) => void} [options.onChange] Called after each batch of changes.
   */
  start(name, params = {}, { handleStream = true, onChange } = {}) {
    const run = new Run(this, { name, params, handleStream, onChange });
    run._begin({
      path: `api/endpoints/${encodeURIComponent(name)}`,
      init: {
        method: "POST",
        headers: { Accept: "text/event-stream", "Content-Type": "application/json" },
        body: JSON.stringify(params),
      },
    });
    return run;
  }

  /**
   * Follow a run started anywhere: its events from the first, then live.
   * @param {object} [options]
   * @param {string} [options.created] The run's `created` time from its record (and
   *   `finished`, if it has ended): elapsed time is then the run's own, not the replay's.
   */
  follow(runId, { name, created, finished, onChange } = {}) {
    const run = new Run(this, { name: name ?? runId, params: {}, handleStream: true, onChange });
    run.runId = runId;
    if (created) run._timeline(Date.parse(created), finished ? Date.parse(finished) : null);
    run._begin(run._eventsRequest(""));
    return run;
  }
}

/** One call: what a page binds (`chunk`, `chunks`, `status`, `result`, `error`). */
export class Run {
  constructor(client, { name, params, handleStream, onChange }) {
    this.client = client;
    this.name = name;
    this.params = params;
    this.handleStream = handleStream;
    /** Called with the run after each batch of changes (at most once per network read). */
    this.onChange = onChange ?? null;
    /** "pending", "running", then "succeeded", "failed" or "cancelled". */
    this.status = "pending";
    /** The latest message (`stream.chunk`), JSON-decoded where it is JSON. */
    this.chunk = null;
    /** Every message so far, in order (`stream.chunks`). */
    this.chunks = [];
    this.result = null;
    /** `{type, message, fields?}` once failed. */
    this.error = null;
    /** The run's id, from the first response's X-Run-Id. */
    this.runId = null;
    this.lastEventId = "";
    /** The named steps the chunks went through (progress.js's StepTracker). */
    this.steps = new StepTracker();
    /** Whether the answer was an event stream (false: the run sent no message at all). */
    this.streamed = false;
    this.reconnects = 0;
    /** While a busy server is being asked again: why, in a few words. */
    this.busy = null;
    this.startedAt = null;
    this.firstChunkAt = null;
    this.finishedAt = null;
    this._held = handleStream ? null : freshContent();
    this._abort = new AbortController();
    this._retryMs = null;
    this._offset = 0; // how long before this page saw it the run started (ms)
    this._duration = null; // a followed run that had already ended: how long it took (ms)
    this.done = new Promise((resolve) => {
      this._resolve = resolve;
    });
  }

  get finished() {
    return TERMINAL.has(this.status);
  }

  /** Seconds since the run started (until it finished). */
  elapsed(now = performance.now()) {
    if (this.startedAt === null) return 0;
    return ((this.finishedAt ?? now) - this.startedAt) / 1000;
  }

  /** The error as one sentence, with each refused parameter's reason. */
  errorMessage() {
    if (!this.error) return "";
    let message = String(this.error.message ?? "");
    const fields = this.error.fields;
    if (fields && typeof fields === "object" && Object.keys(fields).length) {
      message += `: ${Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join("; ")}`;
    }
    return message;
  }

  /** Stop the run: the stream is closed and the run cancelled on the server (DELETE). */
  async cancel() {
    if (this.finished) return;
    this._stop("cancelled");
    if (this.runId) {
      // If this fails the stream is closed anyway: the server cancels the run once its
      // grace period passes with nobody following.
      try {
        await this.client.fetch(`api/runs/${encodeURIComponent(this.runId)}`, {
          method: "DELETE",
        });
      } catch {
        // see above
      }
    }
  }

  _timeline(created, finished) {
    this._offset = Math.max(0, Date.now() - created);
    this._duration = finished === null ? null : Math.max(0, finished - created);
  }

  _stop(status) {
    this._finish(this, status);
    this._abort.abort(new DOMException("stopped", "AbortError"));
    this._changed();
  }

  _changed() {
    if (this.onChange) {
      try {
        this.onChange(this);
      } catch (error) {
        console.error(error); // a page's mistake must not end the run
      }
    }
  }

  _finish(into, status) {
    if (TERMINAL.has(this.status) && into === this) return;
    into.status = status;
    if (into === this) this.finishedAt = performance.now();
  }

  _fail(error) {
    const into = this._held ?? this;
    if (into === this && this.finished) return;
    into.error = error;
    this._finish(into, "failed");
  }

  _eventsRequest(lastEventId) {
    const headers = { Accept: "text/event-stream" };
    if (lastEventId) headers["Last-Event-ID"] = lastEventId;
    return { path: `api/runs/${encodeURIComponent(this.runId)}/events`, init: { headers } };
  }

  async _begin(request) {
    this.status = "running";
    this.startedAt = performance.now() - this._offset;
    this._changed();
    try {
      await this._drive(request);
    } catch (error) {
      // Documented never to reject: a page with many cards depends on it.
      if (!this._abort.signal.aborted) {
        this._fail({ type: "client_error", message: `the client failed: ${error}` });
      }
    }
    this._takeHeld();
    if (!this.finished) {
      this._fail({ type: "protocol_error", message: "the stream ended without saying how" });
    }
    if (this._duration !== null) this.finishedAt = this.startedAt + this._duration;
    this._changed();
    this._resolve(this);
  }

  /** Handle stream off: everything held back reaches the run now, at the end. */
  _takeHeld() {
    const held = this._held;
    if (held === null) return;
    this._held = null;
    this.chunks = held.chunks;
    this.chunk = held.chunk;
    this.steps = held.steps;
    this.lastEventId = held.lastEventId;
    this.firstChunkAt = held.firstChunkAt;
    if (held.result !== null) this.result = held.result;
    if (this.finished) return; // cancelled here: the held content, the run's own end
    this.error = held.error;
    this._finish(this, held.status === "running" ? "failed" : held.status);
  }

  get _into() {
    return this._held ?? this;
  }

  async _drive(request) {
    let attempts = 0;
    const signal = this._abort.signal;
    for (;;) {
      const before = this._into.chunks.length;
      let lost;
      try {
        const response = await this._open(request, signal);
        if (!(await this._takeAnswer(response))) return;
        if (await this._read(response)) return;
        lost = "the connection closed before the run ended";
      } catch (error) {
        if (signal.aborted) return;
        lost = `the connection to ${this.client.base.href} failed (${error.message || error})`;
      }
      attempts = this._into.chunks.length > before ? 1 : attempts + 1;
      request = await this._resumeRequest(attempts, lost, signal);
      if (request === null) return;
    }
  }

  /** Send a request; a busy server's answer (429/503 that started nothing) is sent again
   * after its Retry-After, for `busyRetryFor` ms in all, with `busy` saying so meanwhile. */
  async _open({ path, init }, signal) {
    const deadline = performance.now() + this.client.busyRetryFor;
    try {
      for (;;) {
        const response = await this.client.fetch(path, { ...init, signal });
        if (response.status !== 429 && response.status !== 503) return response;
        const error = await errorOf(response.clone(), this.client.base.href);
        if (!BUSY_TYPES.has(error.type) && !response.headers.has("Retry-After")) return response;
        const wait = Math.max(retryAfterMs(response), this.client.minRetryMs);
        if (performance.now() + wait > deadline) return response;
        const reason = error.message?.slice(0, 120) || `${response.status}`;
        this.busy = `server busy (${reason}), retrying in ${wait / 1000} s`;
        this._changed();
        await sleep(wait, signal);
      }
    } finally {
      if (this.busy !== null) {
        this.busy = null;
        this._changed();
      }
    }
  }

  /** Take in an answer's status and headers; false when the run ends here. */
  async _takeAnswer(response) {
    const runId = response.headers.get("X-Run-Id");
    if (runId && runId !== this.runId) this.runId = runId;
    const type = (response.headers.get("Content-Type") || "").split(";")[0].trim().toLowerCase();
    if (response.status === 200 && type === "text/event-stream") {
      this.streamed = true;
      this._changed();
      return true;
    }
    if (response.status === 204) {
      await this._settleFromRecord(); // nothing left to replay: the record says how it ended
    } else if (!response.ok) {
      await this._failHttp(response);
    } else if (type === "application/json" || type.endsWith("+json")) {
      // A run that sent no message at all: its result, with no stream.
      this._into.result = await response.json();
      this._finish(this._into, "succeeded");
    } else {
      this._fail({
        type: "not_a_stream",
        message: `the server answered ${response.status} ${type || "without a type"}, not a stream`,
      });
    }
    return false;
  }

  async _failHttp(response) {
    const error = await errorOf(response, this.client.base.href);
    if (error.type === "events_gone") {
      error.message =
        `the server no longer keeps this run's events from id ${Number(this._into.lastEventId || 0) + 1} ` +
        `on (the oldest it keeps is ${error.first_kept ?? "?"}), so they cannot be shown`;
    } else if (response.status === 404 && this.runId && !this.streamed) {
      error.message += ": the server does not know this run, or no longer keeps it";
    } else if (BUSY_TYPES.has(error.type)) {
      error.message += ` (retried for ${this.client.busyRetryFor / 1000} s)`;
    }
    this._fail(error);
  }

  async _settleFromRecord() {
    let record;
    try {
      record = await this.client.record(this.runId);
    } catch (error) {
      this._fail({ type: "connection_lost", message: error.message });
      return;
    }
    const into = this._into;
    into.result = record.result ?? null;
    if (record.error) into.error = record.error;
    const status = ["succeeded", "failed", "cancelled"].includes(record.status)
      ? record.status
      : "failed";
    this._finish(into, status);
  }

  /** Read the stream, applying each network read's events at once; true once it ended. */
  async _read(response) {
    const decoder = new SSEDecoder();
    const reader = response.body.getReader();
    const into = this._into;
    let working = performance.now();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return false;
        // A read may hold megabytes when the page was busy: taken a slice at a time, with
        // the page let to draw between slices, no task blocks it for long.
        for (let start = 0; start < value.length; start += SLICE_BYTES) {
          const events = decoder.feed(value.subarray(start, start + SLICE_BYTES));
          if (decoder.retry !== null) this._retryMs = decoder.retry;
          if (!events.length) continue;
          const ended = applyEvents(into, events, performance.now());
          if (ended && into === this) this.finishedAt = performance.now();
          // Held back (Handle stream off), nothing visible changed until the end.
          if (into === this || ended) this._changed();
          if (ended) return true;
          if (performance.now() - working > BUDGET_MS) {
            await yieldToPage();
            working = performance.now();
          }
        }
      }
    } finally {
      reader.cancel().catch(() => {}); // frees the connection whatever happened
    }
  }

  /** The request that resumes after a lost connection, or null when the run ends here. */
  async _resumeRequest(attempt, reason, signal) {
    if (!this.runId) {
      this._fail({ type: "connection_error", message: reason });
      return null;
    }
    if (attempt > this.client.maxReconnects) {
      this._fail({
        type: "connection_lost",
        message: `gave up after ${this.client.maxReconnects} reconnection attempts: ${reason}`,
      });
      return null;
    }
    if (this.reconnects >= this.client.maxTotalReconnects) {
      this._fail({
        type: "connection_lost",
        message: `gave up after ${this.reconnects} reconnections in all: ${reason}`,
      });
      return null;
    }
    // retry: 0 would reconnect hundreds of times a second: there is a floor, and the wait
    // doubles with each attempt in a row that brought no new message.
    const retry = Math.max(this._retryMs ?? DEFAULT_RETRY_MS, this.client.minRetryMs);
    await sleep(Math.min(retry * 2 ** (attempt - 1), MAX_BACKOFF_MS), signal);
    this.reconnects += 1;
    this._changed();
    return this._eventsRequest(this._into.lastEventId);
  }
}
