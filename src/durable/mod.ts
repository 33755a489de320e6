/**
 * Durable triggers: an outbox that persists each trigger before it returns
 * and delivers it at least once, with retries, backoff and dead letters.
 *
 * The outbox is [pg-boss](https://github.com/timgit/pg-boss) (a PostgreSQL
 * job queue) on one of two engines, through one code path:
 *
 * - embedded (default): PGlite, PostgreSQL compiled to WASM, in-process, in a
 *   directory (`./.trigger-outbox`). One process per directory: a lock file
 *   makes a second process fail with a clear error instead of losing rows.
 * - PostgreSQL (`connectionString`): shared by any number of processes and
 *   machines; each job goes to one dispatcher at a time.
 *
 * Delivery is at-least-once: a job is retried until a 2xx status line
 * arrives, and every delivery of one job carries the same `webhook-id`
 * header, so the receiver can drop duplicates.
 *
 * This entry point is separate from `mod.ts`: only code that imports
 * `./durable` loads pg-boss (and PGlite, only for the embedded engine).
 *
 * @example Usage
 * ```ts
 * import { openOutbox } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const received = Promise.withResolvers<string>();
 * const server = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   async (request) => {
 *     received.resolve(`${request.headers.get("webhook-id")} ${await request.text()}`);
 *     return new Response(null, { status: 202 });
 *   },
 * );
 * const dir = await Deno.makeTempDir();
 *
 * const outbox = await openOutbox({ dir }); // embedded; `{ connectionString }` for PostgreSQL
 * const { id } = await outbox.trigger(
 *   `http://127.0.0.1:${server.addr.port}/jobs/report`,
 *   { json: { report: 7 } },
 * ); // persisted: survives a crash from here on
 * outbox.start({ concurrency: 4 });
 *
 * assert.equal(await received.promise, `${id} {"report":7}`);
 * await outbox.stop(); // finishes in-flight deliveries, then closes
 * await server.shutdown();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
export { openOutbox } from "./outbox.ts";
export { OutboxError, type OutboxErrorCode } from "./errors.ts";
export type * from "./types.ts";
// trigger()'s option types and errors, which the outbox's options extend.
export type * from "../trigger/types.ts";
export * from "../trigger/errors.ts";
