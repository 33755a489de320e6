// HTTP/1.1 request serialisation and status-line parsing (private, pure).

/** Bytes allowed raw in a request-target (RFC 3986 pchar, "/", "?", "%"). */
const TARGET_SAFE = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]/g;

/**
 * The request-target for a URL: path and query, never the fragment, with any
 * byte the URL parser leaves raw but RFC 3986 forbids (`{`, `|`, `^`, …)
 * percent-encoded, so strict parsers accept it.
 */
export function requestTarget(url: URL): string {
  const target = (url.pathname || "/") + url.search;
  TARGET_SAFE.lastIndex = 0;
  return TARGET_SAFE.test(target)
    ? target.replace(
      TARGET_SAFE,
      (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0"),
    )
    : target;
}

/**
 * The head for `method` on `url`: `Host` (with the port when not default,
 * IPv6 in brackets, IDN as punycode), the given headers, the framing headers
 * `trigger()` owns, and the blank line.
 */
export function requestHead(
  method: string,
  url: URL,
  headers: ReadonlyArray<readonly [string, string]>,
  bodyLength: number | null,
): string {
  const all: Array<readonly [string, string]> = [
    ["Host", url.host],
    ...headers,
  ];
  if (bodyLength !== null) {
    all.push(["Content-Length", String(bodyLength)]);
  } else if (method !== "GET" && method !== "HEAD") {
    all.push(["Content-Length", "0"]);
  }
  all.push(["Connection", "close"]);
  return serializeHead(method, requestTarget(url), all);
}

/**
 * The request head: request line, header lines, blank line. Header names and
 * values must already be validated (tokens; no CR, LF, NUL or controls).
 */
export function serializeHead(
  method: string,
  target: string,
  headers: ReadonlyArray<readonly [string, string]>,
): string {
  let head = `${method} ${target} HTTP/1.1\r\n`;
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  return head + "\r\n";
}

/**
 * Encodes a byte string (every char ≤ U+00FF) as one byte per char, the way
 * fetch's `Headers` puts header values on the wire.
 */
export function latin1(text: string, extra = 0): Uint8Array {
  const bytes = new Uint8Array(text.length + extra);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** The longest response head prefix read while looking for a final status. */
export const MAX_HEAD_BYTES = 64 * 1024;

/** Result of {@linkcode findStatus}. */
export type StatusScan =
  | { kind: "more" }
  | { kind: "status"; status: number }
  | { kind: "invalid"; line: string };

const STATUS_LINE = /^HTTP\/1\.[01] ([1-9][0-9]{2})(?: |$)/;

/**
 * Looks for the final status line in the bytes read so far, skipping any
 * interim 1xx responses (100 Continue, 103 Early Hints) with their headers.
 */
export function findStatus(bytes: Uint8Array, length: number): StatusScan {
  let start = 0;
  while (true) {
    const lineEnd = indexOfCrlf(bytes, start, length);
    if (lineEnd < 0) {
      // Reject garbage early rather than waiting for a CRLF that never comes.
      const seen = asciiSlice(bytes, start, Math.min(length, start + 5));
      return "HTTP/".startsWith(seen)
        ? { kind: "more" }
        : { kind: "invalid", line: seen };
    }
    const line = asciiSlice(bytes, start, lineEnd);
    const match = STATUS_LINE.exec(line);
    if (!match) return { kind: "invalid", line };
    const status = Number(match[1]);
    if (status >= 200 || status === 101) return { kind: "status", status };
    // An interim response: skip its header block.
    const end = indexOfBlankLine(bytes, start, length);
    if (end < 0) return { kind: "more" };
    start = end;
  }
}

function indexOfCrlf(bytes: Uint8Array, from: number, length: number): number {
  for (let i = from; i + 1 < length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10) return i;
  }
  return -1;
}

/** The index just past the "\r\n\r\n" ending the head that starts at `from`. */
function indexOfBlankLine(
  bytes: Uint8Array,
  from: number,
  length: number,
): number {
  for (let i = from; i + 3 < length; i++) {
    if (
      bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 &&
      bytes[i + 3] === 10
    ) return i + 4;
  }
  return -1;
}

function asciiSlice(bytes: Uint8Array, from: number, to: number): string {
  let text = "";
  for (let i = from; i < to; i++) text += String.fromCharCode(bytes[i]);
  return text;
}
