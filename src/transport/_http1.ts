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
 * `trigger()` owns (`Connection: close` unless the connection is to be kept),
 * and the blank line.
 */
export function requestHead(
  method: string,
  url: URL,
  headers: ReadonlyArray<readonly [string, string]>,
  bodyLength: number | null,
  keepAlive = false,
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
  if (!keepAlive) all.push(["Connection", "close"]);
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
