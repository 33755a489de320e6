// PostgresDedupStore behind a connection pooler: a real PgBouncer in
// transaction pooling mode (what Neon's pooled endpoint is, by Neon's docs),
// which refuses startup parameters it does not know, statement_timeout among
// them.
import assert from "node:assert/strict";
import { PostgresDedupStore } from "../../src/dedup/postgres.ts";
import { skipUnless } from "../_env.ts";
import { CAN_START_PGBOUNCER, PgBouncer } from "../_pgbouncer.ts";
import { within } from "../_wait.ts";

const DATABASE_URL = Deno.env.get("TRIGGER_TEST_DATABASE_URL");

Deno.test({
  name:
    "PostgresDedupStore through PgBouncer (transaction pooling, statement_timeout refused at startup): each id claimed once among concurrent deliveries, done and released as directly, and queryTimeout still bounds a statement that waits",
  ignore: skipUnless(
    DATABASE_URL !== undefined && CAN_START_PGBOUNCER,
    "TRIGGER_TEST_DATABASE_URL (bash .ci/postgres.sh) and pgbouncer (apt-get install pgbouncer) are needed",
  ),
  async fn() {
    const { default: pg } = await import("npm:pg@8.23.1");
    const direct = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    const bouncer = await PgBouncer.start(DATABASE_URL!, { poolSize: 4 });
    const table = `dedup_pooler_${Date.now()}`;
    const reports: unknown[] = [];
    const stores = [0, 1].map(() =>
      new PostgresDedupStore({
        connectionString: bouncer.url(),
        table,
        queryTimeout: 1_000,
        reportError: (error) => void reports.push(error),
      })
    );
    try {
      // Two stores (two processes' worth), four deliveries of each id.
      const ids = Array.from({ length: 25 }, (_, i) => `msg_${i}`);
      const results = await within(
        Promise.all(
          ids.flatMap((id) =>
            [0, 1, 2, 3].map((n) =>
              stores[n % 2].claim(id, 60_000, `token-${n}`)
            )
          ),
        ),
        "claims through PgBouncer",
      );
      for (let i = 0; i < ids.length; i++) {
        const mine = results.slice(i * 4, i * 4 + 4).sort();
        assert.deepEqual(mine, ["busy", "busy", "busy", "claimed"], ids[i]);
      }
      await stores[0].complete("msg_0", 60_000);
      assert.equal(await stores[1].claim("msg_0", 60_000, "late"), "done");
      // A release by the claim's owner frees it for the next delivery.
      const owner = `token-${results.slice(4, 8).indexOf("claimed")}`;
      await stores[1].release("msg_1", owner);
      assert.equal(await stores[0].claim("msg_1", 60_000, "again"), "claimed");

      // A claim that waits on a row another transaction holds: the
      // client-side bound ends it (not a hang), and the store goes on.
      const holder = await direct.connect();
      try {
        await holder.query("BEGIN");
        await holder.query(
          `SELECT 1 FROM "${table}" WHERE id = $1 FOR UPDATE`,
          [
            "msg_2",
          ],
        );
        const started = Date.now();
        const waited = await within(
          stores[0].claim("msg_2", 60_000, "blocked").then(
            () => "answered",
            (error: Error) => error.message,
          ),
          "a claim waiting on a locked row",
          15_000,
        );
        assert.match(waited, /timeout/i);
        console.log(`a waiting claim ended after ${Date.now() - started} ms`);
      } finally {
        await holder.query("ROLLBACK").catch(() => {});
        holder.release();
      }
      assert.equal(await stores[1].claim("msg_3", 60_000, "x"), "busy");
      assert.deepEqual(reports, []);
    } finally {
      for (const store of stores) await store.close().catch(() => {});
      await bouncer.stop();
      await direct.query(`DROP TABLE IF EXISTS "${table}"`).catch(() => {});
      await direct.end();
    }
  },
});
