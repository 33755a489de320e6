// pg-boss deletes a job that still waits once its retention has passed
// since it was first due (14 days by default, retries included), and a dead
// letter 14 days after it was made: the outbox keeps a trigger for its whole
// retry schedule and 365 days more, dead letters 365 days. And it opens only
// queues it can keep its promises on. On PostgreSQL: time is moved by
// replacing pg-boss's clock function in a schema of the test's own.
import assert from "node:assert/strict";
import { openOutbox, OutboxError } from "../../src/durable/mod.ts";
import { DATABASE_URL } from "./_seed.ts";
import { adminOf } from "../../src/durable/_admin_queries.ts";
import { skipUnless } from "../_env.ts";
import { until } from "../_wait.ts";

const PG_BOSS = "npm:pg-boss@12.38.0";
const PG = "npm:pg@8.23.1";
const DAY = 86_400;

/** Moves pg-boss's clock in `schema` (its `job_now()`, which every one of
 * its statements uses) `days` on, then runs one maintenance pass there. */
async function maintenanceLater(
  client: { query(text: string): Promise<unknown> },
  schema: string,
  days: number,
): Promise<void> {
  await client.query(
    `CREATE OR REPLACE FUNCTION ${schema}.job_now() RETURNS timestamptz
       AS $$ SELECT now() + interval '${days} days' $$ LANGUAGE sql STABLE`,
  );
  const { PgBoss } = await import(PG_BOSS);
  const boss = new PgBoss({
    connectionString: DATABASE_URL,
    schema,
    migrate: false,
    supervise: true,
    schedule: false,
  });
  boss.on("error", () => {});
  await boss.start();
  await boss.supervise();
  await boss.stop({ graceful: false, wait: true });
}

if (
  !skipUnless(DATABASE_URL !== undefined, "TRIGGER_TEST_DATABASE_URL unset")
) {
  Deno.test("a trigger retrying on a long schedule and a dead letter outlive pg-boss's 14 days; a redriven one keeps its schedule too", async () => {
    const { default: pg } = await import(PG);
    const schema = `retention_${crypto.randomUUID().slice(0, 8)}`;
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request) =>
        new Response(null, {
          status: new URL(request.url).pathname === "/retry" ? 503 : 404,
        }),
    );
    const origin = `http://127.0.0.1:${server.addr.port}`;
    const events: string[] = [];
    const options = {
      connectionString: DATABASE_URL,
      schema,
      // What the options allow: 30 retries a day apart.
      retry: { limit: 30, delay: 86_400_000, backoff: false },
    };
    try {
      const outbox = await openOutbox({
        ...options,
        onEvent: (event) => events.push(event.type),
      });
      const retrying = await outbox.trigger(`${origin}/retry`);
      const dead = await outbox.trigger(`${origin}/dead`);
      outbox.start({ pollInterval: 50 });
      await until(
        () => events.includes("retry") && events.includes("dead"),
        "a retry and a dead letter",
      );
      await outbox.stop();

      const rows = async () =>
        (await client.query(
          `SELECT name, state, data->>'id' AS id,
             extract(epoch FROM keep_until - created_on)::float8 AS kept
           FROM ${schema}.job ORDER BY name`,
        )).rows as Array<
          { name: string; state: string; id: string; kept: number }
        >;
      const before = await rows();
      const job = before.find((row) => row.id === retrying.id)!;
      assert.equal(job.state, "retry");
      // Its schedule (31 leases, 30 days of delays) and 365 days.
      assert.ok(job.kept >= 30 * DAY + 365 * DAY, String(job.kept));
      const letter = before.find((row) =>
        row.id === dead.id && row.name.endsWith("_dead")
      )!;
      assert.equal(letter.state, "created");
      assert.ok(letter.kept >= 365 * DAY - 60, String(letter.kept));

      // 20 days on, by pg-boss's own clock, and a maintenance pass.
      await maintenanceLater(client, schema, 20);
      // (The dead letter's failed original in the queue goes after pg-boss's
      // 7 days, as finished jobs do: its copy in the dead letters stays.)
      const waiting = (list: typeof before) =>
        list.filter((row) => row.state !== "failed")
          .map((row) => `${row.name} ${row.id} ${row.state}`).sort();
      assert.deepEqual(waiting(await rows()), waiting(before), "kept");
      assert.equal(waiting(before).length, 2);

      // Redriven: the job pg-boss re-creates keeps a schedule's worth too,
      // not the queue's retention.
      const again = await openOutbox(options);
      assert.equal(await again.redrive([dead.id]), 1);
      await again.stop();
      const redriven = (await rows()).find((row) =>
        row.id === dead.id && !row.name.endsWith("_dead")
      )!;
      assert.ok(redriven.kept >= 30 * DAY + 365 * DAY, String(redriven.kept));
    } finally {
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
      await server.shutdown();
    }
  });

  Deno.test("a job another pg-boss producer put in the outbox's queue (no data, a JSON scalar, or data that is no stored request) is dead-lettered INVALID, each with its event", async () => {
    const { PgBoss } = await import(PG_BOSS);
    const { default: pg } = await import(PG);
    const schema = `foreign_${crypto.randomUUID().slice(0, 8)}`;
    const events: Array<{ type: string; id?: string; error?: unknown }> = [];
    const outbox = await openOutbox({
      connectionString: DATABASE_URL,
      schema,
      onEvent: (event) => events.push(event as (typeof events)[number]),
    });
    const boss = new PgBoss({
      connectionString: DATABASE_URL,
      schema,
      schedule: false,
      supervise: false,
      migrate: false,
    });
    boss.on("error", () => {});
    try {
      await boss.start();
      const ids = [
        await boss.send("trigger_outbox", null),
        await boss.send("trigger_outbox", { hello: 1 }),
        // A JSON scalar: pg-boss's types refuse it, its runtime does not.
        await boss.send("trigger_outbox", "hello"),
      ];
      await boss.stop({ graceful: false, wait: true });
      outbox.start({ pollInterval: 50 });
      await until(
        () => events.filter((event) => event.type === "dead").length === 3,
        "three dead letters",
      );
      const dead = events.filter((event) => event.type === "dead");
      assert.deepEqual(dead.map((event) => event.id).sort(), ids.sort());
      for (const event of dead) {
        assert.deepEqual(event.error, {
          code: "INVALID",
          message:
            "the job holds no request an outbox stored (another producer's job in this queue?)",
        });
      }
      assert.deepEqual(events.filter((event) => event.type === "error"), []);
      // Listed and discarded by the ids their events gave, whatever they hold.
      await outbox.stop({ close: false });
      const letters = await outbox.deadLetters();
      assert.deepEqual(letters.map((letter) => letter.id).sort(), ids.sort());
      const listed = await adminOf(outbox).deadLetters();
      assert.deepEqual(
        listed.letters.map((letter) => letter.id).sort(),
        ids.sort(),
      );
      assert.equal(await outbox.discard(ids), 3);
      assert.equal((await outbox.stats()).dead, 0);
    } finally {
      await outbox.stop();
      const client = new pg.Client({ connectionString: DATABASE_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }
  });

  Deno.test("openOutbox() refuses another pg-boss user's queue (a policy other than standard, another or no dead letter queue) with CONFLICT; an earlier release's queues get the 365-day retention", async () => {
    const { PgBoss } = await import(PG_BOSS);
    const { default: pg } = await import(PG);
    const schema = `conflict_${crypto.randomUUID().slice(0, 8)}`;
    const boss = new PgBoss({
      connectionString: DATABASE_URL,
      schema,
      schedule: false,
      supervise: false,
    });
    boss.on("error", () => {});
    await boss.start();
    try {
      await boss.createQueue("short_one", { policy: "short" });
      await boss.createQueue("no_letters", {});
      await boss.createQueue("other_dead", {});
      await boss.createQueue("elsewhere", { deadLetter: "other_dead" });
      // As an earlier release made them: pg-boss's default retention, and
      // rows in them with its 14 days.
      await boss.createQueue("older_dead", {});
      await boss.createQueue("older", { deadLetter: "older_dead" });
      const stored = (id: string) => ({
        id,
        method: "POST",
        url: "http://127.0.0.1:9/x",
        headers: [],
        body: null,
        timeout: 30_000,
      });
      await boss.insert("older", [{
        data: stored("waiting"),
        retryLimit: 30,
        retryDelay: 86_400,
        expireInSeconds: 90,
      }]);
      await boss.insert("older_dead", [{ data: stored("letter") }]);
      // A backlog: extended in batches of 5,000, each its own statement.
      await boss.insert(
        "older",
        Array.from({ length: 12_000 }, (_, i) => ({
          data: stored(`backlog-${i}`),
        })),
      );
      for (
        const [queue, message] of [
          ["short_one", /queue "short_one" has policy "short"/],
          ["no_letters", /queue "no_letters" has no dead letter queue/],
          ["elsewhere", /has dead letter queue "other_dead"/],
        ] as const
      ) {
        for (const create of [true, false]) {
          await assert.rejects(
            openOutbox({
              connectionString: DATABASE_URL,
              schema,
              queue,
              create,
            }),
            (error: unknown) => {
              assert.ok(error instanceof OutboxError, String(error));
              assert.equal(error.code, "CONFLICT");
              assert.match(error.message, message);
              return true;
            },
          );
        }
      }
      const outbox = await openOutbox({
        connectionString: DATABASE_URL,
        schema,
        queue: "older",
      });
      await outbox.stop();
      const queues = await boss.getQueues(["older", "older_dead"]);
      assert.deepEqual(
        queues.map((q: { retentionSeconds: number }) => q.retentionSeconds),
        [365 * DAY, 365 * DAY],
      );
      // The rows already there too (pg-boss never moves a row's own), and
      // they outlive pg-boss's 14 days.
      const client = new pg.Client({ connectionString: DATABASE_URL });
      await client.connect();
      try {
        const kept = async () =>
          (await client.query(
            `SELECT data->>'id' AS id,
               extract(epoch FROM keep_until - created_on)::float8 AS kept
             FROM ${schema}.job WHERE name LIKE 'older%'
               AND data->>'id' NOT LIKE 'backlog-%' ORDER BY 1`,
          )).rows as Array<{ id: string; kept: number }>;
        const rows = await kept();
        assert.deepEqual(rows.map((row) => row.id), ["letter", "waiting"]);
        assert.ok(rows[0].kept >= 365 * DAY, String(rows[0].kept));
        assert.ok(rows[1].kept >= 30 * DAY + 365 * DAY, String(rows[1].kept));
        const { rows: [short] } = await client.query(
          `SELECT count(*)::int AS n FROM ${schema}.job WHERE name = 'older'
             AND keep_until < created_on + interval '365 days'`,
        );
        assert.equal(short.n, 0);
        await maintenanceLater(client, schema, 20);
        assert.deepEqual(
          (await kept()).map((row) => row.id),
          ["letter", "waiting"],
        );
      } finally {
        await client.end();
      }
      // A refused queue got no "_dead" queue of ours next to it.
      assert.deepEqual(
        (await boss.getQueues(["short_one_dead", "no_letters_dead"])).length,
        0,
      );
    } finally {
      await boss.stop({ graceful: false, wait: true });
      const client = new pg.Client({ connectionString: DATABASE_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }
  });
}
