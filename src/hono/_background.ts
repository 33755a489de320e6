// The registry of background work of connection(): what drainBackground()
// waits for.
import type { MiddlewareContext } from "./context.ts";
import { platformWaitUntil } from "./_runtime.ts";
import { onProcessExit } from "../_exit.ts";

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

/** Keeps background work alive: `waitUntil` where the platform has it, and tracked. */
export function keepAlive(c: MiddlewareContext, work: Promise<unknown>): void {
  track(work);
  try {
    platformWaitUntil(c)?.(work);
  } catch {
    // A platform that refuses (a getter or waitUntil that throws) cannot be
    // helped here: the work is tracked and runs on, and the answer stands.
  }
}

function noop(): void {}
