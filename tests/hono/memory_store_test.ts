// MemoryDedupStore's eviction as its documentation states it: when full,
// expired entries make the room first, wherever they are (as many as the
// room needs, not all at once); else the oldest completed
// id (in the order of completion); running claims are never dropped, and a
// new id is "busy" when every entry is one. Then the store against a
// reference model (a plain scan of a Map in insertion order, the store as it
// was before eviction became O(1)) over many random operations.
//
// A `ttl` of 0 expires at once and one of 10^9 ms never within a test: the
// cases do not depend on timing. (Speed is measured by bench/dedup_bench.ts,
// not asserted here.)
import assert from "node:assert/strict";
import { type ClaimResult, MemoryDedupStore } from "../../src/hono/mod.ts";

const LONG = 1_000_000_000;
const EXPIRED = 0;

async function done(store: MemoryDedupStore, id: string, ttl = LONG) {
  assert.equal(await store.claim(id, LONG, `t-${id}`), "claimed", id);
  await store.complete(id, ttl);
}

Deno.test("MemoryDedupStore, full: the oldest completed id goes first, in order of completion", async () => {
  const store = new MemoryDedupStore({ maxEntries: 3 });
  for (const id of ["a", "b", "c"]) {
    assert.equal(await store.claim(id, LONG, "t"), "claimed");
  }
  // Completed in another order than claimed: c, a, b.
  for (const id of ["c", "a", "b"]) await store.complete(id, LONG);
  assert.equal(await store.claim("d", LONG, "t"), "claimed"); // c goes
  assert.equal(await store.claim("a", LONG, "t"), "done");
  assert.equal(await store.claim("b", LONG, "t"), "done");
  assert.equal(store.size, 3);
  assert.equal(await store.claim("c", LONG, "t"), "claimed", "c was forgotten");
  // Now a (completed before b) is the oldest; d and c are running.
  assert.equal(await store.claim("b", LONG, "t"), "done");
  assert.equal(await store.claim("a", LONG, "t"), "claimed", "a went next");
  assert.equal(store.size, 3);
});

Deno.test("MemoryDedupStore, full: completing an id again makes it the most recent", async () => {
  const store = new MemoryDedupStore({ maxEntries: 2 });
  await done(store, "a");
  await done(store, "b");
  await store.complete("a", LONG); // a again: now b is the oldest
  await done(store, "c"); // b goes
  assert.equal(await store.claim("a", LONG, "t"), "done");
  assert.equal(await store.claim("c", LONG, "t"), "done");
  assert.equal(store.size, 2);
  // complete() of an id not held inserts it, and makes room the same way.
  await store.complete("z", LONG); // a goes
  assert.equal(store.size, 2);
  assert.equal(await store.claim("c", LONG, "t"), "done");
  assert.equal(await store.claim("z", LONG, "t"), "done");
});

Deno.test("MemoryDedupStore, full: running claims are never dropped; all running means busy", async () => {
  const store = new MemoryDedupStore({ maxEntries: 2 });
  assert.equal(await store.claim("x", LONG, "tx"), "claimed");
  assert.equal(await store.claim("y", LONG, "ty"), "claimed");
  assert.equal(await store.claim("z", LONG, "tz"), "busy", "no room");
  assert.equal(store.size, 2);
  await store.release("x", "not-its-token");
  assert.equal(await store.claim("z", LONG, "tz"), "busy", "x still held");
  await store.release("x", "tx");
  assert.equal(await store.claim("z", LONG, "tz"), "claimed", "x's slot");
  await store.complete("y", LONG);
  // y (done) goes before any running claim.
  assert.equal(await store.claim("w", LONG, "tw"), "claimed");
  assert.equal(await store.claim("z", LONG, "t"), "busy", "z kept");
  assert.equal(await store.claim("w", LONG, "t"), "busy", "w kept");
  assert.equal(await store.claim("y", LONG, "t"), "busy", "y was dropped");
});

Deno.test("MemoryDedupStore, full: expired entries make the room first, wherever they are, before any live one", async () => {
  const store = new MemoryDedupStore({ maxEntries: 5 });
  await done(store, "a"); // the oldest completed, remembered long
  await done(store, "b", EXPIRED); // completed, expired
  assert.equal(await store.claim("c", EXPIRED, "tc"), "claimed"); // lapsed lease
  await done(store, "d");
  await done(store, "e", EXPIRED);
  assert.equal(store.size, 5, "expired entries are held until room is needed");
  assert.equal(await store.claim("f", LONG, "t"), "claimed");
  assert.equal(store.size, 5, "one expired entry made the room");
  assert.equal(await store.claim("a", LONG, "t"), "done", "a kept");
  assert.equal(await store.claim("d", LONG, "t"), "done", "d kept");
  // An expired entry is free to claim again, full or not.
  assert.equal(await store.claim("c", LONG, "t2"), "claimed");
  assert.equal(await store.claim("b", LONG, "t2"), "claimed");
  assert.equal(store.size, 5);
  // Full, nothing expired: now the oldest completed (a) goes.
  assert.equal(await store.claim("g", LONG, "t"), "claimed");
  assert.equal(await store.claim("d", LONG, "t"), "done");
  assert.equal(await store.claim("a", LONG, "t"), "claimed", "a went");
});

Deno.test("MemoryDedupStore: an expired claim is taken again; the first owner's release leaves it", async () => {
  const store = new MemoryDedupStore({ maxEntries: 10 });
  assert.equal(await store.claim("m", EXPIRED, "first"), "claimed");
  assert.equal(await store.claim("m", LONG, "second"), "claimed", "lapsed");
  await store.release("m", "first");
  assert.equal(await store.claim("m", LONG, "third"), "busy");
  await store.complete("m", LONG);
  await store.release("m", "second"); // done now: never released
  assert.equal(await store.claim("m", LONG, "fourth"), "done");
});

Deno.test("MemoryDedupStore, full: the order holds after thousands of deletions (queues compacted)", async () => {
  const store = new MemoryDedupStore({ maxEntries: 4 });
  assert.equal(await store.claim("lapsed", EXPIRED, "t"), "claimed");
  await done(store, "a");
  await done(store, "a2");
  // Thousands of claims dropped again: their places in the store's queues
  // go stale and are compacted away; the live entries stay in order.
  for (let i = 0; i < 1_500; i++) {
    assert.equal(await store.claim("retried", LONG, `t${i}`), "claimed");
    await store.release("retried", `t${i}`);
  }
  await done(store, "b");
  assert.equal(store.size, 4);
  assert.equal(await store.claim("c", LONG, "t"), "claimed"); // lapsed goes
  assert.equal(await store.claim("a", LONG, "t"), "done", "a kept");
  assert.equal(await store.claim("d", LONG, "t"), "claimed"); // a goes
  assert.equal(await store.claim("a2", LONG, "t"), "done", "a2 kept");
  assert.equal(await store.claim("b", LONG, "t"), "done", "b kept");
  assert.equal(await store.claim("a", LONG, "t"), "claimed", "a went first");
  assert.equal(await store.claim("b", LONG, "t"), "done", "b kept");
  assert.equal(await store.claim("a2", LONG, "t"), "claimed", "a2 went next");
});

/**
 * The store before eviction became O(1), kept as the reference: entries in
 * a Map in the order they were set; when full, one pass drops every expired
 * entry (when the earliest expiry has passed), else the first completed one.
 */
class ReferenceStore {
  #entries = new Map<
    string,
    { done: boolean; expires: number; token?: string }
  >();
  #nextExpiry = Infinity;
  readonly max: number;
  constructor(max: number) {
    this.max = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The ids not expired at `now`. */
  live(now: number): number {
    let count = 0;
    for (const entry of this.#entries.values()) {
      if (entry.expires > now) count++;
    }
    return count;
  }

  claim(id: string, ttl: number, token: string, now: number): ClaimResult {
    const entry = this.#entries.get(id);
    if (entry !== undefined) {
      if (entry.expires > now) return entry.done ? "done" : "busy";
      this.#entries.delete(id);
    }
    if (this.#entries.size >= this.max && !this.#makeRoom(now, this.max)) {
      return "busy";
    }
    this.#set(id, false, now + ttl, token);
    return "claimed";
  }

  complete(id: string, ttl: number, now: number): void {
    this.#entries.delete(id);
    this.#set(id, true, now + ttl);
    // Back to the bound, not below it (one more completed id went too),
    // and never by forgetting this one (it stays, one over the bound).
    if (this.#entries.size > this.max) this.#makeRoom(now, this.max + 1, id);
  }

  release(id: string, token: string): void {
    const entry = this.#entries.get(id);
    if (entry?.done === false && entry.token === token) {
      this.#entries.delete(id);
    }
  }

  #set(id: string, done: boolean, expires: number, token?: string): void {
    this.#entries.set(id, { done, expires, token });
    if (expires < this.#nextExpiry) this.#nextExpiry = expires;
  }

  #makeRoom(now: number, below: number, keep?: string): boolean {
    if (this.#nextExpiry <= now) {
      let next = Infinity;
      for (const [id, entry] of this.#entries) {
        if (entry.expires <= now) this.#entries.delete(id);
        else if (entry.expires < next) next = entry.expires;
      }
      this.#nextExpiry = next;
      if (this.#entries.size < below) return true;
    }
    for (const [id, entry] of this.#entries) {
      if (entry.done && id !== keep) {
        this.#entries.delete(id);
        if (this.#entries.size < below) return true;
      }
    }
    return false;
  }
}

/** A small seeded generator (mulberry32): the same operations every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

Deno.test("MemoryDedupStore, full of expired ids (a burst, then quiet past remember): each new id sweeps what it needs, not the whole store in one call (132 ms at 100,000 ids, 1.6 s at 1,000,000)", async () => {
  const max = 10_000;
  const store = new MemoryDedupStore({ maxEntries: max });
  for (let n = 0; n < max; n++) await done(store, `old${n}`, EXPIRED);
  assert.equal(store.size, max);
  assert.equal(await store.claim("new0", LONG, "t"), "claimed");
  assert.equal(store.size, max, "one expired id made the room");
  for (let n = 1; n < 100; n++) {
    assert.equal(await store.claim(`new${n}`, LONG, "t"), "claimed");
    await store.complete(`new${n}`, LONG);
  }
  assert.equal(store.size, max);
  // The expired ones still held answer as expired; the new ones are kept.
  assert.equal(await store.claim("old9999", LONG, "t"), "claimed");
  for (let n = 1; n < 100; n++) {
    assert.equal(await store.claim(`new${n}`, LONG, "t"), "done");
  }
});

Deno.test("MemoryDedupStore answers as the reference model over 250,000 random operations, on a moving clock with TTLs that expire in between", async () => {
  // The store reads the wall clock (Date.now(), held from going back) and,
  // for running claims' leases, the monotonic one; here both are a fake one
  // that moves 0–3 ms a step, shared with the model, from above any time the
  // store has seen.
  const realNow = Date.now;
  const realPerformanceNow = performance.now;
  let fake = realNow() + 1_000_000;
  Date.now = () => fake;
  performance.now = () => fake;
  const TTLS = [EXPIRED, 1, 3, 7, 20, 100, 1_000, LONG];
  try {
    for (
      const [max, ids, seed] of [[1, 4, 1], [3, 8, 2], [8, 24, 3], [
        64,
        200,
        4,
      ], [32, 4000, 5]]
    ) {
      const next = random(seed);
      const store = new MemoryDedupStore({ maxEntries: max });
      const model = new ReferenceStore(max);
      const tokens = new Map<string, string>();
      for (let step = 0; step < 50_000; step++) {
        fake += Math.floor(next() * 4);
        const now = fake;
        const id = `id${Math.floor(next() * ids)}`;
        const ttl = TTLS[Math.floor(next() * TTLS.length)];
        const op = next();
        const where = `max ${max}, step ${step}`;
        if (op < 0.5) {
          const token = `t${step}`;
          const found = await store.claim(id, ttl, token);
          assert.equal(found, model.claim(id, ttl, token, now), where);
          if (found === "claimed") tokens.set(id, token);
        } else if (op < 0.8) {
          await store.complete(id, ttl);
          model.complete(id, ttl, now);
        } else {
          // Mostly its own token, sometimes a stale one.
          const token = next() < 0.8 ? tokens.get(id) ?? "none" : `t${step}`;
          await store.release(id, token);
          model.release(id, token);
        }
        // The store sweeps only the expired ids it needs the room of, the
        // model all of them: the ids they hold alive are the same (every
        // answer above), the expired ones waiting to go may differ.
        const live = model.live(now);
        assert.ok(
          live <= store.size && store.size <= Math.max(model.size, max),
          `${where}: size ${store.size}, ${live} alive, model ${model.size}`,
        );
        // Past the bound only as the model is (a completed id kept over a
        // store full of running claims).
        if (store.size > max) {
          assert.equal(store.size, model.size, `${where}: size`);
        }
      }
    }
  } finally {
    Date.now = realNow;
    performance.now = realPerformanceNow;
  }
});

Deno.test("MemoryDedupStore runs on the wall clock held from going back: ids are remembered by the clock verifyTrigger() judges timestamps with", async () => {
  const realNow = Date.now;
  const realPerformanceNow = performance.now;
  let wall = realNow() + 2_000_000_000;
  let mono = 0;
  Date.now = () => wall;
  performance.now = () => mono;
  try {
    const store = new MemoryDedupStore();
    assert.equal(await store.claim("a", 100, "t1"), "claimed");
    await store.complete("a", 100);
    // The wall clock set back an hour: the store's time stands still, so
    // "a" is neither forgotten early nor kept by an hour's extra.
    wall -= 3_600_000;
    assert.equal(await store.claim("a", 100, "t2"), "done");
    wall += 3_600_000 + 99;
    mono += 3_600_000 + 99;
    assert.equal(await store.claim("a", 100, "t2"), "done");
    wall += 2;
    mono += 2;
    assert.equal(await store.claim("a", 100, "t3"), "claimed");
  } finally {
    Date.now = realNow;
    performance.now = realPerformanceNow;
  }
});

Deno.test("MemoryDedupStore: the wall clock set forward cuts no running claim's lease short (a retry ran beside the route still under way); a done id is remembered on the wall clock", async () => {
  const realNow = Date.now;
  const realPerformanceNow = performance.now;
  let wall = realNow() + 2_000_000_000;
  let mono = 0;
  Date.now = () => wall;
  performance.now = () => mono;
  try {
    const store = new MemoryDedupStore();
    assert.equal(await store.claim("a", 2_000, "t1"), "claimed");
    // 300 ms on, the wall clock leaps 1.8 s ahead: the lease has 1.7 s left.
    wall += 300 + 1_800;
    mono += 300;
    assert.equal(await store.claim("a", 2_000, "t2"), "busy");
    // Its lease runs out on the monotonic clock: 1.7 s more.
    wall += 1_699;
    mono += 1_699;
    assert.equal(await store.claim("a", 2_000, "t2"), "busy");
    wall += 2;
    mono += 2;
    assert.equal(await store.claim("a", 2_000, "t3"), "claimed");
    await store.complete("a", 100);
    wall += 100;
    mono += 100;
    assert.equal(await store.claim("a", 100, "t4"), "claimed");
    // Full: a claim past its end on the wall clock only is not swept to
    // make room.
    const full = new MemoryDedupStore({ maxEntries: 1 });
    assert.equal(await full.claim("x", 2_000, "t1"), "claimed");
    wall += 300 + 1_800;
    mono += 300;
    assert.equal(await full.claim("y", 2_000, "t2"), "busy");
    assert.equal(await full.claim("x", 2_000, "t3"), "busy");
    wall += 1_701;
    mono += 1_701;
    assert.equal(await full.claim("y", 2_000, "t4"), "claimed");
  } finally {
    Date.now = realNow;
    performance.now = realPerformanceNow;
  }
});

Deno.test("MemoryDedupStore refuses a ttl that is not a number of milliseconds >= 0 (NaN turned deduplication off), and options that are not an object", () => {
  const store = new MemoryDedupStore();
  for (const ttl of [NaN, -1, Infinity, "x", undefined]) {
    assert.throws(
      () => store.claim("msg_1", ttl as number, "token"),
      (error: unknown) =>
        error instanceof RangeError && /ttl/.test(error.message),
    );
    assert.throws(
      () => store.complete("msg_1", ttl as number),
      (error: unknown) =>
        error instanceof RangeError && /ttl/.test(error.message),
    );
  }
  assert.equal(store.size, 0);
  for (const options of [null, "x"]) {
    assert.throws(
      () => new MemoryDedupStore(options as never),
      (error: unknown) =>
        error instanceof TypeError && /options/.test(error.message),
    );
  }
});

Deno.test("MemoryDedupStore: complete() of an absent id on a full store with one expired entry forgets only the expired one", async () => {
  const store = new MemoryDedupStore({ maxEntries: 3 });
  await store.complete("done-1", 60_000);
  await store.complete("done-2", 60_000);
  assert.equal(await store.claim("lapsing", 1, "t"), "claimed");
  await new Promise((resolve) => setTimeout(resolve, 20));
  // Inserted over the bound: the lapsed claim makes the room. A completed
  // id went too before, and its replay ran again.
  await store.complete("done-3", 60_000);
  assert.equal(store.size, 3);
  for (const id of ["done-1", "done-2", "done-3"]) {
    assert.equal(await store.claim(id, 60_000, "u"), "done", id);
  }
});

Deno.test("MemoryDedupStore: complete() of an absent id on a store full of running claims keeps it (one over the bound) rather than forgetting it", async () => {
  const store = new MemoryDedupStore({ maxEntries: 2 });
  assert.equal(await store.claim("a", 60_000, "t"), "claimed");
  assert.equal(await store.claim("b", 60_000, "t"), "claimed");
  // c's claim lapsed and went; its delivery still succeeded.
  await store.complete("c", 60_000);
  assert.equal(await store.claim("c", 60_000, "u"), "done");
  assert.equal(store.size, 3);
  // Back within the bound as soon as an older completed id can go.
  await store.complete("a", 60_000);
  assert.equal(store.size, 2);
  assert.equal(await store.claim("a", 60_000, "u"), "done");
});

Deno.test("MemoryDedupStore: a store left one over its bound by complete() gets back under it; running claims never pass it (a new id is busy)", async () => {
  const store = new MemoryDedupStore({ maxEntries: 2 });
  assert.equal(await store.claim("a", 60_000, "t"), "claimed");
  assert.equal(await store.claim("b", 60_000, "t"), "claimed");
  for (let i = 0; i < 5; i++) {
    // A delivery whose claim lapsed succeeds: kept, one over the bound.
    await store.complete(`lapsed-${i}`, 60_000);
    assert.ok(store.size <= 3, `size ${store.size}`);
    // A new id: every other entry is a running claim, so busy (the kept
    // one goes to make room, and that is not enough).
    assert.equal(await store.claim(`new-${i}`, 60_000, "t"), "busy", `${i}`);
    assert.ok(store.size <= 3, `size ${store.size}`);
  }
});
