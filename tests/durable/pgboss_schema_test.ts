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
  exhaustRetries,
  missingFromSchema,
  RELIED_ON,
  type Sql,
  withoutRetries,
} from "../../src/durable/_pgboss_sql.ts";

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

Deno.test("pg-boss's schema has every table, column and state the outbox's raw SQL relies on", async () => {
  await withBoss(async (_boss, db, schema) => {
    assert.deepEqual(
      await missingFromSchema(db, schema),
      [],
      "pg-boss's schema changed: update src/durable/_pgboss_sql.ts",
    );
  });
});

Deno.test("missingFromSchema() names a missing column and state (the check can fail)", async () => {
  const pglite = await PGlite.create();
  try {
    await pglite.exec(`
      CREATE SCHEMA fake;
      CREATE TYPE fake.job_state AS ENUM ('created', 'active');
      CREATE TABLE fake.job (name text, id uuid, state fake.job_state, retry_count int);
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
      [...await withoutRetries(db, schema, "q", [first.id, second.id])],
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
