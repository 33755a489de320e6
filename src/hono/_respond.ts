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
