// The per-origin connection cap: 15,000 triggers started at once at one
// origin (a Deno.serve target in its own process), for several values of
// `maxConnections`. Per cap: triggers/s (until every outcome is in), the
// caller's wait (from the call until `trigger()` resolves: the queue, then
// the write), the sender's peak open descriptors, and what arrived.
//
// With a delay, the target answers each request that many ms late (a server
// doing work, or a round trip across a network): the cap then bounds
// throughput at about cap / delay.
//
//   deno run -A bench/queue_bench.ts [rounds=1] [caps=8,32,64,128,256,512,2048] [delayMs=0] [triggers=15000]
import { closeIdleConnections, trigger } from "../mod.ts";
import { spawnDeno } from "./_spawn.ts";

const rounds = Number(Deno.args[0] ?? 1);
const caps = (Deno.args[1] ?? "8,32,64,128,256,512,2048").split(",").map(
  Number,
);
const delay = Number(Deno.args[2] ?? 0);
const TRIGGERS = Number(Deno.args[3] ?? 15_000);

const TARGET = `
let hits = 0;
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => console.log(port) },
  async (request) => {
    if (new URL(request.url).pathname === "/count") return Response.json(hits);
    if ((await request.text()).length > 0) hits++;
    if (DELAY > 0) await new Promise((r) => setTimeout(r, DELAY));
    return new Response(null, { status: 202 });
  },
);
`;

function openFds(): number {
  let count = 0;
  for (const _ of Deno.readDirSync("/proc/self/fd")) count++;
  return count;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** Runs the bench (only with `deno run`: `deno bench bench/` loads this
 * file too, and must not run it). */
async function main(): Promise<void> {
  const { line, process } = await spawnDeno([
    "eval",
    `const DELAY = ${delay};` + TARGET,
  ]);
  const origin = `http://127.0.0.1:${Number(line.trim())}`;
  const body = JSON.stringify({ pad: "x".repeat(1000) });

  const rows: string[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const cap of caps) {
      const before = await (await fetch(`${origin}/count`)).json() as number;
      let peak = openFds();
      const sampler = setInterval(() => peak = Math.max(peak, openFds()), 5);
      const waits: number[] = [];
      const started = performance.now();
      const results = await Promise.all(
        Array.from({ length: TRIGGERS }, async () => {
          const t0 = performance.now();
          const result = await trigger(`${origin}/hook`, {
            body,
            maxConnections: cap,
            timeout: 120_000,
          });
          waits.push(performance.now() - t0);
          return result;
        }),
      );
      const outcomes = await Promise.all(results.map((r) => r.outcome));
      const took = performance.now() - started;
      clearInterval(sampler);
      await closeIdleConnections();
      const hits = (await (await fetch(`${origin}/count`)).json() as number) -
        before;
      const failed = outcomes.filter((o) => !o.ok).length;
      waits.sort((a, b) => a - b);
      rows.push(
        `| ${cap} | ${(TRIGGERS / (took / 1000)).toFixed(0)} | ${
          percentile(waits, 0.5).toFixed(0)
        } | ${percentile(waits, 0.99).toFixed(0)} | ${
          waits.at(-1)!.toFixed(0)
        } | ${peak} | ${hits} | ${failed} |`,
      );
      console.error(rows.at(-1));
      await new Promise((r) => setTimeout(r, 500)); // let TIME_WAIT settle a bit
    }
  }

  console.log(
    `${TRIGGERS} triggers at once; the target answers after ${delay} ms`,
  );
  console.log(
    `| maxConnections | triggers/s | caller's wait p50 (ms) | p99 | max | sender's peak fds | received | failed |`,
  );
  console.log(`| --- | --- | --- | --- | --- | --- | --- | --- |`);
  for (const row of rows) console.log(row);
  process.kill();
  await process.status;
}

if (import.meta.main) await main();
