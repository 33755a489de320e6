// The outbox reaches past pg-boss's API in src/durable/_pgboss_sql.ts. These
// tests install pg-boss's real schema (the pinned version, on an in-memory
// PGlite, and on PostgreSQL when TRIGGER_TEST_DATABASE_URL is set) and run
// every statement there: a pg-boss upgrade that renames or drops what they
// rely on fails here, loudly, naming what is missing.
import assert from "node:assert/strict";
import { PGlite } from "npm:@electric-sql/pglite@0.5.16";
import { fromPglite, PgBoss } from "npm:pg-boss@12.38.0";
import {
  countByState,
  countByUrl,
  countDeadLetters,
  databaseNow,
  deadLetterJobs,
  deadLetterPage,
  exhaustRetries,
  lastHourByMinute,
  missingFromSchema,
  outcomesSince,
  releaseJobs,
  RELIED_ON,
  restoreRetrySettings,
  retryingJobs,
  retryNow,
  rowsOfTrigger,
  type Sql,
  withoutRetries,
} from "../../src/durable/_pgboss_sql.ts";
import { lastAttempt } from "../../src/durable/_dispatcher.ts";
import { SCHEMA_VERSION } from "../../src/durable/_engine.ts";
import {
  jobRetry,
  jobRow,
  LEASE_MARGIN_SECONDS,
  type StoredRequest,
} from "../../src/durable/_enqueue.ts";

async function withBoss(
  fn: (boss: PgBoss, db: Sql, schema: string) => Promise<void>,
): Promise<void> {
  const pglite = await PGlite.create();
  const schema = "pgboss";
  const boss = new PgBoss({
    db: fromPglite(pglite),
    backend: "pglite",
    schema,
    schedule: false,
    supervise: false,
  });
  boss.on("error", () => {});
  await boss.start();
  try {
    await fn(boss, boss.getDb() as Sql, schema);
  } finally {
    await boss.stop({ graceful: false, close: true });
    await pglite.close();
  }
}

Deno.test("pg-boss's schema has every table, column and state the outbox's raw SQL relies on, at the version create: false opens", async () => {
  await withBoss(async (boss, db, schema) => {
    assert.deepEqual(
      await missingFromSchema(db, schema),
      [],
      "pg-boss's schema changed: update src/durable/_pgboss_sql.ts",
    );
    assert.equal(
      await boss.schemaVersion(),
      SCHEMA_VERSION,
      "pg-boss's schema version changed: update SCHEMA_VERSION",
    );
  });
});

Deno.test("missingFromSchema() names a missing column and state (the check can fail)", async () => {
  const pglite = await PGlite.create();
  try {
    // Everything relied on but the column retry_limit and the state retry.
    const states = RELIED_ON.states.filter((s) => s !== "retry");
    const columns = RELIED_ON.columns.filter((c) => c !== "retry_limit");
    await pglite.exec(`
      CREATE SCHEMA fake;
      CREATE TYPE fake.job_state AS ENUM (${
      states.map((s) => `'${s}'`).join(", ")
    });
      CREATE TABLE fake.job (${columns.map((c) => `${c} text`).join(", ")});
    `);
    const db: Sql = {
      executeSql: (text, values) => pglite.query(text, values),
    };
    assert.deepEqual(await missingFromSchema(db, "fake"), [
      "column fake.job.retry_limit",
      'job state "retry"',
    ]);
  } finally {
    await pglite.close();
  }
});

Deno.test("the raw statements run on pg-boss's schema: exhaustRetries() dead-letters on fail(), withoutRetries() finds it, countByState() counts", async () => {
  await withBoss(async (boss, db, schema) => {
    await boss.createQueue("q_dead");
    await boss.createQueue("q", { deadLetter: "q_dead" });
    await boss.insert("q", [
      { id: crypto.randomUUID(), data: { n: 1 }, retryLimit: 5 },
      { id: crypto.randomUUID(), data: { n: 2 }, retryLimit: 5 },
    ]);
    assert.deepEqual(
      (await countByState(db, schema, ["q", "q_dead"])).map((r) =>
        `${r.name} ${r.state} ${r.count}`
      ),
      ["q created 2"],
    );
    const jobs = await boss.fetch("q", { batchSize: 2 });
    assert.equal(jobs.length, 2);
    const [first, second] = jobs;
    // A claim from an older attempt is fenced out: nothing changes.
    await exhaustRetries(db, schema, "q", [{
      id: second.id,
      retryCount: second.retryCount + 1,
    }]);
    await exhaustRetries(db, schema, "q", [first]);
    assert.deepEqual(
      [...await withoutRetries(db, schema, "q", [first, second])],
      [first.id],
    );
    await boss.fail("q", jobs, { code: "X" });
    const counts = new Map(
      (await countByState(db, schema, ["q", "q_dead"])).map((
        r,
      ) => [`${r.name} ${r.state}`, r.count]),
    );
    assert.equal(counts.get("q_dead created"), 1, "first dead-lettered");
    assert.equal(counts.get("q retry"), 1, "second kept its retries");
    assert.equal(counts.get("q failed"), 1);
    assert.ok(RELIED_ON.states.includes("retry"));
  });
});

Deno.test("pg-boss's fail() dead-letters exactly the fetched attempts lastAttempt() names, from the stored form alone; a redriven dead letter is left to the database", async () => {
  await withBoss(async (boss, db, schema) => {
    await boss.createQueue("q_dead");
    await boss.createQueue("q", { deadLetter: "q_dead" });
    // Rows as the outbox stores them, limits 0 to 3, retried at once; the
    // even ones without a caller's id (the trigger's id is the job's).
    const limits = [0, 1, 2, 3];
    const rows = limits.map((limit) => {
      const id = crypto.randomUUID();
      return jobRow(
        id,
        {
          id: limit % 2 ? `trigger-${limit}` : id,
          method: "POST",
          url: "http://127.0.0.1:9/",
          headers: [],
          body: null,
          timeout: 1_000,
        },
        { limit, delay: 0, backoff: false, maxDelay: 0 },
        undefined,
      );
    });
    await boss.insert("q", rows);
    const attempts = new Map<number, number>();
    const deadAt = new Map<number, number>();
    for (let round = 0; round < 10 && deadAt.size < limits.length; round++) {
      // The dispatcher's fetch: no metadata, retry_limit not among it.
      const jobs = await boss.fetch<StoredRequest>("q", { batchSize: 10 });
      assert.equal(jobs.length, limits.length - deadAt.size, `round ${round}`);
      const predicted = new Map(jobs.map((job) => [job.id, lastAttempt(job)]));
      for (const job of jobs) {
        const limit = job.data.retryLimit!;
        const n = (attempts.get(limit) ?? 0) + 1;
        attempts.set(limit, n);
        assert.equal(job.retryCount, n - 1, "retryCount counts attempts");
      }
      await boss.fail("q", jobs, { code: "X" });
      const { rows: states } = await db.executeSql(
        `SELECT id::text AS id, state::text AS state FROM ${schema}.job
         WHERE name = 'q' AND id = ANY($1::uuid[])`,
        [jobs.map((job) => job.id)],
      );
      assert.equal(states.length, jobs.length);
      for (const { id, state } of states) {
        const job = jobs.find((j) => j.id === id)!;
        assert.equal(
          predicted.get(job.id),
          state === "failed",
          `limit ${job.data.retryLimit}, attempt ${
            job.retryCount + 1
          }: ${state}`,
        );
        if (state === "failed") deadAt.set(job.data.retryLimit!, round);
      }
    }
    // A job with limit n is dead-lettered on attempt n + 1.
    for (const limit of limits) {
      assert.equal(attempts.get(limit), limit + 1, `limit ${limit}`);
      assert.equal(deadAt.get(limit), limit, `limit ${limit}`);
    }
    // Redriven: a new job with the queue's limit, not the stored one.
    assert.equal(await boss.redrive("q_dead", { limit: 10 }), limits.length);
    const redriven = await boss.fetch<StoredRequest>("q", { batchSize: 10 });
    assert.equal(redriven.length, limits.length);
    for (const job of redriven) {
      assert.notEqual(job.id, job.data.job ?? job.data.id);
      assert.equal(lastAttempt(job), undefined, "left to the database");
    }
    // Which the database answers (pg-boss's default queue limit is 2).
    assert.equal(
      (await withoutRetries(db, schema, "q", redriven)).size,
      0,
      "retries left",
    );
  });
});

Deno.test("deadLetterJobs() and restoreRetrySettings() around pg-boss's redrive(): the re-created job gets the retry settings and lease it was stored with; a setting the stored form lacks is the redriving outbox's (not the queue's: no delay)", async () => {
  await withBoss(async (boss, db, schema) => {
    await boss.createQueue("q_dead");
    await boss.createQueue("q", { deadLetter: "q_dead" });
    const request = (id: string, timeout: number): StoredRequest => ({
      id,
      method: "POST",
      url: "http://127.0.0.1:9/",
      headers: [],
      body: null,
      timeout,
    });
    const stored = crypto.randomUUID();
    const old = crypto.randomUUID();
    const oldest = crypto.randomUUID();
    await boss.insert("q", [
      jobRow(stored, request("stored", 2_500), {
        limit: 4,
        delay: 3_000,
        backoff: true,
        maxDelay: 20_000,
      }, undefined),
      // Stored before the form carried more than the retry limit.
      {
        id: old,
        data: { ...request("old", 1_000), retryLimit: 1 },
        retryLimit: 1,
        retryDelay: 5,
      },
      // Stored before the form carried any retry setting.
      { id: oldest, data: request("oldest", 1_000), retryLimit: 1 },
    ]);
    // Dead-lettered as the dispatcher does it: no retries left, then fail().
    const jobs = await boss.fetch<StoredRequest>("q", { batchSize: 10 });
    assert.equal(jobs.length, 3);
    await exhaustRetries(db, schema, "q", jobs);
    await boss.fail("q", jobs, { code: "HTTP_STATUS" });

    assert.deepEqual(
      await deadLetterJobs(db, schema, "q_dead", {
        ids: ["nope"],
        limit: null,
      }),
      [],
    );
    const letters = await deadLetterJobs(db, schema, "q_dead", {
      ids: null,
      limit: 10,
      routableTo: "q",
    });
    assert.equal(letters.length, 3);
    assert.deepEqual(
      new Set(letters.map((letter) => letter.root)),
      new Set([stored, old, oldest]),
      "each chain's first job",
    );
    // Only the ones pg-boss's redrive() moves back to that queue.
    assert.deepEqual(
      await deadLetterJobs(db, schema, "q_dead", {
        ids: null,
        limit: 10,
        routableTo: "elsewhere",
      }),
      [],
    );
    assert.equal(
      await boss.redrive("q_dead", { ids: letters.map((l) => l.id) }),
      3,
    );
    assert.equal(
      await restoreRetrySettings(db, schema, {
        queue: "q",
        roots: letters.map((l) => l.root!),
        leaseMarginSeconds: LEASE_MARGIN_SECONDS,
        // The redriving outbox's: 5 retries from 2 s, backoff up to 300 s.
        fallback: jobRetry({
          limit: 5,
          delay: 1_001,
          backoff: true,
          maxDelay: 300_000,
        }),
      }),
      3,
    );
    const { rows } = await db.executeSql(
      `SELECT id::text AS id, data->>'id' AS trigger, data->>'job' AS job,
         retry_limit, retry_delay, retry_backoff, retry_delay_max,
         expire_seconds
       FROM ${schema}.job WHERE name = 'q' AND state = 'created'
       ORDER BY data->>'id'`,
    );
    assert.deepEqual(rows.map(({ id, ...row }) => ({ ...row, new: id })), [
      {
        trigger: "old",
        job: rows[0].id,
        retry_limit: 1,
        // The outbox's: the stored form did not say (pg-boss's queue
        // default would be no delay, no backoff).
        retry_delay: 2,
        retry_backoff: true,
        retry_delay_max: 300,
        expire_seconds: 1 + LEASE_MARGIN_SECONDS,
        new: rows[0].id,
      },
      {
        trigger: "oldest",
        job: rows[1].id,
        retry_limit: 5,
        retry_delay: 2,
        retry_backoff: true,
        retry_delay_max: 300,
        expire_seconds: 1 + LEASE_MARGIN_SECONDS,
        new: rows[1].id,
      },
      {
        trigger: "stored",
        job: rows[2].id,
        retry_limit: 4,
        retry_delay: 3,
        retry_backoff: true,
        retry_delay_max: 20,
        expire_seconds: 3 + LEASE_MARGIN_SECONDS,
        new: rows[2].id,
      },
    ]);
    // The stored form now names the new job and carries the settings it
    // got: its last attempt is known without asking the database.
    const redriven = await boss.fetch<StoredRequest>("q", { batchSize: 10 });
    assert.equal(redriven.length, 3);
    for (const job of redriven) {
      assert.notEqual(job.id, job.data.id);
      assert.equal(lastAttempt(job), false);
    }
  });
});

Deno.test("releaseJobs() puts fetched jobs back to waiting without using a retry, fenced to the fetched attempt; withoutRetries() is fenced too", async () => {
  await withBoss(async (boss, db, schema) => {
    await boss.createQueue("q");
    await boss.insert("q", [
      { id: crypto.randomUUID(), data: { n: 1 }, retryLimit: 0 },
      { id: crypto.randomUUID(), data: { n: 2 }, retryLimit: 0 },
    ]);
    const [first, second] = await boss.fetch("q", { batchSize: 2 });
    // No retries left, but a stale claim is not this attempt's.
    assert.deepEqual(
      [
        ...await withoutRetries(db, schema, "q", [
          { id: first.id, retryCount: first.retryCount + 1 },
          second,
        ]),
      ],
      [second.id],
    );
    // A stale claim changes nothing.
    assert.equal(
      (await releaseJobs(db, schema, "q", [{
        id: second.id,
        retryCount: second.retryCount + 1,
      }])).size,
      0,
    );
    assert.deepEqual([...await releaseJobs(db, schema, "q", [first])], [
      first.id,
    ]);
    const { rows } = await db.executeSql(
      `SELECT id::text AS id, state::text AS state, retry_count, started_on,
         heartbeat_on FROM ${schema}.job WHERE name = 'q' ORDER BY state`,
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    assert.equal(byId.get(first.id)?.state, "created");
    assert.equal(byId.get(first.id)?.retry_count, 0, "no retry used up");
    assert.equal(byId.get(first.id)?.started_on, null);
    assert.equal(byId.get(first.id)?.heartbeat_on, null);
    assert.equal(byId.get(second.id)?.state, "active");
    // Released twice: the second finds it no longer active.
    assert.equal((await releaseJobs(db, schema, "q", [first])).size, 0);
    // Fetched again, it is the same attempt (retry_count 0, limit 0).
    const [again] = await boss.fetch("q", { batchSize: 1 });
    assert.equal(again.id, first.id);
    assert.equal(again.retryCount, 0);
  });
});

Deno.test("the admin statements (dashboard, CLI) run on pg-boss's schema and read what it wrote", async () => {
  await withBoss(async (boss, db, schema) => {
    await boss.createQueue("q_dead");
    await boss.createQueue("q", { deadLetter: "q_dead" });
    const url = "http://127.0.0.1:1/x";
    const since = new Date(Date.now() - 60_000);
    await boss.insert("q", [
      { id: crypto.randomUUID(), data: { id: "a", url }, retryLimit: 0 },
      { id: crypto.randomUUID(), data: { id: "b", url }, retryLimit: 3 },
      { id: crypto.randomUUID(), data: { id: "c", url }, retryLimit: 3 },
    ]);
    const jobs = await boss.fetch<{ id: string }>("q", { batchSize: 3 });
    const by = new Map(jobs.map((job) => [job.data.id, job]));
    await boss.fail("q", [by.get("a")!, by.get("b")!], { code: "X" });
    await boss.complete("q", [by.get("c")!], { status: 200 });
    assert.ok(await databaseNow(db) instanceof Date);

    const counts = new Map(
      (await countByUrl(db, schema, "q", "q_dead")).map((r) => [
        `${r.name} ${r.state} ${r.url}`,
        r.count,
      ]),
    );
    assert.equal(counts.get(`q_dead created ${url}`), 1, "dead letter a");
    assert.equal(counts.get(`q retry ${url}`), 1, "retrying b");
    assert.equal(counts.get(`q completed ${url}`), 1, "delivered c");

    const minutes = await lastHourByMinute(db, schema, "q");
    const kinds = minutes.filter((r) => r.kind !== "now")
      .map((r) => `${r.kind} ${r.count}`).sort();
    assert.deepEqual(kinds, ["delivered 1", "failed 2"]);

    const [letter, ...more] = await deadLetterPage(
      db,
      schema,
      "q_dead",
      10,
      0,
      100,
    );
    assert.equal(more.length, 0);
    assert.equal((letter.data as { id: string }).id, "a");
    assert.equal(letter.total, 1);
    assert.deepEqual(letter.source_output, { code: "X" });
    assert.equal(await countDeadLetters(db, schema, "q_dead"), 1);

    const [retrying] = await retryingJobs(db, schema, "q", 10);
    assert.equal((retrying.data as { id: string }).id, "b");
    assert.equal(
      retrying.retry_count,
      0,
      "one attempt made (attempts = retry_count + 1)",
    );

    const rows = await rowsOfTrigger(db, schema, "q", "q_dead", "a", 10, 8);
    assert.deepEqual(rows.map((r) => `${r.name} ${r.state} ${r.total}`), [
      "q failed 2",
      "q_dead created 2",
    ]);
    // The last rows only, oldest first, each with the total; no body.
    const [latest, ...none] = await rowsOfTrigger(
      db,
      schema,
      "q",
      "q_dead",
      "a",
      1,
      8,
    );
    assert.equal(none.length, 0);
    assert.equal(`${latest.name} ${latest.total}`, "q_dead 2");
    assert.equal("body" in (latest.data as object), false);

    const outcomes = await outcomesSince(db, schema, "q", since, since, 10);
    assert.deepEqual(
      outcomes.map((r) => `${(r.data as { id: string }).id} ${r.state}`)
        .sort(),
      ["a failed", "b retry", "c completed"],
    );

    // b waits for its retry delay; retryNow() makes it due at once.
    await db.executeSql(
      `UPDATE ${schema}.job SET start_after = now() + interval '1 hour'
       WHERE name = 'q' AND state = 'retry'`,
    );
    assert.equal((await retryNow(db, schema, "q", ["b", "zz"])).length, 1);
    assert.equal((await retryNow(db, schema, "q", ["b"])).length, 0);
    const [due] = await boss.fetch<{ id: string }>("q");
    assert.equal(due?.data.id, "b", "the retried job is fetched at once");
  });
});
