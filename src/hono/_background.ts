// The registry of background work of connection(): what drainBackground()
// waits for.
import type { MiddlewareContext } from "./context.ts";
import { platformWaitUntil } from "./_runtime.ts";
import { onProcessExit } from "../_exit.ts";
import { dropRejection } from "../_callback.ts";

/** Work still running: ack routes, routes past their caller, late shutdowns. */
export const background: Set<Promise<unknown>> = new Set();

let watchingExit = false;

/** Adds `work` to the registry until it settles. */
function track(work: Promise<unknown>): void {
  if (!watchingExit) {
    watchingExit = true;
    // As trigger() does: a process that exits with acknowledged jobs still
    // running loses them (their senders had a 202); it says so.
    onProcessExit((writeError) => {
      const left = background.size;
      if (left === 0) return;
      writeError(
        `fire-trigger: the process exited with ${left} connection() background task${
          left === 1 ? "" : "s"
        } still running (acknowledged jobs, routes past their caller or time limit); stop taking requests, then await drainBackground() before exiting`,
      );
    });
  }
  const tracked: Promise<void> = work.then(noop, noop).finally(() => {
    background.delete(tracked);
  });
  background.add(tracked);
}

/**
 * Keeps background work alive: `waitUntil` where the platform has it, and
 * tracked. A platform that refuses (its `waitUntil`, or the getter reaching
 * it, throws) is told to `report`: the work runs on, tracked, but the
 * platform may cut it once the answer is sent.
 */
export function keepAlive(
  c: MiddlewareContext,
  work: Promise<unknown>,
  report: (error: unknown) => unknown,
): void {
  track(work);
  try {
    dropRejection(platformWaitUntil(c)?.(work));
  } catch (error) {
    dropRejection(report(
      new Error(
        "The platform's waitUntil threw: the background work runs on, but the platform may cut it once the answer is sent",
        { cause: error },
      ),
    ));
  }
}

function noop(): void {}
