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
 * Adds to `response` the headers of `earlier` (what middleware before set
 * with `c.header()`: CORS, security headers, a request id; see
 * {@linkcode earlierHeaders}) that its own do not replace, but for its
 * content type and length. Hono puts them only on answers it makes itself:
 * a bare `Response` made by a middleware carried none.
 */
export function withEarlierHeaders(
  response: Response,
  earlier: Response,
): Response {
  for (const [name, value] of earlier.headers) {
    if (name === "content-type" || name === "content-length") continue;
    if (name === "set-cookie") response.headers.append(name, value);
    else if (!response.headers.has(name)) response.headers.set(name, value);
  }
  return response;
}

/**
 * `response` as a middleware's own answer, made now: with the headers
 * middleware before it has set (see {@linkcode withEarlierHeaders}).
 */
export function ownAnswer(c: MiddlewareContext, response: Response): Response {
  return withEarlierHeaders(response, earlierHeaders(c));
}

/**
 * The headers middleware before has set (by `c.header()` or on `c.res`),
 * taken with `c.newResponse()`, which copies Hono's headers without making
 * `c.res`: reading `c.res` would make Hono build a response for every
 * request, then copy and merge it into the route's answer (several
 * `Response` and `Headers` per request).
 */
export function earlierHeaders(c: MiddlewareContext): Response {
  return c.newResponse(null, 200);
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
