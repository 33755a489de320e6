// The route connection() left running when it answered early (a 503 at the
// time limit, a 499 when the caller left): kept on the Context under a
// symbol, so verifyTrigger() in front of it releases the message id only
// once that run has really ended, not while it still runs. A registered
// symbol: two copies of this module (two import URLs) still share it.
import type { MiddlewareContext } from "./context.ts";

const RUNNING: unique symbol = Symbol.for("fire-trigger.hono.running");

type WithRunning = { [RUNNING]?: Promise<unknown> };

/** Records that the route behind `c` still runs until `work` settles. */
export function setRunning(c: MiddlewareContext, work: Promise<unknown>): void {
  (c as unknown as WithRunning)[RUNNING] = work;
}

/** The route still running behind `c`, if any: taken (cleared) once. */
export function takeRunning(
  c: MiddlewareContext,
): Promise<unknown> | undefined {
  const holder = c as unknown as WithRunning;
  const work = holder[RUNNING];
  delete holder[RUNNING];
  return work;
}
