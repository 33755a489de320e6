/**
 * {@linkcode drainBackground}: the graceful-shutdown wait of
 * `connection()`.
 *
 * @module
 */
import { background } from "./_background.ts";
import { checkMs, checkOptions, checkSignal } from "../_options.ts";

const PREFIX = "Cannot drain background work: ";

/** Options for {@linkcode drainBackground}. */
export interface DrainOptions {
  /**
   * Stops waiting after this many milliseconds; `drainBackground()` then
   * resolves `false` (the work goes on). Leave room under the platform's
   * kill deadline (Kubernetes: 30 000 ms after SIGTERM by default; Deno
   * Deploy: 5 000 ms after SIGINT).
   *
   * @default {undefined} (waits until all the work is over)
   */
  timeout?: number;
  /**
   * Stops waiting when it aborts; `drainBackground()` then resolves `false`.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/**
 * Waits for all background work of `connection()`: routes answered early
 * with `ack: true`, route code still running after its caller left or its
 * time limit passed, shutdown functions registered late. Work that starts
 * while waiting is waited for too. Call it on SIGTERM once the server has
 * stopped taking requests and answered those in flight (Deno: `await
 * server.shutdown()`; Node: `await new Promise((done) =>
 * server.close(done))`; Bun: `await server.stop()`). Called before, it
 * found nothing to wait for while a request still being read got its 202
 * later, and the process exited with that job never run (a sender counts a
 * 202 as delivered). The same contract as `drainTriggers()` (from the main
 * module) for triggers.
 *
 * @param options An optional `timeout` in milliseconds and `signal`.
 * @returns `true` when everything finished; `false` when the timeout passed
 *   or the signal aborted first (the work is not stopped: it goes on).
 * @throws {RangeError} When `timeout` is not a number of milliseconds from 1
 *   to 2^31 - 1.
 * @throws {TypeError} When `options` is not an object or `signal` is not an
 *   AbortSignal (or its `addEventListener` throws, while work is waited for).
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import { connection, drainBackground } from "./mod.ts";
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
 * // On SIGTERM: stop taking requests (server.shutdown()), then wait, but
 * // not past the deadline.
 * assert.equal(await drainBackground({ timeout: 25_000 }), true);
 * assert.equal(sent, 3);
 * ```
 */
export function drainBackground(
  options: DrainOptions = {},
): Promise<boolean> {
  checkOptions(options, PREFIX);
  const { timeout, signal } = options;
  if (timeout !== undefined) checkMs(timeout, `${PREFIX}timeout`, 1);
  if (signal !== undefined) checkSignal(signal, `${PREFIX}signal`);
  if (background.size === 0) return Promise.resolve(true);
  if (signal?.aborted) return Promise.resolve(false);
  return waitForAll(timeout, signal);
}

function waitForAll(
  timeout: number | undefined,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  let stop = noop;
  const stopped = new Promise<false>((resolve) => {
    stop = () => resolve(false);
  });
  // The signal first, synchronously: one that throws is bad input (a
  // TypeError at the call, as drainTriggers() throws), before a timer starts.
  try {
    signal?.addEventListener("abort", stop, { once: true });
  } catch (error) {
    throw new TypeError(
      `${PREFIX}signal cannot be listened to: its addEventListener threw`,
      { cause: error },
    );
  }
  const timer = timeout === undefined ? undefined : setTimeout(stop, timeout);
  return (async () => {
    try {
      while (background.size > 0) {
        const all = Promise.all(background).then(() => true);
        if (!await Promise.race([all, stopped])) return false;
      }
      return true;
    } finally {
      clearTimeout(timer);
      try {
        signal?.removeEventListener("abort", stop);
      } catch {
        // A caller's signal that throws here changes nothing: settled.
      }
    }
  })();
}

function noop(): void {}
