/**
 * A byte-level `text/event-stream` parser for the load client (WHATWG HTML, "Server-sent events",
 * section "Parsing an event stream" and "Interpreting an event stream"):
 *
 * - lines end in CR LF, LF or CR; a CR at the end of one chunk and an LF at the start of the next
 *   are one line end;
 * - one UTF-8 byte order mark at the very start of the stream is skipped;
 * - a line starting with `:` is a comment; otherwise `name:value` (one space after the colon is
 *   dropped) or a bare `name` with an empty value;
 * - `data` appends its value and a LF to the data buffer; `event` sets the type; `id` sets the last
 *   event id unless the value contains NUL (it persists across events); `retry` counts only when its
 *   value is all ASCII digits; other fields are ignored;
 * - a blank line dispatches: nothing when no `data` field was seen since the last blank line,
 *   otherwise an event with the buffer minus its final LF and the type (default `message`);
 * - an event not closed by a blank line when the stream ends is never dispatched.
 *
 * Cost: lines are found with `Buffer.indexOf` (memchr); only field values are decoded, and an `id`
 * made of decimal digits is read as a number straight from the bytes (no string). A line split
 * across reads is copied once into `#carry`, never the whole next chunk. Line breaks are ASCII, so a
 * multi-byte UTF-8 character is never cut by the line splitter and each value decodes whole.
 */

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;

export interface SseEventHandler {
  /**
   * One dispatched event. `id` is the last event id (a number when it is a plain decimal integer of
   * at most 15 digits, else the string, `''` when none was ever set); `idSet` tells whether this
   * event's own block carried an `id` field.
   */
  (type: string, data: string, id: number | string, idSet: boolean): void;
}

export class SseParser {
  readonly #onEvent: SseEventHandler;
  /** Bytes of a line not yet ended (null: none). */
  #carry: Buffer | null = null;
  /** The previous chunk ended in CR: an LF at the start of this one belongs to that line end. */
  #afterCr = false;
  #started = false;
  /** Joined `data` values of the current block, or null when the block has no `data` field. */
  #data: string | null = null;
  #type = '';
  #idSet = false;
  #id: number | string = '';
  /** The last valid `retry` value, -1 when none. */
  retry = -1;
  comments = 0;

  constructor(onEvent: SseEventHandler) {
    this.#onEvent = onEvent;
  }

  /** The last event id as the `Last-Event-ID` header would carry it. */
  get lastEventId(): string {
    return String(this.#id);
  }

  feed(chunk: Buffer): void {
    if (chunk.length === 0) return;
    let buf = chunk;
    let at = 0;
    if (!this.#started) {
      // The BOM may itself be split across the first reads: wait for three bytes.
      if (this.#carry !== null) {
        buf = Buffer.concat([this.#carry, buf]);
        this.#carry = null;
      }
      if (buf.length < 3 && isBomPrefix(buf)) {
        this.#carry = Buffer.from(buf);
        return;
      }
      this.#started = true;
      if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) at = 3;
    }
    const end = buf.length;
    if (this.#afterCr && at < end) {
      this.#afterCr = false;
      if (buf[at] === LF) at++;
    }
    if (this.#carry !== null) {
      const stop = lineEnd(buf, at);
      if (stop === -1) {
        this.#carry = Buffer.concat([this.#carry, buf.subarray(at)]);
        return;
      }
      const line = Buffer.concat([this.#carry, buf.subarray(at, stop)]);
      this.#carry = null;
      this.#line(line, 0, line.length);
      at = this.#skipBreak(buf, stop);
    }
    // The next CR, found once and again only when passed: an LF-only stream costs one memchr per line.
    let cr = buf.indexOf(CR, at);
    while (at < end) {
      if (cr !== -1 && cr < at) cr = buf.indexOf(CR, at);
      const lf = buf.indexOf(LF, at);
      const stop = cr === -1 ? lf : lf === -1 || cr < lf ? cr : lf;
      if (stop === -1) break;
      this.#line(buf, at, stop);
      at = this.#skipBreak(buf, stop);
    }
    if (at < end) this.#carry = Buffer.from(buf.subarray(at));
  }

  /** End of stream: an event without its closing blank line is dropped. */
  end(): void {
    this.#carry = null;
    this.#data = null;
    this.#type = '';
    this.#idSet = false;
  }

  /** Index after the line break at `stop` (CR LF counts as one; a CR at the chunk's end may pair with the next LF). */
  #skipBreak(buf: Buffer, stop: number): number {
    if (buf[stop] !== CR) return stop + 1;
    if (stop + 1 === buf.length) {
      this.#afterCr = true;
      return stop + 1;
    }
    return buf[stop + 1] === LF ? stop + 2 : stop + 1;
  }

  #line(buf: Buffer, from: number, to: number): void {
    if (from === to) return this.#dispatch();
    const first = buf[from]!;
    if (first === COLON) {
      this.comments++;
      return;
    }
    let colon = buf.indexOf(COLON, from);
    if (colon === -1 || colon > to) colon = to;
    let value = colon === to ? to : colon + 1;
    if (value < to && buf[value] === SPACE) value++;
    const nameLength = colon - from;
    if (nameLength === 4 && matches(buf, from, 'data')) {
      const v = buf.toString('utf8', value, to);
      this.#data = this.#data === null ? v : `${this.#data}\n${v}`;
    } else if (nameLength === 2 && buf[from] === 0x69 && buf[from + 1] === 0x64) {
      this.#setId(buf, value, to);
    } else if (nameLength === 5 && matches(buf, from, 'event')) {
      this.#type = buf.toString('utf8', value, to);
    } else if (nameLength === 5 && matches(buf, from, 'retry')) {
      if (value === to) return;
      let n = 0;
      for (let i = value; i < to; i++) {
        const c = buf[i]!;
        if (c < 0x30 || c > 0x39) return;
        n = n * 10 + (c - 0x30);
      }
      this.retry = n;
    }
  }

  #setId(buf: Buffer, from: number, to: number): void {
    // A plain decimal integer without a leading zero (so the number prints back as the same text).
    const digits = to - from;
    let numeric = digits > 0 && digits <= 15 && (digits === 1 || buf[from] !== 0x30);
    let n = 0;
    for (let i = from; i < to; i++) {
      const c = buf[i]!;
      if (c === 0) return; // an id with NUL is ignored, field and all
      if (c < 0x30 || c > 0x39) numeric = false;
      else n = n * 10 + (c - 0x30);
    }
    this.#idSet = true;
    this.#id = numeric ? n : buf.toString('utf8', from, to);
  }

  #dispatch(): void {
    const data = this.#data;
    const type = this.#type === '' ? 'message' : this.#type;
    const idSet = this.#idSet;
    this.#data = null;
    this.#type = '';
    this.#idSet = false;
    if (data !== null) this.#onEvent(type, data, this.#id, idSet);
  }
}

/** Index of the first CR or LF at or after `from`, or -1. */
function lineEnd(buf: Buffer, from: number): number {
  const lf = buf.indexOf(LF, from);
  const cr = buf.indexOf(CR, from);
  if (cr === -1) return lf;
  return lf === -1 || cr < lf ? cr : lf;
}

function isBomPrefix(buf: Buffer): boolean {
  return buf[0] === 0xef && (buf.length < 2 || buf[1] === 0xbb);
}

function matches(buf: Buffer, at: number, name: string): boolean {
  for (let i = 0; i < name.length; i++) if (buf[at + i] !== name.charCodeAt(i)) return false;
  return true;
}
