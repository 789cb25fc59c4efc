// What a progress display shows, derived from a run: where the bar stands, the steps,
// counts, rate and time left. The same rules as the terminal UI's (app/progress.py and
// app/steps.py), so the page and the TUI never disagree about one run. No DOM here.

const number = (value) =>
  typeof value === "number" && Number.isFinite(value) ? value : null;
const clamp = (x) => Math.min(1, Math.max(0, x));

/**
 * How far along a chunk says the run is: done/total, else progress (0..1), else
 * percent (0..100). `fraction` is null while nothing says.
 * @returns {{fraction: number|null, done: number|null, total: number|null, step: string|null}}
 */
export function progressOf(chunk) {
  const none = { fraction: null, done: null, total: null, step: null };
  if (!chunk || typeof chunk !== "object" || Array.isArray(chunk)) return none;
  const step = typeof chunk.step === "string" ? chunk.step : null;
  const done = number(chunk.done);
  const total = number(chunk.total);
  if (done !== null && total !== null && total > 0) {
    return { fraction: clamp(done / total), done, total, step };
  }
  const progress = number(chunk.progress);
  if (progress !== null) return { ...none, fraction: clamp(progress), step };
  const percent = number(chunk.percent);
  if (percent !== null) return { ...none, fraction: clamp(percent / 100), step };
  return { ...none, step };
}

/** Where the bar stands: as the latest chunk says, full once the run succeeded, else null. */
export function barFraction(run) {
  const { fraction } = progressOf(run.chunk);
  if (fraction === null && run.status === "succeeded") return 1;
  return fraction;
}

/** The text of an AI-style `{"text": "..."}` piece, or null for any other chunk. */
export function textPiece(chunk) {
  return chunk && typeof chunk === "object" && typeof chunk.text === "string"
    ? chunk.text
    : null;
}

/**
 * The chunks from `first` on as one piece of text when every one is a text piece, else
 * null: a stream of text pieces is shown assembled, as an AI reply is; anything else is a log.
 */
export function joinedText(chunks, first = 0) {
  if (first >= chunks.length) return null;
  // The cheap look first: most streams are not text.
  if (textPiece(chunks[first]) === null || textPiece(chunks[chunks.length - 1]) === null) {
    return null;
  }
  const pieces = [];
  for (let i = first; i < chunks.length; i++) {
    const piece = textPiece(chunks[i]);
    if (piece === null) return null;
    pieces.push(piece);
  }
  return pieces.join("");
}

export function formatCount(value) {
  return Number.isInteger(value)
    ? value.toLocaleString("en-US")
    : value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

export function formatDuration(seconds) {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(Math.floor(seconds % 60)).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

/** Rate and time left of the current step, from the progress seen at two moments. */
export class RateMeter {
  constructor() {
    this._step = null;
    this._start = null; // [seconds, done] when the step began
  }

  /** @returns {[number|null, number|null]} units per second and seconds left */
  update(now, progress) {
    if (progress.done === null || progress.total === null) return [null, null];
    if (this._start === null || progress.step !== this._step || progress.done < this._start[1]) {
      this._step = progress.step;
      this._start = [now, progress.done];
      return [null, null];
    }
    const [started, doneThen] = this._start;
    if (now <= started || progress.done <= doneThen) return [null, null];
    const rate = (progress.done - doneThen) / (now - started);
    return [rate, Math.max(0, (progress.total - progress.done) / rate)];
  }
}

/**
 * A run's named steps in order, fed every chunk once (a look-up or two per chunk). A
 * workflow may announce its steps first (`{"steps": [...]}`), so those to come show too.
 */
export class StepTracker {
  constructor() {
    this._seen = [];
    this._announced = [];
    this._current = null;
  }

  see(chunk) {
    if (!chunk || typeof chunk !== "object" || Array.isArray(chunk)) return;
    const step = chunk.step;
    if (typeof step === "string" && step !== this._current) {
      this._current = step;
      if (!this._seen.includes(step)) this._seen.push(step);
    }
    if (chunk.steps !== undefined) this.announce(chunk.steps);
  }

  announce(names) {
    if (Array.isArray(names) && names.every((n) => typeof n === "string")) {
      this._announced = [...names];
    }
  }

  /** How many distinct steps are known, seen or announced. */
  get known() {
    return this._names().length;
  }

  _names() {
    const seen = this._seen;
    // An announced order wins where it covers the steps seen.
    if (this._announced.length && seen.every((n) => this._announced.includes(n))) {
      return [...this._announced];
    }
    return [...seen, ...this._announced.filter((n) => !seen.includes(n))];
  }

  /**
   * Every known step: `state` is "done", "current" or "to come"; `fraction` is how far
   * the current one is.
   */
  steps(fraction, succeeded) {
    const names = this._names();
    if (succeeded) return names.map((name) => ({ name, state: "done", fraction: 1 }));
    let reached = this._current === null;
    return names.map((name) => {
      if (name === this._current) {
        reached = true;
        return { name, state: "current", fraction };
      }
      if (this._seen.includes(name) && !reached) return { name, state: "done", fraction: 1 };
      return { name, state: "to come", fraction: null };
    });
  }
}
