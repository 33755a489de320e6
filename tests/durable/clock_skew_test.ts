// A process whose wall clock is set wrong against the database's (an hour
// behind or ahead: a container's clock, a resumed VM): a trigger's `delay`
// counts on the database's clock, as its retries already do. Before, the
// due time was this process's clock plus the delay: an hour behind, a
// minute's delay was due at once and delivered within 0.3 s; an hour
// ahead, 61 minutes late. (The dispatcher's own clock steps:
// hold_limit_test.ts.)
import assert from "node:assert/strict";
import { ADMIN, type Administered } from "../../src/durable/_admin_queries.ts";
import { DATABASE_URL, freshOptions, openOutbox } from "./_seed.ts";

// PostgreSQL only: the embedded database's clock is this process's.
for (const engine of ["postgres"] as const) {
  Deno.test({
    name:
      `${engine}: a trigger's delay counts on the database's clock, whatever this process's clock says (an hour behind or ahead); a delay of 1e-7 ms is taken`,
    ignore: engine === "postgres" && DATABASE_URL === undefined,
    async fn() {
      const { cleanup, ...options } = await freshOptions(engine);
      const outbox = await openOutbox(options);
      const realNow = Date.now;
      try {
        const { db, schema } = (outbox as unknown as Administered)[ADMIN]();
        for (const offset of [-3_600_000, 3_600_000]) {
          Date.now = () => realNow() + offset;
          let id: string;
          try {
            ({ id } = await outbox.trigger("http://127.0.0.1:9/", {
              delay: 60_000,
            }));
          } finally {
            Date.now = realNow;
          }
          const { rows } = await db.executeSql(
            `SELECT extract(epoch FROM start_after - now()) AS due
               FROM ${schema}.job WHERE id = $1`,
            [id],
          );
          const due = Number((rows[0] as { due: unknown }).due);
          assert.ok(
            due > 50 && due <= 60,
            `offset ${offset} ms: due in ${due} s, not about 60`,
          );
        }
        // A fraction of a millisecond small enough to print as 1e-7 is a
        // delay all the same (it was an interval PostgreSQL refused).
        const { id } = await outbox.trigger("http://127.0.0.1:9/", {
          delay: 1e-7,
        });
        const { rows } = await db.executeSql(
          `SELECT extract(epoch FROM start_after - now()) AS due
             FROM ${schema}.job WHERE id = $1`,
          [id],
        );
        assert.ok(Number((rows[0] as { due: unknown }).due) <= 0.001);
      } finally {
        Date.now = realNow;
        await outbox.stop();
        await cleanup();
      }
    },
  });
}
