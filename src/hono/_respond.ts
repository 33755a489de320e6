// Putting a response on Hono's Context as it is (private).
import type { MiddlewareContext } from "./context.ts";

/**
 * Sets `response` as the Context's answer, headers and all. Hono's `res`
 * setter merges the headers of the response already there into a new one;
 * cleared first, nothing of a route's own answer (its Set-Cookie, say) gets
 * into this one.
 */
export function respond(c: MiddlewareContext, response: Response): Response {
  c.res = undefined as unknown as Response;
  c.res = response;
  return response;
}

/**
 * Keeps Hono's answer to a throw off the Context until `undo()`, while a
 * route runs on after `connection()` answered (its 202, or an early 503 or
 * 499): Hono's compose sets `c.error`, then writes its error handler's
 * answer to `c.res` even when the response is final, and a middleware
 * outside that still runs (one that awaits after `next()`) would return
 * that 500 instead. That one write is dropped (the error stays in
 * `c.error`); every other write to `c.res` goes through.
 *
 * @returns `undo`: Hono's own `res` again.
 */
export function dropErrorAnswers(c: MiddlewareContext): () => void {
  let proto = Object.getPrototypeOf(c);
  let accessor: PropertyDescriptor | undefined;
  while (
    proto !== null &&
    (accessor = Object.getOwnPropertyDescriptor(proto, "res")) === undefined
  ) proto = Object.getPrototypeOf(proto);
  const { get, set } = accessor ?? {};
  // Not Hono's Context as known (or one shadowed already): left alone.
  if (get === undefined || set === undefined || Object.hasOwn(c, "res")) {
    return noop;
  }
  let seen = c.error;
  Object.defineProperty(c, "res", {
    configurable: true,
    get: () => get.call(c),
    set(response: Response) {
      const error = c.error;
      if (error !== undefined && error !== seen) {
        seen = error; // the error handler's answer to it: dropped
        return;
      }
      set.call(c, response);
    },
  });
  return () => {
    delete (c as { res?: Response }).res;
  };
}

function noop(): void {}
