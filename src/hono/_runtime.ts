// Runtime differences of the receiving side, all in this file.
//
// - Deno.serve (2.9) aborts `request.signal` after every successful response
//   too (legacy abort; Deno warns once per process when the signal was read,
//   as connection() does). With --unstable-no-legacy-abort (or deno.json
//   "unstable": ["no-legacy-abort"]), and by default in a coming release
//   (denoland/deno#35733), it aborts only when the caller leaves before the
//   answer is sent. connection() is right under both: it stops listening
//   once the route has answered (and, with `ack`, once the body is in), so
//   an abort after that is never taken for a disconnect.
// - Deno.serve aborts the signal within milliseconds when a caller leaves a
//   GET or some POSTs, but for others (by the whole request's size, in no
//   simple order: a 2 KB body) never while the route works once the body
//   was read; a body read after the caller left throws
//   (`BadResource` after a close, `Http` after a reset) and the signal
//   stays quiet. So a failed body read means
//   ABORTED: on Deno the body methods are watched. The signal must be read
//   at once: one first read after the caller left never aborts.
// - @hono/node-server aborts the signal on client close only; bodies stay
//   readable. Node keeps a Request made with a `signal` registered with that
//   signal until the Request is collected: connection()'s copy of an
//   acknowledged request takes its signal by a getter only there (so there
//   `fetch(c.req.raw)` does not stop with it: pass the signal yourself).
// - Bun.serve (1.4.5) does the same: the signal aborts when the caller
//   leaves, body read or not, never after an answer; bodies stay readable.
// - Workers keep background work alive with `c.executionCtx.waitUntil`; the
//   getter throws where there is no execution context.
import type { MiddlewareContext } from "./context.ts";
import { hasBody } from "./_body.ts";
import { globalWaitUntil } from "../_wait_until.ts";

const isDeno =
  typeof (globalThis as { Deno?: { serve?: unknown } }).Deno?.serve ===
    "function";

/** Whether a copy of the request must not take a signal in its
 * constructor (Node: see above). */
export function signalByGetterOnly(c: MiddlewareContext): boolean {
  return isNode(c);
}

/** Whether the request came through @hono/node-server (also under Deno's node:http). */
function isNode(c: MiddlewareContext): boolean {
  const env: unknown = c.env;
  return typeof env === "object" && env !== null && "incoming" in env;
}

/** What Deno.serve's body read throws when its connection is gone: a
 * close (`BadResource`), a reset mid-body (`Http`: "unexpected EOF while
 * reading HTTP/1 body"), and their kin. */
const DENO_GONE = new Set([
  "BadResource",
  "Http",
  "ConnectionReset",
  "UnexpectedEof",
  "BrokenPipe",
  "Interrupted",
]);

/** What workerd's body read throws when the caller is gone (its request
 * signal stays quiet). */
const WORKERD_GONE = "Network connection lost.";

/**
 * Whether a failed read of the request's body says that the caller left:
 * on Deno.serve one of its connection errors (its signal stays quiet, see
 * above); through @hono/node-server the caller's own request (`incoming`)
 * aborted or errored (Deno's node:http fails the read before the signal
 * aborts); elsewhere the request's signal has aborted (Bun), or workerd's
 * "Network connection lost." (which its `fetch` also throws: a middleware
 * that made a subrequest's body the request's cannot be told apart).
 * Anything else (a middleware's stream that errored: a corrupt gzip, an
 * upstream's reset, Hono 4.7's `bodyLimit` over its size) is no sign of it.
 */
export function callerLeftReading(
  c: MiddlewareContext,
  error: unknown,
): boolean {
  const { name, message } = (error ?? {}) as {
    name?: unknown;
    message?: unknown;
  };
  if (isNode(c)) {
    // The caller's own connection, not the error: an upstream's reset
    // that a middleware piped in says ECONNRESET too.
    const incoming = (c.env as { incoming?: Record<string, unknown> })
      .incoming;
    if (incoming?.aborted === true || incoming?.errored != null) return true;
  } else if (isDeno) {
    return typeof name === "string" && DENO_GONE.has(name);
  }
  try {
    if (c.req.raw.signal?.aborted === true) return true;
  } catch {
    // A request without a readable signal: the error tells, if anything.
  }
  return message === WORKERD_GONE;
}

/** Whom a failed body read reports to: the request's connection. */
export interface BodyWatcher {
  /** A body read failed: the caller is gone. */
  bodyReadFailed(): void;
}

/** Who to tell when a body read of a watched request fails. */
const bodyWatchers = new WeakMap<Request, BodyWatcher>();

/**
 * A prototype between a watched request and `Request.prototype` whose body
 * methods (those Hono's `c.req.json()`, `text()`, `parseBody()` … call)
 * report a failed read. One prototype swap per request is cheaper than a
 * copy of the request with a piped body, or own properties.
 */
let watchedPrototype: object | undefined;

/**
 * Tells `watcher` when a body read of the request fails, where that is the
 * only sign of a caller gone (Deno.serve, not through node:http).
 */
export function watchBodyReads(
  c: MiddlewareContext,
  watcher: BodyWatcher,
): void {
  const raw = c.req.raw;
  // Not `raw.body !== null`: on Deno that getter builds a stream and
  // loses the fast path of `text()` and friends.
  if (!isDeno || !hasBody(raw) || isNode(c)) return;
  watchedPrototype ??= makeWatchedPrototype();
  if (Object.getPrototypeOf(raw) !== Request.prototype) return;
  bodyWatchers.set(raw, watcher);
  Object.setPrototypeOf(raw, watchedPrototype);
}

function makeWatchedPrototype(): object {
  const proto = Object.create(Request.prototype);
  const methods = ["arrayBuffer", "blob", "bytes", "formData", "json", "text"];
  for (const method of methods) {
    const read = (Request.prototype as unknown as Record<string, unknown>)[
      method
    ];
    if (typeof read !== "function") continue;
    Object.defineProperty(proto, method, {
      configurable: true,
      writable: true,
      value: function watchedRead(this: Request) {
        return (read.call(this) as Promise<unknown>).catch((error) => {
          bodyWatchers.get(this)?.bodyReadFailed();
          throw error;
        });
      },
    });
  }
  return proto;
}

/** The platform's `waitUntil`, if it has one: the context Hono was given
 * (Workers), else a global's (Supabase's `EdgeRuntime`, Netlify's
 * `Netlify.context`, Vercel's request context). */
export function platformWaitUntil(
  c: MiddlewareContext,
): ((promise: Promise<unknown>) => void) | undefined {
  try {
    const ctx = c.executionCtx as { waitUntil?: unknown } | undefined;
    if (typeof ctx?.waitUntil === "function") {
      return ctx.waitUntil.bind(ctx) as (promise: Promise<unknown>) => void;
    }
  } catch {
    // `c.executionCtx` throws where the runtime has none.
  }
  return globalWaitUntil();
}
