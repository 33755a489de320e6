// redrive(ids) and discard(ids) look their dead letters up in one statement
// however many ids they are given (a statement per id before): 1,000 dead
// letters by id, unknown ids and repeats among them, on pg-boss's real
// schema (embedded PGlite; PostgreSQL too when TRIGGER_TEST_DATABASE_URL is
// set). The statements are counted on the database handle pg-boss uses.
import assert from "node:assert/strict";
import { openEngine } from "../../src/durable/_engine.ts";
import { checkOpenOptions } from "../../src/durable/_validate.ts";
import * as admin from "../../src/durable/_admin.ts";
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

        // Statements on the dead-letter queue (its name is their first
        // value), counted on the handle pg-boss and the outbox share.
        const sql = boss.getDb() as Sql;
        const original = sql.executeSql;
        let statements = 0;
        sql.executeSql = (text, values) => {
          if (values?.[0] === queues.dead) statements++;
          return original.call(sql, text, values);
        };
        try {
          const unknown = ["nope-1", "nope-2"];
          const half = ids.slice(0, N / 2);
          const redriven = await admin.redrive(db, queues, [
            ...half,
            ...unknown,
            half[0],
          ]);
          assert.equal(
            redriven,
            N / 2,
            "unknown and repeated ids: not counted",
          );
          assert.ok(
            statements <= 2,
            `${statements} statements for ${
              N / 2
            } ids (one lookup, one redrive)`,
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
          assert.equal(await admin.redrive(db, queues, ids), 0);
          assert.equal(await admin.redrive(db, queues, []), 0);
        } finally {
          sql.executeSql = original;
        }
        const counts = new Map(
          (await countByState(sql, "pgboss", [queue, queues.dead])).map((
            r,
          ) => [`${r.name} ${r.state}`, r.count]),
        );
        assert.equal(counts.get(`${queue} created`), N / 2, "redriven");
        assert.equal(counts.get(`${queues.dead} created`), undefined);
      } finally {
        await db.close();
        if (dir) await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
