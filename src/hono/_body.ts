// The one bounded body reader of the receiving side: connection({ ack })
// and verifyTrigger() both buffer a body before anything else may run, so
// both read it here, bounded in size, in time and (for unauthenticated
// bytes) in total memory across requests.
import type { MiddlewareContext } from "./context.ts";
import type { ByteBudget } from "../_byte_budget.ts";
import { readStream, type StreamEnd } from "../_read_stream.ts";

/** The default `bodyTimeout` of both middlewares: 10 s. */
export const DEFAULT_BODY_TIMEOUT = 10_000;
/** The default `maxBufferedBytes` of both middlewares: 16 MiB. */
export const DEFAULT_MAX_BUFFERED_BYTES = 16_777_216;

/** Why a body was not read: 413, 408, 400 or 503 (see
 * {@linkcode refuseBody}), or `"stopped"`: {@linkcode readBody}'s `signal`
 * ended it (nobody waits for the answer then). */
export type BodyFailure = StreamEnd;

/** A body read, or why it failed. */
export type BodyRead =
  /** `streamed`: `body` is the bytes as they came (read from the request's
   * stream), not an earlier middleware's read re-encoded (Hono keeps a
   * `text()` without a BOM, a `json()` as its value). */
  | { ok: true; body: Uint8Array | null; release(): void; streamed?: boolean }
  /** `error`: what a `"failed"` read threw. */
  | { ok: false; failure: BodyFailure; error?: unknown };

/** How {@linkcode readBody} is bounded. */
export interface ReadLimits {
  /** The largest body in bytes. */
  maxBodySize: number;
  /** Milliseconds for the whole body; `0`: no limit. */
  timeout?: number;
  /** Where the bytes held are counted; none: not counted. */
  budget?: ByteBudget;
  /** Who needs the bytes as sent (a signature's check, e.g.
   * `"verifyTrigger()"`): a body an earlier middleware read is then reused
   * only from a cache of its bytes or its text, and one kept only parsed
   * (JSON, form data) throws a TypeError naming it. */
  exact?: string;
}

/** Hono's caches of a body read through it that hold its bytes as sent
 * (text: re-encoded as UTF-8, the same for any UTF-8 body). Hono 4.7 keeps
 * an earlier `c.req.json()` or `parseBody()` only parsed, and every version
 * an earlier `formData()`: serialised again, not the bytes sent. (Hono
 * 4.13's `json()` caches its text, its `parseBody()` the bytes.) */
const EXACT_CACHES = ["arrayBuffer", "blob", "text"];

/** The answer to a body not read: 413, 408, 503 + Retry-After or 400. */
export function refuseBody(
  failure: BodyFailure,
  maxBodySize: number,
  bodyTimeout: number,
): Response {
  switch (failure) {
    case "too large":
      return reject(413, `Request body exceeds ${maxBodySize} bytes`);
    case "timeout":
      return reject(408, `Request body not received within ${bodyTimeout} ms`);
    case "busy":
      return new Response(
        "Too many request bodies in memory; retry later\n",
        { status: 503, headers: { ...TEXT, "retry-after": "5" } },
      );
    default:
      return reject(400, "Request body could not be read");
  }
}

const TEXT = { "content-type": "text/plain; charset=UTF-8" };

function reject(status: number, reason: string): Response {
  return new Response(reason + "\n", { status, headers: TEXT });
}

/** Whether a request may have a body, without touching `request.body`. */
export function hasBody(request: Request): boolean {
  // As sent: Deno.serve hands a lower-case `get` on as it came, and a copy
  // made with one is a GET (which may not carry a body).
  const method = request.method.toUpperCase();
  return method !== "GET" && method !== "HEAD";
}

const released = () => {};

/**
 * Reads the whole body within the limits; `body: null` when the request has
 * none. An earlier middleware's read through Hono is reused (its cache).
 * On success the caller calls `release()` once it no longer needs the bytes
 * counted against the budget. `signal` ends the read (`"stopped"`), its
 * bytes given back: connection() answered early while the body was coming.
 */
export async function readBody(
  c: MiddlewareContext,
  limits: ReadLimits,
  signal?: AbortSignal,
): Promise<BodyRead> {
  const { maxBodySize, timeout = 0, budget } = limits;
  const raw = c.req.raw;
  if (!hasBody(raw)) return { ok: true, body: null, release: released };
  if (raw.bodyUsed) {
    const cache = c.req.bodyCache;
    if (
      limits.exact !== undefined && cache !== undefined &&
      !EXACT_CACHES.some((key) => cache[key] !== undefined)
    ) {
      throw new TypeError(
        `${limits.exact}: an earlier middleware read the body ${
          Object.keys(cache).filter((key) => key !== "parsedBody")
            .map((key) => `as ${key}`).join(" and ") ||
          "itself (not through Hono)"
        }, which does not keep its bytes as sent: put that middleware after ${limits.exact}`,
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await c.req.arrayBuffer());
    } catch (error) {
      return { ok: false, failure: "failed", error };
    }
    if (bytes.byteLength > maxBodySize) {
      return { ok: false, failure: "too large" };
    }
    return { ok: true, body: bytes, release: released };
  }
  // A declared length too large is refused up front, holding nothing;
  // otherwise the budget is taken by the bytes as they arrive, so headers
  // that declare much and a body that never comes hold none of it. Over the
  // whole budget: never readable, so not "busy" (a retry would get the same).
  const declared = Number(raw.headers.get("content-length") ?? NaN);
  const max = Math.min(maxBodySize, budget?.max ?? Infinity);
  if (declared > max) return { ok: false, failure: "too large" };
  if (raw.body === null) return { ok: true, body: null, release: released };
  const read = await readStream(raw.body, { max, timeout, budget, signal });
  if (!read.ok) return { ok: false, failure: read.end, error: read.error };
  return { ok: true, body: read.bytes, release: read.release, streamed: true };
}

/** `request`'s `signal` (and its clones') is `signal()`, read when read. A
 * copy made by `new Request(request)` or `fetch(request)` does not follow
 * it: the platform copies its own signal, which never aborts. */
function withSignal(request: Request, signal: () => AbortSignal): Request {
  Object.defineProperty(request, "signal", { get: signal, configurable: true });
  Object.defineProperty(request, "clone", {
    value: () => withSignal(Request.prototype.clone.call(request), signal),
    configurable: true,
    writable: true,
  });
  return request;
}

/**
 * A copy of `raw` with its body in memory, for the route to read again.
 * `signal` replaces the request's (connection()'s own signal in the
 * background). Without one, the copy's `signal` is the request's own, read
 * only when the route reads it: Deno.serve (2.9) warns about its legacy
 * abort once a handler has read `request.signal`, so a copy that read it
 * for every request would make Deno warn for routes that never use it.
 * A given `signal` is also the constructor's (so `fetch(c.req.raw)` and
 * `new Request(c.req.raw)` stop with it), unless `getterOnly`: on Node, a
 * Request made with one stays registered with that signal until the Request
 * is collected, and a route's abort listener holding its Context kept every
 * acknowledged request alive (24 KB each, for good).
 */
export function bufferedRequest(
  raw: Request,
  body: Uint8Array | null,
  signal?: AbortSignal,
  getterOnly = false,
): Request {
  const request = new Request(raw.url, {
    method: raw.method,
    headers: raw.headers,
    body: body as BodyInit | null,
    signal: getterOnly ? undefined : signal,
  });
  withSignal(request, signal === undefined ? () => raw.signal : () => signal);
  const cf = (raw as { cf?: unknown }).cf;
  if (cf !== undefined) Object.defineProperty(request, "cf", { value: cf });
  return request;
}
