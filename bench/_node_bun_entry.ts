// The Node/Bun side of bench/node_bun_bench.ts (bundled by it for the browser
// platform, run with `node` or `bun`). argv[2]: JSON { origin, calls,
// blocks, budgetMs, warmup }. Sends sequential triggers to the origin, one
// case after another in turn (socket/fetch × sent/accepted, `blocks` blocks
// of calls / blocks each, rotating the order), awaiting each `result.done`,
// and prints one JSON line: per case, each trigger's µs from the call until
// it resolved (what the caller waits for) and until `done` settled (the whole
// trigger), and how many failed. A case stops at its call count or
// once it has used `budgetMs`, whichever comes first.
import { closeIdleConnections, trigger } from "../mod.ts";

declare const process: { argv: string[]; versions: Record<string, string> };

interface Plan {
  origin: string;
  calls: number;
  blocks: number;
  budgetMs: number;
  warmup: number;
}

const plan = JSON.parse(process.argv[2]) as Plan;
const cases = [
  ["socket", "sent"],
  ["socket", "accepted"],
  ["fetch", "sent"],
  ["fetch", "accepted"],
] as const;

/** One trigger, awaited to its end: its µs until resolved and until done,
 * or undefined when it failed. */
async function once(
  transport: "socket" | "fetch",
  wait: "sent" | "accepted",
  path: string,
  i: number,
): Promise<[number, number] | undefined> {
  const start = performance.now();
  const result = await trigger(`${plan.origin}${path}`, {
    transport,
    wait,
    json: { i },
    timeout: 10_000,
  });
  const resolved = performance.now();
  await result.done;
  const done = performance.now();
  const outcome = await result.outcome;
  return result.transport === transport && outcome.status === 202
    ? [(resolved - start) * 1_000, (done - start) * 1_000]
    : undefined;
}

const waited: Record<string, number[]> = {};
const whole: Record<string, number[]> = {};
const failed: Record<string, number> = {};
const used: Record<string, number> = {};
for (const [transport, wait] of cases) {
  const name = `${transport} ${wait}`;
  waited[name] = [];
  whole[name] = [];
  failed[name] = 0;
  used[name] = 0;
  // Warm-up (JIT, the pool's first connection), not counted at the target.
  for (let i = 0; i < plan.warmup; i++) {
    await once(transport, wait, "/warmup", i);
  }
}
const perBlock = Math.ceil(plan.calls / plan.blocks);
for (let block = 0; block < plan.blocks; block++) {
  for (let k = 0; k < cases.length; k++) {
    const [transport, wait] = cases[(block + k) % cases.length];
    const name = `${transport} ${wait}`;
    const path = `/${transport}-${wait}`;
    const blockStart = performance.now();
    for (let i = 0; i < perBlock; i++) {
      if (whole[name].length + failed[name] >= plan.calls) break;
      if (used[name] + performance.now() - blockStart >= plan.budgetMs) break;
      const took = await once(transport, wait, path, i);
      if (took === undefined) failed[name]++;
      else {
        waited[name].push(Math.round(took[0]));
        whole[name].push(Math.round(took[1]));
      }
    }
    used[name] += performance.now() - blockStart;
  }
}
await closeIdleConnections();
console.log(JSON.stringify({
  bun: process.versions.bun ?? null,
  node: process.versions.node,
  waited,
  whole,
  failed,
  usedMs: Object.fromEntries(
    Object.entries(used).map(([name, ms]) => [name, Math.round(ms)]),
  ),
}));
