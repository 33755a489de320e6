// redrive(ids) and discard(ids) look their dead letters up in one statement
// however many ids they are given (a statement per id before): 1,000 dead
// letters by id, unknown ids and repeats among them, on pg-boss's real
// schema (embedded PGlite; PostgreSQL too when TRIGGER_TEST_DATABASE_URL is
// set), the statements counted on the database handles. A redriven job gets
// the retry settings its trigger was stored with, not pg-boss's defaults (the
// redriving outbox's for what an older stored form lacks). Dead letters
// pg-boss cannot move back (no chain, no source queue) neither break nor
// loop a redrive: they stay for discard(). On PostgreSQL each test deletes
// the queues it made (and their jobs) from the shared pgboss schema.
import assert from "node:assert/strict";
import type { PgBoss } from "npm:pg-boss@12.38.0";
import { type Engine, openEngine } from "../../src/durable/_engine.ts";
import { jobRow } from "../../src/durable/_enqueue.ts";
import { checkOpenOptions } from "../../src/durable/_validate.ts";
import * as admin from "../../src/durable/_admin.ts";
import { ADMIN, type Administered } from "../../src/durable/_admin_queries.ts";
import {
  openOutbox,
  OutboxError,
  type OutboxEvent,
} from "../../src/durable/mod.ts";
import { copyDeadLetters, freshOptions } from "./_seed.ts";
import { until } from "../_wait.ts";
import {
  countByState,
  countDeadLetters,
  type Sql,
} from "../../src/durable/_pgboss_sql.ts";

const DATABASE_URL = Deno.env.get("TRIGGER_TEST_DATABASE_URL");
const N = 1_000;

for (const engine of ["embedded", "PostgreSQL"] as const) {
  Deno.test({
    name:
      `redrive(ids) and discard(ids) (${engine}): 1,000 ids in one lookup statement each; unknown and repeated ids count for nothing`,
    ignore: engine === "PostgreSQL" && DATABASE_URL === undefined,
    async fn() {
      const dir = engine === "embedded"
        ? await Deno.makeTempDir({ prefix: "outbox_admin_" })
        : undefined;
      const queue = `a_${crypto.randomUUID().slice(0, 8)}`;
      const queues = { queue, dead: `${queue}_dead`, schema: "pgboss" };
      const db = await openEngine(
        checkOpenOptions(
          dir ? { dir, queue } : { connectionString: DATABASE_URL, queue },
        ),
        () => {},
      );
      try {
        const { boss } = db;
        await boss.createQueue(queues.dead);
        await boss.createQueue(queue, { deadLetter: queues.dead });
        // N dead letters: stored triggers (data.id is the trigger's id),
        // fetched, failed with no retries left.
        const ids = Array.from({ length: N }, (_, n) => `trigger-${n}`);
        await boss.insert(
          queue,
          ids.map((id) => ({ data: { id }, retryLimit: 0 })),
        );
        const fetched = await boss.fetch(queue, { batchSize: N });
        assert.equal(fetched.length, N);
        await boss.fail(queue, fetched, { code: "HTTP_STATUS" });
        assert.equal(
          await countDeadLetters(boss.getDb() as Sql, "pgboss", queues.dead),
          N,
        );

        // Statements on the queues (a queue's name is their first value),
        // counted on the handle pg-boss and the outbox share and on the
        // outbox's transactions.
        const sql = boss.getDb() as Sql;
        let statements = 0;
        const counting = (on: Sql): Sql => ({
          executeSql(text, values) {
            if (values?.[0] === queues.dead || values?.[0] === queue) {
              statements++;
            }
            return on.executeSql(text, values);
          },
        });
        const original = sql.executeSql;
        sql.executeSql = counting({
          executeSql: (text, values) => original.call(sql, text, values),
        }).executeSql;
        const transaction = db.transaction;
        db.transaction = (what, fn, unknown) =>
          transaction(what, (tx) => fn(counting(tx)), unknown);
        try {
          const unknown = ["nope-1", "nope-2"];
          const half = ids.slice(0, N / 2);
          const redriven = await admin.redrive(db, queues, {
            ids: [...half, ...unknown, half[0]],
            fallback: RETRY,
          });
          assert.equal(
            redriven,
            N / 2,
            "unknown and repeated ids: not counted",
          );
          assert.ok(
            statements <= 3,
            `${statements} statements for ${
              N / 2
            } ids (one lookup, one redrive, one update of the redriven jobs)`,
          );

          statements = 0;
          const rest = ids.slice(N / 2);
          const discarded = await admin.discard(db, queues, [
            ...rest,
            ...unknown,
            rest[0],
            rest[0],
          ]);
          assert.equal(discarded, N / 2);
          assert.ok(
            statements <= 2,
            `${statements} statements for ${
              N / 2
            } ids (one lookup, one delete)`,
          );
          // Asked again: nothing left to find, nothing counted.
          assert.equal(await admin.discard(db, queues, ids), 0);
          assert.equal(
            await admin.redrive(db, queues, { ids, fallback: RETRY }),
            0,
          );
          assert.equal(
            await admin.redrive(db, queues, { ids: [], fallback: RETRY }),
            0,
          );
        } finally {
          sql.executeSql = original;
          db.transaction = transaction;
        }
        const counts = new Map(
          (await countByState(sql, "pgboss", [queue, queues.dead])).map((
            r,
          ) => [`${r.name} ${r.state}`, r.count]),
        );
        assert.equal(counts.get(`${queue} created`), N / 2, "redriven");
        assert.equal(counts.get(`${queues.dead} created`), undefined);
      } finally {
        try {
          if (!dir) await deleteQueues(db.boss, queues);
        } finally {
          await db.close();
          if (dir) await Deno.remove(dir, { recursive: true });
        }
      }
    },
  });
}

for (const engine of ["embedded", "postgres"] as const) {
  Deno.test({
    name:
      `redrive() (${engine}): the redriven job gets the retry limit, delay, backoff and lease its trigger was stored with (not the queue's 2 retries, no delay) and is retried that many times`,
    ignore: engine === "postgres" && DATABASE_URL === undefined,
    async fn() {
      const { cleanup, ...options } = await freshOptions(engine);
      const queue = options.queue ?? "trigger_outbox";
      const server = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen() {} },
        (request) =>
          new Response(null, {
            status: new URL(request.url).pathname === "/bad" ? 400 : 500,
          }),
      );
      const url = `http://127.0.0.1:${server.addr.port}`;
      const events: OutboxEvent[] = [];
      const outbox = await openOutbox({
        ...options,
        onEvent: (event) => events.push(event),
      });
      const kinds = (id: string) =>
        events.filter((e) => e.type !== "error" && e.id === id).map((e) =>
          e.type
        );
      const sql = (outbox as unknown as Administered)[ADMIN]().db;
      /** The waiting job of a trigger, as pg-boss stored it. */
      const waiting = async (id: string) => {
        const { rows } = await sql.executeSql(
          `SELECT id::text AS id, retry_limit, retry_delay, retry_backoff,
             retry_delay_max, expire_seconds, data->>'job' AS job
           FROM pgboss.job WHERE name = $1 AND state = 'created'
             AND data->>'id' = $2`,
          [queue, id],
        );
        assert.equal(rows.length, 1, `one waiting job of ${id}`);
        return rows[0];
      };
      try {
        // Retried (500): 3 retries 1 s apart, a 4 s timeout.
        const { id: failing } = await outbox.trigger(`${url}/fail`, {
          timeout: 4_000,
          retry: { limit: 3, delay: 1_000, backoff: false },
        });
        // Dead at once (400), whatever its settings.
        const { id: refused } = await outbox.trigger(`${url}/bad`, {
          timeout: 10_000,
          retry: { limit: 7, delay: 7_000, backoff: true, maxDelay: 90_000 },
        });
        // A delay of 0 with backoff, stored before such a job was stored
        // without backoff (pg-boss's backoff starts from 1 s): the stored
        // form rewritten to the old one below.
        const { id: zero } = await outbox.trigger(`${url}/bad`, {
          retry: { limit: 2, delay: 0, backoff: true },
        });
        outbox.start({ pollInterval: 100 });
        await until(
          () =>
            kinds(failing).length === 4 && kinds(refused).length === 1 &&
            kinds(zero).length === 1,
          "the triggers dead-lettered",
        );
        assert.deepEqual(kinds(failing), ["retry", "retry", "retry", "dead"]);
        assert.deepEqual(kinds(refused), ["dead"]);
        // Not dispatching while the redriven jobs are read.
        await outbox.stop({ close: false });
        const { rows: old } = await sql.executeSql(
          `UPDATE pgboss.job
              SET data = data || '{"retryBackoff": true, "retryDelayMax": 300}'
            WHERE name = $1 AND data->>'id' = $2 RETURNING id`,
          [`${queue}_dead`, zero],
        );
        assert.equal(old.length, 1);

        assert.equal(await outbox.redrive(), 3);
        const stored = new Map<string, Record<string, unknown>>([
          [failing, {
            retry_limit: 3,
            retry_delay: 1,
            retry_backoff: false,
            expire_seconds: 4 + 60,
          }],
          [refused, {
            retry_limit: 7,
            retry_delay: 7,
            retry_backoff: true,
            retry_delay_max: 90,
            expire_seconds: 10 + 60,
          }],
          [zero, {
            retry_limit: 2,
            retry_delay: 0,
            retry_backoff: false,
            retry_delay_max: null,
          }],
        ]);
        for (const [id, settings] of stored) {
          const row = await waiting(id);
          assert.deepEqual(row, { ...row, ...settings }, id);
          assert.equal(row.job, row.id, "the stored form names the new job");
        }

        // Delivered again: 3 retries, then dead (the stored form says so).
        outbox.start({ pollInterval: 100 });
        await until(
          () =>
            kinds(failing).length === 8 && kinds(refused).length === 2 &&
            kinds(zero).length === 2,
          "the redriven triggers dead-lettered again",
        );
        assert.deepEqual(kinds(failing).slice(4), [
          "retry",
          "retry",
          "retry",
          "dead",
        ]);
        assert.deepEqual(kinds(refused), ["dead", "dead"]);
        const stats = await outbox.stats();
        assert.equal(stats.dead, 3);
        assert.equal(events.filter((e) => e.type === "error").length, 0);
      } finally {
        await outbox.stop();
        await server.shutdown();
        if (engine === "postgres") {
          const db = await openEngine(checkOpenOptions(options), () => {});
          try {
            await deleteQueues(db.boss, { queue, dead: `${queue}_dead` });
          } finally {
            await db.close();
          }
        }
        await cleanup();
      }
    },
  });
}

/** Deletes a test's queue and its dead letter queue, with their jobs (the
 * queue first: it names the other as its dead letter queue), so a test on
 * PostgreSQL leaves nothing in the shared pgboss schema. */
async function deleteQueues(
  boss: PgBoss,
  { queue, dead }: { queue: string; dead: string },
): Promise<void> {
  await boss.deleteQueue(queue);
  await boss.deleteQueue(dead);
}

/** `count` dead letters of `queue`, as the dispatcher leaves them: stored
 * triggers `${prefix}-n` (their retry settings in the stored form), fetched,
 * failed with no retries left. */
async function deadLettered(
  boss: PgBoss,
  queue: string,
  prefix: string,
  count: number,
): Promise<void> {
  await boss.insert(
    queue,
    Array.from({ length: count }, (_, n) =>
      jobRow(
        crypto.randomUUID(),
        {
          id: `${prefix}-${n}`,
          method: "POST",
          url: "http://127.0.0.1:9/",
          headers: [],
          body: null,
          timeout: 2_000,
        },
        { limit: 0, delay: 5_000, backoff: false, maxDelay: 0 },
        undefined,
      )),
  );
  const fetched = await boss.fetch(queue, { batchSize: count });
  assert.equal(fetched.length, count);
  await boss.fail(queue, fetched, { code: "HTTP_STATUS" });
}

/** The engine's transactions counted; past `max`, one rejects instead of
 * running (a redrive that loops fails rather than hangs). */
function countTransactions(engine: Engine, max: number): () => number {
  let count = 0;
  const transaction = engine.transaction;
  engine.transaction = (what, fn, unknown) => {
    if (++count > max) {
      return Promise.reject(new Error(`more than ${max} transactions`));
    }
    return transaction(what, fn, unknown);
  };
  return () => count;
}

/** What the queue and dead letter queue hold, by queue and state. */
async function byState(engine: Engine, queues: admin.Queues) {
  return new Map(
    (await countByState(engine.boss.getDb() as Sql, queues.schema, [
      queues.queue,
      queues.dead,
    ])).map((
      r,
    ) => [`${r.name === queues.queue ? "queue" : "dead"} ${r.state}`, r.count]),
  );
}

/** A queue and its dead letter queue on a fresh engine: in pg-boss's
 * shared `pgboss` schema, or in a `schema` of the test's own (dropped on
 * close, on PostgreSQL). */
async function openQueues(
  engine: "embedded" | "postgres",
  schema = "pgboss",
  queryTimeout?: number,
) {
  const { cleanup, ...options } = await freshOptions(engine);
  const queue = `r_${crypto.randomUUID().slice(0, 8)}`;
  const queues = { queue, dead: `${queue}_dead`, schema };
  const db = await openEngine(
    checkOpenOptions({ ...options, queue, schema, queryTimeout }),
    () => {},
  );
  await db.boss.createQueue(queues.dead);
  await db.boss.createQueue(queue, { deadLetter: queues.dead });
  const sql = db.boss.getDb() as Sql;
  return {
    db,
    queues,
    sql,
    async close() {
      try {
        if (engine === "postgres") {
          if (schema === "pgboss") await deleteQueues(db.boss, queues);
          else await sql.executeSql(`DROP SCHEMA ${schema} CASCADE`);
        }
      } finally {
        await db.close();
        await cleanup();
      }
    },
  };
}

const RETRY = { limit: 5, delay: 2_000, backoff: true, maxDelay: 300_000 };

for (const engine of ["embedded", "postgres"] as const) {
  Deno.test({
    name:
      `redrive() (${engine}): a dead letter with no chain (neither source_root_id nor source_id) is left for discard(), the others move, batch by batch`,
    ignore: engine === "postgres" && DATABASE_URL === undefined,
    async fn() {
      const { db, queues, sql, close } = await openQueues(engine);
      try {
        await deadLettered(db.boss, queues.queue, "valid", 3);
        // Oldest: first in every batch.
        await sql.executeSql(
          `INSERT INTO pgboss.job (name, data, source_name, created_on)
           SELECT name, jsonb_set(data, '{id}', '"orphan"'), source_name,
             now() - interval '1 hour'
           FROM pgboss.job WHERE name = $1 LIMIT 1`,
          [queues.dead],
        );
        // One stored before the form carried more than the retry limit.
        await sql.executeSql(
          `UPDATE pgboss.job
           SET data = data - 'retryDelay' - 'retryBackoff' - 'retryDelayMax'
           WHERE name = $1 AND data->>'id' = 'valid-0'`,
          [queues.dead],
        );
        const transactions = countTransactions(db, 10);
        assert.equal(
          await admin.redrive(db, queues, { fallback: RETRY, batch: 2 }),
          3,
        );
        const { rows } = await sql.executeSql(
          `SELECT data->>'id' AS id, retry_limit, retry_delay, retry_backoff,
             retry_delay_max, (data->>'retryDelay')::int AS stored_delay
           FROM pgboss.job WHERE name = $1 AND state = 'created'
           ORDER BY data->>'id'`,
          [queues.queue],
        );
        assert.deepEqual(rows, [
          // The stored limit; the rest the redriving outbox's (RETRY).
          {
            id: "valid-0",
            retry_limit: 0,
            retry_delay: 2,
            retry_backoff: true,
            retry_delay_max: 300,
            stored_delay: 2,
          },
          ...["valid-1", "valid-2"].map((id) => ({
            id,
            retry_limit: 0,
            retry_delay: 5,
            retry_backoff: false,
            retry_delay_max: null,
            stored_delay: 5,
          })),
        ]);
        assert.equal(transactions(), 2, "batches of 2, 2 then 1");
        // By id: not found (no uuid cast of a missing chain).
        assert.equal(
          await admin.redrive(db, queues, { ids: ["orphan"], fallback: RETRY }),
          0,
        );
        const counts = await byState(db, queues);
        assert.equal(counts.get("queue created"), 3, "the valid ones moved");
        assert.equal(counts.get("dead created"), 1, "the orphan stays");
        assert.equal(await admin.discard(db, queues, ["orphan"]), 1);
        assert.equal(
          (await byState(db, queues)).get("dead created"),
          undefined,
        );
      } finally {
        await close();
      }
    },
  });

  Deno.test({
    name:
      `redrive() (${engine}): a full batch (${admin.REDRIVE_BATCH}) of dead letters pg-boss cannot route (no source_name) does not make it loop; the routable ones behind it move`,
    ignore: engine === "postgres" && DATABASE_URL === undefined,
    async fn() {
      const { db, queues, sql, close } = await openQueues(engine);
      try {
        await deadLettered(db.boss, queues.queue, "valid", 3);
        await sql.executeSql(
          `INSERT INTO pgboss.job (name, data, source_id, created_on)
           SELECT $1, jsonb_build_object('id', 'unroutable-' || n),
             gen_random_uuid(), now() - interval '1 hour'
           FROM generate_series(1, $2::int) AS n`,
          [queues.dead, admin.REDRIVE_BATCH],
        );
        const transactions = countTransactions(db, 10);
        assert.equal(await admin.redrive(db, queues, { fallback: RETRY }), 3);
        assert.equal(transactions(), 1);
        const counts = await byState(db, queues);
        assert.equal(counts.get("queue created"), 3);
        assert.equal(counts.get("dead created"), admin.REDRIVE_BATCH);
        // Once nothing routable is left: one transaction, nothing moved.
        assert.equal(await admin.redrive(db, queues, { fallback: RETRY }), 0);
        assert.equal(transactions(), 2);
      } finally {
        await close();
      }
    },
  });
}

for (const engine of ["embedded", "postgres"] as const) {
  Deno.test({
    name:
      `redrive() (${engine}): a batch whose re-created jobs cannot all be given their stored settings is rolled back, and the DATABASE error says how many earlier batches moved (they stay moved)`,
    ignore: engine === "postgres" && DATABASE_URL === undefined,
    async fn() {
      // A schema of the test's own: the trigger below is on its job table.
      const schema = `rb_${crypto.randomUUID().slice(0, 8)}`;
      const { db, queues, sql, close } = await openQueues(engine, schema);
      try {
        await deadLettered(db.boss, queues.queue, "valid", 3);
        // The dead letter the second batch (of 2) takes: the last in order.
        const { rows: [last] } = await sql.executeSql(
          `SELECT data->>'id' AS trigger FROM ${schema}.job WHERE name = $1
           ORDER BY created_on DESC, id DESC LIMIT 1`,
          [queues.dead],
        );
        // Its re-created job keeps the queue's settings: the update that
        // gives it the stored ones is skipped (what a pg-boss whose
        // redrive() re-created jobs differently would cause).
        await sql.executeSql(
          `CREATE FUNCTION ${schema}.skip_restore() RETURNS trigger
           LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$`,
        );
        await sql.executeSql(
          `CREATE TRIGGER skip_restore BEFORE UPDATE ON ${schema}.job
           FOR EACH ROW WHEN (NEW.name = '${queues.queue}'
             AND NEW.data->>'id' = '${last.trigger}')
           EXECUTE FUNCTION ${schema}.skip_restore()`,
        );
        const transactions = countTransactions(db, 10);
        await assert.rejects(
          admin.redrive(db, queues, { fallback: RETRY, batch: 2 }),
          (error: unknown) => {
            assert.ok(error instanceof OutboxError, String(error));
            assert.equal(error.code, "DATABASE", error.message);
            assert.equal(error.done, 2);
            assert.match(
              error.message,
              /re-created 1 jobs .* but 0 could be given their stored retry settings; this batch was rolled back .*\(2 redriven by the batches before it: those stay redriven; call again for the rest\)/,
            );
            return true;
          },
        );
        assert.equal(transactions(), 2);
        const counts = await byState(db, queues);
        assert.equal(counts.get("queue created"), 2, "the first batch moved");
        assert.equal(counts.get("dead created"), 1, "the second one did not");
      } finally {
        await close();
      }
    },
  });
}

for (const engine of ["embedded", "postgres"] as const) {
  Deno.test({
    name:
      `redrive(ids) and discard(ids) (${engine}): ids in batches, one transaction each (distinct ids; unknown ones count for nothing); a batch that fails says, in done and the message, how many the batches before it did`,
    ignore: engine === "postgres" && DATABASE_URL === undefined,
    async fn() {
      const schema = `rb_${crypto.randomUUID().slice(0, 8)}`;
      const { db, queues, sql, close } = await openQueues(engine, schema);
      try {
        await deadLettered(db.boss, queues.queue, "r", 5);
        await deadLettered(db.boss, queues.queue, "d", 5);
        const ids = (prefix: string) =>
          Array.from({ length: 5 }, (_, n) => `${prefix}-${n}`);
        const transactions = countTransactions(db, 10);
        // The outbox closing between batches: CLOSED, with the count so far.
        let batches = 0;
        const closed = new OutboxError("CLOSED", "closed by the test");
        await assert.rejects(
          admin.redrive(db, queues, {
            ids: ids("r").slice(0, 3),
            fallback: RETRY,
            batch: 2,
            // Asked before each batch: closed before the second.
            closing: () => ++batches === 2 ? closed : undefined,
          }),
          (error: unknown) => {
            assert.ok(error instanceof OutboxError, String(error));
            assert.equal(error.code, "CLOSED");
            assert.equal(error.done, 2);
            return true;
          },
        );
        assert.equal(batches, 2);
        assert.equal(transactions(), 1);
        // 6 distinct ids that can be stored (not the one with a NUL), 2 at a
        // time: 3 batches; 3 dead letters left to move.
        assert.equal(
          await admin.redrive(db, queues, {
            ids: [...ids("r"), "r-0", "r-4", "unknown", "\0"],
            fallback: RETRY,
            batch: 2,
          }),
          3,
        );
        assert.equal(transactions(), 4);
        // A dead letter whose delete fails: the third batch's.
        await sql.executeSql(
          `CREATE FUNCTION ${schema}.refuse() RETURNS trigger
           LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'refused by the test'; END $$`,
        );
        await sql.executeSql(
          `CREATE TRIGGER refuse BEFORE DELETE ON ${schema}.job
           FOR EACH ROW WHEN (OLD.data->>'id' = 'd-4')
           EXECUTE FUNCTION ${schema}.refuse()`,
        );
        await assert.rejects(
          admin.discard(db, queues, ids("d"), { batch: 2 }),
          (error: unknown) => {
            assert.ok(error instanceof OutboxError, String(error));
            assert.equal(error.code, "DATABASE", error.message);
            assert.equal(error.done, 4);
            assert.match(error.message, /refused by the test/);
            assert.match(
              error.message,
              /\(4 discarded by the batches before it: those stay discarded; call again for the rest\)/,
            );
            return true;
          },
        );
        assert.equal(transactions(), 7);
        assert.equal((await byState(db, queues)).get("dead created"), 1);
        // A failure in the first batch: done 0, and the message as it was.
        await assert.rejects(
          admin.discard(db, queues, ["d-4"], { batch: 2 }),
          (error: unknown) => {
            assert.ok(error instanceof OutboxError, String(error));
            assert.equal(error.done, 0);
            assert.doesNotMatch(error.message, /batches before it/);
            return true;
          },
        );
      } finally {
        await close();
      }
    },
  });
}

Deno.test({
  name:
    "redrive() (postgres): a statement past queryTimeout is cancelled by the server too (statement_timeout), not left running with its rows locked; the next redrive moves them",
  ignore: DATABASE_URL === undefined,
  async fn() {
    const schema = `rb_${crypto.randomUUID().slice(0, 8)}`;
    const { db, queues, sql, close } = await openQueues(
      "postgres",
      schema,
      1_000,
    );
    try {
      await deadLettered(db.boss, queues.queue, "slow", 3);
      // The job redrive() re-creates takes 60 s to insert.
      await sql.executeSql(
        `CREATE FUNCTION ${schema}.slow() RETURNS trigger
         LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_sleep(60); RETURN NEW; END $$`,
      );
      await sql.executeSql(
        `CREATE TRIGGER slow BEFORE INSERT ON ${schema}.job
         FOR EACH ROW WHEN (NEW.name = '${queues.queue}')
         EXECUTE FUNCTION ${schema}.slow()`,
      );
      await assert.rejects(
        admin.redrive(db, queues, { fallback: RETRY }),
        (error: unknown) => {
          assert.ok(error instanceof OutboxError, String(error));
          // The client's bound or the server's, whichever is seen first.
          assert.ok(
            error.code === "TIMEOUT" || error.code === "DATABASE",
            error.message,
          );
          return true;
        },
      );
      // Without the server's bound the statement sleeps on for a minute.
      const sleeping = async () =>
        Number(
          (await sql.executeSql(
            `SELECT count(*) AS n FROM pg_stat_activity
             WHERE wait_event = 'PgSleep' AND state = 'active'
               AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()`,
            [schema],
          )).rows[0].n,
        );
      await until(
        async () => await sleeping() === 0,
        "the redrive's statement still runs on the server",
        { timeout: 20_000, interval: 100 },
      );
      await sql.executeSql(`DROP TRIGGER slow ON ${schema}.job`);
      assert.equal(await admin.redrive(db, queues, { fallback: RETRY }), 3);
    } finally {
      await close();
    }
  },
});

Deno.test({
  name:
    "engine.transaction() (postgres): once queryTimeout has passed, the transaction's next statement is refused, not sent",
  ignore: DATABASE_URL === undefined,
  async fn() {
    const { db, close } = await openQueues("postgres", "pgboss", 600);
    try {
      const ran: number[] = [];
      let finished!: () => void;
      const ended = new Promise<void>((resolve) => finished = resolve);
      await assert.rejects(
        db.transaction("Cannot test", async (tx) => {
          try {
            for (let n = 0; n < 4; n++) {
              await tx.executeSql("SELECT pg_sleep(0.4)");
              ran.push(n);
            }
          } finally {
            finished();
          }
        }, "(unknown)"),
        (error: unknown) => {
          assert.ok(error instanceof OutboxError, String(error));
          assert.equal(error.code, "TIMEOUT", error.message);
          return true;
        },
      );
      await ended;
      // At most the statement in flight when the bound passed finished
      // (without the refusal all four ran, 1.6 s).
      assert.ok(ran.length <= 2, `statements run: ${ran.join(", ")}`);
    } finally {
      await close();
    }
  },
});

Deno.test({
  name:
    "engine.transaction() (postgres): a statement_timeout or idle_in_transaction_session_timeout tighter than queryTimeout (the connection's, a role's) is kept, not raised",
  ignore: DATABASE_URL === undefined,
  async fn() {
    const url = new URL(DATABASE_URL!);
    url.searchParams.set(
      "options",
      "-c statement_timeout=300 -c idle_in_transaction_session_timeout=400",
    );
    for (
      const [connectionString, expected] of [
        [url.href, ["300ms", "400ms"]],
        [DATABASE_URL!, ["10s", "10s"]],
      ] as const
    ) {
      const db = await openEngine(
        checkOpenOptions({
          connectionString,
          queue: `r_${crypto.randomUUID().slice(0, 8)}`,
          queryTimeout: 10_000,
          create: false,
        }),
        () => {},
      );
      try {
        const shown = await db.transaction(
          "Cannot test",
          async (tx) => [
            (await tx.executeSql("SHOW statement_timeout")).rows[0]
              .statement_timeout,
            (await tx.executeSql("SHOW idle_in_transaction_session_timeout"))
              .rows[0].idle_in_transaction_session_timeout,
          ],
          "(unknown)",
        );
        assert.deepEqual(shown, expected);
      } finally {
        await db.close();
      }
    }
  },
});

Deno.test({
  name:
    "redrive() (postgres): 20,000 dead letters the planner's statistics do not know of (analysed before they came, autoanalyze off) move batch by batch within queryTimeout (pg-boss's statement went quadratic: TIMEOUT)",
  ignore: DATABASE_URL === undefined,
  async fn() {
    const schema = `rb_${crypto.randomUUID().slice(0, 8)}`;
    const { db, queues, sql, close } = await openQueues(
      "postgres",
      schema,
      2_500,
    );
    try {
      const table = `${schema}.job_common`;
      await sql.executeSql(
        `ALTER TABLE ${table} SET (autovacuum_enabled = false)`,
      );
      await deadLettered(db.boss, queues.queue, "stale", 1);
      // On a client of its own: the engine's statements are bounded by the
      // test's 2.5 s.
      const { default: pg } = await import("npm:pg@8.23.1");
      const seeder = new pg.Client({ connectionString: DATABASE_URL });
      await seeder.connect();
      try {
        // 19,999 copies of the dead letter, each a chain of its own.
        const copies = (into: string) =>
          copyDeadLetters(seeder, schema, queues.dead, "copy", {
            count: 19_999,
            into,
          });
        // Statistics taken while the table held 20,000 rows of the queue
        // and one dead letter; then the dead letters come.
        await copies(queues.queue);
        await seeder.query(`ANALYZE ${table}`);
        await seeder.query(`DELETE FROM ${table} WHERE name = $1`, [
          queues.queue,
        ]);
        await copies(queues.dead);
      } finally {
        await seeder.end();
      }
      assert.equal(
        await admin.redrive(db, queues, { fallback: RETRY }),
        20_000,
      );
      const counts = await byState(db, queues);
      assert.equal(counts.get("queue created"), 20_000);
      assert.equal(counts.get("dead created"), undefined);
    } finally {
      await close();
    }
  },
});
