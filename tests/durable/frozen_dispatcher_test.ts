// A dispatcher frozen and thawed (SIGSTOP, SIGCONT), as AWS Lambda, Vercel's
// and Netlify's functions and Cloud Run freeze a process between
// invocations, and as `docker pause` or a laptop's sleep do: while it is
// frozen its leases lapse and another dispatcher takes its jobs. Thawed, it
// must not send the jobs it had fetched ahead and never attempted: those
// belong to the other dispatcher now (docs/durable.md: only requests under
// way may reach the receiver twice).
import assert from "node:assert/strict";
import { openOutbox } from "../../src/durable/mod.ts";
import { lineSplitter } from "../_servers.ts";
import { skipUnless } from "../_env.ts";
import { until, within } from "../_wait.ts";
import { DATABASE_URL, dropQueue } from "./_seed.ts";

const DISPATCHER = new URL("../_durable_dispatcher.ts", import.meta.url);

/** What a run saw: every request's webhook-id in arrival order, the ids
 * under way at the freeze, the database's counts after. */
interface FrozenRun {
  log: string[];
  attempted: Set<string>;
  stats: { queued: number; active: number; dead: number };
}

/**
 * Stores `jobs` triggers to a slow target (2 s an answer), starts a
 * dispatcher process (`concurrency: 4`), freezes it once it has four
 * attempts under way and jobs fetched ahead, and thaws it: after `freezeMs`
 * or, with `other`, once another dispatcher (this process) delivered
 * everything.
 */
async function frozenRun(
  { jobs, retryLimit, freezeMs, other: takeOver }: {
    jobs: number;
    retryLimit: number;
    freezeMs?: number;
    other?: boolean;
  },
): Promise<FrozenRun> {
  const log: string[] = [];
  const target = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      await request.arrayBuffer();
      log.push(request.headers.get("webhook-id")!);
      // Slow: the frozen dispatcher holds attempts under way and jobs
      // fetched ahead that wait for a place.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      return new Response(null, { status: 200 });
    },
  );
  const queue = `frozen_${crypto.randomUUID().slice(0, 8)}`;
  const other = await openOutbox({ connectionString: DATABASE_URL, queue });
  let child: Deno.ChildProcess | undefined;
  let frozen = false;
  try {
    for (let n = 0; n < jobs; n++) {
      await other.trigger(`http://127.0.0.1:${target.addr.port}/job`, {
        json: { n },
        retry: { limit: retryLimit, delay: 0, backoff: false },
      });
    }
    child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        DISPATCHER.href,
        JSON.stringify({
          connectionString: DATABASE_URL,
          queue,
          concurrency: 4,
        }),
      ],
      stdout: "piped",
      stderr: "inherit",
      stdin: "null",
    }).spawn();
    const output: ReadableStreamDefaultReader<string> = child.stdout
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(lineSplitter()).getReader();
    assert.equal(
      (await within(output.read(), "the dispatcher started", 60_000)).value,
      "ready",
    );
    // Four attempts under way at the target, and jobs fetched ahead.
    await until(async () => {
      return log.length >= 4 && (await other.stats()).active > 4;
    }, "the dispatcher holding jobs fetched ahead");
    const attempted = new Set(log);
    Deno.kill(child.pid, "SIGSTOP");
    frozen = true;
    const frozenAt = Date.now();
    if (takeOver) {
      // The other dispatcher delivers everything, the frozen one's jobs
      // too once their leases lapse (10–12 s).
      other.start({ concurrency: 4, pollInterval: 100 });
      await until(
        async () => {
          const stats = await other.stats();
          return stats.queued === 0 && stats.active === 0;
        },
        "every job delivered by the other dispatcher",
        {
          timeout: 60_000,
          interval: 200,
        },
      );
    } else {
      await new Promise((resolve) => setTimeout(resolve, freezeMs));
    }
    Deno.kill(child.pid, "SIGCONT");
    frozen = false;
    const thawedAt = Date.now();
    // The thawed dispatcher acts on what it holds (before, it sent its
    // jobs fetched ahead at once): until everything settled, then 2 s more.
    await until(
      async () => {
        const stats = await other.stats();
        return stats.queued === 0 && stats.active === 0;
      },
      "every job settled",
      { timeout: 60_000, interval: 200 },
    );
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    child.kill("SIGTERM");
    const own = JSON.parse(
      (await within(output.read(), "the dispatcher's stats", 30_000)).value!,
    );
    await within(child.status, "the dispatcher exited", 30_000);
    await output.cancel();
    console.log(
      `frozen ${
        thawedAt - frozenAt
      } ms; ${attempted.size} attempts under way at the freeze; ${log.length} requests for ${jobs} jobs; the thawed dispatcher delivered ${own.delivered}`,
    );
    return { log, attempted, stats: await other.stats() };
  } finally {
    if (child !== undefined) {
      if (frozen) Deno.kill(child.pid, "SIGCONT");
      try {
        child.kill("SIGKILL");
      } catch {
        // Exited already.
      }
      await child.status;
    }
    await other.stop().catch(() => {});
    await target.shutdown();
    await dropQueue(queue);
  }
}

function counts(log: string[]): Map<string, number> {
  const counted = new Map<string, number>();
  for (const id of log) counted.set(id, (counted.get(id) ?? 0) + 1);
  return counted;
}

const ignore = skipUnless(
  DATABASE_URL !== undefined,
  "TRIGGER_TEST_DATABASE_URL is not set (bash .ci/postgres.sh)",
);

Deno.test({
  name:
    "a dispatcher frozen past its leases, then thawed, does not send the jobs it had fetched ahead, which another dispatcher took meanwhile",
  ignore,
  async fn() {
    const { log, attempted } = await frozenRun({
      jobs: 24,
      retryLimit: 5,
      other: true,
    });
    const counted = counts(log);
    assert.equal(counted.size, 24, "every job reached the target");
    const twice = [...counted].filter(([id, n]) => n > 1 && !attempted.has(id));
    assert.deepEqual(
      twice,
      [],
      "jobs first sent after the freeze began were sent once",
    );
  },
});

Deno.test({
  name:
    "a dispatcher frozen 6.2 s, its leases at risk but not lapsed, renews them when thawed and delivers what it fetched ahead, each once, none lapsing into a dead letter (retry.limit: 0)",
  ignore,
  async fn() {
    const { log, stats } = await frozenRun({
      jobs: 16,
      retryLimit: 0,
      freezeMs: 6_200,
    });
    assert.equal(stats.dead, 0, "no dead letters");
    const counted = counts(log);
    assert.equal(counted.size, 16, "every job reached the target");
    assert.deepEqual([...counted].filter(([, n]) => n > 1), [], "each once");
  },
});
