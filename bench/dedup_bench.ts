// MemoryDedupStore's claim() when full and when not, as verifyTrigger()
// uses it: claim(id, lease) then complete(id, remember), with the defaults
// (maxEntries 100,000; lease 300 s; remember 600 s: the store is full at
// more than ~167 messages/s). Full, every claim of a new id evicts the
// oldest completed one, or the expired ones. Prints µs per claim() and per complete() (median
// of rounds); a measure, not a test.
//
//   deno run bench/dedup_bench.ts [rounds=7] [perRound=20000] [maxEntries=100000]
import { MemoryDedupStore } from "../src/dedup/memory.ts";

const rounds = Number(Deno.args[0] ?? 7);
const perRound = Number(Deno.args[1] ?? 20_000);
const maxEntries = Number(Deno.args[2] ?? 100_000);
const LEASE = 300_000;
const REMEMBER = 600_000;

let next = 0;
const fresh = () => `msg_${(next++).toString(36).padStart(12, "0")}`;

async function measure(
  store: MemoryDedupStore,
  count: number,
  short = 0,
): Promise<{ claim: number; complete: number }> {
  const ids = Array.from({ length: count }, fresh);
  let claim = 0;
  let complete = 0;
  let i = 0;
  for (const id of ids) {
    const t0 = performance.now();
    const found = await store.claim(id, LEASE, "t");
    const t1 = performance.now();
    await store.complete(id, short > 0 && i++ % 2 === 0 ? short : REMEMBER);
    complete += performance.now() - t1;
    claim += t1 - t0;
    if (found !== "claimed") throw new Error(`claim of ${id}: ${found}`);
  }
  return { claim: (claim / count) * 1000, complete: (complete / count) * 1000 };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function report(name: string, runs: { claim: number; complete: number }[]) {
  const claims = runs.map((r) => r.claim);
  console.log(
    `${name.padEnd(28)} claim ${median(claims).toFixed(2)} µs (${
      Math.min(...claims).toFixed(2)
    }–${Math.max(...claims).toFixed(2)}), complete ${
      median(runs.map((r) => r.complete)).toFixed(2)
    } µs`,
  );
}

// Not full: a store far larger than what is put in.
{
  const runs = [];
  for (let i = 0; i < rounds; i++) {
    const store = new MemoryDedupStore({ maxEntries: Number.MAX_SAFE_INTEGER });
    runs.push(await measure(store, perRound));
  }
  report("not full", runs);
}

// Full: filled to maxEntries first, then every new id evicts one.
{
  const store = new MemoryDedupStore({ maxEntries });
  await measure(store, maxEntries);
  const runs = [];
  for (let i = 0; i < rounds; i++) runs.push(await measure(store, perRound));
  report(`full (maxEntries ${maxEntries})`, runs);
  if (store.size !== maxEntries) throw new Error(`size ${store.size}`);
}

// Full, and every other id remembered 5 ms only (a store shared with a
// middleware of a short tolerance): expired entries sit among live ones.
{
  const store = new MemoryDedupStore({ maxEntries });
  await measure(store, maxEntries);
  const runs = [];
  for (let i = 0; i < rounds; i++) runs.push(await measure(store, perRound, 5));
  report("full, half remembered 5 ms", runs);
}
