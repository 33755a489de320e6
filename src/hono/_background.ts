// The registry of background work of connection(): what drainBackground()
// waits for.
import type { MiddlewareContext } from "./context.ts";
import { platformWaitUntil } from "./_runtime.ts";

/** Work still running: ack routes, routes past their caller, late shutdowns. */
export const background: Set<Promise<unknown>> = new Set();

/** Adds `work` to the registry until it settles. */
function track(work: Promise<unknown>): void {
  const tracked: Promise<void> = work.then(noop, noop).finally(() => {
    background.delete(tracked);
  });
  background.add(tracked);
}

/** Keeps background work alive: `waitUntil` where the platform has it, and tracked. */
export function keepAlive(c: MiddlewareContext, work: Promise<unknown>): void {
  track(work);
  platformWaitUntil(c)?.(work);
}

function noop(): void {}
