// One run on the page: `stream.chunk` bound to a progress bar, `stream.chunks` to a log.
// `render` applies what changed since the last time, and the page calls it at most once
// per animation frame, however many messages arrived meanwhile.

import {
  RateMeter,
  barFraction,
  formatCount,
  formatDuration,
  joinedText,
  progressOf,
} from "./progress.js";

/** Log lines kept in the page; `run.chunks` itself keeps every message. */
export const LOG_LINES = 200;
/** Characters of assembled text kept in the page for text streams. */
export const TEXT_CHARS = 4000;
const CHUNK_CHARS = 300;

export const FROM_THIS_PAGE = "started here";
export const FROM_RUNS_VIEW = "via Runs view";

export const HINT_STREAM_OFF = "Handle stream is off: progress will show when the call finishes.";
const HINT_STREAM_WAS_OFF = "Handle stream was off: all {n} chunks arrived at once, at the end.";
export const HINT_NO_STREAM =
  "This endpoint finished without sending a streaming message: " +
  "there was no progress to show, only its result.";

let cards = 0;

function element(tag, className, text = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

const oneLine = (value) => (typeof value === "string" ? value : JSON.stringify(value));

export class RunCard {
  /**
   * @param {import("./streambind.js").Run} run
   * @param {{origin: string, onCancel: (card: RunCard) => void}} options
   */
  constructor(run, { origin, onCancel }) {
    this.run = run;
    this.origin = origin;
    this._shown = {}; // what each part of the card shows now, to touch only what changed
    this._appliedChunks = 0;
    this._text = null; // the assembled text of a text stream, once it is one
    this._rate = new RateMeter();
    this.node = this._build(onCancel);
  }

  _build(onCancel) {
    const id = `card-${++cards}`;
    const card = element("article", "card -pending");
    card.setAttribute("aria-labelledby", `${id}-title`);
    const head = element("header", "card-head");
    this._title = element("h3", "card-title", this.run.name);
    this._title.id = `${id}-title`;
    this._title.tabIndex = -1; // focused when the Runs view opens a run already shown
    this._status = element("span", "card-status", "pending");
    this._cancel = element("button", "card-cancel", "Cancel");
    this._cancel.type = "button";
    this._cancel.setAttribute("aria-label", `Cancel ${this.run.name}`);
    this._cancel.addEventListener("click", () => onCancel(this));
    head.append(this._title, element("span", "card-origin", this.origin), this._status, this._cancel);

    this._hint = element("p", "card-hint");
    this._steps = element("ol", "card-steps");
    this._steps.setAttribute("aria-label", "Steps");
    const progress = element("div", "card-progress");
    this._bar = element("progress", "card-bar");
    this._bar.max = 1;
    this._bar.removeAttribute("value"); // indeterminate until a chunk says how far
    this._bar.setAttribute("aria-labelledby", `${id}-title ${id}-step`);
    this._step = element("span", "card-step");
    this._step.id = `${id}-step`;
    progress.append(this._bar, this._step);
    this._stats = element("p", "card-stats");
    this._chunk = element("p", "card-chunk");
    this._log = element("pre", "card-log");
    this._log.tabIndex = 0; // scrollable by keyboard
    this._log.setAttribute("aria-label", `Log of ${this.run.name}: the last ${LOG_LINES} chunks`);
    this._textView = element("p", "card-text");
    this._outcome = element("p", "card-outcome");
    for (const node of [this._hint, this._steps, this._log, this._textView, this._outcome]) {
      node.hidden = true;
    }
    card.append(head, this._hint, this._steps, progress, this._stats, this._chunk, this._log);
    card.append(this._textView, this._outcome);
    return card;
  }

  /** Apply everything that changed; cheap when nothing did. */
  render(now = performance.now()) {
    const run = this.run;
    this._apply("status", run.status, () => {
      this.node.className = `card -${run.status}`;
      this._status.textContent = run.status;
      this._cancel.hidden = run.finished;
    });
    this._apply("title", run.runId, () => {
      // The id once the server has named it: never "· null" while it has not yet.
      this._title.textContent = run.runId ? `${run.name} · ${run.runId}` : run.name;
    });
    this._renderLog();
    this._renderProgress(now);
    this._renderSteps();
    this._apply("hint", this._hintText(), (hint) => {
      this._hint.textContent = hint;
      this._hint.hidden = !hint;
    });
    this._apply("outcome", this._outcomeText(), (outcome) => {
      this._outcome.textContent = outcome;
      this._outcome.hidden = !outcome;
    });
  }

  /** Call `change(value)` only when `value` differs from what is shown. */
  _apply(key, value, change) {
    if (this._shown[key] === value) return;
    this._shown[key] = value;
    change(value);
  }

  _renderLog() {
    const chunks = this.run.chunks;
    const count = chunks.length;
    if (count === this._appliedChunks) return;
    const first = this._appliedChunks;
    this._appliedChunks = count;
    const text = joinedText(chunks, first);
    if (text !== null) {
      this._showText(text);
      return;
    }
    // Only the lines the log keeps are written: one text update per frame.
    this._log.hidden = false;
    this._textView.hidden = true;
    const stick = this._log.scrollTop + this._log.clientHeight >= this._log.scrollHeight - 4;
    this._log.textContent = chunks.slice(Math.max(0, count - LOG_LINES)).map(oneLine).join("\n");
    if (stick) this._log.scrollTop = this._log.scrollHeight;
  }

  _showText(text) {
    this._text = ((this._text ?? "") + text).slice(-TEXT_CHARS);
    this._textView.hidden = false;
    this._log.hidden = true;
    this._textView.textContent = this._text;
  }

  _renderProgress(now) {
    const run = this.run;
    const progress = progressOf(run.chunk);
    const fraction = barFraction(run);
    this._apply("bar", fraction, () => {
      if (fraction === null) {
        this._bar.removeAttribute("value"); // busy: no chunk says how far (publish, say)
        this._bar.removeAttribute("aria-valuetext");
      } else {
        this._bar.value = fraction;
        this._bar.setAttribute("aria-valuetext", `${Math.round(fraction * 100)}%`);
      }
    });
    this._apply("step", progress.step ?? "", (step) => {
      this._step.textContent = step;
    });
    this._apply("chunk", run.chunk, () => {
      const text = run.chunk === null ? "" : `chunk: ${oneLine(run.chunk)}`;
      this._chunk.textContent = text.slice(0, CHUNK_CHARS);
    });
    if (this._shown.statsFinal) return;
    const parts = [];
    if (progress.done !== null && progress.total !== null) {
      parts.push(`${formatCount(progress.done)}/${formatCount(progress.total)}`);
    }
    parts.push(formatDuration(run.elapsed(now)));
    const [rate, left] = this._rate.update(now / 1000, progress);
    if (rate !== null && !run.finished) {
      parts.push(`${rate.toLocaleString("en-US", { maximumFractionDigits: 1 })}/s`);
      parts.push(`ETA ${formatDuration(left ?? 0)}`);
    }
    const count = run.chunks.length;
    parts.push(`${formatCount(count)} chunk${count === 1 ? "" : "s"}`);
    if (run.reconnects) parts.push(`${run.reconnects} reconnect${run.reconnects === 1 ? "" : "s"}`);
    this._apply("stats", parts.join(" · "), (stats) => {
      this._stats.textContent = stats;
    });
    this._shown.statsFinal = run.finished;
  }

  _renderSteps() {
    const run = this.run;
    const tracker = run.steps;
    const succeeded = run.status === "succeeded";
    if (succeeded && run.result && typeof run.result === "object") {
      tracker.announce(run.result.steps);
    }
    if (tracker.known < 2) return; // one step is what the label beside the bar says
    const steps = tracker.steps(barFraction(run), succeeded);
    const key = steps.map((s) => `${s.name}:${s.state}:${s.fraction}`).join("|");
    this._apply("steps", key, () => {
      this._steps.hidden = false;
      this._steps.replaceChildren(
        ...steps.map((step) => {
          const item = element("li", `-${step.state.replace(" ", "-")}`);
          if (step.state === "done") item.textContent = `${step.name} ✓`;
          else if (step.state === "current" && step.fraction !== null) {
            item.textContent = `${step.name} ${Math.round(step.fraction * 100)}%`;
          } else if (step.state === "current") item.textContent = step.name;
          else item.textContent = `${step.name} ·`;
          if (step.state === "current") item.setAttribute("aria-current", "step");
          return item;
        }),
      );
    });
  }

  _hintText() {
    const run = this.run;
    if (run.busy && !run.finished) return `${run.busy[0].toUpperCase()}${run.busy.slice(1)}.`;
    if (!run.handleStream && !run.finished) return HINT_STREAM_OFF;
    if (!run.handleStream && run.streamed && run.finished && run.status !== "cancelled") {
      return HINT_STREAM_WAS_OFF.replace("{n}", formatCount(run.chunks.length));
    }
    if (run.status === "succeeded" && !run.streamed) return HINT_NO_STREAM;
    return "";
  }

  _outcomeText() {
    const run = this.run;
    if (run.status === "failed") return `Error: ${run.errorMessage() || "unknown error"}`;
    if (run.status === "succeeded" && this._text === null) {
      return `Result: ${oneLine(run.result)}`.slice(0, CHUNK_CHARS * 2);
    }
    if (run.status === "cancelled") return "Cancelled.";
    return "";
  }
}
