// `tail` follows a burst larger than one query's page: 6,000 outcomes
// recorded by one statement (one completed_on for all), above its
// 5,000-row page, are printed in full, each once (a poll that read a full
// page of already-seen outcomes used to stop there, for good). follow()
// with small pages and a bound per poll catches up across polls, in order.
// A page boundary inside one millisecond whose outcomes differ in
// microseconds: the keyset compares at the millisecond `at` is given in.
// Embedded PGlite; PostgreSQL too when TRIGGER_TEST_DATABASE_URL is set.
import assert from "node:assert/strict";
import { openEngine } from "../../src/durable/_engine.ts";
import { checkOpenOptions } from "../../src/durable/_validate.ts";
import {
  ADMIN,
  type Administered,
  adminOf,
  type TailEvent,
} from "../../src/durable/_admin_queries.ts";
import { follow, PAGE_SIZE } from "../../src/durable/_tail.ts";
import { main } from "../../src/durable/cli.ts";
import { openOutbox } from "../../src/durable/mod.ts";
import { DATABASE_URL, freshOptions } from "./_seed.ts";
import { until } from "../_wait.ts";

const N = 6_000;

/** N triggers stored, fetched and completed by pg-boss in one statement
 * each: N deliveries recorded at one instant. */
async function burst(
  options: { dir?: string; connectionString?: string; queue: string },
) {
  const engine = await openEngine(checkOpenOptions(options), () => {});
  try {
    const { boss } = engine;
    await boss.createQueue(`${options.queue}_dead`);
    await boss.createQueue(options.queue, {
      deadLetter: `${options.queue}_dead`,
    });
    await boss.insert(
      options.queue,
      Array.from({ length: N }, (_, n) => ({
        data: {
          id: `burst-${n}`,
          method: "POST",
          url: "http://127.0.0.1:9/",
          headers: [],
          body: null,
          timeout: 1_000,
        },
      })),
    );
    const jobs = await boss.fetch(options.queue, { batchSize: N });
    assert.equal(jobs.length, N);
    await boss.complete(options.queue, jobs.map((job) => job.id), {
      status: 200,
    });
  } finally {
    await engine.close();
  }
}

for (const engine of ["embedded", "postgres"] as const) {
  Deno.test({
    name:
      `tail (${engine}): a burst of ${N} outcomes at one instant, above the ${PAGE_SIZE}-row page, is printed in full and once each; follow() with pages of 100, 2 a poll, catches up in order`,
    ignore: engine === "postgres" && DATABASE_URL === undefined,
    async fn() {
      assert.ok(N > PAGE_SIZE);
      const queue = `t_${crypto.randomUUID().slice(0, 8)}`;
      const { cleanup, ...fresh } = await freshOptions(engine, { queue });
      const options = { ...fresh, queue };
      try {
        await burst(options);

        // The command line, as a user runs it.
        const lines: string[] = [];
        const errors: string[] = [];
        const stop = new AbortController();
        const running = main(
          [
            "tail",
            "--since",
            "10m",
            "--json",
            "--interval",
            "100",
            "--queue",
            queue,
            ...(engine === "embedded"
              ? ["--dir", options.dir!]
              : ["--database-url", DATABASE_URL!]),
          ],
          {
            print: (line) => lines.push(line),
            error: (line) => errors.push(line),
            signal: stop.signal,
          },
        );
        try {
          await until(() => lines.length >= N, `tail printed ${N} outcomes`, {
            interval: 50,
          }).catch((error) => {
            throw new Error(
              `${error.message}: ${lines.length} printed ${errors.join(" ")}`,
            );
          });
          // A few more polls: nothing printed twice.
          await new Promise((resolve) => setTimeout(resolve, 500));
        } finally {
          stop.abort();
          assert.equal(await running, 0, errors.join("\n"));
        }
        const printed = lines.map((line) => JSON.parse(line) as TailEvent);
        assert.equal(printed.length, N, "each once");
        assert.equal(new Set(printed.map((e) => e.id)).size, N);
        assert.ok(printed.every((e) => e.type === "delivered"));

        // follow() with small pages and a bound per poll.
        const outbox = await openOutbox({ ...options, create: false });
        try {
          const seen: TailEvent[] = [];
          const halt = new AbortController();
          const following = follow(
            adminOf(outbox),
            {
              since: 600_000,
              interval: 50,
              signal: halt.signal,
              pageSize: 100,
              pagesPerPoll: 2,
            },
            () => {},
            (event) => seen.push(event),
          );
          try {
            await until(() => seen.length >= N, `follow() read ${N}`, {
              interval: 50,
            }).catch((error) => {
              throw new Error(`${error.message}: ${seen.length} read`);
            });
            await new Promise((resolve) => setTimeout(resolve, 300));
          } finally {
            halt.abort();
            await following;
          }
          assert.equal(seen.length, N, "each once");
          assert.equal(new Set(seen.map((e) => e.jobId)).size, N);
          for (let i = 1; i < seen.length; i++) {
            const [a, b] = [seen[i - 1], seen[i]];
            assert.ok(
              a.at < b.at || (a.at.getTime() === b.at.getTime() &&
                a.jobId < b.jobId),
              `in order at ${i}`,
            );
          }
        } finally {
          await outbox.stop();
        }
      } finally {
        await cleanup();
      }
    },
  });
}

for (const engine of ["embedded", "postgres"] as const) {
  Deno.test({
    name:
      `admin.events() (${engine}): a page boundary inside one millisecond whose outcomes differ in microseconds (in the reverse order of their job ids) loses and repeats nothing`,
    ignore: engine === "postgres" && DATABASE_URL === undefined,
    async fn() {
      const queue = `m_${crypto.randomUUID().slice(0, 8)}`;
      const { cleanup, ...fresh } = await freshOptions(engine, { queue });
      const outbox = await openOutbox({ ...fresh, queue });
      try {
        for (let n = 0; n < 5; n++) {
          await outbox.trigger("http://127.0.0.1:9/", { timeout: 1_000 });
        }
        // Delivered as pg-boss records it: the first four within one
        // millisecond, the later the job id the earlier the microsecond;
        // the fifth in the next millisecond.
        const db = (outbox as unknown as Administered)[ADMIN]().db;
        const { rows } = await db.executeSql(
          `WITH base AS (SELECT date_trunc('milliseconds', now()) - interval '1 second' AS t),
           ranked AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n
             FROM pgboss.job WHERE name = $1)
           UPDATE pgboss.job AS j SET state = 'completed',
             started_on = (SELECT t FROM base),
             completed_on = (SELECT t FROM base) + CASE WHEN r.n < 4
               THEN (350 - r.n * 100) * interval '1 microsecond'
               ELSE interval '1200 microseconds' END
           FROM ranked AS r WHERE j.name = $1 AND j.id = r.id
           RETURNING j.id::text AS id, r.n`,
          [queue],
        );
        assert.equal(rows.length, 5);
        const expected = rows.sort((a, b) => Number(a.n) - Number(b.n))
          .map((row) => row.id);
        const admin = adminOf(outbox);
        const since = new Date(Date.now() - 60_000);
        for (const limit of [1, 2, 3]) {
          const read: string[] = [];
          let after: TailEvent | undefined;
          // Bounded: a keyset that does not move on repeats a page forever.
          for (let page = 0; page < 10; page++) {
            const events = await admin.events(since, { limit, after });
            read.push(...events.map((e) => e.jobId));
            if (events.length < limit) break;
            after = events[events.length - 1];
          }
          assert.deepEqual(read, expected, `pages of ${limit}`);
        }
      } finally {
        await outbox.stop();
        await cleanup();
      }
    },
  });
}
