// A client that goes quiet inside a transaction: a dispatcher frozen by its
// platform (AWS Lambda, Vercel's and Netlify's functions, Cloud Run freeze
// a process between invocations; `docker pause`; a laptop's sleep) between
// pg-boss's fetch and COMMIT, or a hung event loop. Its row locks kept the
// jobs it had fetched, unseen by every other dispatcher (SKIP LOCKED), until
// it came back: in a CI run, a dispatcher frozen for 60 s held them all that
// time. The server must end such a transaction on its own.
import assert from "node:assert/strict";
import { openEngine } from "../../src/durable/_engine.ts";
import { checkOpenOptions } from "../../src/durable/_validate.ts";
import { OutboxError } from "../../src/durable/errors.ts";
import { skipUnless } from "../_env.ts";
import { until } from "../_wait.ts";
import { DATABASE_URL } from "./_seed.ts";

Deno.test({
  name:
    "engine.transaction() (postgres): a client quiet past queryTimeout between statements (frozen, hung) has its transaction ended by the server, its row locks released; the engine goes on",
  ignore: skipUnless(
    DATABASE_URL !== undefined,
    "TRIGGER_TEST_DATABASE_URL is not set (bash .ci/postgres.sh)",
  ),
  async fn() {
    const { default: pg } = await import("npm:pg@8.23.1");
    const other = new pg.Client({ connectionString: DATABASE_URL });
    await other.connect();
    const table = `stall_${crypto.randomUUID().slice(0, 8)}`;
    /** What the engine reported (pg-boss's and the pool's errors). */
    const reported: unknown[] = [];
    await other.query(`CREATE TABLE ${table} (id int PRIMARY KEY)`);
    await other.query(`INSERT INTO ${table} VALUES (1)`);
    const db = await openEngine(
      checkOpenOptions({
        connectionString: DATABASE_URL,
        queue: `s_${crypto.randomUUID().slice(0, 8)}`,
        queryTimeout: 1_000,
        create: false,
      }),
      (error) => reported.push(error),
    );
    let thaw!: () => void;
    const thawed = new Promise<void>((resolve) => thaw = resolve);
    try {
      let locked!: () => void;
      const holding = new Promise<void>((resolve) => locked = resolve);
      const stalled = db.transaction("Cannot test", async (tx) => {
        await tx.executeSql(`SELECT id FROM ${table} WHERE id = 1 FOR UPDATE`);
        locked();
        // Quiet until the test is done looking: no statement, no COMMIT.
        await thawed;
        await tx.executeSql("SELECT 1");
      }, "(unknown)");
      const outcome = stalled.then(() => "committed", (error) => error);
      await holding;
      // Without the server's bound the row stayed locked until the client
      // came back (here: never within the wait).
      await until(
        async () => {
          try {
            await other.query(
              `SELECT id FROM ${table} WHERE id = 1 FOR UPDATE NOWAIT`,
            );
            return true;
          } catch (error) {
            // 55P03: lock_not_available.
            assert.equal((error as { code?: string }).code, "55P03");
            return false;
          }
        },
        "the stalled transaction's row lock released",
        {
          timeout: 8_000,
          interval: 100,
        },
      );
      thaw();
      const error = await outcome;
      assert.ok(error instanceof OutboxError, String(error));
      assert.equal(error.code, "TIMEOUT", error.message);
      // The pool let the ended connection go: the next transaction runs.
      assert.equal(
        await db.transaction(
          "Cannot test",
          async (tx) =>
            (await tx.executeSql(`SELECT count(*)::int AS n FROM ${table}`))
              .rows[0].n,
          "(unknown)",
        ),
        1,
      );
      // The ended connection was the transaction's own: nothing stray
      // reached the pool's or pg-boss's error listeners.
      assert.deepEqual(reported, []);
    } finally {
      thaw();
      await db.close();
      await other.query(`DROP TABLE IF EXISTS ${table}`);
      await other.end();
    }
  },
});
