/**
 * {@linkcode MemoryDedupStore}: the default `DedupStore` of
 * `verifyTrigger()`, a bounded `Map` in this process.
 *
 * @module
 */
import type { ClaimResult, DedupStore } from "./store.ts";

/** Options for {@linkcode MemoryDedupStore}. */
export interface MemoryDedupStoreOptions {
  /**
   * The most ids kept at once (about 200 bytes each for a completed `msg_…`
   * id, 260 for a running claim: the default is about 20–26 MB).
   *
   * @default {100_000}
   */
  maxEntries?: number;
}

interface Entry {
  done: boolean;
  expires: number;
  /** The claim's owner; `undefined` once done. */
  token?: string;
}

/**
 * The default {@linkcode DedupStore}: a `Map` in this process, bounded in
 * size and time. When it is full, every expired entry goes first, wherever
 * it is (a store shared by middlewares with different lifetimes holds
 * entries out of expiry order); only when none has expired are the oldest
 * completed ids forgotten (a replay of one of those, if its timestamp is
 * still inside the tolerance, would run again: size it above your messages
 * per `remember` window). Running claims are never dropped; when every entry
 * is a running claim, a new id is answered `"busy"`.
 *
 * @example Usage
 * ```ts
 * import { MemoryDedupStore } from "./memory.ts";
 * import assert from "node:assert/strict";
 *
 * const store = new MemoryDedupStore({ maxEntries: 2 });
 * for (const id of ["a", "b", "c"]) {
 *   assert.equal(await store.claim(id, 60_000, crypto.randomUUID()), "claimed");
 *   await store.complete(id, 60_000);
 * }
 * assert.equal(store.size, 2); // "a" was forgotten to make room
 * ```
 */
export class MemoryDedupStore implements DedupStore {
  #entries = new Map<string, Entry>();
  #max: number;
  /** The earliest expiry among the entries, or a lower bound of it. */
  #nextExpiry = Infinity;

  /**
   * Creates an empty store.
   *
   * @param options The size bound.
   * @throws {RangeError} When `maxEntries` is not a whole number >= 1.
   */
  constructor(options: MemoryDedupStoreOptions = {}) {
    const { maxEntries = 100_000 } = options;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(
        `Cannot create MemoryDedupStore: maxEntries must be a whole number >= 1, received ${
          String(maxEntries)
        }`,
      );
    }
    this.#max = maxEntries;
  }

  /** The number of ids held now, expired ones not yet swept included. */
  get size(): number {
    return this.#entries.size;
  }

  /** {@inheritDoc DedupStore.claim} */
  claim(id: string, ttl: number, token: string): Promise<ClaimResult> {
    const now = Date.now();
    const entry = this.#entries.get(id);
    if (entry !== undefined) {
      if (entry.expires > now) {
        return Promise.resolve(entry.done ? "done" : "busy");
      }
      this.#entries.delete(id);
    }
    if (this.#entries.size >= this.#max && !this.#makeRoom(now)) {
      return Promise.resolve("busy");
    }
    this.#set(id, false, now + ttl, token);
    return Promise.resolve("claimed");
  }

  /** {@inheritDoc DedupStore.complete} */
  complete(id: string, ttl: number): Promise<void> {
    const now = Date.now();
    // Deleted and set again: the Map's order is the order of completion.
    this.#entries.delete(id);
    this.#set(id, true, now + ttl);
    if (this.#entries.size > this.#max) this.#makeRoom(now);
    return Promise.resolve();
  }

  /** {@inheritDoc DedupStore.release} */
  release(id: string, token: string): Promise<void> {
    const entry = this.#entries.get(id);
    if (entry?.done === false && entry.token === token) {
      this.#entries.delete(id);
    }
    return Promise.resolve();
  }

  #set(id: string, done: boolean, expires: number, token?: string): void {
    this.#entries.set(id, { done, expires, token });
    if (expires < this.#nextExpiry) this.#nextExpiry = expires;
  }

  /**
   * Frees at least one slot: every expired entry (one pass over the map,
   * run only when the earliest expiry has passed), else the oldest done one.
   */
  #makeRoom(now: number): boolean {
    if (this.#nextExpiry <= now) {
      let next = Infinity;
      for (const [id, entry] of this.#entries) {
        if (entry.expires <= now) this.#entries.delete(id);
        else if (entry.expires < next) next = entry.expires;
      }
      this.#nextExpiry = next;
      if (this.#entries.size < this.#max) return true;
    }
    for (const [id, entry] of this.#entries) {
      if (entry.done) {
        this.#entries.delete(id);
        return true;
      }
    }
    return false;
  }
}
