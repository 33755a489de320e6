// Resources over many triggers: 100,000 `trigger()` calls (`wait:
// "accepted"`, reuse on, concurrency 64) against the Hono target of
// bench/_hono_target.ts in another process. Reports this process's open file
// descriptors (/proc/self/fd) before, at the peak, after the run and after
// `closeIdleConnections()` (must be back to the baseline), and RSS growth
// (Deno.memoryUsage().rss), each measured after a full GC when
// `--v8-flags=--expose-gc` is given. Prints a table, then one JSON line.
//
//   deno run --allow-all --v8-flags=--expose-gc bench/resources.ts [triggers=100000]
//
// V8 grows its young generation (semi-spaces) under a high allocation rate
// and keeps it: heapTotal rises while heapUsed stays flat. Add
// `--max-semi-space-size=2` to the V8 flags to see the growth without it.
//
// Also run by `deno task bench` (bench/scripts_bench.ts).
import { closeIdleConnections, trigger } from "../mod.ts";
import {
  controlRequest,
  fdTargets,
  honoCounts,
  openFds,
  startHonoTarget,
  tcpFds,
} from "./_spawn.ts";

const TRIGGERS = Number(Deno.args[0] ?? 100_000);
const CONCURRENCY = 64;
const WARMUP = 5_000;
/** The issue's target: RSS growth over 100k triggers, in MB. */
export const TARGET_RSS_MB = 10;

const gc = (globalThis as { gc?: () => void }).gc;

/** RSS after a full GC (twice: finalizers free more on the second). */
async function settledRss(): Promise<number> {
  for (let i = 0; i < 2; i++) {
    gc?.();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return Deno.memoryUsage().rss;
}

let peakFds = 0;
async function fire(url: string, count: number, first: number) {
  let next = 0;
  let failed = 0;
  async function loop() {
    while (next < count) {
      const id = first + next++;
      const result = await trigger(url, { wait: "accepted", json: { id } });
      if (!result.ok) failed++;
      if ((id & 1023) === 0) peakFds = Math.max(peakFds, openFds());
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  return failed;
}

const target = await startHonoTarget();
const url = `${target.origin}/job`;
// Baseline: after a warm-up (code loaded and compiled, pool emptied).
await fire(url, WARMUP, 0);
await closeIdleConnections();
await controlRequest(`${target.origin}/reset`, "POST");
const fdsBefore = openFds();
const fdMapBefore = fdTargets();
const tcpBefore = tcpFds();
const rssBefore = await settledRss();
const { heapUsed: heapBefore, heapTotal: heapTotalBefore } = Deno
  .memoryUsage();
peakFds = fdsBefore;

// In five steps, RSS read after each: growth that levels off is the
// allocator's high-water mark; growth that keeps climbing is a leak.
const STEPS = 5;
const rssSteps: number[] = [];
let failed = 0;
let ms = 0;
for (let step = 0; step < STEPS; step++) {
  const count = Math.round(TRIGGERS / STEPS);
  const start = performance.now();
  failed += await fire(url, count, 1_000_000 + step * count);
  ms += performance.now() - start;
  rssSteps.push(await settledRss());
}
const fdsAfterRun = openFds();
await closeIdleConnections();
// Closing is immediate; give the runtime a turn to release the resources.
await new Promise((resolve) => setTimeout(resolve, 0));
const fdsAfterClose = openFds();
const fdMapAfter = fdTargets();
const tcpAfterClose = tcpFds();
const fdsAdded = [...fdMapAfter]
  .filter(([fd, what]) => fdMapBefore.get(fd) !== what)
  .map(([fd, what]) => `${fd} → ${what}`);
const rssAfter = await settledRss();
const { heapUsed: heapAfter, heapTotal: heapTotalAfter } = Deno
  .memoryUsage();
const counts = await honoCounts(target.origin);
await target.stop();

const mb = (bytes: number) => bytes / 2 ** 20;
const growthMb = mb(rssAfter - rssBefore);
const report = {
  kind: "resources",
  triggers: TRIGGERS,
  failed,
  completed: counts.completed,
  lost: TRIGGERS - counts.distinct,
  connections: counts.connections,
  ms,
  gc: gc !== undefined,
  tcp: { before: tcpBefore, afterClose: tcpAfterClose },
  fds: {
    before: fdsBefore,
    peak: peakFds,
    afterRun: fdsAfterRun,
    afterClose: fdsAfterClose,
  },
  rssMb: {
    before: mb(rssBefore),
    steps: rssSteps.map(mb),
    after: mb(rssAfter),
    growth: growthMb,
  },
  heapMb: {
    usedBefore: mb(heapBefore),
    usedAfter: mb(heapAfter),
    totalBefore: mb(heapTotalBefore),
    totalAfter: mb(heapTotalAfter),
  },
  /** RSS growth not explained by V8 reserving a larger heap. */
  outsideHeapGrowthMb: growthMb - mb(heapTotalAfter - heapTotalBefore),
};
console.log(
  `\n${TRIGGERS} triggers, wait: "accepted", reuse, concurrency ${CONCURRENCY}` +
    (gc ? " (RSS after a full GC)" : " (no --expose-gc: RSS without a GC)"),
);
console.log(
  `delivered ${counts.distinct}/${TRIGGERS} (failed ${failed}) over ${counts.connections} connections in ${
    (ms / 1_000).toFixed(1)
  } s`,
);
console.log(
  `open fds: before ${fdsBefore}, peak ${peakFds}, after the run ${fdsAfterRun}, after closeIdleConnections() ${fdsAfterClose} → ${
    fdsAfterClose === fdsBefore ? "back to baseline" : "NOT back to baseline"
  }${fdsAdded.length > 0 ? ` (new: ${fdsAdded.join(", ")})` : ""}`,
);
console.log(
  `TCP sockets: before ${tcpBefore}, after closeIdleConnections() ${tcpAfterClose} → ${
    tcpAfterClose === tcpBefore ? "back to baseline" : "NOT back to baseline"
  } (the runtime opens a Unix socketpair ~2 s into the process: total fds can rise by 2 without a leak)`,
);
console.log(
  `RSS: ${mb(rssBefore).toFixed(1)} MB → ${
    mb(rssAfter).toFixed(1)
  } MB, growth ${growthMb.toFixed(1)} MB (target < ${TARGET_RSS_MB} MB: ${
    growthMb < TARGET_RSS_MB ? "met" : "NOT met"
  })`,
);
console.log(
  `V8 heap: used ${mb(heapBefore).toFixed(1)} → ${
    mb(heapAfter).toFixed(1)
  } MB, reserved (heapTotal) ${mb(heapTotalBefore).toFixed(1)} → ${
    mb(heapTotalAfter).toFixed(1)
  } MB; RSS growth outside the V8 heap ${
    report.outsideHeapGrowthMb.toFixed(1)
  } MB`,
);
console.log(
  `RSS after each ${TRIGGERS / STEPS} (MB): ${
    rssSteps.map((rss) => mb(rss).toFixed(1)).join(", ")
  }`,
);
console.log(JSON.stringify(report));
