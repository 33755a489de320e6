/**
 * PHP's connection handling for Hono routes: a triggered route can ask whether
 * its caller is still there (`connection_status()`), choose to survive the
 * caller leaving (`ignore_user_abort()`), bound itself with a restartable time
 * limit (`set_time_limit()`), run cleanup exactly once
 * (`register_shutdown_function()`) and answer first, then keep working
 * (`fastcgi_finish_request()`, here `ack: true`) — `connection()`; and
 * `verifyTrigger()`, which lets only signed triggers in (Standard Webhooks,
 * as the reference libraries read them) and runs each message once, with
 * the `DedupStore` contract and its in-memory store. `PostgresDedupStore` is
 * the separate entry `./dedup/postgres`.
 *
 * The module has no dependency, not even on Hono's types: the middlewares
 * are typed with the few members of Hono's `Context` they use
 * (`MiddlewareContext`), so any Hono 4 from 4.7.0 on accepts them. Type the
 * app with `ConnectionEnv` / `VerifyTriggerEnv` for `c.var`. Durations are
 * milliseconds.
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import { connection, ConnectionStatus, type ConnectionEnv } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const ended: number[] = [];
 * const app = new Hono<ConnectionEnv>();
 * app.post("/jobs/report", connection({ timeLimit: 30_000 }), async (c) => {
 *   const conn = c.var.connection;
 *   const { month } = await c.req.json();
 *   conn.onShutdown((status) => ended.push(status)); // cleanup, any path
 *   if (conn.signal.aborted) return c.body(null, 503); // nobody is waiting
 *   return c.json({ month, rows: 0, status: conn.status });
 * });
 *
 * const response = await app.request("/jobs/report", {
 *   method: "POST",
 *   body: JSON.stringify({ month: "2024-05" }),
 * });
 * assert.deepEqual(await response.json(), {
 *   month: "2024-05",
 *   rows: 0,
 *   status: ConnectionStatus.NORMAL,
 * });
 * assert.deepEqual(ended, [ConnectionStatus.NORMAL]);
 * ```
 *
 * @module
 */
export * from "./context.ts";
export * from "./connection_types.ts";
export * from "./connection.ts";
export * from "./drain.ts";
export * from "./verify_types.ts";
export * from "./verify.ts";
export * from "../dedup/store.ts";
export * from "../dedup/memory.ts";
