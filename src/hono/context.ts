/**
 * What the middleware of `./hono` need of Hono: the few members of its
 * `Context` they use, written out here so this module depends on no Hono
 * version's types. Hono's own `Context` has all of them (checked against
 * Hono 4.7.0 and the current 4.x by the tests), so `connection()` and
 * `verifyTrigger()` fit wherever a Hono middleware goes.
 *
 * @module
 */

/**
 * The members of Hono's `Context` the middleware use. You never build one:
 * Hono passes its `Context`, which has them all.
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import type { MiddlewareContext } from "./context.ts";
 * import assert from "node:assert/strict";
 *
 * const app = new Hono();
 * app.get("/", (c) => {
 *   const needed: MiddlewareContext = c; // Hono's Context fits
 *   return c.text(needed.req.method);
 * });
 * assert.equal(await (await app.request("/")).text(), "GET");
 * ```
 */
export interface MiddlewareContext {
  /** The request: the middleware read and replace `raw`. */
  req: {
    /** The request as the runtime gave it (replaced by a buffered copy). */
    raw: Request;
    /** The request method. */
    readonly method: string;
    /** The request URL. */
    readonly url: string;
    /** The body, cached by Hono for later readers. */
    arrayBuffer(): Promise<ArrayBuffer>;
    /** Hono's caches of a body read through it, by how it was read. */
    readonly bodyCache?: Readonly<Record<string, unknown>>;
  };
  /** The runtime's bindings; `@hono/node-server` puts `incoming` here. */
  readonly env: unknown;
  /** Workers' execution context; Hono's getter throws where there is none. */
  readonly executionCtx: unknown;
  /** The response so far. */
  res: Response;
  /**
   * A response with the headers set so far (by `c.header()` or on
   * `c.res`), without making `c.res`.
   *
   * @param body The body: none.
   * @param status The status.
   * @returns The response.
   */
  newResponse(body: null, status: 200): Response;
  /** What the route threw, once Hono's error handler answered it. */
  error: Error | undefined;
  /**
   * Sets a context variable (`c.var.connection`, `c.var.trigger`).
   *
   * @param key The variable's name.
   * @param value Its value.
   */
  set(key: string, value: unknown): void;
}

/**
 * A Hono middleware as this module writes it: Hono's `MiddlewareHandler`
 * with the context narrowed to {@linkcode MiddlewareContext}. Type your app
 * with the middleware's `Env` (`new Hono<ConnectionEnv>()`) to get its
 * variables typed in the route.
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import type { Middleware } from "./context.ts";
 * import assert from "node:assert/strict";
 *
 * const poweredBy: Middleware = async function poweredBy(c, next) {
 *   await next();
 *   c.res.headers.set("x-powered-by", "fire-trigger");
 * };
 * const app = new Hono();
 * app.get("/", poweredBy, (c) => c.text("hi"));
 * const response = await app.request("/");
 * assert.equal(response.headers.get("x-powered-by"), "fire-trigger");
 * ```
 */
export type Middleware = (
  c: MiddlewareContext,
  next: () => Promise<void>,
) => Promise<Response | void>;
