// An incremental HTTP/1.x response reader (private, pure): it finds the final
// status (skipping 1xx), decides whether the connection may be reused, and
// skips the body to its end (Content-Length or chunked) without keeping it.

import { writeLatin1 } from "./_http1.ts";
import { asksToWait, retryAfterMs } from "./_retry_after.ts";

/** The longest response head accepted. */
export const MAX_HEAD_BYTES = 64 * 1024;
/** The most bytes read after the final head (body, chunk sizes and
 * extensions, trailers: every byte) to keep a connection; beyond, reading
 * stops and it is closed. */
export const MAX_DRAIN_BYTES = 1024 * 1024;
const MAX_LINE = 8 * 1024;

/** Chars decoded per `String.fromCharCode` call (its argument count). */
const DECODE_PIECE = 4 * 1024;

/** Bytes `from` to `to` of `bytes` as a string of one char per byte (not
 * TextDecoder's "latin1", which is windows-1252: 0x80–0x9F would not map
 * back to the same bytes). */
function latin1Text(bytes: Uint8Array, from: number, to: number): string {
  let text = "";
  // A short span char by char: no view made, no `apply` (each costs µs on
  // a CPU that slept since the last response; docs/performance.md, tenth
  // pass).
  if (to - from <= SHORT_TEXT) {
    for (let at = from; at < to; at++) text += String.fromCharCode(bytes[at]);
    return text;
  }
  for (let at = from; at < to; at += DECODE_PIECE) {
    text += String.fromCharCode.apply(
      null,
      bytes.subarray(
        at,
        Math.min(to, at + DECODE_PIECE),
      ) as unknown as number[],
    );
  }
  return text;
}

/** Spans up to this long are decoded char by char. */
const SHORT_TEXT = 64;

const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9][0-9]{2})(?: |$)/;

/**
 * The minor version and status of a status line `b[start..end)` (its CR
 * left out) as STATUS_LINE reads them, straight from the bytes; undefined
 * when it does not match (the text is then read, and refused, as before).
 */
function statusFromBytes(
  b: Uint8Array,
  start: number,
  end: number,
): [number, number] | undefined {
  if (
    end - start < 12 || b[start] !== 72 || b[start + 1] !== 84 ||
    b[start + 2] !== 84 || b[start + 3] !== 80 || b[start + 4] !== 47 ||
    b[start + 5] !== 49 || b[start + 6] !== 46 || b[start + 8] !== 32 ||
    (end - start > 12 && b[start + 12] !== 32)
  ) return undefined;
  const minor = b[start + 7] - 48;
  const d1 = b[start + 9] - 48, d2 = b[start + 10] - 48;
  const d3 = b[start + 11] - 48;
  if (
    (minor !== 0 && minor !== 1) || !(d1 >= 1 && d1 <= 9) ||
    !(d2 >= 0 && d2 <= 9) || !(d3 >= 0 && d3 <= 9)
  ) return undefined;
  return [minor, d1 * 100 + d2 * 10 + d3];
}

/** Whether `text` (one char per byte) starts or ends with a char `trim()`
 * removes: a header value's SP and HTAB are skipped before, so this is
 * rare. */
function untrimmed(text: string): boolean {
  return text !== "" &&
    (TRIMMED.has(text.charCodeAt(0)) ||
      TRIMMED.has(text.charCodeAt(text.length - 1)));
}
/** The chars up to U+00FF that `String.prototype.trim()` removes. */
const TRIMMED = new Set([9, 10, 11, 12, 13, 32, 0xa0]);

/** Whether `text` is 1 to 15 ASCII digits (/^\d{1,15}$/). */
function isLength(text: string): boolean {
  if (text.length === 0 || text.length > 15) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

type State =
  | "head"
  | "length"
  | "chunk-size"
  | "chunk-data"
  | "chunk-end"
  | "trailers"
  | "until-close"
  | "done";

/** The response is not HTTP/1.x; `line` is what was seen instead. */
export class ResponseProtocolError extends Error {
  /** The offending line or prefix. */
  readonly line: string;
  constructor(message: string, line: string) {
    super(message);
    this.name = "ResponseProtocolError";
    this.line = line;
  }
}

/**
 * Feed it the bytes read, in order. `status` is set once the final status
 * line is in; `complete` once the whole response is. `reusable` tells whether
 * the connection can carry another request after a complete response.
 */
export class ResponseReader {
  /** The final status code, once known. */
  status?: number;
  /** Bytes received so far. */
  received = 0;
  /** Milliseconds the server keeps an idle connection (`Keep-Alive: timeout`). */
  keepAliveMs?: number;
  /** The final head's `Retry-After` value, as sent (fields joined by ", "). */
  retryAfter?: string;
  /** A 429's or 503's status, from its status line, while its head is not
   * whole (not yet `status`: the head decides). */
  lineStatus?: number;

  /** The wait a 429 or 503 asked for (`Retry-After`), in milliseconds, once
   * its head is read. */
  get retryAfterMs(): number | undefined {
    return this.status !== undefined && asksToWait(this.status)
      ? retryAfterMs(this.retryAfter)
      : undefined;
  }
  #keepAlive = false;
  #state: State = "head";
  #head = "";
  /** How the head read so far ends: 0 within a line, 1 after a LF, 2 after
   * a LF and a CR (a blank line's LF would end the head). */
  #blankLine = 0;
  #line = "";
  #remaining = 0;
  /** Every byte after the final head, framing included. */
  #drained = 0;
  /** Every byte of every head so far, interim (1xx) heads included. */
  #headBytes = 0;
  #headRequest: boolean;
  /** Line ends seen in every head and chunk line so far: 1 CR LF, 2 a bare
   * LF; both (3) and the connection is not reused. */
  #ends = 0;
  /** A head had a folded line (obs-fold): the connection is not reused. */
  #folded = false;
  /** A byte other than CR or LF has come (see `push`). */
  #started = false;

  /** @param method The request's method (a HEAD response has no body). */
  constructor(method: string) {
    this.#headRequest = method === "HEAD";
  }

  /** Whether the whole response has been read. */
  get complete(): boolean {
    return this.#state === "done";
  }

  /** Whether the connection may carry another request now. */
  get reusable(): boolean {
    return this.#state === "done" && this.#keepAlive;
  }

  /** Whether the server allows reuse so far (the response may be unfinished). */
  get keepAlive(): boolean {
    return this.#keepAlive;
  }

  /** Whether reading on is pointless: the body is read until close, or more
   * than {@linkcode MAX_DRAIN_BYTES} came after the head (every byte counts). */
  get giveUp(): boolean {
    return this.#state === "until-close" || this.#drained > MAX_DRAIN_BYTES;
  }

  /**
   * Takes the next bytes.
   *
   * @throws {ResponseProtocolError} When the head is not HTTP/1.x.
   */
  push(bytes: Uint8Array): void {
    let i = 0;
    if (!this.#started) {
      // Empty lines before the first status line are skipped, as fetch
      // does: a stray CR LF a server wrote after its previous response on
      // this connection. They count toward the head's limit, and not as
      // received (a close after them is a close before any answer).
      while (i < bytes.length && (bytes[i] === 13 || bytes[i] === 10)) i++;
      this.#headBytes += i;
      if (this.#headBytes > MAX_HEAD_BYTES) {
        throw new ResponseProtocolError("Response head too long", "");
      }
      if (i === bytes.length) return;
      this.#started = true;
    }
    this.received += bytes.length - i;
    // Bytes after a complete response were never asked for: do not reuse.
    if (this.#state === "done") this.#keepAlive = false;
    while (i < bytes.length && this.#state !== "done") {
      const from = i;
      switch (this.#state) {
        case "head":
          i = this.#pushHead(bytes, i);
          this.#headBytes += i - from;
          if (this.#headBytes > MAX_HEAD_BYTES) {
            throw new ResponseProtocolError(
              "Response head too long",
              this.#head.slice(0, 40),
            );
          }
          continue;
        case "length": {
          const n = Math.min(this.#remaining, bytes.length - i);
          this.#remaining -= n;
          i += n;
          if (this.#remaining === 0) this.#state = "done";
          break;
        }
        case "chunk-size":
        case "chunk-end":
        case "trailers":
          i = this.#pushLine(bytes, i);
          break;
        case "chunk-data": {
          const n = Math.min(this.#remaining, bytes.length - i);
          this.#remaining -= n;
          i += n;
          if (this.#remaining === 0) this.#state = "chunk-end";
          break;
        }
        case "until-close":
          i = bytes.length;
          break;
      }
      // Every byte after the head counts: a chunk size, its extensions, a
      // trailer, as much as the body itself.
      this.#drained += i - from;
      if (this.#drained > MAX_DRAIN_BYTES) break;
    }
    if (i < bytes.length) this.#keepAlive = false; // bytes past the response
  }

  /** Whether the final head has been read whole (its fields are known). */
  get headRead(): boolean {
    return this.#state !== "head";
  }

  /**
   * Takes the final status from the status line at the start of the
   * response's first bytes, before the rest of the head is read (for a
   * caller told at the status line): from then on `status` is set and the
   * response ends with it, whatever follows. `push()` the same bytes next.
   * Takes nothing (returns undefined) from later bytes, from a line not
   * whole in `bytes`, from an interim (1xx) or 101 status, from a 408, 429
   * or 503 (whose head decides: see `headDecides`) and from a line `push()`
   * would refuse.
   */
  takeStatusLine(bytes: Uint8Array): number | undefined {
    if (this.received !== 0 || this.status !== undefined) return undefined;
    // The line's LF must be in these bytes.
    const lf = bytes.indexOf(10);
    if (lf < 12) return undefined;
    const [, status] = statusFromBytes(bytes, 0, withoutCR(bytes, 0, lf)) ??
      [];
    // Not an interim (1xx) or 101 head, nor one whose head decides.
    if (status === undefined || headDecides(status)) {
      if (status !== undefined && asksToWait(status)) this.lineStatus = status;
      return undefined;
    }
    return this.status = status;
  }

  /** The server closed: a body read until close is complete now. */
  end(): void {
    if (this.#state === "head") {
      // A status line the server closed right after: take it, reuse nothing.
      const line = this.status === undefined
        ? firstLine(this.#head)
        : undefined;
      if (line !== undefined) {
        const [, status] = this.#statusOf(line);
        if (status >= 200) this.status = status;
      }
      this.#keepAlive = false;
      this.#state = "done";
    }
    if (this.#state === "until-close") {
      this.#keepAlive = false;
      this.#state = "done";
    }
  }

  #pushHead(bytes: Uint8Array, from: number): number {
    // Find the blank line ending the head: a LF, maybe a CR, a LF (RFC 9112
    // §2.2: a LF ends a line, a CR before it is ignored; a bare CR ends
    // nothing). Decode the head once, natively.
    const n = bytes.length;
    let end = -1;
    let i = from;
    // A blank line begun at the end of the previous chunk.
    let state = this.#blankLine;
    while (state !== 0 && i < n) {
      const byte = bytes[i++];
      if (byte === 10) {
        end = i;
        break;
      }
      state = byte === 13 && state === 1 ? 2 : 0;
    }
    if (end < 0 && i < n) {
      // Only LFs stop the scan; what follows one is looked at there.
      for (; i < n; i++) {
        if (bytes[i] !== 10) continue;
        if (i + 1 === n) break;
        const next = bytes[i + 1];
        if (next === 10) {
          end = i + 2;
          break;
        }
        if (next === 13 && i + 2 < n && bytes[i + 2] === 10) {
          end = i + 3;
          break;
        }
      }
      if (end < 0) {
        state = bytes[n - 1] === 10
          ? 1
          : n - 2 >= from && bytes[n - 2] === 10 && bytes[n - 1] === 13
          ? 2
          : 0;
      }
    }
    if (end >= 0 && this.#head === "") {
      // The whole head in this chunk (the usual case): read from the bytes.
      this.#blankLine = 0;
      this.#onHead(bytes, from, end);
      return end;
    }
    this.#head += latin1Text(bytes, from, end < 0 ? bytes.length : end);
    const head = this.#head;
    if (!head.startsWith("HTTP/") && !"HTTP/".startsWith(head)) {
      throw new ResponseProtocolError(
        "Not an HTTP/1.x status line",
        head.slice(0, 40).split(/\r?\n/)[0],
      );
    }
    if (end < 0) {
      // Check a complete status line now rather than after the headers, and
      // take a final one as takeStatusLine() takes it from a first read
      // (not one whose head decides): the outcome, whatever the head then
      // does (too long, never finished).
      const line = firstLine(head);
      if (line !== undefined) {
        const [, status] = this.#statusOf(line);
        if (this.status === undefined && !headDecides(status)) {
          this.status = status;
        } else if (asksToWait(status)) this.lineStatus = status;
      }
      this.#blankLine = state;
      return bytes.length;
    }
    this.#blankLine = 0;
    this.#head = "";
    // A head in pieces (rare): its bytes again, in a buffer of its own.
    const whole = new Uint8Array(head.length);
    writeLatin1(head, whole, 0);
    this.#onHead(whole, 0, whole.length);
    return end;
  }

  /** The status line read as text: what {@linkcode statusFromBytes} did
   * not take, taken or refused with the line in the error. */
  #statusText(b: Uint8Array, start: number, lineEnd: number): [number, number] {
    const line = latin1Text(b, start, withoutCR(b, start, lineEnd));
    if (!line.startsWith("HTTP/")) {
      throw new ResponseProtocolError(
        "Not an HTTP/1.x status line",
        line.slice(0, 40),
      );
    }
    return this.#statusOf(line);
  }

  #statusOf(line: string): [number, number] {
    const match = STATUS_LINE.exec(line);
    if (!match) {
      throw new ResponseProtocolError("Not an HTTP/1.x status line", line);
    }
    return [Number(match[1]), Number(match[2])];
  }

  /** Reads the head in `b` from `start` to `end` (its blank line included). */
  #onHead(b: Uint8Array, start: number, end: number): void {
    const lineEnd = lineEndAt(b, start, end);
    const [minor, status] = statusFromBytes(
      b,
      start,
      withoutCR(b, start, lineEnd),
    ) ?? this.#statusText(b, start, lineEnd);
    // An interim head (1xx): only its line ends count; the next head follows.
    const interim = status < 200 && status !== 101;
    let connection = "";
    let transferEncoding: string | undefined;
    let contentLength: string | undefined;
    let retryAfter: string | undefined;
    // Line by line, looking only at the five names that matter here (by
    // length first: most lines are none of them), from the bytes: only
    // their values become strings.
    // Where the blank line ending the head starts: "\n" or "\r\n".
    const last = b[end - 2] === 13 ? end - 2 : end - 1;
    // Lines ended both ways, or a folded line (obs-fold): parsed as well
    // as can be, the connection not reused (a bare LF in a CRLF head may be
    // a header injected into the server's answer; RFC 9112 §2.2, §5.2).
    let ends = last === end - 2 ? 1 : 2;
    ends |= withoutCR(b, start, lineEnd) === lineEnd ? 2 : 1;
    for (let at = lineEnd + 1; at < last;) {
      const lf = lineEndAt(b, at, last);
      const next = withoutCR(b, at, lf);
      ends |= next === lf ? 2 : 1;
      if (b[at] === 32 || b[at] === 9) {
        this.#folded = true; // a continuation of the line before: no field
        at = lf + 1;
        continue;
      }
      if (interim) {
        at = lf + 1;
        continue;
      }
      let colon = at;
      while (colon < next && b[colon] !== 58) colon++;
      if (colon > at && colon < next) {
        let from = at, to = colon;
        while (from < to && isSpace(b[from])) from++;
        while (to > from && isSpace(b[to - 1])) to--;
        const name = nameAt(b, from, to);
        if (name !== undefined) {
          // SP and HTAB skipped here; trim() only for other whitespace.
          let vFrom = colon + 1, vTo = next;
          while (vFrom < vTo && isSpace(b[vFrom])) vFrom++;
          while (vTo > vFrom && isSpace(b[vTo - 1])) vTo--;
          let value = latin1Text(b, vFrom, vTo);
          if (untrimmed(value)) value = value.trim();
          if (name === "connection") connection += "," + value.toLowerCase();
          else if (name === "transfer-encoding") {
            transferEncoding =
              (transferEncoding ? transferEncoding + "," : "") +
              value.toLowerCase();
          } else if (name === "content-length") {
            if (contentLength !== undefined && contentLength !== value) {
              contentLength = "conflict";
            } else contentLength = value;
          } else if (name === "retry-after") {
            // Two fields are a list, as fetch's Headers joins them: no wait.
            retryAfter = retryAfter === undefined
              ? value
              : `${retryAfter}, ${value}`;
          } else {
            const timeout = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i.exec(value);
            if (timeout) this.keepAliveMs = Number(timeout[1]) * 1000;
          }
        }
      }
      at = lf + 1;
    }
    this.#ends |= ends;
    if (interim) return;
    this.status = status;
    this.retryAfter = retryAfter;
    this.#keepAlive = minor === 1 && status !== 101 && !this.#folded &&
      this.#ends !== 3 &&
      (connection === "" || !/(?:^|,)\s*close\s*(?:,|$)/.test(connection));
    if (
      this.#headRequest || status === 204 || status === 304 || status === 101
    ) {
      this.#state = "done";
    } else if (transferEncoding !== undefined) {
      // Both framings at once is a smuggling pattern (RFC 9112 §6.3): read
      // by Transfer-Encoding, then close.
      if (contentLength !== undefined) this.#keepAlive = false;
      this.#state = /(?:^|,)\s*chunked\s*$/.test(transferEncoding)
        ? "chunk-size"
        : "until-close";
    } else if (contentLength !== undefined) {
      if (!isLength(contentLength)) {
        this.#keepAlive = false;
        this.#state = "until-close";
      } else {
        this.#remaining = Number(contentLength);
        this.#state = this.#remaining === 0 ? "done" : "length";
        if (this.#remaining > MAX_DRAIN_BYTES) this.#keepAlive = false;
      }
    } else {
      this.#state = "until-close";
    }
    if (this.#state === "until-close") this.#keepAlive = false;
  }

  #pushLine(bytes: Uint8Array, from: number): number {
    let i = from;
    for (; i < bytes.length; i++) {
      const byte = bytes[i];
      if (byte !== 10) {
        this.#line += String.fromCharCode(byte);
        if (this.#line.length > MAX_LINE) {
          this.#keepAlive = false;
          this.#state = "until-close";
          return bytes.length;
        }
        continue;
      }
      const cr = this.#line.endsWith("\r");
      const line = cr ? this.#line.slice(0, -1) : this.#line;
      this.#ends |= cr ? 1 : 2;
      if (this.#ends === 3) this.#keepAlive = false;
      this.#line = "";
      this.#onLine(line);
      return i + 1;
    }
    return i;
  }

  #onLine(line: string): void {
    switch (this.#state) {
      case "chunk-size": {
        const size = /^([0-9a-fA-F]{1,12})\s*(?:;.*)?$/.exec(line);
        if (!size) {
          this.#keepAlive = false;
          this.#state = "until-close";
          return;
        }
        this.#remaining = parseInt(size[1], 16);
        this.#state = this.#remaining === 0 ? "trailers" : "chunk-data";
        return;
      }
      case "chunk-end":
        if (line !== "") {
          // The chunk was longer than its size said: the framing is off.
          this.#keepAlive = false;
          this.#state = "until-close";
          return;
        }
        this.#state = "chunk-size";
        return;
      case "trailers":
        if (line === "") this.#state = "done";
        return;
    }
  }
}

/** Whether `code` is a space or a tab. */
function isSpace(code: number): boolean {
  return code === 32 || code === 9;
}

/** Whether a final status is taken only with its head: an interim (1xx)
 * or 101 status is none; a 408's head says whether the server closed an
 * idle connection (the request was not read); a 429's or 503's carries the
 * wait it asks for (`Retry-After`). */
function headDecides(status: number): boolean {
  return status < 200 || status === 408 || asksToWait(status);
}

/** The header names a response reader looks at, by their length. */
const NAMES_BY_LENGTH: Record<number, readonly string[] | undefined> = {
  10: ["connection", "keep-alive"],
  11: ["retry-after"],
  14: ["content-length"],
  17: ["transfer-encoding"],
};

/** Which of the names looked at `b[from..to)` is, in any case. */
function nameAt(b: Uint8Array, from: number, to: number): string | undefined {
  const names = NAMES_BY_LENGTH[to - from];
  if (names === undefined) return undefined;
  for (const name of names) if (sameName(b, from, name)) return name;
  return undefined;
}

/** Whether the bytes at `from` are `name` (lower case), in any case. */
function sameName(b: Uint8Array, from: number, name: string): boolean {
  for (let k = 0; k < name.length; k++) {
    const want = name.charCodeAt(k);
    const byte = b[from + k];
    // A letter in either case; anything else exactly.
    if (byte !== want && !(want >= 97 && want <= 122 && byte === want - 32)) {
      return false;
    }
  }
  return true;
}

/** Where the line starting at `at` ends: its LF, or `end`. */
function lineEndAt(b: Uint8Array, at: number, end: number): number {
  for (let i = at; i < end; i++) {
    if (b[i] === 10) return i;
  }
  return end;
}

/** The end of the line from `at` to its LF at `lf`, a CR before it left out. */
function withoutCR(b: Uint8Array, at: number, lf: number): number {
  return lf > at && b[lf - 1] === 13 ? lf - 1 : lf;
}

/** The head's first line, once its LF is in (a CR before it left out). */
function firstLine(head: string): string | undefined {
  const lf = head.indexOf("\n");
  if (lf < 0) return undefined;
  return head.slice(0, head.charCodeAt(lf - 1) === 13 ? lf - 1 : lf);
}
