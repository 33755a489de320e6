/**
 * {@linkcode MemoryDedupStore}: the default `DedupStore` of
 * `verifyTrigger()`, a bounded `Map` in this process, with queues in order
 * of expiry and of completion for O(1) eviction.
 *
 * @module
 */
import type { ClaimResult, DedupStore } from "./store.ts";
import { checkMs, checkOptions } from "../_options.ts";
import { show } from "../_show.ts";

/** Options for {@linkcode MemoryDedupStore}. */
export interface MemoryDedupStoreOptions {
  /**
   * The most ids kept at once: about 250 bytes each for a completed id (as
   * `verifyTrigger()` keys it: `<16 hex>:msg_…`) and 320 for a running
   * claim with its token, the key strings and the eviction queues included,
   * so about 25–32 MB at the default. (Measured: `deno run
   * --v8-flags=--expose-gc bench/dedup_memory.ts`, the growth of
   * `Deno.memoryUsage().heapUsed` after full GCs over 100,000 keys, Deno
   * 2.9.6: 249 and 323 bytes.)
   *
   * @default {100_000}
   */
  maxEntries?: number;
}

/**
 * One id's state, changed in place (a claim becomes done). Each change
 * bumps `version`: a place in a queue holds an entry and the version it
 * was queued at, and is stale once they differ.
 */
interface Entry {
  id: string;
  done: boolean;
  expires: number;
  /** A running claim's lease end on the monotonic clock (`performance.now()`):
   * it holds until both clocks have passed their end. */
  leaseEnds: number;
  /** The claim's owner; `undefined` once done. */
  token: string | undefined;
  /** Bumped on every change; -1 once deleted. */
  version: number;
  /** Places in the queues holding this version. */
  places: number;
}

/**
 * A first-in first-out queue of (entry, version) places: pushed at the
 * back, taken from the front in O(1) amortised (arrays and a head index;
 * the taken front is cut off once it is half the arrays).
 */
class Queue {
  entries: (Entry | undefined)[] = [];
  versions: number[] = [];
  head = 0;

  get length(): number {
    return this.entries.length - this.head;
  }

  push(entry: Entry): void {
    this.entries.push(entry);
    this.versions.push(entry.version);
    entry.places++;
  }

  /** The entry at the front, if any. */
  peek(): Entry | undefined {
    return this.entries[this.head];
  }

  /** Whether the front place holds its entry's current version. */
  current(): boolean {
    return this.entries[this.head]!.version === this.versions[this.head];
  }

  /** Takes the front place; returns whether it was current. */
  shift(): boolean {
    const entry = this.entries[this.head]!;
    const current = entry.version === this.versions[this.head];
    if (current) entry.places--;
    this.entries[this.head++] = undefined;
    if (this.head >= 1024 && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.versions = this.versions.slice(this.head);
      this.head = 0;
    }
    return current;
  }

  /** Drops the stale places, keeping the order. */
  compact(): void {
    const entries: Entry[] = [];
    const versions: number[] = [];
    for (let i = this.head; i < this.entries.length; i++) {
      const entry = this.entries[i]!;
      if (entry.version === this.versions[i]) {
        entries.push(entry);
        versions.push(this.versions[i]);
      }
    }
    this.entries = entries;
    this.versions = versions;
    this.head = 0;
  }
}

/** Whether `entry` is a running claim whose lease has not ended on the
 * monotonic clock: a wall clock set forward cuts no lease short (before, a
 * step of 1.8 s during a 2 s lease let a retry run beside the route still
 * under way). */
function leaseHolds(entry: Entry): boolean {
  return !entry.done && entry.leaseEnds > performance.now();
}

/**
 * The default {@linkcode DedupStore}: a `Map` in this process, bounded in
 * size and time. When it is full, expired entries make the room, wherever
 * they are (a store shared by middlewares with different lifetimes holds
 * entries out of expiry order), as many as each new id needs; only when
 * none has expired are the oldest completed ids forgotten (a replay of one
 * of those, if its timestamp is still inside the tolerance, would run
 * again: size it above your messages per `remember` window). Running claims
 * are never dropped; when every entry is a running claim, a new id is
 * answered `"busy"`. Making room costs O(1) amortised, full or not.
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
  /**
   * Per `ttl`, the entries given it, in the order they were given it: their
   * expiries ascend, so the expired ones are at the front. (One queue per
   * distinct `ttl`: `verifyTrigger()` uses two, its lease and `remember`.)
   */
  #byTtl = new Map<number, Queue>();
  /** The completed entries in the order of completion: the oldest first. */
  #completed = new Queue();
  /** Stale places in the queues. */
  #stale = 0;
  /** The earliest expiry among the entries, or a lower bound of it. */
  #nextExpiry = Infinity;
  /** The latest time {@linkcode MemoryDedupStore.#now} gave. */
  #latest = 0;

  /**
   * Wall-clock milliseconds that never go back: `verifyTrigger()` judges a
   * message's timestamp by the wall clock, so its memory of ids runs on the
   * same clock (on a monotonic one, a wall clock set back would let an old
   * timestamp pass again after its id was forgotten); held still while the
   * wall clock is set back, because each queue relies on the order of
   * expiries.
   */
  #now(): number {
    const now = Date.now();
    if (now > this.#latest) this.#latest = now;
    return this.#latest;
  }

  /**
   * Creates an empty store.
   *
   * @param options The size bound.
   * @throws {TypeError} When `options` is not an object.
   * @throws {RangeError} When `maxEntries` is not a whole number >= 1.
   */
  constructor(options: MemoryDedupStoreOptions = {}) {
    checkOptions(options, "Cannot create MemoryDedupStore: ");
    const { maxEntries = 100_000 } = options;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(
        `Cannot create MemoryDedupStore: maxEntries must be a whole number >= 1, received ${
          show(maxEntries)
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
    checkMs(ttl, "Cannot claim: ttl", 0, Number.MAX_SAFE_INTEGER);
    const now = this.#now();
    const entry = this.#entries.get(id);
    if (entry !== undefined) {
      if (entry.expires > now || leaseHolds(entry)) {
        return Promise.resolve(entry.done ? "done" : "busy");
      }
      this.#delete(entry);
    }
    if (this.#entries.size >= this.#max && !this.#makeRoom(now, this.#max)) {
      return Promise.resolve("busy");
    }
    const claimed: Entry = {
      id,
      done: false,
      expires: now + ttl,
      leaseEnds: performance.now() + ttl,
      token,
      version: 0,
      places: 0,
    };
    this.#entries.set(id, claimed);
    this.#queue(claimed, ttl);
    return Promise.resolve("claimed");
  }

  /** {@inheritDoc DedupStore.complete} */
  complete(id: string, ttl: number): Promise<void> {
    checkMs(ttl, "Cannot complete: ttl", 0, Number.MAX_SAFE_INTEGER);
    const now = this.#now();
    let entry = this.#entries.get(id);
    if (entry === undefined) {
      entry = {
        id,
        done: true,
        expires: 0,
        leaseEnds: 0,
        token: undefined,
        version: 0,
        places: 0,
      };
      this.#entries.set(id, entry);
    } else {
      // Its places so far go stale: it is now the most recently completed.
      this.#change(entry);
    }
    entry.done = true;
    entry.expires = now + ttl;
    entry.token = undefined;
    this.#queue(entry, ttl);
    this.#completed.push(entry);
    // Back to the bound, not below it: one expired entry is enough. Never
    // by forgetting this id (its retry would run again): on a store full of
    // running claims it stays, one over the bound, until the next claim of
    // a new id needs the room (that claim brings the store back under the
    // bound, or is busy).
    if (this.#entries.size > this.#max) {
      this.#makeRoom(now, this.#max + 1, entry);
    }
    return Promise.resolve();
  }

  /** {@inheritDoc DedupStore.release} */
  release(id: string, token: string): Promise<void> {
    const entry = this.#entries.get(id);
    if (entry?.done === false && entry.token === token) this.#delete(entry);
    return Promise.resolve();
  }

  #queue(entry: Entry, ttl: number): void {
    let queue = this.#byTtl.get(ttl);
    if (queue === undefined) this.#byTtl.set(ttl, queue = new Queue());
    queue.push(entry);
    if (entry.expires < this.#nextExpiry) this.#nextExpiry = entry.expires;
  }

  /** Makes the entry's places stale (a new version). */
  #change(entry: Entry): void {
    entry.version = entry.version === -1 ? -1 : entry.version + 1;
    this.#stale += entry.places;
    entry.places = 0;
    // Stale places over a quarter of the ids: one pass over the queues
    // (at most 2.25 places per id) drops them; paid for by the changes that
    // made them stale, O(1) amortised each.
    if (this.#stale > this.#entries.size / 4 + 1024) this.#compact();
  }

  #delete(entry: Entry): void {
    this.#entries.delete(entry.id);
    // Stale places may hold it a while: its strings are not kept for them.
    entry.id = "";
    entry.token = undefined;
    entry.version = -1;
    this.#change(entry);
  }

  #compact(): void {
    for (const [ttl, queue] of this.#byTtl) {
      queue.compact();
      if (queue.length === 0) this.#byTtl.delete(ttl);
    }
    this.#completed.compact();
    this.#stale = 0;
  }

  /**
   * Brings the number of ids below `below`: expired entries first (taken
   * from the fronts of the per-`ttl` queues, only when the earliest expiry
   * has passed), only as many as that takes; when no expired one is left,
   * the oldest completed one. O(1) amortised, and no call pays for more
   * than it needs: a place in a queue is taken from its front at most once,
   * and a store full of expired ids (a burst, then quiet for longer than
   * `remember`) is swept one id per new id, not all in the call that finds
   * it full (130–230 ms at 100,000 ids, 1.5–1.6 s at 1,000,000, the event
   * loop stalled). `keep`, the entry just completed, is never the one that goes.
   */
  #makeRoom(now: number, below: number, keep?: Entry): boolean {
    if (this.#nextExpiry <= now) {
      let next = Infinity;
      let enough = false;
      for (const [ttl, queue] of this.#byTtl) {
        for (
          let entry = queue.peek();
          entry !== undefined;
          entry = queue.peek()
        ) {
          if (queue.current() && (entry.expires > now || leaseHolds(entry))) {
            // A running claim past its end on the wall clock only (set
            // forward) holds the queue until its lease ends: swept again
            // at the next call.
            const at = entry.expires > now ? entry.expires : now;
            if (at < next) next = at;
            break;
          }
          if (enough) {
            // Expired ones may be left (a stale place's entry says
            // nothing of those behind it): swept at the next call.
            next = now;
            break;
          }
          if (queue.shift()) {
            this.#delete(entry);
            enough = this.#entries.size < below;
          } else {
            this.#stale--;
          }
        }
        if (queue.length === 0) this.#byTtl.delete(ttl);
      }
      this.#nextExpiry = next;
      if (enough) return true;
    }
    // Completed ones, oldest first, until below (more than one when a
    // complete() left the store over the bound).
    const completed = this.#completed;
    while (completed.length > 0) {
      const entry = completed.peek()!;
      // The newest completed: no older one is left to go.
      if (entry === keep && completed.current()) return false;
      if (completed.shift()) {
        this.#delete(entry);
        if (this.#entries.size < below) return true;
      } else {
        this.#stale--;
      }
    }
    return false;
  }
}
