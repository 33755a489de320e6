// A full specifier: users import this file by URL, where deno.json's bare
// "hono" mapping does not apply. Types only: no runtime dependency.
// deno-lint-ignore no-import-prefix
import type { Context, MiddlewareHandler } from "npm:hono@^4.13.19";
import { traceConnection } from "./_trace.ts";

/**
 * The bits of {@linkcode Connection.status}, as PHP's `connection_status()`
 * reports them: `NORMAL` 0, `ABORTED` 1 (the caller went away before the
 * route answered), `TIMEOUT` 2 (the time limit passed while the route was
 * working). Both bits are set (3) when a route that ignores user abort then
 * runs out of time.
 *
 * @example Usage
 * ```ts
 * import { ConnectionStatus } from "./connection.ts";
 * import assert from "node:assert/strict";
 *
 * const status = ConnectionStatus.ABORTED | ConnectionStatus.TIMEOUT;
 * assert.equal(status, 3);
 * assert.ok(status & ConnectionStatus.ABORTED);
 * ```
 */
export const ConnectionStatus = {
  /** The caller is there and the route is within its time limit. */
  NORMAL: 0,
  /** The caller went away before the route answered. */
  ABORTED: 1,
  /** The time limit passed while the route was working. */
  TIMEOUT: 2,
} as const;

/**
 * A connection status: a bitfield of {@linkcode ConnectionStatus} values.
 *
 * @example Usage
 * ```ts
 * import { ConnectionStatus } from "./connection.ts";
 * import assert from "node:assert/strict";
 *
 * const status: ConnectionStatus = ConnectionStatus.TIMEOUT;
 * assert.equal(status & ConnectionStatus.ABORTED, 0);
 * ```
 */
export type ConnectionStatus = 0 | 1 | 2 | 3;

/**
 * A function run once when the route's work is over; see
 * {@linkcode Connection.onShutdown}.
 *
 * @example Usage
 * ```ts
 * import type { ShutdownFunction } from "./connection.ts";
 * import assert from "node:assert/strict";
 *
 * const seen: number[] = [];
 * const record: ShutdownFunction = (status) => void seen.push(status);
 * record(0);
 * assert.deepEqual(seen, [0]);
 * ```
 */
export type ShutdownFunction = (status: ConnectionStatus) => unknown;

/**
 * What a route using {@linkcode connection} knows about its caller, as
 * `c.var.connection`.
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import { type Connection, connection, type ConnectionEnv } from "./connection.ts";
 * import assert from "node:assert/strict";
 *
 * async function work(conn: Connection): Promise<string> {
 *   for (let step = 0; step < 3; step++) {
 *     if (conn.signal.aborted) return "stopped";
 *     await new Promise((resolve) => setTimeout(resolve, 1));
 *   }
 *   return "done";
 * }
 *
 * const app = new Hono<ConnectionEnv>();
 * app.get("/work", connection(), async (c) => c.text(await work(c.var.connection)));
 * assert.equal(await (await app.request("/work")).text(), "done");
 * ```
 */
export interface Connection {
  /** The status bitfield; see {@linkcode ConnectionStatus}. */
  readonly status: ConnectionStatus;
  /** Whether the caller went away before the route answered. */
  readonly aborted: boolean;
  /** Whether the time limit passed while the route was working. */
  readonly timedOut: boolean;
  /**
   * Aborts when the caller goes away (unless user abort is ignored) or at the
   * time limit. Its `reason` is a `DOMException` named `AbortError` or
   * `TimeoutError`. Pass it to `fetch()` and friends, or check it between
   * steps.
   */
  readonly signal: AbortSignal;
  /** Settles with the final status once every shutdown function has run. */
  readonly finished: Promise<ConnectionStatus>;
  /**
   * Sets whether the work goes on when the caller goes away, like PHP's
   * `ignore_user_abort()`. When ignored, the status still records
   * `ABORTED`, but the signal does not abort and the shutdown functions wait
   * for the route to end. Turning it off after the caller left aborts at
   * once.
   *
   * @param value The new setting; omit it to only read the setting.
   * @returns The previous setting.
   */
  ignoreUserAbort(value?: boolean): boolean;
  /**
   * Restarts the clock with a new limit, like PHP's `set_time_limit()`.
   * At expiry the status gets `TIMEOUT`, the signal aborts with a
   * `TimeoutError`, the shutdown functions run and a caller still waiting
   * gets a `503`. Has no effect once the work is over.
   *
   * @param seconds Seconds from now; `0` means no limit.
   * @throws {RangeError} When `seconds` is negative or not finite.
   */
  setTimeLimit(seconds: number): void;
  /**
   * Registers a function to run exactly once when the route's work is over,
   * on every path: answer, throw, the caller leaving, the time limit, the end
   * of background work. Functions run in registration order with the final
   * status, each awaited; one that throws is reported and does not stop the
   * others. A function registered after the end runs at once.
   *
   * @param fn The function; it receives the final status.
   * @throws {TypeError} When `fn` is not a function.
   */
  onShutdown(fn: ShutdownFunction): void;
}

/**
 * The context variables {@linkcode connection} sets.
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import { connection, type ConnectionVariables } from "./connection.ts";
 * import assert from "node:assert/strict";
 *
 * const app = new Hono<{ Variables: ConnectionVariables & { user: string } }>();
 * app.get("/", connection(), (c) => c.text(String(c.var.connection.status)));
 * assert.equal(await (await app.request("/")).text(), "0");
 * ```
 */
export type ConnectionVariables = {
  /** The route's {@linkcode Connection}. */
  connection: Connection;
};

/**
 * The Hono environment that types `c.var.connection`:
 * `new Hono<ConnectionEnv>()`.
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import { connection, type ConnectionEnv } from "./connection.ts";
 * import assert from "node:assert/strict";
 *
 * const app = new Hono<ConnectionEnv>();
 * app.get("/", connection(), (c) => c.json({ timedOut: c.var.connection.timedOut }));
 * assert.deepEqual(await (await app.request("/")).json(), { timedOut: false });
 * ```
 */
export type ConnectionEnv = {
  /** The context variables. */
  Variables: ConnectionVariables;
};

/** Options for {@linkcode connection}. */
export interface ConnectionOptions {
  /** Whether the work goes on when the caller goes away. Default `false`. */
  ignoreUserAbort?: boolean;
  /** Seconds the route may work; `0` means no limit. Default `0`. */
  timeLimit?: number;
  /**
   * Read the body, answer `202 Accepted` at once, then run the route in the
   * background; its response is dropped. Default `false`.
   */
  ack?: boolean;
  /**
   * With `ack`, the largest body in bytes read before answering; a larger
   * one gets `413` and the route does not run. Default `Infinity`.
   */
  maxBodySize?: number;
  /**
   * Reports what would otherwise be lost: a throw of background work (with
   * `ack`) and a throw of a shutdown function. Default: `console.error`.
   * A throw of the connection's own `signal.reason` is an expected stop and
   * is not reported.
   */
  onError?: (error: unknown, c: Context) => unknown;
}

/** Options for {@linkcode drainBackground}. */
export interface DrainOptions {
  /** Stops waiting when it aborts; `drainBackground()` then resolves `false`. */
  signal?: AbortSignal;
}

/**
 * A middleware that gives the route a {@linkcode Connection} as
 * `c.var.connection`: its status, a signal, ignore-user-abort, a time limit,
 * shutdown functions and, with `ack: true`, an early `202 Accepted`.
 *
 * The route's work is over when it answers (or throws); with `ack`, when its
 * background run ends. Whatever route code still runs after the caller left
 * or the time limit passed is tracked, so {@linkcode drainBackground} waits
 * for it too.
 *
 * @param options How the connection behaves.
 * @returns The middleware.
 * @throws {RangeError} When `timeLimit` or `maxBodySize` is negative or not a number.
 * @throws {TypeError} When `onError` is not a function.
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import { connection, ConnectionStatus, type ConnectionEnv, drainBackground } from "./connection.ts";
 * import assert from "node:assert/strict";
 *
 * const app = new Hono<ConnectionEnv>();
 * const done: unknown[] = [];
 * app.post("/jobs/mail", connection({ ack: true, timeLimit: 60 }), async (c) => {
 *   const conn = c.var.connection;
 *   conn.onShutdown((status) => done.push(status));
 *   const { to } = await c.req.json();
 *   await new Promise((resolve) => setTimeout(resolve, 20)); // the slow part
 *   done.push(to);
 *   return c.body(null); // dropped: the caller already has its 202
 * });
 *
 * const response = await app.request("/jobs/mail", {
 *   method: "POST",
 *   headers: { "content-type": "application/json" },
 *   body: JSON.stringify({ to: "ada@example.com" }),
 * });
 * assert.equal(response.status, 202);
 * assert.deepEqual(done, []);
 * assert.equal(await drainBackground(), true);
 * assert.deepEqual(done, ["ada@example.com", ConnectionStatus.NORMAL]);
 * ```
 */
export function connection(
  options: ConnectionOptions = {},
): MiddlewareHandler<ConnectionEnv> {
  const {
    ignoreUserAbort = false,
    timeLimit = 0,
    ack = false,
    maxBodySize = Infinity,
    onError = reportToConsole,
  } = options;
  checkSeconds(timeLimit, "Cannot create connection() middleware: timeLimit");
  if (typeof maxBodySize !== "number" || !(maxBodySize >= 0)) {
    throw new RangeError(
      `Cannot create connection() middleware: maxBodySize must be a number >= 0, received ${
        String(maxBodySize)
      }`,
    );
  }
  if (typeof onError !== "function") {
    throw new TypeError(
      `Cannot create connection() middleware: onError must be a function, received ${typeof onError}`,
    );
  }

  return async function connection(c, next) {
    const conn = new ConnectionState(c, ignoreUserAbort, onError);
    c.set("connection", conn);
    traceConnection(conn, ack);
    conn.watchCaller(!ack);
    if (timeLimit > 0) conn.setTimeLimit(timeLimit);

    if (!ack) {
      // Settles when the route answers, or earlier when the caller leaves
      // (unless ignored) or the time limit passes.
      const route = next();
      let early: EarlyEnd | undefined;
      try {
        early = await new Promise<EarlyEnd | undefined>((resolve, reject) => {
          conn.endEarly = resolve;
          route.then(() => resolve(undefined), reject);
        });
      } finally {
        conn.unwatchCaller();
        if (early === undefined) {
          const running = conn.finish();
          if (running) await running;
        }
      }
      if (early === undefined) return;
      track(route);
      await conn.finished;
      return earlyResponse(early, conn);
    }

    let body: Uint8Array | null | EarlyEnd;
    try {
      body = await new Promise<Uint8Array | null | EarlyEnd>(
        (resolve, reject) => {
          conn.endEarly = resolve;
          readBody(c, maxBodySize).then(resolve, reject);
        },
      );
    } catch (error) {
      conn.unwatchCaller();
      if (error instanceof BodyTooLargeError) {
        await conn.finish();
        return new Response(error.message, { status: 413 });
      }
      conn.callerGone(true);
      await conn.finish();
      return earlyResponse("aborted", conn);
    }
    conn.unwatchCaller();
    if (typeof body === "string") {
      await conn.finished;
      return earlyResponse(body, conn);
    }
    conn.acknowledge();
    c.req.raw = bufferedRequest(c.req.raw, body, conn.signal);
    keepAlive(c, runInBackground(c, next, conn));
    return c.body(null, 202);
  };
}

/**
 * Waits for all background work of {@linkcode connection}: routes answered
 * early with `ack: true`, route code still running after its caller left or
 * its time limit passed, shutdown functions registered late. Work that starts
 * while waiting is waited for too. Call it on SIGTERM before
 * `server.shutdown()` so nothing in flight is lost.
 *
 * @param options A signal that stops the wait.
 * @returns `true` when everything finished, `false` when the signal aborted first.
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import { connection, drainBackground } from "./connection.ts";
 * import assert from "node:assert/strict";
 *
 * const app = new Hono();
 * let sent = 0;
 * app.post("/jobs/send", connection({ ack: true }), async () => {
 *   await new Promise((resolve) => setTimeout(resolve, 10));
 *   sent++;
 * });
 * for (let i = 0; i < 3; i++) {
 *   assert.equal((await app.request("/jobs/send", { method: "POST" })).status, 202);
 * }
 * // On SIGTERM: stop taking requests, then
 * assert.equal(await drainBackground(), true);
 * assert.equal(sent, 3);
 * ```
 */
export async function drainBackground(
  options: DrainOptions = {},
): Promise<boolean> {
  const { signal } = options;
  while (background.size > 0) {
    if (signal?.aborted) return false;
    const all = Promise.all(background);
    if (signal === undefined) {
      await all;
      continue;
    }
    const stopped = await new Promise<boolean>((resolve) => {
      const onAbort = () => resolve(true);
      signal.addEventListener("abort", onAbort, { once: true });
      all.then(() => {
        signal.removeEventListener("abort", onAbort);
        resolve(false);
      });
    });
    if (stopped) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Runtime differences, all in this section.
//
// - Deno.serve aborts `request.signal` after every successful response too
//   (legacy abort): an abort after the route answered is not a disconnect.
// - Deno.serve aborts the signal within milliseconds when a caller leaves a
//   GET or a small POST, but never while the route works once a body over
//   about 500 bytes was read; a body read after the caller left throws
//   `BadResource` and the signal stays quiet. So a failed body read means
//   ABORTED: on Deno the body methods are watched. The signal must be read
//   at once: one first read after the caller left never aborts.
// - @hono/node-server aborts the signal on client close only; bodies stay
//   readable.
// - Workers keep background work alive with `c.executionCtx.waitUntil`; the
//   getter throws where there is no execution context.
// ---------------------------------------------------------------------------

const isDeno =
  typeof (globalThis as { Deno?: { serve?: unknown } }).Deno?.serve ===
    "function";

/** Whether the request came through @hono/node-server (also under Deno's node:http). */
function isNode(c: Context): boolean {
  const env: unknown = c.env;
  return typeof env === "object" && env !== null && "incoming" in env;
}

/** Who to tell when a body read of a watched request fails. */
const bodyWatchers = new WeakMap<Request, () => void>();

/**
 * A prototype between a watched request and `Request.prototype` whose body
 * methods (those Hono's `c.req.json()`, `text()`, `parseBody()` … call)
 * report a failed read. One prototype swap per request is cheaper than a
 * copy of the request with a piped body, or own properties.
 */
let watchedPrototype: object | undefined;

/** Whether a request may have a body, without touching `request.body`. */
function hasBody(request: Request): boolean {
  return request.method !== "GET" && request.method !== "HEAD";
}

function watchBodyReads(raw: Request, onFail: () => void): void {
  watchedPrototype ??= makeWatchedPrototype();
  if (Object.getPrototypeOf(raw) !== Request.prototype) return;
  bodyWatchers.set(raw, onFail);
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
          bodyWatchers.get(this)?.();
          throw error;
        });
      },
    });
  }
  return proto;
}

/** Keeps background work alive: `waitUntil` where the platform has it, and tracked. */
function keepAlive(c: Context, work: Promise<unknown>): void {
  track(work);
  let waitUntil: ((promise: Promise<unknown>) => void) | undefined;
  try {
    const ctx = c.executionCtx as { waitUntil?: unknown } | undefined;
    if (typeof ctx?.waitUntil === "function") {
      waitUntil = ctx.waitUntil.bind(ctx) as typeof waitUntil;
    }
  } catch {
    // `c.executionCtx` throws where the runtime has none.
  }
  waitUntil?.(work);
}

// ---------------------------------------------------------------------------
// The connection state.
// ---------------------------------------------------------------------------

/** Why the work ended before the route answered. */
type EarlyEnd = "aborted" | "timeout";

const background = new Set<Promise<unknown>>();

function track(work: Promise<unknown>): void {
  const tracked: Promise<void> = work.then(noop, noop).finally(() => {
    background.delete(tracked);
  });
  background.add(tracked);
}

function noop(): void {}

function reportToConsole(error: unknown, c: Context): void {
  console.error(
    `connection(): background work failed: ${c.req.method} ${c.req.url}`,
    error,
  );
}

/** The longest time a timer can wait (2^31 - 1 ms), in seconds. */
const MAX_TIMER_SECONDS = 2_147_483;

function checkSeconds(seconds: number, what: string): void {
  if (
    typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0 ||
    seconds > MAX_TIMER_SECONDS
  ) {
    throw new RangeError(
      `${what} must be a number of seconds from 0 to ${MAX_TIMER_SECONDS}, received ${
        String(seconds)
      }`,
    );
  }
}

/**
 * One request's connection. Kept cheap for requests that end normally:
 * the controller, the `finished` promise and the shutdown run are made only
 * when used.
 */
class ConnectionState implements Connection {
  #c: Context;
  #onError: (error: unknown, c: Context) => unknown;
  #status: ConnectionStatus = ConnectionStatus.NORMAL;
  #ignore: boolean;
  #controller: AbortController | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #watched: AbortSignal | undefined;
  #answered = false;
  #over = false;
  #ran = false;
  #shutdown: ShutdownFunction[] | undefined;
  #running: Promise<void> | undefined;
  #finished: Promise<ConnectionStatus> | undefined;
  #resolveFinished: ((status: ConnectionStatus) => void) | undefined;
  /** Called when the work ends before the route answered. */
  endEarly: (why: EarlyEnd) => void = noop;
  /** The time limit in force, in seconds. */
  limit = 0;

  constructor(
    c: Context,
    ignore: boolean,
    onError: (error: unknown, c: Context) => unknown,
  ) {
    this.#c = c;
    this.#ignore = ignore;
    this.#onError = onError;
  }

  get status(): ConnectionStatus {
    return this.#status;
  }

  get aborted(): boolean {
    return (this.#status & ConnectionStatus.ABORTED) !== 0;
  }

  get timedOut(): boolean {
    return (this.#status & ConnectionStatus.TIMEOUT) !== 0;
  }

  get signal(): AbortSignal {
    return (this.#controller ??= new AbortController()).signal;
  }

  get finished(): Promise<ConnectionStatus> {
    if (this.#finished === undefined) {
      this.#finished = this.#ran
        ? Promise.resolve(this.#status)
        : new Promise((resolve) => this.#resolveFinished = resolve);
    }
    return this.#finished;
  }

  ignoreUserAbort(value?: boolean): boolean {
    const previous = this.#ignore;
    if (value !== undefined) {
      this.#ignore = Boolean(value);
      if (!this.#ignore && this.aborted) this.#stop("aborted");
    }
    return previous;
  }

  setTimeLimit(seconds: number): void {
    checkSeconds(seconds, "Cannot set time limit: seconds");
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.limit = seconds;
    if (this.#over || seconds === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#over) return;
      this.#status |= ConnectionStatus.TIMEOUT;
      this.#stop("timeout");
    }, seconds * 1000);
  }

  onShutdown(fn: ShutdownFunction): void {
    if (typeof fn !== "function") {
      throw new TypeError(
        `Cannot register shutdown function: expected a function, received ${typeof fn}`,
      );
    }
    if (this.#ran) track(this.#call(fn));
    else (this.#shutdown ??= []).push(fn);
  }

  /** Starts watching the caller; `body`: also watch body reads (Deno). */
  watchCaller(body: boolean): void {
    const raw = this.#c.req.raw;
    const signal = raw.signal;
    if (signal.aborted) this.callerGone();
    else {
      signal.addEventListener("abort", this, { once: true });
      this.#watched = signal;
    }
    // Not `raw.body !== null`: on Deno that getter builds a stream and
    // loses the fast path of `text()` and friends.
    if (body && isDeno && hasBody(raw) && !isNode(this.#c)) {
      watchBodyReads(raw, () => this.callerGone(true));
    }
  }

  unwatchCaller(): void {
    this.#watched?.removeEventListener("abort", this);
    this.#watched = undefined;
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    this.callerGone();
  }

  /** The caller went away; `force` when a body read failed. */
  callerGone(force = false): void {
    if (this.#over || (this.#answered && !force)) return;
    this.#status |= ConnectionStatus.ABORTED;
    if (!this.#ignore) this.#stop("aborted");
  }

  /** The caller has its answer (the early 202): leaving is no abort now. */
  acknowledge(): void {
    this.#answered = true;
  }

  #stop(why: EarlyEnd): void {
    if (this.#over) return;
    (this.#controller ??= new AbortController()).abort(
      why === "timeout"
        ? new DOMException(
          `The route ran past its time limit of ${this.limit} s`,
          "TimeoutError",
        )
        : new DOMException(
          "The caller closed the connection before the route answered",
          "AbortError",
        ),
    );
    this.endEarly(why);
    this.finish();
  }

  /**
   * Ends the work: runs every shutdown function once, in order. Returns
   * nothing when there was nothing to run.
   */
  finish(): Promise<void> | undefined {
    if (this.#over) return this.#running;
    this.#over = true;
    this.#answered = true;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#shutdown === undefined) {
      this.#done();
      return undefined;
    }
    this.#running = this.#runShutdown(this.#shutdown);
    return this.#running;
  }

  async #runShutdown(fns: ShutdownFunction[]): Promise<void> {
    for (let i = 0; i < fns.length; i++) await this.#call(fns[i]);
    this.#done();
  }

  #done(): void {
    this.#ran = true;
    this.#shutdown = undefined;
    this.#resolveFinished?.(this.#status);
  }

  async #call(fn: ShutdownFunction): Promise<void> {
    try {
      await fn(this.#status);
    } catch (error) {
      await this.report(error);
    }
  }

  /** Hands an error to `onError`; a throw of `onError` itself is logged. */
  async report(error: unknown): Promise<void> {
    try {
      await this.#onError(error, this.#c);
    } catch (failure) {
      console.error("connection(): onError threw", failure);
    }
  }
}

async function runInBackground(
  c: Context,
  next: () => Promise<void>,
  conn: ConnectionState,
): Promise<void> {
  try {
    // Start after the 202 has left the middleware chain: the route shares
    // the Context, and Hono writes a throw's error answer to `c.res` even
    // when the response is final, so a route failing at once would turn
    // the 202 into a 500.
    await new Promise((resolve) => setTimeout(resolve, 0));
    await next();
    // Hono turns a route's throw into its onError answer and keeps the error.
    if (c.error !== undefined && c.error !== conn.signal.reason) {
      await conn.report(c.error);
    }
  } catch (error) {
    if (error !== conn.signal.reason) await conn.report(error);
  }
  await conn.finish();
}

function earlyResponse(why: EarlyEnd, conn: ConnectionState): Response {
  if (why === "timeout") {
    return new Response(
      `Time limit exceeded: the route ran past ${conn.limit} s\n`,
      { status: 503, headers: { "content-type": "text/plain; charset=UTF-8" } },
    );
  }
  // Nobody reads it: the caller is gone. 499 as nginx logs it.
  return new Response(null, { status: 499 });
}

class BodyTooLargeError extends RangeError {
  constructor(limit: number) {
    super(`Request body exceeds ${limit} bytes\n`);
    this.name = "BodyTooLargeError";
  }
}

/** Reads the whole body, at most `limit` bytes; `null` when there is none. */
async function readBody(
  c: Context,
  limit: number,
): Promise<Uint8Array | null> {
  const raw = c.req.raw;
  if (!hasBody(raw)) return null;
  if (raw.bodyUsed) {
    // An earlier middleware read it: Hono caches it.
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    if (bytes.byteLength > limit) throw new BodyTooLargeError(limit);
    return bytes;
  }
  if (Number(raw.headers.get("content-length")) > limit) {
    throw new BodyTooLargeError(limit);
  }
  if (limit === Infinity) return new Uint8Array(await raw.arrayBuffer());
  if (raw.body === null) return null;
  const reader = raw.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(noop);
      throw new BodyTooLargeError(limit);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/** A copy of `raw` with its body in memory and the connection's signal. */
function bufferedRequest(
  raw: Request,
  body: Uint8Array | null,
  signal: AbortSignal,
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
