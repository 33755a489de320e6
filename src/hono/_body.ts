// The one bounded body reader of the receiving side: connection({ ack })
// and verifyTrigger() both buffer a body before anything else may run, so
// both read it here, bounded in size, in time and (for unauthenticated
// bytes) in total memory across requests.
import type { MiddlewareContext } from "./context.ts";
import { concatBytes } from "../_bytes.ts";

/** The default `bodyTimeout` of both middlewares: 10 s. */
export const DEFAULT_BODY_TIMEOUT = 10_000;
/** The default `maxBufferedBytes` of both middlewares: 16 MiB. */
export const DEFAULT_MAX_BUFFERED_BYTES = 16_777_216;

/** Why a body was not read. */
export type BodyFailure =
  /** Larger than `maxBodySize` (declared or counted): 413. */
  | "too large"
  /** Not received within the time allowed: 408. */
  | "timeout"
  /** The read failed (the caller left, a broken stream): 400. */
  | "failed"
  /** The memory budget is spent: 503 with Retry-After. */
  | "busy";

/** A body read, or why it failed. */
export type BodyRead =
  | { ok: true; body: Uint8Array | null; release(): void }
  | { ok: false; failure: BodyFailure };

/**
 * A bound on the body bytes held in memory at once across requests. Bytes
 * are taken as they arrive (the declared length at once when there is one)
 * and given back by `release()`.
 */
export class BodyBudget {
  #left: number;

  constructor(readonly max: number) {
    this.#left = max;
  }

  /** Bytes free now. */
  get left(): number {
    return this.#left;
  }

  take(bytes: number): boolean {
    if (bytes > this.#left) return false;
    this.#left -= bytes;
    return true;
  }

  give(bytes: number): void {
    this.#left = Math.min(this.max, this.#left + bytes);
  }
}

/** How {@linkcode readBody} is bounded. */
export interface ReadLimits {
  /** The largest body in bytes. */
  maxBodySize: number;
  /** Milliseconds for the whole body; `0`: no limit. */
  timeout?: number;
  /** Where the bytes held are counted; none: not counted. */
  budget?: BodyBudget;
}

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
  return request.method !== "GET" && request.method !== "HEAD";
}

const released = () => {};

/**
 * Reads the whole body within the limits; `body: null` when the request has
 * none. An earlier middleware's read through Hono is reused (its cache).
 * On success the caller calls `release()` once it no longer needs the bytes
 * counted against the budget.
 */
export async function readBody(
  c: MiddlewareContext,
  limits: ReadLimits,
): Promise<BodyRead> {
  const { maxBodySize, timeout = 0, budget } = limits;
  const raw = c.req.raw;
  if (!hasBody(raw)) return { ok: true, body: null, release: released };
  if (raw.bodyUsed) {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await c.req.arrayBuffer());
    } catch {
      return { ok: false, failure: "failed" };
    }
    if (bytes.byteLength > maxBodySize) {
      return { ok: false, failure: "too large" };
    }
    return { ok: true, body: bytes, release: released };
  }
  const declared = Number(raw.headers.get("content-length") ?? NaN);
  // Over the whole budget: never readable, so not "busy" (a retry would
  // get the same).
  if (declared > maxBodySize || declared > (budget?.max ?? Infinity)) {
    return { ok: false, failure: "too large" };
  }
  if (raw.body === null) return { ok: true, body: null, release: released };

  // Bytes counted against the budget so far.
  let held = 0;
  const hold = (bytes: number): boolean => {
    if (budget === undefined || bytes <= held) return true;
    if (!budget.take(bytes - held)) return false;
    held = bytes;
    return true;
  };
  const giveBack = () => {
    budget?.give(held);
    held = 0;
  };
  if (declared >= 0 && !hold(declared)) {
    await raw.body.cancel().catch(noop);
    return { ok: false, failure: "busy" };
  }
  let reader: ReadableStreamDefaultReader<Uint8Array>;
  try {
    reader = raw.body.getReader();
  } catch (error) {
    // Locked by someone else: what was taken goes back before the throw.
    giveBack();
    throw error;
  }
  let timedOut = false;
  const timer = timeout > 0
    ? setTimeout(() => {
      timedOut = true;
      reader.cancel().catch(noop);
    }, timeout)
    : undefined;
  const chunks: Uint8Array[] = [];
  let size = 0;
  let failure: BodyFailure | undefined;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (timedOut) {
        failure = "timeout";
        break;
      }
      if (done) break;
      size += value.byteLength;
      if (size > maxBodySize || size > (budget?.max ?? Infinity)) {
        failure = "too large";
      } else if (!hold(size)) failure = "busy";
      if (failure !== undefined) {
        await reader.cancel().catch(noop);
        break;
      }
      chunks.push(value);
    }
  } catch {
    failure = timedOut ? "timeout" : "failed";
  } finally {
    clearTimeout(timer);
  }
  if (failure !== undefined) {
    chunks.length = 0;
    giveBack();
    return { ok: false, failure };
  }
  // A body shorter than declared frees the difference now.
  if (budget !== undefined && held > size) {
    budget.give(held - size);
    held = size;
  }
  return { ok: true, body: concatBytes(chunks, size), release: giveBack };
}

function noop(): void {}

/**
 * A copy of `raw` with its body in memory, for the route to read again;
 * `signal` replaces the request's (connection()'s own signal in the
 * background).
 */
export function bufferedRequest(
  raw: Request,
  body: Uint8Array | null,
  signal: AbortSignal = raw.signal,
): Request {
  const request = new Request(raw.url, {
    method: raw.method,
    headers: raw.headers,
    body: body as BodyInit | null,
    signal,
  });
  const cf = (raw as { cf?: unknown }).cf;
  if (cf !== undefined) Object.defineProperty(request, "cf", { value: cf });
  return request;
}
