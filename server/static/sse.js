// Decoding an event stream exactly as the WHATWG HTML standard tells browsers to
// ("Interpreting an event stream"), for a stream read with fetch: EventSource cannot
// POST or send an Authorization header, and a hand-written reader usually splits events
// at the wrong place (a chunk boundary, "\n\n" only, every "data:" line).
//
// The same rules as the Python client's decoder (app/sse.py), tested against the same
// vectors (tests/data/sse-vectors.json) inside Chromium.

/**
 * One dispatched event: its type, its data, and the last event ID in force.
 * @typedef {{type: string, data: string, id: string}} ServerSentEvent
 */

const LF = 10;

export class SSEDecoder {
  constructor() {
    // UTF-8 decode as the standard says: a leading byte-order mark is dropped (once, at
    // the very start), invalid bytes become U+FFFD, a character split across chunks waits.
    this._text = new TextDecoder("utf-8");
    this._line = ""; // a line whose end has not arrived yet
    this._afterCR = false; // the last chunk ended with CR: an LF next belongs to it
    this._data = [];
    this._type = "";
    this._id = "";
    /** The last event ID string: the id buffer as the last blank line left it. */
    this.lastEventId = "";
    /** The reconnection time (ms) the stream asked for, or null. */
    this.retry = null;
    /** Comment lines seen (": ping" keep-alives, for instance). */
    this.comments = 0;
  }

  /**
   * Feed the bytes of one network read (any size); returns the events they completed.
   * @param {Uint8Array} bytes
   * @returns {ServerSentEvent[]}
   */
  feed(bytes) {
    return this._feedText(this._text.decode(bytes, { stream: true }));
  }

  /** End of stream: an event not finished by a blank line is discarded, as the standard says. */
  close() {
    this._text.decode();
    this._line = "";
    this._data = [];
    this._type = "";
    return [];
  }

  _feedText(text) {
    const events = [];
    const length = text.length;
    let start = 0;
    if (this._afterCR && length) {
      this._afterCR = false;
      if (text.charCodeAt(0) === LF) start = 1;
    }
    // Positions of the next CR and LF, each searched again only once passed: one scan
    // of the text whatever its line endings.
    let cr = -2;
    let lf = -2;
    while (start < length) {
      if (cr !== -1 && cr < start) cr = text.indexOf("\r", start);
      if (lf !== -1 && lf < start) lf = text.indexOf("\n", start);
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      if (end === -1) break;
      let line = text.slice(start, end);
      if (this._line) {
        line = this._line + line;
        this._line = "";
      }
      this._takeLine(line, events);
      start = end + 1;
      if (end === cr) {
        if (start === length) this._afterCR = true;
        else if (text.charCodeAt(start) === LF) start += 1;
      }
    }
    if (start < length) this._line += text.slice(start);
    return events;
  }

  _takeLine(line, events) {
    if (line === "") {
      this._dispatch(events);
      return;
    }
    if (line.charCodeAt(0) === 58 /* ":" */) {
      this.comments += 1;
      return;
    }
    const colon = line.indexOf(":");
    let field = line;
    let value = "";
    if (colon !== -1) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.charCodeAt(0) === 32 /* " " */) value = value.slice(1);
    }
    switch (field) {
      case "data":
        this._data.push(value);
        break;
      case "event":
        this._type = value;
        break;
      case "id":
        if (!value.includes("\0")) this._id = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) this.retry = Number.parseInt(value, 10);
        break;
      default: // any other field is ignored
    }
  }

  _dispatch(events) {
    this.lastEventId = this._id;
    if (this._data.length) {
      const data = this._data.length === 1 ? this._data[0] : this._data.join("\n");
      events.push({ type: this._type || "message", data, id: this._id });
    }
    this._data = [];
    this._type = "";
  }
}
