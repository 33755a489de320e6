// Throughput of acknowledged triggers: 10,000 `trigger()` calls with
// `wait: "accepted"` at concurrency 64 (64 loops, each firing its next
// trigger when the previous one resolves) against a Hono route behind
// `connection({ ack: true })` served by Deno.serve in another process
// (bench/_hono_target.ts), so this client's event loop is alone. Each round
// checks that the route's background work completed once per trigger
// (0 lost), and reports triggers/s. Prints a table, then one JSON line.
//
//   deno run --allow-all bench/throughput.ts [rounds=5] [triggers=10000]
//
// Also run by `deno task bench` (bench/scripts_bench.ts).
import { closeIdleConnections, trigger } from "../mod.ts";
import {
  controlRequest,
  honoCounts,
  quantile,
  startHonoTarget,
} from "./_spawn.ts";

const ROUNDS = Number(Deno.args[0] ?? 5);
const TRIGGERS = Number(Deno.args[1] ?? 10_000);
const CONCURRENCY = 64;
const WARMUP = 10_000; // the target JITs slowly: early rounds run at half speed
/** The target, acknowledged triggers per second. */
export const TARGET_PER_SECOND = 20_000;

/** Fires `count` triggers at CONCURRENCY; returns the failures. */
async function fire(url: string, count: number, first: number) {
  let next = 0;
  const failures: string[] = [];
  async function loop() {
    while (next < count) {
      const id = first + next++;
      const result = await trigger(url, { wait: "accepted", json: { id } });
      if (!result.ok || result.status !== 202) {
        failures.push(`${id}: ${result.error?.code} ${result.error?.message}`);
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  return failures;
}

const target = await startHonoTarget();
const url = `${target.origin}/job`;
const rounds: {
  perSecond: number;
  ms: number;
  ok: number;
  completed: number;
  lost: number;
  connections: number;
}[] = [];
try {
  await fire(url, WARMUP, 0);
  await controlRequest(`${target.origin}/reset`, "POST");
  for (let round = 0; round < ROUNDS; round++) {
    const first = (round + 1) * 1_000_000;
    const start = performance.now();
    const failures = await fire(url, TRIGGERS, first);
    const ms = performance.now() - start;
    const counts = await honoCounts(target.origin);
    await controlRequest(`${target.origin}/reset`, "POST");
    if (failures.length > 0) console.error(failures.slice(0, 5));
    rounds.push({
      perSecond: TRIGGERS / (ms / 1_000),
      ms,
      ok: TRIGGERS - failures.length,
      completed: counts.completed,
      lost: TRIGGERS - counts.distinct,
      connections: counts.connections,
    });
  }
} finally {
  await closeIdleConnections();
  await target.stop();
}

const perSecond = rounds.map((r) => r.perSecond);
const median = quantile(perSecond, 0.5);
console.log(
  `\n${TRIGGERS} triggers, wait: "accepted", concurrency ${CONCURRENCY}, ` +
    `Hono connection({ ack: true }) on Deno.serve (separate process)`,
);
console.log("round  triggers/s      ms   ok    completed  lost  connections");
rounds.forEach((r, i) =>
  console.log(
    [
      String(i + 1).padStart(5),
      r.perSecond.toFixed(0).padStart(11),
      r.ms.toFixed(0).padStart(7),
      String(r.ok).padStart(6),
      String(r.completed).padStart(10),
      String(r.lost).padStart(5),
      String(r.connections).padStart(12),
    ].join(" "),
  )
);
const lost = rounds.reduce((sum, r) => sum + r.lost, 0) +
  rounds.reduce((sum, r) => sum + Math.max(0, r.completed - TRIGGERS), 0);
console.log(
  `median ${median.toFixed(0)}/s (min ${
    Math.min(...perSecond).toFixed(0)
  }, max ${
    Math.max(...perSecond).toFixed(0)
  }); lost ${lost}; target ≥ ${TARGET_PER_SECOND}/s with 0 lost: ${
    median >= TARGET_PER_SECOND && lost === 0 ? "met" : "NOT met"
  }`,
);
console.log(JSON.stringify({ kind: "throughput", median, lost, rounds }));
