/**
 * Fire an HTTP request and move on — without losing it.
 *
 * `trigger()` starts a job on your own server (or anyone's) and returns as
 * soon as the request is written. Where raw sockets exist (Deno, Deno Deploy,
 * Supabase edge functions; Node and Bun through `node:net` / `node:tls`) it
 * writes HTTP/1.1 itself and keeps the connection open in the background
 * until the server answers, so the server never sees an early disconnect. At
 * shutdown, `drainTriggers()` waits for those background parts. Elsewhere
 * (Cloudflare Workers, Vercel Edge, Netlify edge functions) it uses `fetch`,
 * kept alive with the platform's `waitUntil`.
 *
 * The triggered route can learn what happened to its caller with the Hono
 * helper in `./hono`.
 *
 * @example Deno
 * ```ts
 * import { trigger } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const seen = Promise.withResolvers<unknown>();
 * const server = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   async (request) => {
 *     seen.resolve(await request.json());
 *     return new Response(null, { status: 202 });
 *   },
 * );
 * const result = await trigger(
 *   `http://127.0.0.1:${server.addr.port}/jobs/report?id=7`,
 *   { json: { id: 7 } },
 * );
 * assert.ok(result.ok);
 * assert.deepEqual(await seen.promise, { id: 7 });
 * await result.done;
 * await server.shutdown();
 * ```
 *
 * @example An edge platform (waitUntil keeps the request alive)
 * ```ts
 * import { trigger } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const server = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   () => new Response("ok"),
 * );
 * const kept: Promise<unknown>[] = [];
 * const ctx = { waitUntil: (promise: Promise<unknown>) => kept.push(promise) };
 *
 * const result = await trigger(`http://127.0.0.1:${server.addr.port}/`, {
 *   transport: "fetch",
 *   waitUntil: ctx.waitUntil,
 * });
 * assert.equal(result.transport, "fetch");
 * assert.equal(kept.length, 1);
 * await Promise.all(kept);
 * await server.shutdown();
 * ```
 *
 * @module
 */
export * from "./src/trigger/trigger.ts";
export { closeIdleConnections } from "./src/transport/_pool.ts";
export {
  drainTriggers,
  type DrainTriggersOptions,
} from "./src/trigger/drain.ts";
export * from "./src/trigger/errors.ts";
export * from "./src/trigger/types.ts";
export * from "./src/signature/sign.ts";
