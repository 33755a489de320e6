// Every trigger still in its background part, for shutdown: one call waits
// for them, and a process that exits anyway says how many it cut short.
import { onProcessExit } from "../_exit.ts";
import { checkMs, checkOptions, checkSignal } from "../_options.ts";

// A count, not a set of promises: a set entry and a promise reaction per
// trigger measured 2–3 µs; the count costs nothing measurable.
let inFlight = 0;
let waiters: Array<() => void> = [];
let watchingExit = false;

/** Counts a trigger as in flight until {@linkcode triggerEnded}. */
export function triggerStarted(): void {
  inFlight++;
  if (!watchingExit) {
    watchingExit = true;
    onProcessExit((writeError) => {
      if (inFlight === 0) return;
      writeError(
        `fire-trigger: the process exited with ${inFlight} trigger${
          inFlight === 1 ? "" : "s"
        } still in flight, cut short (a request not yet answered may not have arrived; await drainTriggers() before exiting)`,
      );
    });
  }
}

/** A trigger's background part is over (its `done` settles now). */
export function triggerEnded(): void {
  if (--inFlight > 0 || waiters.length === 0) return;
  const woken = waiters;
  waiters = [];
  for (const wake of woken) {
    try {
      wake();
    } catch {
      // One waiter that throws must not leave the others unwoken, nor
      // reach the trigger whose end woke it.
    }
  }
}

/** Options for {@linkcode drainTriggers}. */
export interface DrainTriggersOptions {
  /**
   * Stops waiting after this many milliseconds; `drainTriggers()` then
   * resolves `false`. Leave room under the platform's kill deadline (Deno
   * Deploy: 5 000 ms after SIGINT).
   * @default {undefined} (waits until every trigger is over)
   */
  timeout?: number;
  /**
   * Stops waiting when it aborts; `drainTriggers()` then resolves `false`.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/**
 * Waits until every trigger started in this process has finished its
 * background part (the `result.done` of each, including triggers started
 * while waiting): call it in a SIGINT/SIGTERM handler before exiting, or at
 * the end of a test or script. Each trigger still ends at its own `timeout`.
 *
 * A process that exits with triggers still in flight (`Deno.exit()`,
 * `process.exit()`) writes one line to stderr saying how many were cut short.
 *
 * @param options An optional `timeout` in milliseconds and `signal`.
 * @returns `true` once none is in flight; `false` when the timeout passed or
 *   the signal aborted first.
 * @throws {RangeError} When `timeout` is not a number of ms from 1 to 2^31 − 1.
 * @throws {TypeError} When `signal` is not an AbortSignal.
 *
 * @example Usage
 * ```ts
 * import { drainTriggers, trigger } from "../../mod.ts";
 * import assert from "node:assert/strict";
 *
 * const server = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   async () => {
 *     await new Promise((resolve) => setTimeout(resolve, 100)); // slow to answer
 *     return new Response(null, { status: 202 });
 *   },
 * );
 * const result = await trigger(`http://127.0.0.1:${server.addr.port}/`);
 * assert.equal(result.ok, true); // written; the status line comes later
 *
 * // In a shutdown handler: wait, but not past the platform's deadline.
 * assert.equal(await drainTriggers({ timeout: 4_000 }), true);
 * assert.equal((await result.outcome).status, 202);
 * await server.shutdown();
 * ```
 *
 * @example Shutting down a server on SIGINT / SIGTERM (Deno)
 * ```ts ignore
 * import { drainTriggers } from "../../mod.ts";
 *
 * const server = Deno.serve(handler);
 * for (const signal of ["SIGINT", "SIGTERM"] as const) {
 *   Deno.addSignalListener(signal, async () => {
 *     await server.shutdown(); // stop taking requests
 *     await drainTriggers({ timeout: 4_000 }); // Deploy kills 5 s after SIGINT
 *     Deno.exit(0);
 *   });
 * }
 * ```
 */
export function drainTriggers(
  options: DrainTriggersOptions = {},
): Promise<boolean> {
  checkOptions(options, "Cannot drain triggers: ");
  const { timeout, signal } = options;
  if (timeout !== undefined) {
    checkMs(timeout, "Cannot drain triggers: timeout", 1);
  }
  if (signal !== undefined) {
    checkSignal(signal, "Cannot drain triggers: signal");
  }
  if (signal?.aborted || inFlight === 0) {
    return Promise.resolve(inFlight === 0);
  }
  return waitForAll(timeout, signal);
}

function waitForAll(
  timeout: number | undefined,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  let resolve!: (drained: boolean) => void;
  const promise = new Promise<boolean>((r) => resolve = r);
  let timer: ReturnType<typeof setTimeout> | undefined = undefined;
  const finish = (drained: boolean) => {
    clearTimeout(timer);
    const at = waiters.indexOf(wake);
    if (at >= 0) waiters.splice(at, 1);
    resolve(drained);
    try {
      signal?.removeEventListener("abort", stop);
    } catch {
      // A caller's signal that throws here changes nothing: resolved.
    }
  };
  const wake = () => finish(true);
  const stop = () => finish(false);
  // The signal first: one that throws is bad input, before a timer starts.
  try {
    signal?.addEventListener("abort", stop, { once: true });
  } catch (error) {
    throw new TypeError(
      "Cannot drain triggers: signal cannot be listened to: its addEventListener threw",
      { cause: error },
    );
  }
  timer = timeout === undefined ? undefined : setTimeout(stop, timeout);
  waiters.push(wake);
  return promise;
}
