// What the reuse policy costs: a sender firing one trigger every `gap` ms at
// a keep-alive target that never closes idle connections (Deno.serve in its
// own process). Idle connections are kept 1.5 s when the server announces no
// timeout, so a sporadic sender (gaps above that) opens a fresh connection
// for each trigger; a bursty one keeps reusing. Per gap: the caller's wait
// (p50, "sent" mode) and how many connections carried the triggers.
//
//   deno run -A bench/reuse_policy_bench.ts [count=10] [gaps=5,500,1000,2000,3000]
import { closeIdleConnections, trigger } from "../mod.ts";
import { spawnDeno } from "./_spawn.ts";

const count = Number(Deno.args[0] ?? 10);
const gaps = (Deno.args[1] ?? "5,500,1000,2000,3000").split(",").map(Number);

const TARGET = `
const ports = new Set();
let hits = 0;
Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => console.log(port) },
  async (request, info) => {
    if (new URL(request.url).pathname === "/count") {
      const report = { connections: ports.size, hits };
      ports.clear();
      hits = 0;
      return Response.json(report);
    }
    await request.arrayBuffer();
    ports.add(info.remoteAddr.port);
    hits++;
    return new Response(null, { status: 202 });
  },
);
`;

/** Runs the bench (only with `deno run`: `deno bench bench/` loads this
 * file too, and must not run it). */
async function main(): Promise<void> {
  const { line, process } = await spawnDeno(["eval", TARGET]);
  const origin = `http://127.0.0.1:${Number(line.trim())}`;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  console.log(
    "| gap between triggers (ms) | caller's wait p50 (µs) | connections used |",
  );
  console.log("| --- | --- | --- |");
  for (const gap of gaps) {
    await closeIdleConnections();
    // A first trigger opens the connection the others may reuse.
    await (await trigger(`${origin}/hook`, { body: "warm" })).outcome;
    await (await fetch(`${origin}/count`)).json();
    const waits: number[] = [];
    for (let i = 0; i < count; i++) {
      await sleep(gap);
      const start = performance.now();
      const result = await trigger(`${origin}/hook`, {
        body: "x".repeat(1000),
      });
      waits.push(performance.now() - start);
      await result.outcome;
    }
    const { connections, hits } = await (await fetch(`${origin}/count`)).json();
    waits.sort((a, b) => a - b);
    console.log(
      `| ${gap} | ${
        (waits[Math.floor(count / 2)] * 1000).toFixed(0)
      } | ${connections} for ${hits} triggers |`,
    );
  }
  await closeIdleConnections();
  process.kill();
  await process.status;
}

if (import.meta.main) await main();
