/**
 * The contract between `verifyTrigger()` (from `./hono`) and the place it
 * remembers message ids: {@linkcode DedupStore}. Implementations in this
 * package: `MemoryDedupStore` (one process, the default) and
 * `PostgresDedupStore` (from `./dedup/postgres`, shared by instances).
 *
 * @module
 */

/**
 * What {@linkcode DedupStore.claim} found: `"claimed"` — the id is new (or
 * was released, or its entry expired) and now belongs to the caller, who
 * must `complete()` or `release()` it; `"done"` — a delivery of this id
 * already succeeded; `"busy"` — another delivery of it is running now.
 *
 * @example Usage
 * ```ts
 * import type { ClaimResult } from "./store.ts";
 * import assert from "node:assert/strict";
 *
 * const answer = (found: ClaimResult) => found === "claimed" ? "run" : "skip";
 * assert.equal(answer("done"), "skip");
 * ```
 */
export type ClaimResult = "claimed" | "done" | "busy";

/**
 * Where `verifyTrigger()` remembers message ids. The default is a
 * `MemoryDedupStore` per middleware; implement this interface over a shared
 * database (PostgreSQL, Redis, Deno KV…) so several instances deduplicate
 * together. Every method may be called concurrently for the same id from
 * several instances: `claim()` must be atomic. Durations are milliseconds.
 *
 * A PostgreSQL sketch (one row per id; `expires_at` is a lease while
 * running, the memory of a success once done); `PostgresDedupStore` is this:
 *
 * ```sql
 * CREATE TABLE webhook_ids (id text PRIMARY KEY, done boolean NOT NULL,
 *                           expires_at timestamptz NOT NULL);
 * -- claim(id, ttl): take the row when absent or expired, then read it.
 * INSERT INTO webhook_ids VALUES ($1, false, now() + $2 * interval '1 ms')
 *   ON CONFLICT (id) DO UPDATE SET done = false, expires_at = EXCLUDED.expires_at
 *   WHERE webhook_ids.expires_at <= now()
 *   RETURNING 'claimed';
 * -- no row returned: SELECT CASE WHEN done THEN 'done' ELSE 'busy' END ...
 * --   (and "claimed" if the row vanished in between: retry the insert)
 * -- complete(id, ttl): UPDATE webhook_ids SET done = true,
 * --   expires_at = now() + $2 * interval '1 ms' WHERE id = $1;
 * -- release(id):       DELETE FROM webhook_ids WHERE id = $1 AND NOT done;
 * -- and now and then:  DELETE FROM webhook_ids WHERE expires_at <= now();
 * ```
 *
 * @example Usage
 * ```ts
 * import type { DedupStore } from "./store.ts";
 * import { MemoryDedupStore } from "./memory.ts";
 * import assert from "node:assert/strict";
 *
 * const store: DedupStore = new MemoryDedupStore();
 * assert.equal(await store.claim("msg_1", 60_000), "claimed");
 * assert.equal(await store.claim("msg_1", 60_000), "busy");
 * await store.release("msg_1"); // the route failed: runnable again
 * assert.equal(await store.claim("msg_1", 60_000), "claimed");
 * await store.complete("msg_1", 600_000);
 * assert.equal(await store.claim("msg_1", 60_000), "done");
 * ```
 */
export interface DedupStore {
  /**
   * Atomically takes `id` for one delivery, unless a live entry exists.
   *
   * @param id The `webhook-id` (1–256 visible ASCII characters, no `.`).
   * @param ttl Milliseconds the claim holds without `complete()` or
   *   `release()` (a lease: a crashed instance's claim lapses after it);
   *   `verifyTrigger()` passes its `lease`.
   * @returns What was found; see {@linkcode ClaimResult}.
   */
  claim(id: string, ttl: number): Promise<ClaimResult>;
  /**
   * Marks a claimed id as done: later claims answer `"done"` for `ttl`.
   *
   * @param id The id.
   * @param ttl Milliseconds to remember it; `verifyTrigger()` passes its
   *   `remember`.
   */
  complete(id: string, ttl: number): Promise<void>;
  /**
   * Drops a claim that did not succeed, so a retry can run.
   *
   * @param id The id.
   */
  release(id: string): Promise<void>;
}
