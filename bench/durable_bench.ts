// The durable outbox's throughput, embedded (PGlite) vs PostgreSQL:
//
//   deno run -A bench/durable_bench.ts            prints the table (README)
//   deno run -A bench/durable_bench.ts postgres   only the PostgreSQL row
//   deno run -A bench/durable_bench.ts embedded   only the PGlite rows
//   TRIGGER_TEST_DATABASE_URL=postgres://… adds the PostgreSQL rows
//   (`bash .ci/postgres.sh` starts one and prints its URL)
//
// persisted/s: `await outbox.trigger()` one after another, then 64 at a time.
// delivered/s: `outbox.start({ concurrency })` draining the stored jobs into a
// Deno.serve target (in its own process) that answers 200 at once, counted
// from start() until the target has every job.
// Under `deno bench` (deno task bench) only a small Deno.bench of one
// embedded trigger() runs.
import { openOutbox, type OutboxOptions } from "../src/durable/mod.ts";
import { spawnDeno } from "./_spawn.ts";

const N = 2_000;

const TARGET = `
let hits = 0;
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => console.log(port) },
  (request) => {
    const { pathname } = new URL(request.url);
    if (pathname === "/count") return Response.json(hits);
    hits++;
    return new Response(null, { status: 200 });
  },
);
`;

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

async function measure(name: string, options: OutboxOptions) {
  const target = await startTarget();
  const opened = performance.now();
  const outbox = await openOutbox(options);
  const openMs = performance.now() - opened;
  try {
    let started = performance.now();
    for (let n = 0; n < N / 2; n++) {
      await outbox.trigger(target.url, { json: { n } });
    }
    const sequential = (N / 2) / ((performance.now() - started) / 1000);
    started = performance.now();
    for (let n = N / 2; n < N; n += 64) {
      const batch = [];
      for (let i = n; i < Math.min(N, n + 64); i++) {
        batch.push(outbox.trigger(target.url, { json: { n: i } }));
      }
      await Promise.all(batch);
    }
    const concurrent = (N / 2) / ((performance.now() - started) / 1000);
    started = performance.now();
    outbox.start({ concurrency: 32 });
    const deadline = Date.now() + 300_000;
    while (await target.count() < N) {
      if (Date.now() > deadline) throw new Error("not delivered in 300 s");
      await new Promise((r) => setTimeout(r, 20));
    }
    const delivered = N / ((performance.now() - started) / 1000);
    return {
      engine: name,
      "open (ms)": Math.round(openMs),
      "persisted/s, one at a time": Math.round(sequential),
      "persisted/s, 64 at a time": Math.round(concurrent),
      "delivered/s, concurrency 32": Math.round(delivered),
    };
  } finally {
    await outbox.stop();
    await target.close();
  }
}

if (import.meta.main) {
  const only = Deno.args[0];
  const rows = [];
  const dir = await Deno.makeTempDir({ prefix: "outbox_bench_" });
  const again = await Deno.makeTempDir({ prefix: "outbox_bench_" });
  if (only !== "postgres") {
    rows.push(await measure("embedded (PGlite), first open", { dir }));
    await (await openOutbox({ dir: again })).stop(); // initdb done
    rows.push(await measure("embedded (PGlite), reopened", { dir: again }));
  }
  const url = Deno.env.get("TRIGGER_TEST_DATABASE_URL");
  if (only === "embedded") {
    // PGlite rows only.
  } else if (url) {
    rows.push(
      await measure("PostgreSQL 15 (loopback)", {
        connectionString: url,
        queue: `bench_${crypto.randomUUID().slice(0, 8)}`,
      }),
    );
  } else {
    console.log("TRIGGER_TEST_DATABASE_URL not set: no PostgreSQL row");
  }
  console.table(rows);
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(again, { recursive: true });
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
