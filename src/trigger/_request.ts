// Validation and normalisation of trigger() input (private). Everything here
// runs synchronously, so bad input throws before anything is connected.
import { isSecretHeader } from "../_redact.ts";
import type {
  TriggerBody,
  TriggerOptions,
  WaitMode,
  WaitUntil,
} from "./types.ts";
import {
  autoPicksSocket,
  canUseCaCertsWithFetch,
  rawConnector,
  rawSocketsLoading,
  rawSocketsTrustCaCerts,
} from "../transport/_runtime.ts";
import { show } from "../_show.ts";
import { failure } from "./_fail.ts";
import { checkMs, checkOptions, checkSignal } from "../_options.ts";
import { VERSION } from "./_version.ts";
import { utf8 } from "../transport/_http1.ts";
import { DEFAULT_MAX_CONNECTIONS } from "../transport/_pool.ts";
import { fetchUsesProxy } from "../transport/_proxy.ts";
import {
  checkMessage,
  newMessageId,
  parseSecret,
  toBase64,
} from "../signature/_sign.ts";

/** A request ready for a transport. */
export interface PreparedRequest {
  method: string;
  /** The target URL, credentials removed. Shared between requests: read it,
   * never change it. */
  url: URL;
  /** `url.href`, for messages. */
  href: string;
  /** Headers to send besides Host, Content-Length and Connection. Shared
   * between requests that set none of their own (frozen): add to it by
   * replacing it, never in place. */
  headers: ReadonlyArray<readonly [string, string]>;
  /** The body: bytes, or a Request whose body is read when sending. A body
   * given as text is encoded when this is first read. Bytes may still be
   * the caller's own (`borrowed`). */
  body: Uint8Array<ArrayBuffer> | Request | null;
  /** `body` is (a view of) the caller's own bytes, not a copy: read only
   * synchronously, within the `trigger()` call. Whatever may wait before
   * it reads the body calls {@linkcode ownBody} first; the socket
   * transport that copied it into its request bytes at once clears this;
   * `trigger()` takes the copy itself before it returns if neither did.
   * (A copy is a new buffer: ~0.7 µs in a tight loop, 5–6 µs a trigger in
   * a loop of triggers; docs/performance.md, eighth pass.) */
  borrowed?: boolean;
  /** A body given as text (`form`, `json`, a string) that nothing has read
   * as bytes: the socket transport encodes it straight into the buffer its
   * connection keeps for requests (a new one costs ~1.5 µs hot, ~6 µs after
   * the process idled). Setting `body` clears it. */
  readonly text?: string;
  wait: WaitMode;
  timeout: number;
  signal?: AbortSignal;
  transport: "socket" | "fetch";
  /** `auto` picked the socket before node:net loaded: fetch carries the
   * request if it cannot load. */
  fallback?: boolean;
  /** The caller's `fetch` for the fetch transport. */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  waitUntil?: WaitUntil;
  caCerts?: string[];
  /** Whether the connection may be kept for later triggers. */
  reuse: boolean;
  /** Whether a request a reused connection dropped is sent again. */
  resend: boolean;
  /** The cap on connections open at once to the origin. */
  maxConnections: number;
  /** Sign with these: the secret's key bytes, the id, a fixed timestamp. */
  sign?: PreparedSign;
}

/** A validated `sign` option. */
export interface PreparedSign {
  key: Uint8Array;
  id: string;
  /** Unix seconds; the clock at sending time when absent. */
  timestamp?: number;
}

/** The `User-Agent` sent unless the caller sets one. */
export const USER_AGENT = `fire-trigger/${VERSION}`;

/** How every bad-input message about a trigger starts, here and in the outbox. */
export const PREFIX = "Cannot trigger request: ";
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Anything but tab, visible ASCII, space and U+0080–U+00FF. */
const BAD_VALUE_CHAR = /[^\t\x20-\x7E\x80-\xFF]/;
const FORBIDDEN_HEADERS = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "proxy-connection",
  "upgrade",
  "te",
  "trailer",
  "expect",
]);
/** The methods fetch upper-cases (Fetch standard, "normalize a method"). */
const NORMALISED_METHODS = new Set([
  "DELETE",
  "GET",
  "HEAD",
  "OPTIONS",
  "POST",
  "PUT",
]);
const REFUSED_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);
const encoder = new TextEncoder();

function fail(message: string): never {
  throw new TypeError(PREFIX + message);
}

/**
 * Checks a header value the way fetch's `Headers` does, and returns it with
 * surrounding spaces and tabs removed. With `secret`, an error names the bad
 * character and the value's length, never the value.
 */
export function checkHeaderValue(
  what: string,
  value: unknown,
  secret = false,
): string {
  if (typeof value !== "string") {
    fail(
      `${what} must be a string, received ${
        secret ? typeof value : show(value)
      }`,
    );
  }
  const bad = BAD_VALUE_CHAR.exec(value);
  if (bad) {
    const code = bad[0].codePointAt(0)!;
    const name = code > 0xff
      ? "a character above U+00FF"
      : "a control character";
    fail(
      `${what} contains ${name} (U+${
        code.toString(16).toUpperCase().padStart(4, "0")
      }) at index ${bad.index}, received ${
        secret
          ? `a value of ${value.length} characters (not shown)`
          : show(value, bad.index)
      }`,
    );
  }
  return trimmed(value);
}

/** `value` without surrounding spaces and tabs (mostly none: no regex). */
function trimmed(value: string): string {
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(value.length - 1);
  return first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09
    ? value.replace(/^[\t ]+|[\t ]+$/g, "")
    : value;
}

/** Header names seen valid (a loop gives the same few): checked once.
 * Bounded: 256 names of up to 64 chars. */
const VALID_NAMES = new Set<string>();
const VALID_NAMES_MAX = 256;

function checkHeaderName(name: unknown): string {
  if (typeof name === "string" && VALID_NAMES.has(name)) return name;
  if (typeof name !== "string" || !TOKEN.test(name)) {
    fail(`header name must be an HTTP token, received ${show(name)}`);
  }
  if (FORBIDDEN_HEADERS.has(name.toLowerCase())) {
    fail(
      `header "${name}" is set by trigger() itself and cannot be given`,
    );
  }
  if (VALID_NAMES.size < VALID_NAMES_MAX && name.length <= 64) {
    VALID_NAMES.add(name);
  }
  return name;
}

/**
 * Whether a header made by other code than the caller's (an OpenTelemetry
 * propagator's) may be sent as it is: a token for a name, not one
 * `trigger()` sets itself, and a value fetch's `Headers` would take (no CR,
 * LF, NUL or char above U+00FF, which a raw socket would write cut down to
 * its low byte).
 */
export function sendableHeader(name: string, value: string): boolean {
  return typeof name === "string" && typeof value === "string" &&
    TOKEN.test(name) && !FORBIDDEN_HEADERS.has(name.toLowerCase()) &&
    !BAD_VALUE_CHAR.test(value);
}

function headerEntries(init: HeadersInit): Iterable<unknown> {
  if (init instanceof Headers) return init.entries();
  if (Array.isArray(init) || Symbol.iterator in Object(init)) {
    return init as Iterable<unknown>;
  }
  if (typeof init === "object" && init !== null) return Object.entries(init);
  fail(
    `headers must be a Headers, an array or a record, received ${show(init)}`,
  );
}

function prepareHeaders(
  init: HeadersInit | undefined,
): Array<[string, string]> {
  const headers: Array<[string, string]> = [];
  if (init === undefined) return headers;
  for (const entry of headerEntries(init)) {
    if (!Array.isArray(entry) || entry.length !== 2) {
      fail(`each header must be a [name, value] pair, received ${show(entry)}`);
    }
    const name = checkHeaderName(entry[0]);
    const value = entry[1];
    headers.push([
      name,
      // The message (and whether it may show the value) only for a bad one.
      typeof value === "string" && !BAD_VALUE_CHAR.test(value)
        ? trimmed(value)
        : checkHeaderValue(`header "${name}"`, value, isSecretHeader(name)),
    ]);
  }
  return headers;
}

function findHeader(
  headers: ReadonlyArray<readonly [string, string]>,
  name: string,
): number {
  for (let i = 0; i < headers.length; i++) {
    if (headers[i][0].toLowerCase() === name) return i;
  }
  return -1;
}

/** A record: an object read by its own enumerable keys, not an iterable. A
 * `Map`, `Headers`, `FormData` or array is iterable and has no such keys:
 * read as a record, it gave nothing, and the trigger went out without its
 * fields or cookies. */
function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null &&
    !(Symbol.iterator in value);
}

function cookieHeader(cookies: unknown): string {
  if (!isRecord(cookies)) {
    fail(`cookies must be a record of strings, received ${show(cookies)}`);
  }
  const pairs: string[] = [];
  for (const [name, value] of Object.entries(cookies)) {
    if (!TOKEN.test(name)) {
      fail(`cookie name must be an HTTP token, received ${show(name)}`);
    }
    checkHeaderValue(`cookie "${name}"`, value, true);
    pairs.push(`${name}=${encodeURIComponent(value as string)}`);
  }
  return pairs.join("; ");
}

/** What the urlencoded serializer leaves as is (WHATWG URL, "application/
 * x-www-form-urlencoded percent-encode set"): ASCII alphanumerics, `*-._`. */
const FORM_SAFE = /^[A-Za-z0-9*\-._]*$/;
/** What encodeURIComponent leaves as is but a form encodes (and space). */
const FORM_EXTRA = /%20|[!'()~]/g;
const formExtra = (c: string) =>
  c === "%20" ? "+" : `%${c.charCodeAt(0).toString(16).toUpperCase()}`;

/** Form-safe ASCII chars (FORM_SAFE), by code. */
const SAFE_CHAR = new Uint8Array(128);
const SAFE_CHARS =
  "*-._0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
for (let i = 0; i < SAFE_CHARS.length; i++) {
  SAFE_CHAR[SAFE_CHARS.charCodeAt(i)] = 1;
}

/** Texts of this length and up to {@linkcode PAIRS_MAX} are checked four
 * bytes at a time, as two pairs: a 1,000-char value in ~0.35 µs (0.6 µs a
 * pair at a time) instead of ~1.3–2 µs with FORM_SAFE (whose cost grows by
 * the char). */
const PAIRS_FROM = 64;
const PAIRS_MAX = 16 * 1024;
interface PairCheck {
  /** Whether both bytes of a 16-bit word are form-safe (symmetric: the
   * same either byte order). 64 KiB, made on first use. */
  safe: Uint8Array;
  bytes: Uint8Array;
  /** The bytes four at a time: each word's two 16-bit halves are pairs. */
  words: Uint32Array;
}
let pairCheck: PairCheck | undefined;

function makePairCheck(): PairCheck {
  const safe = new Uint8Array(65_536);
  for (let a = 0; a < 128; a++) {
    if (SAFE_CHAR[a] === 0) continue;
    for (let b = 0; b < 128; b++) safe[a << 8 | b] = SAFE_CHAR[b];
  }
  const bytes = new Uint8Array(PAIRS_MAX);
  return {
    safe,
    bytes,
    words: new Uint32Array(bytes.buffer, 0, PAIRS_MAX / 4),
  };
}

/** Whether `text` is all form-safe chars (FORM_SAFE). */
function formSafe(text: string): boolean {
  const length = text.length;
  if (length < PAIRS_FROM) {
    // Char by char, not FORM_SAFE: a regex call costs µs on a CPU that
    // slept since the last trigger (docs/performance.md, tenth pass).
    for (let i = 0; i < length; i++) {
      const c = text.charCodeAt(i);
      if (c >= 128 || SAFE_CHAR[c] === 0) return false;
    }
    return true;
  }
  if (length > PAIRS_MAX) return FORM_SAFE.test(text);
  const { safe, bytes, words } = pairCheck ??= makePairCheck();
  const { read, written } = encoder.encodeInto(text, bytes);
  // Anything not ASCII takes more bytes than chars, and is not safe.
  if (read !== length || written !== length) return false;
  const quads = length >> 2;
  for (let i = 0; i < quads; i++) {
    const word = words[i];
    if ((safe[word & 0xffff] & safe[word >>> 16]) === 0) return false;
  }
  // The last one to three bytes, each paired with "0" (safe).
  for (let i = quads << 2; i < length; i++) {
    if (safe[bytes[i] << 8 | 0x30] === 0) return false;
  }
  return true;
}

/** One name or value as URLSearchParams serialises it; throws URIError on a
 * lone surrogate (URLSearchParams writes U+FFFD instead: the caller falls
 * back to it). */
function formEncode(text: string): string {
  if (formSafe(text)) return text;
  return encodeURIComponent(text).replace(FORM_EXTRA, formExtra);
}

const { propertyIsEnumerable } = Object.prototype;

/** A form field's value, checked. */
function formValue(key: string, value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value !== "number" && typeof value !== "boolean") {
    fail(
      `form field "${key}" must be a string, number or boolean, received ${
        show(value)
      }`,
    );
  }
  return String(value);
}

function formBody(form: unknown): string {
  if (form instanceof URLSearchParams) return form.toString();
  if (!isRecord(form)) {
    fail(
      `form must be a record or URLSearchParams, received ${show(form)}${
        typeof FormData === "function" && form instanceof FormData
          ? " (a multipart body is given as body)"
          : ""
      }`,
    );
  }
  const record = form as Record<string, unknown>;
  // Keys, not entries: Object.entries costs ~1 µs in place for two fields.
  const names: string[] = [];
  const values: string[] = [];
  for (const key of Object.keys(record)) {
    // As Object.entries: a key a getter deleted meanwhile is left out.
    if (!propertyIsEnumerable.call(record, key)) continue;
    names.push(key);
    values.push(formValue(key, record[key]));
  }
  // By hand: URLSearchParams costs more than the rest of a reused trigger.
  try {
    let text = "";
    for (let i = 0; i < names.length; i++) {
      text += `${i === 0 ? "" : "&"}${formEncode(names[i])}=${
        formEncode(values[i])
      }`;
    }
    return text;
  } catch {
    return new URLSearchParams(names.map((name, i) => [name, values[i]]))
      .toString();
  }
}

function jsonBody(json: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(json);
  } catch (error) {
    fail(
      `json cannot be serialised: ${
        error instanceof Error ? error.message : `it threw ${show(error)}`
      }`,
    );
  }
  if (text === undefined) {
    fail(`json must be a JSON value, received ${show(json)}`);
  }
  return text;
}

interface Body {
  /** Bytes, or a Request holding the body; none when given as `text` or
   * `stream`. */
  bytes?: Uint8Array<ArrayBuffer> | Request;
  /** `bytes` are the caller's own (see `PreparedRequest.borrowed`). */
  borrowed?: boolean;
  text?: string;
  /** The caller's stream, taken (locked) only once every check passed: a
   * request refused at the call leaves it unread and still the caller's. */
  stream?: ReadableStream;
  type: string | null;
}

/** A Request holding `body`, read when sending. */
function bodyRequest(body: Blob | FormData | ReadableStream): Request {
  return new Request("http://body.invalid/", {
    method: "POST",
    body,
    duplex: "half",
  } as RequestInit);
}

/** A Request holding the caller's stream; a stream read from or cancelled
 * before (not locked, but disturbed) is refused, naming it. */
function streamRequest(stream: ReadableStream): Request {
  try {
    return bodyRequest(stream);
  } catch (cause) {
    throw new TypeError(
      `${PREFIX}body is a ReadableStream that was already read from or cancelled`,
      { cause },
    );
  }
}

const typedAt = Uint8Array.prototype.at;
/** The built-in getters: a subclass's or a Proxy's own are not used. */
const typedArray = Object.getPrototypeOf(Uint8Array.prototype);
const getter = (proto: object, name: string) =>
  Object.getOwnPropertyDescriptor(proto, name)!.get!;
const TYPED = {
  buffer: getter(typedArray, "buffer"),
  byteOffset: getter(typedArray, "byteOffset"),
  byteLength: getter(typedArray, "byteLength"),
};
const VIEW = {
  buffer: getter(DataView.prototype, "buffer"),
  byteOffset: getter(DataView.prototype, "byteOffset"),
  byteLength: getter(DataView.prototype, "byteLength"),
};
const bufferBytes = getter(ArrayBuffer.prototype, "byteLength");

/**
 * A byte body as a new plain `Uint8Array` view of the caller's bytes, of a
 * fixed length, checked readable (not detached, not out of a shrunk
 * buffer): copied later ({@linkcode ownBody}). A view of its own: nothing
 * the caller's object is (a `Buffer`, whose `slice()` copies nothing; an
 * array the library marked, given back to it) or overrides (read through
 * the built-in getters) is used.
 */
function bytesOf(
  body: Uint8Array | ArrayBuffer | ArrayBufferView,
): Uint8Array<ArrayBuffer> {
  try {
    // Of a fixed length, taken now: a resizable buffer shrunk later leaves
    // the view out of bounds (refused when copied), never shorter.
    if (body instanceof ArrayBuffer) {
      return new Uint8Array(body, 0, bufferBytes.call(body));
    }
    // Throws for a typed array detached or out of its shrunk buffer (whose
    // length then reads 0); a DataView's getters throw on their own.
    const view = body instanceof DataView ? VIEW : TYPED;
    if (view === TYPED) typedAt.call(body as Uint8Array, 0);
    return new Uint8Array(
      view.buffer.call(body) as ArrayBuffer,
      view.byteOffset.call(body),
      view.byteLength.call(body),
    );
  } catch (cause) {
    throw new TypeError(
      `${PREFIX}body's ArrayBuffer is detached (transferred) or shrunk below the view, and cannot be read`,
      { cause },
    );
  }
}

/**
 * Replaces a body still borrowed from the caller (`req.borrowed`) with a
 * copy in a buffer of its own: a change to the caller's array after the
 * call is not sent, and a fetch of the caller's own may keep or transfer
 * what it is given. Call it before anything that may wait before it reads
 * the body; it runs within the `trigger()` call. Throws a BODY TriggerError
 * when the bytes are gone (the caller's own code, run during the call,
 * detached the buffer).
 */
export function ownBody(req: PreparedRequest): void {
  if (!req.borrowed) return;
  req.borrowed = undefined;
  try {
    // The copy constructor: a new buffer of exactly these bytes.
    req.body = new Uint8Array(req.body as Uint8Array<ArrayBuffer>);
  } catch (cause) {
    req.body = null;
    throw failure(
      "BODY",
      "Request body could not be read: its ArrayBuffer was detached during the call",
      req,
      cause,
    );
  }
}

function rawBody(body: TriggerBody): Body {
  if (typeof body === "string") {
    return { text: body, type: "text/plain;charset=UTF-8" };
  }
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
    return { bytes: bytesOf(body), borrowed: true, type: null };
  }
  if (body instanceof URLSearchParams) {
    return {
      text: body.toString(),
      type: "application/x-www-form-urlencoded;charset=UTF-8",
    };
  }
  if (body instanceof ReadableStream) {
    if (body.locked) {
      fail("body is a ReadableStream that is locked or already read");
    }
    return { stream: body, type: null };
  }
  if (body instanceof Blob || body instanceof FormData) {
    // The platform serialises it (multipart boundary included); the Request
    // takes its snapshot now, the bytes are read when sending.
    const request = bodyRequest(body);
    return { bytes: request, type: request.headers.get("content-type") };
  }
  fail(
    `body must be a string, Uint8Array, ArrayBuffer, Blob, URLSearchParams, FormData or ReadableStream, received ${
      show(body)
    }`,
  );
}

function prepareBody(options: TriggerOptions): Body | null {
  // Each option read once; no array made unless more than one is given.
  const { form, json, body } = options;
  if (
    (form !== undefined ? 1 : 0) + (json !== undefined ? 1 : 0) +
        (body !== undefined ? 1 : 0) > 1
  ) {
    const given = [["form", form], ["json", json], ["body", body]]
      .filter(([, value]) => value !== undefined).map(([key]) => key);
    fail(`give one body option, received ${given.join(" and ")}`);
  }
  if (form !== undefined) {
    return {
      text: formBody(form),
      type: "application/x-www-form-urlencoded;charset=UTF-8",
    };
  }
  if (json !== undefined) {
    return { text: jsonBody(json), type: "application/json" };
  }
  if (body !== undefined && body !== null) return rawBody(body);
  return null;
}

function prepareMethod(method: unknown, hasBody: boolean): string {
  if (method === undefined) return hasBody ? "POST" : "GET";
  if (typeof method !== "string" || !TOKEN.test(method)) {
    fail(`method must be an HTTP token, received ${show(method)}`);
  }
  const upper = method.toUpperCase();
  if (REFUSED_METHODS.has(upper)) {
    fail(`method ${show(method)} is not supported`);
  }
  return NORMALISED_METHODS.has(upper) ? upper : method;
}

/** A URL as prepared: `plain`, its href, when it is known to carry no
 * credentials (every URL kept below), so neither is read from it again (a
 * URL's getters cost ~0.2 µs each in place). */
interface PreparedUrl {
  url: URL;
  plain?: string;
}

/** URLs parsed from strings (without credentials), shared read-only by the
 * requests prepared from them: a trigger loop parses its URL once. */
const parsedUrls = new Map<string, PreparedUrl>();
const PARSED_URLS_MAX = 256;

function prepareUrl(input: unknown): PreparedUrl {
  // A URL object is looked up by its href: the caller may change it later,
  // so the one kept is a copy either way.
  const text = input instanceof URL ? input.href : input;
  if (typeof text === "string") {
    const known = parsedUrls.get(text);
    if (known !== undefined) return known;
  }
  let url: URL;
  if (input instanceof URL) {
    url = new URL(text as string);
  } else if (typeof input === "string") {
    try {
      url = new URL(input);
    } catch {
      fail(`invalid URL ${show(input)}`);
    }
  } else {
    fail(`url must be a string or URL, received ${show(input)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    fail(
      `protocol must be "http:" or "https:", received ${show(url.protocol)}`,
    );
  }
  // Not with credentials: basicAuth() takes them out of the URL it is given.
  if (typeof text === "string" && url.username === "" && url.password === "") {
    if (parsedUrls.size >= PARSED_URLS_MAX) parsedUrls.clear();
    const plain: PreparedUrl = { url, plain: url.href };
    parsedUrls.set(text, plain);
    return plain;
  }
  return { url };
}

function basicAuth(url: URL): string | undefined {
  if (url.username === "" && url.password === "") return undefined;
  let user: string, password: string;
  try {
    user = decodeURIComponent(url.username);
    password = decodeURIComponent(url.password);
  } catch {
    // Not show(url): the password must not be echoed.
    fail("the credentials in the URL are not valid percent-encoded UTF-8");
  }
  url.username = "";
  url.password = "";
  return `Basic ${toBase64(encoder.encode(`${user}:${password}`))}`;
}

/** The Standard Webhooks headers signing sets (and the outbox sets again on
 * every attempt). */
export const SIGN_HEADERS = [
  "webhook-id",
  "webhook-timestamp",
  "webhook-signature",
];

function prepareSign(
  sign: unknown,
  headers: ReadonlyArray<readonly [string, string]>,
): PreparedSign | undefined {
  if (sign === undefined) return undefined;
  if (typeof sign !== "object" || sign === null || Array.isArray(sign)) {
    // Not show(sign): a secret passed bare must not be echoed.
    fail(
      `sign must be an object with a secret, received ${
        sign === null ? "null" : Array.isArray(sign) ? "an array" : typeof sign
      }`,
    );
  }
  const { secret, id, timestamp } = sign as Record<string, unknown>;
  let key: Uint8Array;
  try {
    key = parseSecret(secret, "sign.secret");
  } catch (error) {
    fail((error as Error).message);
  }
  try {
    checkMessage(id ?? "x", timestamp ?? 0, "sign.");
  } catch (error) {
    fail((error as Error).message);
  }
  for (const name of SIGN_HEADERS) {
    if (findHeader(headers, name) >= 0) {
      fail(`header "${name}" is set by the sign option and cannot be given`);
    }
  }
  return {
    key,
    id: (id as string | undefined) ?? newMessageId(),
    timestamp: timestamp as number | undefined,
  };
}

function oneOf<T extends string>(
  name: string,
  value: unknown,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) {
    fail(
      `${name} must be ${allowed.map((v) => `"${v}"`).join(" or ")}, received ${
        show(value)
      }`,
    );
  }
  return value as T;
}

/** The header lists of requests that set none (no headers, cookies or
 * credentials), by body type: one frozen list each, shared, so the socket
 * transport finds their encoded head by identity. */
const SHARED_HEADERS = new Map<
  string | null,
  ReadonlyArray<readonly [string, string]>
>();
const SHARED_TYPES = new Set<string | null>([
  null,
  "text/plain;charset=UTF-8",
  "application/x-www-form-urlencoded;charset=UTF-8",
  "application/json",
]);

function sharedHeaders(
  type: string | null,
): ReadonlyArray<readonly [string, string]> | undefined {
  let headers = SHARED_HEADERS.get(type);
  if (headers === undefined && SHARED_TYPES.has(type)) {
    const list: Array<readonly [string, string]> = [];
    if (type !== null) list.push(Object.freeze(["Content-Type", type]));
    list.push(Object.freeze(["User-Agent", USER_AGENT]));
    headers = Object.freeze(list);
    SHARED_HEADERS.set(type, headers);
  }
  return headers;
}

/** The headers of a request that sets some: the caller's, cookies, the URL's
 * credentials (`auth`), the body's type, the User-Agent. */
function ownHeaders(
  options: TriggerOptions,
  body: Body | null,
  auth: string | undefined,
): Array<[string, string]> {
  const headers = prepareHeaders(options.headers);
  if (options.cookies !== undefined) {
    const cookies = cookieHeader(options.cookies);
    const index = findHeader(headers, "cookie");
    if (index >= 0) {
      headers[index][1] = cookies === ""
        ? headers[index][1]
        : `${headers[index][1]}; ${cookies}`;
    } else if (cookies !== "") {
      headers.push(["Cookie", cookies]);
    }
  }
  if (auth !== undefined && findHeader(headers, "authorization") < 0) {
    headers.push(["Authorization", auth]);
  }
  if (body?.type && findHeader(headers, "content-type") < 0) {
    headers.push(["Content-Type", body.type]);
  }
  if (findHeader(headers, "user-agent") < 0) {
    headers.push(["User-Agent", USER_AGENT]);
  }
  return headers;
}

/**
 * Validates `trigger()` input and turns it into a {@linkcode PreparedRequest}.
 *
 * @throws {TypeError} For any bad input, naming the value.
 * @throws {RangeError} For a timeout that is not a number of ms from 1 to
 *   2^31 − 1.
 */
export function prepare(
  input: string | URL,
  options: TriggerOptions = {},
): PreparedRequest {
  checkOptions(options, PREFIX);
  const { url, plain } = prepareUrl(input);
  const body = prepareBody(options);
  const method = prepareMethod(options.method, body !== null);
  if (body !== null && (method === "GET" || method === "HEAD")) {
    fail(`a ${method} request cannot have a body`);
  }

  let headers: ReadonlyArray<readonly [string, string]>;
  const shared = options.headers === undefined &&
      options.cookies === undefined
    ? sharedHeaders(body?.type ?? null)
    : undefined;
  const auth = plain === undefined ? basicAuth(url) : undefined;
  if (shared !== undefined && auth === undefined) headers = shared;
  else headers = ownHeaders(options, body, auth);

  const sign = prepareSign(options.sign, headers);
  const wait = oneOf("wait", options.wait, ["sent", "accepted"], "sent");
  const requested = oneOf(
    "transport",
    options.transport,
    ["auto", "socket", "fetch"],
    "auto",
  );
  const customFetch = options.fetch;
  if (customFetch !== undefined && typeof customFetch !== "function") {
    fail(`fetch must be a function, received ${show(customFetch)}`);
  }
  if (customFetch !== undefined && requested === "socket") {
    fail('fetch is for the fetch transport, received transport "socket"');
  }
  if (requested === "socket" && rawConnector() === undefined) {
    fail(
      'transport "socket" needs Deno.connect, cloudflare:sockets or node:net, which this runtime lacks',
    );
  }
  // `auto` goes where the runtime's fetch would go: through the proxy the
  // environment names, if any (unless fetch here cannot take `caCerts`).
  const transport = requested === "auto"
    ? (customFetch === undefined && autoPicksSocket() &&
        !(fetchUsesProxy(url) &&
          (options.caCerts === undefined || canUseCaCertsWithFetch()))
      ? "socket"
      : "fetch")
    : requested;

  const timeout = options.timeout ?? 30_000;
  checkMs(timeout, `${PREFIX}timeout`, 1);
  const signal = options.signal;
  if (signal !== undefined) checkSignal(signal, `${PREFIX}signal`);
  if (
    options.waitUntil !== undefined && typeof options.waitUntil !== "function"
  ) {
    fail(`waitUntil must be a function, received ${show(options.waitUntil)}`);
  }
  const reuse = options.reuse ?? true;
  if (typeof reuse !== "boolean") {
    fail(`reuse must be a boolean, received ${show(reuse)}`);
  }
  const resend = options.resend ?? true;
  if (typeof resend !== "boolean") {
    fail(`resend must be a boolean, received ${show(resend)}`);
  }
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  if (
    typeof maxConnections !== "number" || !Number.isInteger(maxConnections) ||
    maxConnections < 1
  ) {
    throw new RangeError(
      `${PREFIX}maxConnections must be a positive integer, received ${
        show(maxConnections)
      }`,
    );
  }
  // A copy: a trigger that waits (for a connection; the outbox, to store
  // it) uses the certificates given at the call, whatever the array holds
  // later.
  const caCerts = Array.isArray(options.caCerts)
    ? [...options.caCerts]
    : options.caCerts;
  if (caCerts !== undefined) {
    if (
      !Array.isArray(caCerts) || !caCerts.every((c) => typeof c === "string")
    ) {
      fail(
        `caCerts must be an array of PEM strings, received ${show(caCerts)}`,
      );
    }
    if (customFetch !== undefined) {
      fail("caCerts cannot be combined with fetch: give your fetch the CAs");
    }
    if (
      transport === "fetch"
        ? !canUseCaCertsWithFetch()
        : !rawSocketsTrustCaCerts()
    ) {
      fail(`caCerts is not supported by the ${transport} transport here`);
    }
  }

  const req: PreparedRequest = {
    method,
    url,
    href: plain ?? url.href,
    headers,
    // A stream is taken last: nothing above can refuse the request now.
    body: body?.bytes ??
      (body?.stream === undefined ? null : streamRequest(body.stream)),
    borrowed: body?.borrowed,
    wait,
    timeout,
    signal,
    transport,
    fallback: requested === "auto" && transport === "socket" &&
        caCerts === undefined && rawSocketsLoading() || undefined,
    fetch: customFetch,
    waitUntil: options.waitUntil,
    caCerts,
    sign,
    reuse,
    resend,
    maxConnections,
  };
  return body?.text === undefined ? req : new TextRequest(req, body.text);
}

/** A {@linkcode PreparedRequest} with a body given as text: bytes only
 * when `body` is first read (requests without one stay plain objects). */
class TextRequest implements PreparedRequest {
  method: string;
  url: URL;
  href: string;
  headers: ReadonlyArray<readonly [string, string]>;
  wait: WaitMode;
  timeout: number;
  signal?: AbortSignal;
  transport: "socket" | "fetch";
  fallback?: boolean;
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  waitUntil?: WaitUntil;
  caCerts?: string[];
  sign?: PreparedSign;
  reuse: boolean;
  resend: boolean;
  maxConnections: number;
  text?: string;
  #body: Uint8Array<ArrayBuffer> | Request | null = null;

  constructor(req: PreparedRequest, text: string) {
    this.method = req.method;
    this.url = req.url;
    this.href = req.href;
    this.headers = req.headers;
    this.wait = req.wait;
    this.timeout = req.timeout;
    this.signal = req.signal;
    this.transport = req.transport;
    this.fallback = req.fallback;
    this.fetch = req.fetch;
    this.waitUntil = req.waitUntil;
    this.caCerts = req.caCerts;
    this.sign = req.sign;
    this.reuse = req.reuse;
    this.resend = req.resend;
    this.maxConnections = req.maxConnections;
    this.text = text;
  }

  get body(): Uint8Array<ArrayBuffer> | Request | null {
    if (this.#body === null && this.text !== undefined) {
      this.#body = utf8(this.text);
    }
    return this.#body;
  }

  set body(value: Uint8Array<ArrayBuffer> | Request | null) {
    this.#body = value;
    this.text = undefined;
  }
}
