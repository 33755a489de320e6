// HTTP/1.1 request serialisation and status-line parsing (private, pure).

/**
 * The request-target for a URL: its path and query exactly as the WHATWG URL
 * parser left them (never the fragment), which is what `fetch` sends. The
 * parser has already percent-encoded controls, spaces, non-ASCII and the
 * characters its encode sets name; what it leaves raw (`|`, `^`, `[`, `]`, and
 * in the query `` ` ``, `{`, `}`, `\`) stays raw, so both transports put the
 * same target on the wire.
 */
export function requestTarget(url: URL): string {
  // From the serialisation, not `pathname + search`: an empty query ("/x?")
  // has an empty `search` but fetch still sends its "?". No "/" can come
  // before the path (userinfo and host cannot hold one) and no "#" before the
  // fragment.
  const href = url.href;
  const hash = href.indexOf("#");
  const target = href.slice(
    href.indexOf("/", url.protocol.length + 2),
    hash < 0 ? href.length : hash,
  );
  return target.startsWith("/") ? target : "/";
}

/**
 * The head for `method` on `url`: `Host` (with the port when not default,
 * IPv6 in brackets, IDN as punycode), the given headers, the framing headers
 * `trigger()` owns (`Connection: close` unless the connection is to be kept),
 * and the blank line. A request without a body gets `Content-Length: 0` only
 * for POST and PUT, as `fetch` does; a body, even an empty one, always gets
 * its length.
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
  } else if (method === "POST" || method === "PUT") {
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

/** Bytes left free before a body encoded by {@linkcode utf8}: a head that
 * fits is written there, and head and body go out without another buffer. */
const HEAD_ROOM = 512;
/** Bodies from {@linkcode utf8}, with HEAD_ROOM free bytes before them. */
const roomy = new WeakSet<Uint8Array>();
const encoder = new TextEncoder();

/**
 * UTF-8 bytes of `text`. Encoded with `encodeInto` (`TextEncoder.encode`
 * costs several times more), after room for a request head.
 */
export function utf8(text: string): Uint8Array<ArrayBuffer> {
  const body = new Uint8Array(HEAD_ROOM + text.length).subarray(HEAD_ROOM);
  if (encoder.encodeInto(text, body).read !== text.length) {
    return encoder.encode(text); // not ASCII: longer than text.length
  }
  roomy.add(body);
  return body;
}

/**
 * The head and `body` as one buffer to write: the head in the room before a
 * body from {@linkcode utf8} when it fits, else in a new buffer.
 */
export function requestBytes(
  head: string,
  body: Uint8Array | null,
): Uint8Array {
  const length = head.length + (body?.length ?? 0);
  let bytes: Uint8Array;
  if (body !== null && head.length <= body.byteOffset && roomy.has(body)) {
    bytes = new Uint8Array(body.buffer, body.byteOffset - head.length, length);
  } else {
    bytes = new Uint8Array(length);
    if (body !== null) bytes.set(body, head.length);
  }
  for (let i = 0; i < head.length; i++) bytes[i] = head.charCodeAt(i);
  return bytes;
}
