/**
 * {@linkcode connection}: PHP's connection handling as a Hono middleware.
 * Its types are in `connection_types.ts`, the per-request state in
 * `_state.ts`, the runtime differences in `_runtime.ts`, the background
 * registry in `_background.ts` (waited for by `drainBackground()`).
 *
 * @module
 */
import { ByteBudget } from "../_byte_budget.ts";
import {
  dropErrorAnswers,
  earlierHeaders,
  respond,
  withEarlierHeaders,
} from "./_respond.ts";
import type { Middleware, MiddlewareContext } from "./context.ts";
import {
  type ConnectionOptions,
  ConnectionStatus,
} from "./connection_types.ts";
import { keepAlive } from "./_background.ts";
import {
  type BodyRead,
  bufferedRequest,
  DEFAULT_BODY_TIMEOUT,
  DEFAULT_MAX_BUFFERED_BYTES,
  readBody,
  type ReadLimits,
  refuseBody,
} from "./_body.ts";
import {
  checkBodyTimeout,
  checkBoolean,
  checkBudget,
  checkBytes,
  checkFunction,
} from "./_check.ts";
import {
  checkMs,
  checkOptions,
  DEFAULT_MAX_BODY_SIZE,
  refuseOnError,
} from "../_options.ts";
import { consoleReporter } from "./_report.ts";
import { type ConnectionTrace, traceConnection } from "./_trace.ts";
import { setRunning } from "./_running.ts";
import { callerLeftReading, signalByGetterOnly } from "./_runtime.ts";
import { ConnectionState, type EarlyEnd, earlyResponse } from "./_state.ts";

const PREFIX = "Cannot create connection() middleware: ";

/**
 * A middleware that gives the route a `Connection` as `c.var.connection`:
 * its status, a signal, ignore-user-abort, a time limit, shutdown functions
 * and, with `ack: true`, an early `202 Accepted`. Type the app with
 * `ConnectionEnv` (`new Hono<ConnectionEnv>()`) for `c.var.connection`.
 *
 * The route's work is over when it answers (or throws); with `ack`, when its
 * background run ends. Whatever route code still runs after the caller left
 * or the time limit passed is tracked, so `drainBackground()` waits for it
 * too. Once the time limit has passed, a caller still waiting gets `503`,
 * whatever the route does next: answers `200`, throws the signal's
 * `TimeoutError`, or ignores the signal and goes on.
 *
 * @param options How the connection behaves.
 * @returns The middleware.
 * @throws {RangeError} When `timeLimit`, `maxBodySize`, `bodyTimeout` or
 *   `maxBufferedBytes` is out of range, or `maxBodySize` exceeds
 *   `maxBufferedBytes`.
 * @throws {TypeError} When `options` is not an object, `ignoreUserAbort` or
 *   `ack` is not a boolean, or `reportError` is not a function.
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import { connection, ConnectionStatus, type ConnectionEnv, drainBackground } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const app = new Hono<ConnectionEnv>();
 * const done: unknown[] = [];
 * app.post("/jobs/mail", connection({ ack: true, timeLimit: 60_000 }), async (c) => {
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
 *
 * @example A time limit: the caller gets 503
 * ```ts
 * import { Hono } from "hono";
 * import { connection, type ConnectionEnv, drainBackground } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const app = new Hono<ConnectionEnv>();
 * app.get("/report", connection({ timeLimit: 20 }), async (c) => {
 *   await new Promise((resolve) => setTimeout(resolve, 100)); // ignores the signal
 *   return c.text("done"); // too late: nobody gets this
 * });
 * const response = await app.request("/report");
 * assert.equal(response.status, 503);
 * assert.equal(await drainBackground(), true);
 * ```
 */
export function connection(options: ConnectionOptions = {}): Middleware {
  checkOptions(options, PREFIX);
  refuseOnError(options, PREFIX);
  const {
    ignoreUserAbort = false,
    timeLimit = 0,
    ack = false,
    maxBodySize = DEFAULT_MAX_BODY_SIZE,
    bodyTimeout = DEFAULT_BODY_TIMEOUT,
    maxBufferedBytes = DEFAULT_MAX_BUFFERED_BYTES,
    reportError = consoleReporter("connection(): background work failed"),
  } = options;
  checkBoolean(ignoreUserAbort, `${PREFIX}ignoreUserAbort`);
  checkBoolean(ack, `${PREFIX}ack`);
  checkMs(timeLimit, `${PREFIX}timeLimit`);
  checkBytes(maxBodySize, `${PREFIX}maxBodySize`);
  checkBodyTimeout(bodyTimeout, `${PREFIX}bodyTimeout`);
  checkBytes(maxBufferedBytes, `${PREFIX}maxBufferedBytes`);
  checkBudget(maxBodySize, maxBufferedBytes, PREFIX);
  checkFunction(reportError, `${PREFIX}reportError`);
  // The bytes of bodies being read before the 202, across requests.
  const budget = new ByteBudget(maxBufferedBytes);

  const limits: ReadLimits = { maxBodySize, timeout: bodyTimeout, budget };

  // Not async itself: one promise less per request on the inline path.
  return function connection(c, next) {
    const conn = new ConnectionState(c, ignoreUserAbort, reportError);
    c.set("connection", conn);
    // Nothing to acknowledge without a route after this middleware (a path
    // or method no route matches): run inline, and Hono answers 404. A 202
    // said a job was accepted that nothing ran (verifyTrigger() in front
    // took the id for done).
    const acked = ack && handlerFollows(c);
    const trace = traceConnection(conn, acked);
    conn.watchCaller(!acked);
    if (timeLimit > 0) conn.setTimeLimit(timeLimit);
    if (acked) return runAcked(c, next, conn, limits, trace);
    const earlier = earlierHeaders(c);
    const route = next();
    return runInline(c, route, conn, earlier, trace?.early);
  };
}

/**
 * Whether a route handler, not only middleware, was matched after the one
 * running: told as Hono tells them apart (its `showRoutes()`), by the
 * handler a sub-app with its own error handler wraps, which is middleware
 * if it takes `next`. Unknown (no `matchedRoutes`): assumed.
 */
function handlerFollows(c: MiddlewareContext): boolean {
  // `matchedRoutes` is deprecated in Hono 4.13 (for hono/route's helper,
  // a value import this module does not take): gone in a later Hono, every
  // request is acknowledged as before; tests/hono/ack_no_route_test.ts fails
  // then.
  const { matchedRoutes, routeIndex } = c.req as {
    matchedRoutes?: unknown;
    routeIndex?: unknown;
  };
  if (!Array.isArray(matchedRoutes) || typeof routeIndex !== "number") {
    return true;
  }
  for (let i = routeIndex + 1; i < matchedRoutes.length; i++) {
    let handler = (matchedRoutes[i] as { handler?: unknown } | undefined)
      ?.handler;
    for (let depth = 0; depth < 8; depth++) {
      const inner = (handler as Record<string, unknown> | undefined)
        ?.[COMPOSED_HANDLER];
      if (typeof inner !== "function") break;
      handler = inner;
    }
    if (typeof handler === "function" && handler.length < 2) return true;
  }
  return false;
}

/** Where Hono keeps the handler a sub-app's error handler wraps. */
const COMPOSED_HANDLER = "__COMPOSED_HANDLER";

/** How long a body shorter than its Content-Length waits for its caller's
 * departure to show (Deno.serve over HTTP/2: 0–5 ms, docs/receiving.md). */
const SHORT_WAIT = 100;

/** Whether `body` is shorter than the length `raw` declared. */
function cameShort(raw: Request, body: Uint8Array | null): boolean {
  // No body read (a GET, a HEAD): nothing came short.
  if (body === null) return false;
  const declared = raw.headers.get("content-length");
  return declared !== null && /^\d+$/.test(declared) &&
    body.byteLength < Number(declared);
}

/**
 * Reads the body, answers 202 and runs the route in the background; or
 * refuses the body, or ends early.
 */
async function runAcked(
  c: MiddlewareContext,
  next: () => Promise<void>,
  conn: ConnectionState,
  limits: ReadLimits,
  trace: ConnectionTrace | undefined,
): Promise<Response> {
  // What earlier middleware set with `c.header()` (CORS, cookies…) goes on
  // every answer made here, as on the inline path: a bare Response made
  // here carried none of them (Hono applies them only to its own).
  const earlier = earlierHeaders(c);
  // The connection's signal aborts when connection() answers early (the
  // time limit, the caller gone), and then only: that stops the read. One
  // that outlived the answer (no bodyTimeout, a caller that went quiet)
  // held its bytes against the budget for good.
  const reading = readBody(c, limits, conn.signal);
  let read: BodyRead | EarlyEnd;
  try {
    read = await new Promise<BodyRead | EarlyEnd>((resolve, reject) => {
      conn.onEarlyEnd(resolve);
      reading.then(resolve, reject);
    });
  } catch (error) {
    // The read threw (an earlier middleware locked the body's stream): the
    // route does not run, but the connection ends as on every other path
    // (time limit cleared, shutdown functions run, `finished` settled);
    // then Hono's error handler answers.
    conn.unwatchCaller();
    await conn.finish();
    throw error;
  }
  if (
    typeof read !== "string" && read.ok && read.streamed &&
    cameShort(c.req.raw, read.body)
  ) {
    // Fewer bytes than the Content-Length, yet a read that ended well:
    // Deno.serve over HTTP/2 hands on what came before a caller's cancel
    // (END_STREAM, then RST_STREAM), and aborts the request's signal a few
    // ms later. Wait for that evidence (a middleware's body with a stale
    // length shows none: it runs on, SHORT_WAIT ms later).
    const end = await new Promise<EarlyEnd | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), SHORT_WAIT);
      conn.onEarlyEnd((why) => {
        clearTimeout(timer);
        resolve(why);
      });
    });
    if (end !== undefined) {
      read.release();
      read = end;
    } else if ((conn.status & ConnectionStatus.ABORTED) !== 0) {
      // Gone while ignoring aborts (no early end): as a read that failed.
      read.release();
      read = { ok: false, failure: "failed" };
    }
  }
  conn.unwatchCaller();
  if (typeof read === "string") {
    // Ended before the body was in: the read stopped (the signal), its
    // bytes left the budget. No route ran.
    reading.then((late) => late.ok && late.release(), noop);
    await conn.finish();
    return answer(c, earlyResponse(read, conn.passedLimit), earlier);
  }
  if (!read.ok) {
    if (read.failure !== "failed") {
      // 413, 408, or 503 + Retry-After: the route does not run.
      await conn.finish();
      return answer(
        c,
        refuseBody(read.failure, limits.maxBodySize, limits.timeout ?? 0),
        earlier,
      );
    }
    if (
      (conn.status & ConnectionStatus.ABORTED) === 0 &&
      !callerLeftReading(c, read.error)
    ) {
      // No caller's leaving (a middleware's stream that errored): the route
      // does not run, the connection ends, and what failed goes to Hono's
      // error handling, as the route's own read would have (a middleware
      // around may answer it: Hono 4.7's bodyLimit its 413 over its size).
      // It was a 499.
      await conn.finish();
      throw read.error ?? new TypeError("The request body could not be read");
    }
    // A failed read: the caller left.
    conn.callerGone(true);
    await conn.finish();
    return answer(c, earlyResponse("aborted", conn.passedLimit), earlier);
  }
  let copy: Request;
  try {
    copy = bufferedRequest(
      c.req.raw,
      read.body,
      conn.signal,
      signalByGetterOnly(c),
    );
  } catch (error) {
    // A method no Request may be made with (Deno.serve hands `TRACE` on):
    // the route does not run, the body leaves the budget and the connection
    // ends; then Hono's error handler answers.
    read.release();
    await conn.finish();
    throw error;
  }
  conn.acknowledge();
  c.req.raw = copy;
  // Made now, before the route can run and set its own headers.
  const accepted = answer(c, new Response(null, { status: 202 }), earlier);
  // From the 202 on, what Hono writes for a throw is kept off the Context
  // until the route is over: a middleware around may still run (one that
  // awaits after `next()`), and would return that 500 instead.
  const before = c.error;
  const undo = dropErrorAnswers(c);
  // The body stays held (and counted) until the background run is over:
  // a flood of acknowledged jobs gets 503 + Retry-After, not unbounded memory.
  // In the background span's context (where one is traced): what the
  // route traces after the 202 is its child, not the ended server span's.
  const run = () => runInBackground(c, next, conn, before, trace);
  keepAlive(
    c,
    (trace ? trace.within(run) : run()).finally(() => {
      undo();
      read.release();
    }),
    (error) => conn.report(error),
  );
  return accepted;
}

/**
 * Waits for the route while the caller waits: `conn.race(route)` settles
 * when the route answers, or earlier when the caller leaves (unless ignored)
 * or the time limit passes.
 */
async function runInline(
  c: MiddlewareContext,
  route: Promise<void>,
  conn: ConnectionState,
  earlier: Response,
  traceEarly: ((status: number) => void) | undefined,
): Promise<Response | void> {
  let early: EarlyEnd | undefined;
  let failed = false;
  let thrown: unknown;
  try {
    early = await conn.race(route);
  } catch (error) {
    // What Hono rethrows: a throw that is no Error.
    failed = true;
    thrown = error;
  } finally {
    conn.unwatchCaller();
    if (early === undefined) {
      const running = conn.finish();
      if (running) await running;
    }
  }
  if (failed) {
    if (!conn.timedOut) throw thrown;
    // Past its limit first: the caller gets the 503, as after an Error
    // (Hono's onError answers that one); the throw goes to reportError,
    // which the answer does not wait for.
    keepAlive(c, conn.report(thrown), (error) => conn.report(error));
  }
  // A route that held the event loop past its limit: timed out all the same.
  if (early === undefined && conn.timedOut) early = "timeout";
  if (early === undefined) return;
  // The server span ends with this answer: its status now.
  traceEarly?.(conn.status);
  // The caller is answered now; the route runs on until it stops at the
  // signal, and the shutdown functions run once it has.
  // A throw that is no Error is not Hono's to answer: it comes back here,
  // where nothing else would see it (an Error goes to Hono's onError). One
  // that came before the early end was reported above.
  const over = route.then(noop, (error) => {
    if (!failed && !conn.isOwnStop(error)) return conn.report(error);
  }).then(() => conn.finish());
  keepAlive(c, over, (error) => conn.report(error));
  // For verifyTrigger() in front: the id stays claimed until the run ends.
  setRunning(c, over);
  // Set, not only returned: the route may have answered (or Hono's error
  // handler for it) since the end; Hono would keep that answer.
  const response = answer(c, earlyResponse(early, conn.passedLimit), earlier);
  // And while the route runs on, a throw of it does not replace this answer
  // for a middleware around that is still running (as with `ack`).
  const undo = dropErrorAnswers(c);
  route.then(undo, undo);
  return response;
}

/**
 * Makes `response` the answer, whatever the route set on the context, with
 * the headers of `earlier` (taken before the route ran: an early answer
 * keeps them, not the route's; but its content type and length) that its
 * own do not replace.
 */
function answer(
  c: MiddlewareContext,
  response: Response,
  earlier: Response,
): Response {
  // No header merge with the route's.
  return respond(c, withEarlierHeaders(response, earlier));
}

/** Runs the route after the 202; `before`: the Context's error then. */
async function runInBackground(
  c: MiddlewareContext,
  next: () => Promise<void>,
  conn: ConnectionState,
  before: Error | undefined,
  trace: ConnectionTrace | undefined,
): Promise<void> {
  try {
    // Start after the 202 has left the middleware chain: the route shares
    // the Context, and Hono writes a throw's error answer to `c.res` even
    // when the response is final (kept off it now, see runAcked).
    await new Promise((resolve) => setTimeout(resolve, 0));
    await next();
    // Hono turns a route's throw into its error answer and keeps the error.
    // (One set before the 202 is not the route's. One a middleware around
    // threw since cannot be told apart: Hono keeps one error per Context.)
    if (
      c.error !== undefined && c.error !== before && !conn.isOwnStop(c.error)
    ) {
      trace?.failed(c.error);
      await conn.report(c.error);
    }
  } catch (error) {
    if (!conn.isOwnStop(error)) {
      trace?.failed(error);
      await conn.report(error);
    }
  }
  await conn.finish();
}

function noop(): void {}
