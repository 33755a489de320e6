/**
 * The types of `connection()`: the status bits, the
 * {@linkcode Connection} a route gets as `c.var.connection`, its options.
 *
 * @module
 */
import type { MiddlewareContext } from "./context.ts";

/**
 * The bits of {@linkcode Connection.status}, as PHP's `connection_status()`
 * reports them: `NORMAL` 0, `ABORTED` 1 (the caller went away before the
 * route answered), `TIMEOUT` 2 (the time limit passed while the route was
 * working). Both bits are set (3) when a route that ignores user abort then
 * runs out of time.
 *
 * @example Usage
 * ```ts
 * import { ConnectionStatus } from "./mod.ts";
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
 * import { ConnectionStatus } from "./mod.ts";
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
 * import type { ShutdownFunction } from "./mod.ts";
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
 * What a route using `connection()` knows about its caller, as
 * `c.var.connection`.
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import { type Connection, connection, type ConnectionEnv } from "./mod.ts";
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
   * steps. A route may let the reason propagate: it is an expected stop,
   * not a failure — it carries a `getResponse()` (the `503` or `499`), so
   * Hono's default error handler answers with it instead of logging it,
   * and `reportError` never sees it.
   */
  readonly signal: AbortSignal;
  /** Settles with the final status once every shutdown function has run:
   * after the route has ended (one that never ends never settles it). */
  readonly finished: Promise<ConnectionStatus>;
  /**
   * Sets whether the work goes on when the caller goes away, like PHP's
   * `ignore_user_abort()`. When ignored, the status still records
   * `ABORTED`, but the signal does not abort and a caller still waiting
   * gets the route's own answer. Turning it off after the caller left aborts
   * at once.
   *
   * @param value The new setting; omit it (or pass `undefined`) to only
   *   read the setting.
   * @returns The previous setting.
   * @throws {TypeError} When `value` is neither a boolean nor `undefined`.
   */
  ignoreUserAbort(value?: boolean): boolean;
  /**
   * Restarts the clock with a new limit, like PHP's `set_time_limit()`,
   * in wall-clock time (PHP counts CPU time). At expiry the status gets
   * `TIMEOUT`, a caller still waiting gets a `503` and the signal aborts
   * with a `TimeoutError`; the shutdown functions run once the route has
   * ended. The limit acts at the route's `await`s: a route that holds the
   * event loop past it has timed out when it returns, or when it calls this
   * (the new clock starts, the overrun stays). Has no effect once the work
   * is over.
   *
   * @param ms Milliseconds from now; `0` means no limit.
   * @throws {RangeError} When `ms` is negative, not finite or past what a
   *   timer can wait (2^31 - 1).
   */
  setTimeLimit(ms: number): void;
  /**
   * Registers a function to run exactly once when the route's work is over,
   * on every path: answer, throw, the caller leaving, the time limit, the end
   * of background work. After the caller left or the limit passed, that is
   * once the route has ended (it stops at the signal, or runs on): never
   * beside it, as PHP runs them after the script's last statement (a route
   * that never ends never runs them). With a streamed response, when the
   * route returns its `Response`. Functions run in registration order with
   * the final status, each awaited; one that throws is reported and does not
   * stop the others. A function registered after the end runs at once.
   *
   * @param fn The function; it receives the final status.
   * @throws {TypeError} When `fn` is not a function.
   */
  onShutdown(fn: ShutdownFunction): void;
}

/**
 * The context variables `connection()` sets.
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import { connection, type ConnectionVariables } from "./mod.ts";
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
 * import { connection, type ConnectionEnv } from "./mod.ts";
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

/** Options for `connection()`. */
export interface ConnectionOptions {
  /**
   * Whether the work goes on when the caller goes away. A boolean (a
   * TypeError otherwise).
   *
   * @default {false}
   */
  ignoreUserAbort?: boolean;
  /**
   * Milliseconds the route may work; `0` means no limit. At the limit the
   * signal aborts with a `TimeoutError` and a caller still waiting gets
   * `503`, whatever the route does next.
   *
   * @default {0}
   */
  timeLimit?: number;
  /**
   * Read the body, answer `202 Accepted` at once, then run the route in the
   * background; its response is dropped. The body stays counted against
   * `maxBufferedBytes` until the route's run ends, however long it hangs.
   * Only when a route handler follows (told from middleware as Hono does:
   * one that takes no `next`): mounted by `app.use()`, a request no route
   * matches runs inline and gets Hono's 404; a route written
   * `(c, next) =>` or an `app.mount()` runs inline too, with its own answer.
   * A boolean (a TypeError otherwise).
   *
   * @default {false}
   */
  ack?: boolean;
  /**
   * With `ack`, the largest body in bytes read before answering; a larger
   * one gets `413` and the route does not run. A whole number >= 0, or
   * `Infinity` for no limit.
   *
   * @default {1_048_576}
   */
  maxBodySize?: number;
  /**
   * With `ack`, milliseconds the whole body may take to arrive; slower
   * gets `408`, what was read of it is let go and the route does not run.
   * (Closing the socket is the server's: `Deno.serve` kept it open 5 s
   * after the 408 as measured, the client silent.) `0` means no limit;
   * otherwise at least 1 000 (a value left in seconds is refused).
   *
   * @default {10_000}
   */
  bodyTimeout?: number;
  /**
   * With `ack`, the most body bytes this middleware holds at once across
   * requests: from the read before the `202` until the background run is
   * over. Past it a request gets `503` with `Retry-After` and is not read,
   * so a flood of acknowledged jobs cannot grow memory without bound. Must
   * be at least `maxBodySize`. A route that hangs keeps its body counted
   * for as long as it runs (one that never settles, or ignores the
   * connection's signal past `timeLimit`: the run ends when the route
   * does); enough of them and every request gets `503`. Set `timeLimit` and
   * stop at `c.var.connection.signal`. A whole number >= 0, or `Infinity`
   * for no limit.
   *
   * @default {16_777_216}
   */
  maxBufferedBytes?: number;
  /**
   * Reports what no caller will see: a throw of background work (with
   * `ack`; Hono's error handler sees it first, as any route's throw, and
   * its default prints it too) and a throw of a shutdown function. A throw
   * of the connection's own `signal.reason` is an expected stop and is not
   * reported. Also a platform's `waitUntil` that threw (the background work
   * runs on, but may be cut once the answer is sent). (Not Hono's `app.onError`, which makes the error answer:
   * nobody waits for this one.)
   *
   * @default {console.error}
   */
  reportError?: (error: unknown, c: MiddlewareContext) => unknown;
}
