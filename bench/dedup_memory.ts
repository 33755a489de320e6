// MemoryDedupStore's memory per id, as verifyTrigger() fills it: `n` keys of
// the form it gives the store (16 hex digits of its secret's SHA-256, ":",
// then an id as trigger() makes it, `msg_` + 32 hex digits), each
// claimed with a token (a UUID, as verifyTrigger() makes) under the default
// lease (300 s); "running" leaves them claimed, "done" completes each one
// (remember: 600 s). Measured as the growth of Deno.memoryUsage().heapUsed
// from before the store is made to once it is full, after full GCs each
// time: what the store keeps alive, its id strings (and running claims'
// tokens) included. The median of `rounds` fresh stores. A measure, not a
// test.
//
//   deno run --v8-flags=--expose-gc bench/dedup_memory.ts [n=100000] [rounds=5]
import { MemoryDedupStore } from "../src/dedup/memory.ts";

const LEASE = 300_000;
const REMEMBER = 600_000;

const gc = (globalThis as { gc?: () => void }).gc;

/** Heap bytes in use after full collections. */
function heapUsed(): number {
  for (let i = 0; i < 3; i++) gc!();
  return Deno.memoryUsage().heapUsed;
}

/** Bytes per id of a store of `n` ids, each left running or completed:
 * what the store keeps alive, the id strings (and a running claim's token)
 * included. */
async function perId(n: number, state: "running" | "done"): Promise<number> {
  const before = heapUsed();
  const store = new MemoryDedupStore({ maxEntries: n });
  for (let i = 0; i < n; i++) {
    // Fresh strings, as a request's header and verifyTrigger()'s token are.
    const id = "0123456789abcdef:msg_" +
      crypto.randomUUID().replaceAll("-", "");
    await store.claim(id, LEASE, crypto.randomUUID());
    if (state === "done") await store.complete(id, REMEMBER);
  }
  const after = heapUsed();
  if (store.size !== n) throw new Error(`store holds ${store.size} ids`);
  return (after - before) / n;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

if (import.meta.main) {
  if (gc === undefined) {
    console.error("Run with --v8-flags=--expose-gc");
    Deno.exit(1);
  }
  const n = Number(Deno.args[0] ?? 100_000);
  const rounds = Number(Deno.args[1] ?? 5);
  const result: Record<string, unknown> = { n, rounds, deno: Deno.version };
  for (const state of ["done", "running"] as const) {
    const runs: number[] = [];
    for (let r = 0; r < rounds; r++) runs.push(await perId(n, state));
    result[state] = {
      median: Math.round(median(runs)),
      runs: runs.map(Math.round),
    };
    console.log(
      `${state}: ${Math.round(median(runs))} bytes per id (runs: ${
        runs.map(Math.round).join(", ")
      })`,
    );
  }
  console.log(JSON.stringify(result));
}
