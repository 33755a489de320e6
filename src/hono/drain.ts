/**
 * {@linkcode drainBackground}: the graceful-shutdown wait of
 * `connection()`.
 *
 * @module
 */
import { background } from "./_background.ts";

/** Options for {@linkcode drainBackground}. */
export interface DrainOptions {
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
 * while waiting is waited for too. Call it on SIGTERM before
 * `server.shutdown()` so nothing in flight is lost.
 *
 * @param options A signal that stops the wait.
 * @returns `true` when everything finished, `false` when the signal aborted first.
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
