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
 * was released, or its entry expired) and now belongs to the caller (its
 * `token`), who must `complete()` or `release()` it; `"done"` — a delivery of this id
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
 * A method may throw for bad arguments (the built-in stores throw a
 * `RangeError` for a bad `ttl`) or reject when the store fails:
 * `verifyTrigger()` treats both as a store failure.

A claim has an owner: `claim()` records the caller's `token` (unique per
delivery) and `release()` drops the entry only when it still holds that
token. A claim whose lease lapsed may have been taken by another delivery;
a late `release()` of the first must not free the second's claim (a third
would then run beside it). `complete()` records the id as done whoever
holds it now — the message was handled — and records it even when the
entry is gone (expired and swept): it inserts or updates.
 *
 * A PostgreSQL sketch (one row per id; `expires_at` is a lease while
 * running, the memory of a success once done); `PostgresDedupStore` is this:
 *
 * ```sql
 * CREATE TABLE webhook_ids (id text PRIMARY KEY, done boolean NOT NULL,
 *                           expires_at timestamptz NOT NULL, token text);
 * CREATE INDEX webhook_ids_expires_at ON webhook_ids (expires_at);
 * -- claim(id, ttl, token): take the row when absent or expired, then read it.
 * INSERT INTO webhook_ids VALUES ($1, false, now() + $2 * interval '1 ms', $3)
 *   ON CONFLICT (id) DO UPDATE SET done = false,
 *     expires_at = EXCLUDED.expires_at, token = EXCLUDED.token
 *   WHERE webhook_ids.expires_at <= now()
 *   RETURNING 'claimed';
 * -- no row returned: SELECT CASE WHEN done THEN 'done' ELSE 'busy' END ...
 * --   (and "claimed" if the row vanished in between: retry the insert)
 * -- complete(id, ttl): INSERT ... VALUES ($1, true, now() + $2 * interval '1 ms',
 * --   NULL) ON CONFLICT (id) DO UPDATE SET done = true,
 * --   expires_at = EXCLUDED.expires_at, token = NULL;
 * -- release(id, token): DELETE FROM webhook_ids
 * --   WHERE id = $1 AND NOT done AND token = $2;
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
 * assert.equal(await store.claim("msg_1", 60_000, "delivery-a"), "claimed");
 * assert.equal(await store.claim("msg_1", 60_000, "delivery-b"), "busy");
 * await store.release("msg_1", "delivery-b"); // not its claim: nothing
 * assert.equal(await store.claim("msg_1", 60_000, "delivery-c"), "busy");
 * await store.release("msg_1", "delivery-a"); // the route failed: runnable again
 * assert.equal(await store.claim("msg_1", 60_000, "delivery-c"), "claimed");
 * await store.complete("msg_1", 600_000);
 * assert.equal(await store.claim("msg_1", 60_000, "delivery-d"), "done");
 * ```
 */
export interface DedupStore {
  /**
   * Atomically takes `id` for one delivery, unless a live entry exists.
   *
   * @param id The key `verifyTrigger()` keeps a delivery under: its
   *   `scope` (by default 16 hex digits of the verifying secret's SHA-256),
   *   `:`, then the `webhook-id` (1–256 visible ASCII characters, no `.`):
   *   3–321 visible ASCII characters.
   * @param ttl Milliseconds the claim holds without `complete()` or
   *   `release()` (a lease: a crashed instance's claim lapses after it);
   *   `verifyTrigger()` passes its `lease`.
   * @param token Who claims: unique per delivery (`verifyTrigger()` passes
   *   a `crypto.randomUUID()`); kept with the claim for `release()`.
   * @returns What was found; see {@linkcode ClaimResult}.
   */
  claim(id: string, ttl: number, token: string): Promise<ClaimResult>;
  /**
   * Marks an id as done: later claims answer `"done"` for `ttl`. Inserts
   * when the entry is gone (its lease lapsed and it was swept), overwrites
   * a claim taken since by another delivery (the message was handled).
   *
   * @param id The id.
   * @param ttl Milliseconds to remember it; `verifyTrigger()` passes its
   *   `remember`.
   */
  complete(id: string, ttl: number): Promise<void>;
  /**
   * Drops a claim that did not succeed, so a retry can run — only while
   * the entry is a running claim holding `token`: never a done id, never a
   * claim another delivery took after this one's lease lapsed.
   *
   * @param id The id.
   * @param token The token given to `claim()`.
   */
  release(id: string, token: string): Promise<void>;
}
