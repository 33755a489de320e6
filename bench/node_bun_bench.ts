// What one trigger costs on Node and Bun, per transport and wait mode:
// sequential triggers (each `result.done` awaited) from the bundled
// bench/_node_bun_entry.ts, run by `node` (the one on PATH), Node 22 and
// Bun 1.4.5 (both installed from npm into ~/.cache/fire-trigger-tests/, as
// the tests do), to a Node `http` server in a process of its own answering
// 202 on 127.0.0.1. The four cases (socket/fetch × sent/accepted) run in
// rotating blocks so the machine's state is alike for all. Prints, per
// runtime and case, how many triggers were timed and, in µs, the p50 and
// p10–p90 spread of the caller's wait (the call until the promise resolved)
// and of the whole trigger (until `result.done`, the answer read), and the
// whole trigger's mean. Every trigger must have reached the target (checked
// against its count).
//
//   deno run -A bench/node_bun_bench.ts [calls per case=2000] [budget ms per case=6000]
//
// Each case stops at its call count or its time budget, whichever first; a
// runtime's process is killed after 5 minutes.
import assert from "node:assert/strict";
import { bundle } from "../tests/_bundle.ts";
import { bunBinary, node22Binary, run } from "../tests/_node/_runtimes.ts";
import { controlRequest, quantile, spawnLine } from "./_spawn.ts";

const CALLS = Number(Deno.args[0] ?? 2_000);
const BUDGET_MS = Number(Deno.args[1] ?? 6_000);
const BLOCKS = 4;
const WARMUP = 200;

/** Node's http server: 202 once the body is read; GET /count the hits. */
const TARGET = `
const http = require("node:http");
const hits = {};
const server = http.createServer((req, res) => {
  if (req.url === "/count") return res.end(JSON.stringify(hits));
  let length = 0;
  req.on("data", (chunk) => (length += chunk.length));
  req.on("end", () => {
    if (length === Number(req.headers["content-length"] ?? 0)) {
      hits[req.url] = (hits[req.url] ?? 0) + 1;
    }
    res.writeHead(202).end();
  });
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
`;

/** Starts the target; resolves with its origin and the process. */
async function startTarget() {
  const { line, process } = await spawnLine("node", ["-e", TARGET]);
  return { origin: `http://127.0.0.1:${Number(line.trim())}`, child: process };
}

interface Report {
  bun: string | null;
  node: string;
  waited: Record<string, number[]>;
  whole: Record<string, number[]>;
  failed: Record<string, number>;
  usedMs: Record<string, number>;
}

/** "p50 (p10–p90)" of `values`. */
function spread(values: number[]): string {
  return `${quantile(values, 0.5)} (${quantile(values, 0.1)}–${
    quantile(values, 0.9)
  })`;
}

/** Where each runtime's binary is (installed on first use). */
const binaries: Array<() => Promise<string>> = [
  () => Promise.resolve("node"),
  node22Binary,
  bunBinary,
];
async function main(): Promise<void> {
  const code = await bundle("../bench/_node_bun_entry.ts");
  const dir = await Deno.makeTempDir({ prefix: "node-bun-bench-" });
  const target = await startTarget();
  try {
    await Deno.writeTextFile(`${dir}/entry.mjs`, code);
    console.log(
      `${CALLS} sequential triggers per case at most (${BUDGET_MS} ms budget), result.done awaited; µs per trigger, p50 (p10–p90)`,
    );
    console.log(
      "runtime        case                n  caller waits       until done          done mean",
    );
    for (const binary of binaries) {
      const before: Record<string, number> = JSON.parse(
        await controlRequest(`${target.origin}/count`),
      );
      const out = await run(await binary(), [
        `${dir}/entry.mjs`,
        JSON.stringify({
          origin: target.origin,
          calls: CALLS,
          blocks: BLOCKS,
          budgetMs: BUDGET_MS,
          warmup: WARMUP,
        }),
      ], 300_000);
      assert.equal(out.code, 0, out.stderr);
      const report: Report = JSON.parse(out.stdout);
      const hits: Record<string, number> = JSON.parse(
        await controlRequest(`${target.origin}/count`),
      );
      const label = report.bun ? `Bun ${report.bun}` : `Node ${report.node}`;
      for (const [which, values] of Object.entries(report.whole)) {
        const path = `/${which.replace(" ", "-")}`;
        const arrived = (hits[path] ?? 0) - (before[path] ?? 0);
        assert.equal(report.failed[which], 0, `${label} ${which}: failures`);
        assert.equal(arrived, values.length, `${label} ${which}: arrived`);
        const mean = values.reduce((a, b) => a + b, 0) / values.length;
        console.log(
          `${label.padEnd(14)} ${which.padEnd(15)} ${
            String(values.length).padStart(5)
          }  ${spread(report.waited[which]).padEnd(18)} ${
            spread(values).padEnd(18)
          } ${mean.toFixed(0).padStart(6)}${
            report.usedMs[which] >= BUDGET_MS ? "  (time budget reached)" : ""
          }`,
        );
      }
    }
  } finally {
    target.child.kill("SIGTERM");
    await target.child.status;
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
