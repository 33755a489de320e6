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

Deno.test({
  name:
    "a dispatcher frozen past its leases, then thawed, does not send the jobs it had fetched ahead, which another dispatcher took meanwhile",
  ignore: skipUnless(
    DATABASE_URL !== undefined,
    "TRIGGER_TEST_DATABASE_URL is not set (bash .ci/postgres.sh)",
  ),
  async fn() {
    const log: Array<{ id: string; at: number }> = [];
    const target = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (request) => {
        await request.arrayBuffer();
        log.push({ id: request.headers.get("webhook-id")!, at: Date.now() });
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
      const jobs = 24;
      for (let n = 0; n < jobs; n++) {
        await other.trigger(`http://127.0.0.1:${target.addr.port}/job`, {
          json: { n },
          retry: { limit: 5, delay: 0, backoff: false },
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
      const attempted = new Set(log.map((entry) => entry.id));
      Deno.kill(child.pid, "SIGSTOP");
      frozen = true;
      const frozenAt = Date.now();
      // The other dispatcher delivers everything, the frozen one's jobs too
      // once their leases lapse (10–12 s).
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
      const thawedAt = Date.now();
      Deno.kill(child.pid, "SIGCONT");
      frozen = false;
      // Time for the thawed dispatcher to act on what it holds (before,
      // it sent its jobs fetched ahead at once).
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      child.kill("SIGTERM");
      const stats = JSON.parse(
        (await within(output.read(), "the dispatcher's stats", 30_000)).value!,
      );
      await within(child.status, "the dispatcher exited", 30_000);
      await output.cancel();
      console.log(
        `frozen ${
          thawedAt - frozenAt
        } ms; ${attempted.size} attempts under way at the freeze; ${log.length} requests for ${jobs} jobs; the thawed dispatcher delivered ${stats.delivered}`,
      );
      const counts = new Map<string, number>();
      for (const { id } of log) counts.set(id, (counts.get(id) ?? 0) + 1);
      assert.equal(counts.size, jobs, "every job reached the target");
      const twice = [...counts].filter(([id, n]) =>
        n > 1 && !attempted.has(id)
      );
      assert.deepEqual(
        twice,
        [],
        "jobs first sent after the freeze began were sent once",
      );
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
  },
});
