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

/** What the socket transport needs of a URL, worked out once per URL object
 * (a trigger loop shares one: see `prepareUrl`). */
export interface Site {
  /** `protocol//hostname:port`, the connection pool's key (a caller adds
   * what else separates pools, like `caCerts`). */
  readonly key: string;
  /** The host to connect to, IPv6 without brackets. */
  readonly hostname: string;
  readonly port: number;
  readonly tls: boolean;
  /** `" <request-target> HTTP/1.1\r\nHost: <host>\r\n"`. */
  readonly line: string;
  /** Encoded heads up to the framing headers of requests with a shared
   * header list, by method and headers. */
  readonly heads: Map<string, Head>;
  /** The head used last, by its (shared) header list itself: a loop that
   * sends the same list skips even the key. */
  last?: { method: string; headers: object; head: Head };
}

/** A head up to the framing headers, encoded. */
interface Head {
  bytes: Uint8Array;
  /** The whole head of a kept request without a body and without
   * Content-Length: `bytes` and the blank line (a GET's every time). */
  bare?: Uint8Array;
}

/** Heads kept per site at most. */
const HEADS_PER_SITE = 16;
const sites = new WeakMap<URL, Site>();

/** The {@linkcode Site} of `url`, kept for it: the URL must not change
 * afterwards. */
export function siteOf(url: URL): Site {
  let site = sites.get(url);
  if (site === undefined) {
    site = makeSite(url);
    sites.set(url, site);
  }
  return site;
}

function makeSite(url: URL): Site {
  const tls = url.protocol === "https:";
  const hostname = url.hostname.startsWith("[")
    ? url.hostname.slice(1, -1)
    : url.hostname;
  const port = url.port ? Number(url.port) : tls ? 443 : 80;
  return {
    key: `${url.protocol}//${hostname}:${port}`,
    hostname,
    port,
    tls,
    line: ` ${requestTarget(url)} HTTP/1.1\r\nHost: ${url.host}\r\n`,
    heads: new Map(),
  };
}

/**
 * The framing headers `trigger()` owns and the blank line: a request
 * without a body gets `Content-Length: 0` only for POST and PUT, as `fetch`
 * does; a body, even an empty one, always gets its length; `Connection:
 * close` unless the connection is to be kept.
 */
function framing(
  method: string,
  bodyLength: number | null,
  keepAlive: boolean,
): string {
  let tail = bodyLength !== null
    ? `Content-Length: ${bodyLength}\r\n`
    : method === "POST" || method === "PUT"
    ? "Content-Length: 0\r\n"
    : "";
  if (!keepAlive) tail += "Connection: close\r\n";
  return tail + "\r\n";
}

function headStart(
  site: Site,
  method: string,
  headers: ReadonlyArray<readonly [string, string]>,
): string {
  let head = method + site.line;
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  return head;
}

/**
 * The head for `method` on `url`: `Host` (with the port when not default,
 * IPv6 in brackets, IDN as punycode), the given headers, the framing headers
 * `trigger()` owns (see `framing`), and the blank line. Header names and
 * values must already be validated (tokens; no CR, LF, NUL or controls).
 */
export function requestHead(
  method: string,
  url: URL,
  headers: ReadonlyArray<readonly [string, string]>,
  bodyLength: number | null,
  keepAlive = false,
): string {
  return headStart(sites.get(url) ?? makeSite(url), method, headers) +
    framing(method, bodyLength, keepAlive);
}

/**
 * The bytes of the request head followed by `body`, when `body` is null or
 * given (one buffer, one write), or of the head alone when `body` is
 * `false`. Equal to `latin1(requestHead(...))` and the body.
 *
 * The head up to the framing headers is kept encoded per site only for the
 * frozen header lists `prepare()` shares between requests that set no
 * headers of their own (Content-Type, User-Agent: no credentials, nothing
 * made for one request): a loop of such triggers to one URL encodes its head
 * once, and a kept GET's bytes are the same buffer each time (never written
 * to).
 */
export function requestBytes(
  site: Site,
  method: string,
  headers: ReadonlyArray<readonly [string, string]>,
  body: Uint8Array | null | false,
  bodyLength: number | null,
  keepAlive: boolean,
): Uint8Array {
  const head = keptHead(site, method, headers);
  const tail = framing(method, bodyLength, keepAlive);
  if (head === undefined) {
    return joined(
      latin1(headStart(site, method, headers)),
      tail,
      body === false ? null : body,
    );
  }
  if (body === null && tail.length === 2) {
    return head.bare ??= ownLatin1(headStart(site, method, headers) + tail);
  }
  return joined(head.bytes, tail, body === false ? null : body);
}

/** The head kept for a shared (frozen) header list, made on first use;
 * undefined for the caller's own headers (encoded per request, never
 * kept). */
function keptHead(
  site: Site,
  method: string,
  headers: ReadonlyArray<readonly [string, string]>,
): Head | undefined {
  const last = site.last;
  if (last?.headers === headers && last.method === method) return last.head;
  if (!Object.isFrozen(headers)) return undefined;
  let key = method;
  // Unambiguous: names are tokens and values hold no LF.
  for (const [name, value] of headers) key += `\n${name}\n${value}`;
  let head = site.heads.get(key);
  if (head === undefined) {
    head = { bytes: ownLatin1(headStart(site, method, headers)) };
    // Bounded: the shared lists are few, methods may be many.
    if (site.heads.size < HEADS_PER_SITE) site.heads.set(key, head);
  }
  site.last = { method, headers, head };
  return head;
}

/** The most bytes {@linkcode framing} writes: a Content-Length of up to 16
 * digits, `Connection: close` and the blank line. */
const MAX_TAIL = 64;

/**
 * The whole request with its body, given as `text` (encoded as UTF-8) or as
 * bytes (copied), or without one (`null`), written straight into
 * `buffer(size)`, a buffer the caller owns (a connection's own, reused
 * request after request: no new typed array, which costs ~1.5 µs hot and
 * 5–6 µs in a loop of triggers); the request is a view of it. The same
 * bytes as {@linkcode requestBytes} with the body's bytes.
 */
export function requestInto(
  site: Site,
  method: string,
  headers: ReadonlyArray<readonly [string, string]>,
  body: string | Uint8Array | null,
  keepAlive: boolean,
  buffer: (size: number) => Uint8Array,
): Uint8Array {
  const head = keptHead(site, method, headers);
  const start = head?.bytes ?? headStart(site, method, headers);
  // The body goes after room for the longest head; the head is then
  // written to end right where the body starts. Each UTF-16 unit takes
  // at most 3 bytes of UTF-8.
  const at = start.length + MAX_TAIL;
  let written: number;
  let bytes: Uint8Array;
  if (typeof body === "string") {
    bytes = buffer(at + 3 * body.length);
    written = encoder.encodeInto(body, bytes.subarray(at)).written;
  } else if (body !== null) {
    bytes = buffer(at + body.length);
    bytes.set(body, at);
    written = body.length;
  } else {
    bytes = buffer(at);
    written = 0;
  }
  const tail = framing(method, body === null ? null : written, keepAlive);
  const from = at - tail.length - start.length;
  if (typeof start === "string") writeLatin1(start, bytes, from);
  else bytes.set(start, from);
  writeLatin1(tail, bytes, at - tail.length);
  return bytes.subarray(from, at + written);
}

/** {@linkcode latin1} into a buffer of its own (to be kept). */
function ownLatin1(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  writeLatin1(text, bytes, 0);
  return bytes;
}

/** `start`, the latin1 `tail`, then `body`, in one buffer: in the room
 * before a body from {@linkcode utf8} when the head fits there. */
function joined(
  start: Uint8Array,
  tail: string,
  body: Uint8Array | null,
): Uint8Array {
  const headLength = start.length + tail.length;
  let bytes: Uint8Array;
  if (body !== null && headLength <= HEAD_ROOM && roomy.has(body)) {
    bytes = new Uint8Array(
      body.buffer,
      body.byteOffset - headLength,
      headLength + body.length,
    );
  } else {
    bytes = new Uint8Array(headLength + (body?.length ?? 0));
    if (body !== null) bytes.set(body, headLength);
  }
  bytes.set(start);
  writeLatin1(tail, bytes, start.length);
  return bytes;
}

/**
 * Encodes a byte string (every char ≤ U+00FF) as one byte per char, the way
 * fetch's `Headers` puts header values on the wire.
 */
export function latin1(text: string, extra = 0): Uint8Array {
  const bytes = new Uint8Array(text.length + extra);
  writeLatin1(text, bytes, 0);
  return bytes;
}

/** Writes a byte string (every char ≤ U+00FF) into `bytes` from `at`, one
 * byte per char. */
export function writeLatin1(text: string, bytes: Uint8Array, at: number): void {
  for (let i = 0; i < text.length; i++) bytes[at + i] = text.charCodeAt(i);
}

/** Bytes left free before a body encoded by {@linkcode utf8}: a head that
 * fits is written there, and head and body go out without another buffer. */
const HEAD_ROOM = 512;
/** Bodies from {@linkcode utf8}, with HEAD_ROOM free bytes before them. */
const roomy = new WeakSet<Uint8Array>();
const encoder = new TextEncoder();

/** Whether `body` came from {@linkcode utf8} with room for a head before
 * it: {@linkcode requestBytes} then writes the head there, copying
 * nothing. */
export function hasHeadRoom(body: Uint8Array): boolean {
  return roomy.has(body);
}

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
