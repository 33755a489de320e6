// The durable outbox's throughput, embedded (PGlite) vs PostgreSQL:
//
//   deno run -A bench/durable_bench.ts            prints the table (docs/performance.md)
//   deno run -A bench/durable_bench.ts --json     one JSON line (for bench/ratios.ts)
//   deno run -A bench/durable_bench.ts postgres   only PostgreSQL
//   deno run -A bench/durable_bench.ts embedded   only PGlite
//   --runs=N                                      runs per engine (default 5)
//   --fail-once                                   every job's first attempt gets
//                                                 503, its retry (no delay) 200:
//                                                 the retry half of settling
//   TRIGGER_TEST_DATABASE_URL=postgres://… adds PostgreSQL
//   (`bash .ci/postgres.sh` starts one and prints its URL)
//
// Each run stores 2,000 jobs with 64 concurrent `outbox.trigger()` callers
// (enqueue/s), then `outbox.start({ concurrency: 32 })` drains them into a
// Deno.serve target in its own process that answers 200 at once, counted from
// start() until the target has every job (delivered/s). Every run starts
// empty: on PostgreSQL a fresh schema (dropped afterwards), on PGlite a fresh
// queue in one directory (its initdb is done once, before the runs). The runs
// share one process, so the first one also pays for the JIT and for opening
// connections; the median of the runs is the figure to quote, with the range.
//
// Each run also reports this process's CPU time per delivered job during the
// drain (the dispatcher; with PGlite, the database too): it moves less with
// other load on the machine than delivered/s does. The table mode adds, per
// engine, the open time and one-at-a-time enqueue (500 jobs, a single caller
// waiting for each commit).
//
// Under `deno bench` (deno task bench:all) only a small Deno.bench of one
// embedded trigger() runs.
import process from "node:process";
import pg from "npm:pg@8.23.1";
import { openOutbox, type OutboxOptions } from "../src/durable/mod.ts";
import { spawnDeno } from "./_spawn.ts";

const N = 2_000;
const CONCURRENCY = 32;
const CALLERS = 64;

const FAIL_ONCE = Deno.args.includes("--fail-once");

/** The target counts 2xx answers; with `--fail-once` a webhook-id's first
 * request gets 503. */
const TARGET = `
const failOnce = ${FAIL_ONCE};
const seen = new Set();
let hits = 0;
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => console.log(port) },
  (request) => {
    const { pathname } = new URL(request.url);
    if (pathname === "/count") return Response.json(hits);
    const id = request.headers.get("webhook-id");
    if (failOnce && !seen.has(id)) {
      seen.add(id);
      return new Response(null, { status: 503 });
    }
    hits++;
    return new Response(null, { status: 200 });
  },
);
`;
/** Retries at once, so a failed attempt is delivered in the same drain. */
const RETRY = FAIL_ONCE ? { limit: 1, delay: 0, backoff: false } : undefined;

type Target = Awaited<ReturnType<typeof startTarget>>;

async function startTarget() {
  const child = await spawnDeno(["eval", TARGET]);
  const origin = `http://127.0.0.1:${Number(child.line)}`;
  return {
    url: `${origin}/jobs`,
    count: async () => await (await fetch(`${origin}/count`)).json() as number,
    async close() {
      child.process.kill("SIGTERM");
      await child.process.status;
      await child.rest;
    },
  };
}

interface Run {
  openMs: number;
  enqueue64: number;
  delivered: number;
  /** CPU time of this process (dispatcher, and PGlite when embedded) per
   * delivered job, µs: less sensitive to other load than delivered/s. */
  cpuPerJob: number;
  sequential?: number;
}

/** One run: open, store N jobs 64 at a time, deliver them all, stop. */
async function run(
  target: Target,
  options: OutboxOptions,
  sequential: boolean,
): Promise<Run> {
  const opened = performance.now();
  const outbox = await openOutbox(options);
  const openMs = performance.now() - opened;
  try {
    let perSecond: number | undefined;
    if (sequential) {
      const started = performance.now();
      for (let n = 0; n < 500; n++) {
        await outbox.trigger(target.url, { json: { n }, retry: RETRY });
      }
      perSecond = 500 / ((performance.now() - started) / 1000);
    }
    const total = N + (sequential ? 500 : 0);
    let started = performance.now();
    for (let n = 0; n < N; n += CALLERS) {
      const batch = [];
      for (let i = n; i < Math.min(N, n + CALLERS); i++) {
        batch.push(
          outbox.trigger(target.url, { json: { n: i }, retry: RETRY }),
        );
      }
      await Promise.all(batch);
    }
    const enqueue64 = N / ((performance.now() - started) / 1000);
    const before = await target.count();
    const cpu = process.cpuUsage();
    started = performance.now();
    outbox.start({ concurrency: CONCURRENCY });
    const deadline = Date.now() + 120_000;
    while (await target.count() - before < total) {
      if (Date.now() > deadline) throw new Error("not delivered in 120 s");
      await new Promise((r) => setTimeout(r, 5));
    }
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    return {
      openMs,
      enqueue64,
      // The 500 sequential jobs (table mode) are delivered in the same drain.
      delivered: total / seconds,
      cpuPerJob: (used.user + used.system) / total,
      ...(perSecond !== undefined ? { sequential: perSecond } : {}),
    };
  } finally {
    await outbox.stop();
  }
}

async function embeddedRuns(target: Target, runs: number, table: boolean) {
  const dir = await Deno.makeTempDir({ prefix: "outbox_bench_" });
  try {
    const first = performance.now();
    await (await openOutbox({ dir })).stop(); // initdb, pg-boss's schema
    const initMs = performance.now() - first;
    const results: Run[] = [];
    for (let i = 0; i < runs; i++) {
      results.push(
        await run(target, { dir, queue: `bench_${i}` }, table && i === 0),
      );
    }
    return { initMs, results };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function postgresRuns(
  target: Target,
  url: string,
  runs: number,
  table: boolean,
) {
  const results: Run[] = [];
  for (let i = 0; i < runs; i++) {
    const schema = `bench_${crypto.randomUUID().slice(0, 8)}`;
    try {
      results.push(
        await run(target, { connectionString: url, schema }, table && i === 0),
      );
    } finally {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
    }
  }
  return { results };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function summary(results: Run[]) {
  const round = (values: number[]) => values.map((v) => Math.round(v));
  const enqueue = round(results.map((r) => r.enqueue64));
  const delivered = round(results.map((r) => r.delivered));
  const cpu = round(results.map((r) => r.cpuPerJob));
  return {
    enqueue64: Math.round(median(enqueue)),
    enqueue64Runs: enqueue,
    delivered,
    deliveredMedian: Math.round(median(delivered)),
    cpuPerJob: cpu,
  };
}

function range(values: number[]): string {
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
  return `${fmt(median(values))} (${fmt(Math.min(...values))}–${
    fmt(Math.max(...values))
  })`;
}

if (import.meta.main) {
  const json = Deno.args.includes("--json");
  const runsArg = Deno.args.find((a) => a.startsWith("--runs="));
  const runs = runsArg ? Number(runsArg.slice("--runs=".length)) : 5;
  if (!Number.isInteger(runs) || runs < 1) {
    throw new RangeError(`--runs must be a whole number above 0: ${runsArg}`);
  }
  const only = Deno.args.find((a) => !a.startsWith("--"));
  const url = Deno.env.get("TRIGGER_TEST_DATABASE_URL");
  const target = await startTarget();
  const report: Record<string, ReturnType<typeof summary>> = {};
  const rows = [];
  try {
    if (only !== "postgres") {
      const { initMs, results } = await embeddedRuns(target, runs, !json);
      report.pglite = summary(results);
      rows.push({
        engine: "embedded (PGlite)",
        "first open (ms)": Math.round(initMs),
        "reopen (ms)": Math.round(median(results.map((r) => r.openMs))),
        "enqueue/s, one at a time": Math.round(results[0].sequential ?? 0),
        "enqueue/s, 64 callers": range(results.map((r) => r.enqueue64)),
        "delivered/s, concurrency 32": range(results.map((r) => r.delivered)),
        "CPU µs per job": range(results.map((r) => r.cpuPerJob)),
      });
    }
    if (only !== "embedded" && url !== undefined) {
      const { results } = await postgresRuns(target, url, runs, !json);
      report.postgres = summary(results);
      rows.push({
        engine: "PostgreSQL 15 (loopback)",
        "first open (ms)": Math.round(results[0].openMs),
        "reopen (ms)": Math.round(median(results.map((r) => r.openMs))),
        "enqueue/s, one at a time": Math.round(results[0].sequential ?? 0),
        "enqueue/s, 64 callers": range(results.map((r) => r.enqueue64)),
        "delivered/s, concurrency 32": range(results.map((r) => r.delivered)),
        "CPU µs per job": range(results.map((r) => r.cpuPerJob)),
      });
    }
  } finally {
    await target.close();
  }
  if (json) {
    console.log(JSON.stringify(report));
  } else {
    if (only !== "embedded" && url === undefined) {
      console.log("TRIGGER_TEST_DATABASE_URL not set: no PostgreSQL row");
    }
    console.log(`${runs} runs per engine, median (range), ${N} jobs each`);
    console.table(rows);
  }
} else {
  const dir = await Deno.makeTempDir({ prefix: "outbox_bench_" });
  const outbox = await openOutbox({ dir });
  Deno.bench({
    name: "outbox.trigger(): one trigger persisted (embedded PGlite)",
    group: "outbox",
    async fn() {
      await outbox.trigger("http://127.0.0.1:9/jobs", { json: { a: 1 } });
    },
  });
  globalThis.addEventListener("unload", () => {
    Deno.removeSync(dir, { recursive: true });
  });
}
