// One request's connection state: status, signal, time limit, shutdown
// functions. Kept cheap for requests that end normally: the controller,
// the `finished` promise and the shutdown run are made only when used.
import type { MiddlewareContext } from "./context.ts";
import {
  type Connection,
  ConnectionStatus,
  type ShutdownFunction,
} from "./connection_types.ts";
import { keepAlive } from "./_background.ts";
import { checkMs } from "../_options.ts";
import { checkBoolean } from "./_check.ts";
import { report, type Reporter } from "./_report.ts";
import { type BodyWatcher, watchBodyReads } from "./_runtime.ts";

/** Why the work ended before the route answered. */
export type EarlyEnd = "aborted" | "timeout";

const TEXT = { "content-type": "text/plain; charset=UTF-8" };

/** The answer to a caller still waiting when the work ended early. */
export function earlyResponse(why: EarlyEnd, limit: number): Response {
  if (why === "timeout") {
    return new Response(
      `Time limit exceeded: the route ran past ${limit} ms\n`,
      { status: 503, headers: TEXT },
    );
  }
  // Nobody reads it: the caller is gone. 499 as nginx logs it.
  return new Response(null, { status: 499 });
}

/**
 * The signal's reason: a `DOMException` named `TimeoutError` or
 * `AbortError`, with the `getResponse()` Hono's default error handler
 * answers with (and does not log) when a route lets it propagate.
 */
function stopReason(why: EarlyEnd, limit: number): DOMException {
  const reason = why === "timeout"
    ? new DOMException(
      `The route ran past its time limit of ${limit} ms`,
      "TimeoutError",
    )
    : new DOMException(
      "The caller closed the connection before the route answered",
      "AbortError",
    );
  Object.defineProperty(reason, "getResponse", {
    value: () => earlyResponse(why, limit),
  });
  return reason;
}

export class ConnectionState implements Connection, BodyWatcher {
  #c: MiddlewareContext;
  #reportError: Reporter;
  #status: ConnectionStatus = ConnectionStatus.NORMAL;
  #ignore: boolean;
  #controller: AbortController | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the time limit in force runs out (`performance.now()` ms). */
  #deadline = 0;
  #watched: AbortSignal | undefined;
  #answered = false;
  /** Answered early (499, 503): what reads fail from then on is no sign of
   * the caller (Deno.serve closes the request's body with the answer). */
  #stopped = false;
  #over = false;
  #ran = false;
  #shutdown: ShutdownFunction[] | undefined;
  #running: Promise<void> | undefined;
  #finished: Promise<ConnectionStatus> | undefined;
  #resolveFinished: ((status: ConnectionStatus) => void) | undefined;
  /** Called when the work ends before the route answered. */
  endEarly: (why: EarlyEnd) => void = noop;
  /** Why the work ended early, once it has. */
  #early: EarlyEnd | undefined;
  /** The time limit in force, in milliseconds. */
  limit = 0;
  /** The time limit that ran out, once one has (a later setTimeLimit()
   * changes `limit`, not this). */
  #passed: number | undefined;

  constructor(c: MiddlewareContext, ignore: boolean, reportError: Reporter) {
    this.#c = c;
    this.#ignore = ignore;
    this.#reportError = reportError;
  }

  get status(): ConnectionStatus {
    return this.#status;
  }

  get aborted(): boolean {
    return (this.#status & ConnectionStatus.ABORTED) !== 0;
  }

  /** The limit the early answer names: the one that ran out, if one has. */
  get passedLimit(): number {
    return this.#passed ?? this.limit;
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
      checkBoolean(value, "Cannot set ignoreUserAbort: value");
      this.#ignore = value;
      if (!this.#ignore && this.aborted) this.#stop("aborted");
    }
    return previous;
  }

  setTimeLimit(ms: number): void {
    checkMs(ms, "Cannot set time limit: ms");
    if (this.#over) return;
    // A limit that ran out while the event loop was held has timed out:
    // a new one starts a new clock, and does not erase the overrun (PHP
    // kills the script at the limit). The 503 names the limit passed.
    this.#overrun();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.limit = ms;
    if (ms === 0) return;
    this.#deadline = performance.now() + ms;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#over) return;
      this.#status |= ConnectionStatus.TIMEOUT;
      this.#stop("timeout");
    }, ms);
  }

  onShutdown(fn: ShutdownFunction): void {
    if (typeof fn !== "function") {
      throw new TypeError(
        `Cannot register shutdown function: expected a function, received ${typeof fn}`,
      );
    }
    if (this.#ran) {
      keepAlive(this.#c, this.#call(fn), (error) => this.report(error));
    } else (this.#shutdown ??= []).push(fn);
  }

  /**
   * Settles with undefined when the route ends, or with an
   * {@linkcode EarlyEnd} when the work ends first; rejects when the route
   * does. (Not with the route's own value: a `next` of a wrapper may
   * resolve with anything, a string too.)
   */
  race(route: Promise<unknown>): Promise<EarlyEnd | undefined> {
    return new Promise((resolve, reject) => {
      this.onEarlyEnd(resolve);
      route.then(() => resolve(undefined), reject);
    });
  }

  /**
   * Makes `end` what is called when the work ends before the route
   * answered; called at once when it already has (the caller left before
   * connection() ran: an earlier middleware awaited, and the signal was
   * aborted when first looked at).
   */
  onEarlyEnd(end: (why: EarlyEnd) => void): void {
    this.endEarly = end;
    if (this.#early !== undefined) end(this.#early);
  }

  /** Starts watching the caller; `body`: also watch body reads (Deno). */
  watchCaller(body: boolean): void {
    const signal = this.#c.req.raw.signal;
    if (signal.aborted) this.callerGone();
    else {
      signal.addEventListener("abort", this, { once: true });
      this.#watched = signal;
    }
    if (body) watchBodyReads(this.#c, this);
  }

  unwatchCaller(): void {
    this.#watched?.removeEventListener("abort", this);
    this.#watched = undefined;
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    this.callerGone();
  }

  /** A watched body read failed: the caller is gone. */
  bodyReadFailed(): void {
    this.callerGone(true);
  }

  /** The caller went away; `force` when a body read failed. */
  callerGone(force = false): void {
    if (this.#over || this.#stopped || (this.#answered && !force)) return;
    this.#status |= ConnectionStatus.ABORTED;
    if (!this.#ignore) this.#stop("aborted");
  }

  /** The caller has its answer (the early 202): leaving is no abort now. */
  acknowledge(): void {
    this.#answered = true;
  }

  /** Whether `error` is this connection's own stop (not a failure). */
  isOwnStop(error: unknown): boolean {
    return this.#controller !== undefined && error !== undefined &&
      error === this.#controller.signal.reason;
  }

  /** The work is to stop: the waiting caller's answer is decided, then the
   * signal aborts. The shutdown functions wait for the route to end (as
   * PHP's run after the script's last statement): see `finish()`. The
   * limit's timer goes on, so a caller gone then the limit gives both. */
  #stop(why: EarlyEnd): void {
    if (this.#over) return;
    if (why === "timeout") this.#passed ??= this.limit;
    this.#stopped = true;
    this.#early ??= why;
    // The waiting caller's answer is decided before the route hears of it.
    this.endEarly(why);
    const controller = this.#controller ??= new AbortController();
    if (!controller.signal.aborted) {
      controller.abort(stopReason(why, this.limit));
    }
  }

  /**
   * Ends the work once the route has: runs every shutdown function once, in
   * order. Returns nothing when there was nothing to run. A route that held
   * the event loop past its time limit (synchronous work: the timer could
   * not fire) has timed out: `TIMEOUT`, the signal aborted, `timedOut`.
   */
  finish(): Promise<void> | undefined {
    if (this.#over) return this.#running;
    this.#overrun();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#over = true;
    this.#answered = true;
    if (this.#shutdown === undefined) {
      this.#done();
      return undefined;
    }
    this.#running = this.#runShutdown(this.#shutdown);
    return this.#running;
  }

  /** The time limit in force has run out, its timer not yet fired (the
   * event loop was held): timed out now. */
  #overrun(): void {
    if (this.#timer !== undefined && performance.now() >= this.#deadline) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#status |= ConnectionStatus.TIMEOUT;
      this.#stop("timeout");
    }
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

  /** Hands an error to `reportError`. */
  report(error: unknown): Promise<void> {
    return report(this.#reportError, error, this.#c, "connection()");
  }
}

function noop(): void {}
