// A redrive that fails partway says how many it moved: the outbox's error
// carries `done`, the command line prints the count on stdout (as a success
// would, plain and --json) and exits 1, and calling again moves the rest,
// nothing twice. PostgreSQL (a schema of the test's own): 1,001 dead
// letters, the last one's re-created job refused by a database trigger, so
// the first batch (1,000) commits and the second fails; the dashboard's
// error page says the count too.
import assert from "node:assert/strict";
import {
  copyDeadLetters,
  DATABASE_URL,
  openOutbox,
  runCli,
  startTarget,
} from "./_seed.ts";
import { until } from "../_wait.ts";
import { OutboxError } from "../../src/durable/mod.ts";
import { dashboard } from "../../src/durable/dashboard/mod.ts";

const TOKEN = "partial-test-token-0123456789";

/** The command line on the test's database. */
const cli = (args: string[]) => runCli(args, { DATABASE_URL: DATABASE_URL! });

Deno.test({
  name:
    "redrive() failing partway (postgres): done and the message give the count moved; the command line prints it and exits 1; again, the rest moves",
  ignore: DATABASE_URL === undefined,
  async fn() {
    const target = startTarget();
    const schema = `pa_${crypto.randomUUID().slice(0, 8)}`;
    const queue = "partial";
    const dead = `${queue}_dead`;
    const { default: pg } = await import("npm:pg@8.23.1");
    const sql = new pg.Client({ connectionString: DATABASE_URL });
    await sql.connect();
    try {
      const outbox = await openOutbox({
        connectionString: DATABASE_URL,
        schema,
        queue,
        retry: { limit: 0 },
      });
      try {
        await outbox.trigger(`${target.url}/nope`, {
          headers: { "webhook-id": "last" },
        });
        outbox.start({ pollInterval: 20 });
        await until(
          async () => (await outbox.stats()).dead === 1,
          "one dead letter",
          { interval: 50 },
        );
        await outbox.stop({ close: false, timeout: 1_000 });
        // 1,000 copies of it, older (a redrive takes the oldest first),
        // each a chain of its own.
        await copyDeadLetters(sql, schema, dead, "copy");
        await sql.query(
          `CREATE FUNCTION ${schema}.refuse() RETURNS trigger
           LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'refused by the test'; END $$`,
        );
        await sql.query(
          `CREATE TRIGGER refuse BEFORE INSERT ON ${schema}.job
           FOR EACH ROW WHEN (NEW.name = '${queue}'
             AND NEW.data->>'id' = 'last')
           EXECUTE FUNCTION ${schema}.refuse()`,
        );
        await assert.rejects(outbox.redrive(), (error: unknown) => {
          assert.ok(error instanceof OutboxError, String(error));
          assert.equal(error.code, "DATABASE");
          assert.equal(error.done, 1_000);
          assert.match(
            error.message,
            /\(1000 redriven by the batches before it: those stay redriven; call again for the rest\)/,
          );
          return true;
        });
        assert.equal((await outbox.stats()).dead, 1);
      } finally {
        await outbox.stop({ timeout: 1_000 });
      }

      // The command line, on what is left (the one refused): nothing
      // moved, nothing on stdout; the error on stderr; exit 1.
      const args = ["--schema", schema, "--queue", queue];
      const failed = await cli(["redrive", ...args]);
      assert.equal(failed.code, 1, failed.stderr);
      assert.equal(failed.stdout, "");
      assert.match(failed.stderr, /refused by the test/);

      // With 1,000 more ahead of it, the command line says 1,000 moved.
      await copyDeadLetters(sql, schema, dead, "again");
      const partly = await cli(["redrive", "--json", ...args]);
      assert.equal(partly.code, 1, partly.stderr);
      assert.deepEqual(JSON.parse(partly.stdout), {
        redriven: 1_000,
        failed: true,
      });
      assert.match(partly.stderr, /1000 redriven by the batches before it/);
      // Plain: a count, then the same again with the rest ahead of it.
      await copyDeadLetters(sql, schema, dead, "third");
      const plain = await cli(["redrive", ...args]);
      assert.equal(plain.code, 1, plain.stderr);
      assert.equal(plain.stdout.trim(), "1000 redriven before the failure");

      // The dashboard's "Redrive all": its error page says what moved.
      await copyDeadLetters(sql, schema, dead, "fourth");
      const viewed = await openOutbox({
        connectionString: DATABASE_URL,
        schema,
        queue,
        create: false,
      });
      const dash = dashboard(viewed, { token: TOKEN, path: "/outbox" });
      const server = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen() {} },
        (request) => dash.fetch(request),
      );
      const errors = console.error;
      console.error = () => {}; // the dashboard logs the failure
      try {
        const url = `http://127.0.0.1:${server.addr.port}/outbox`;
        const auth = { authorization: `Bearer ${TOKEN}` };
        const page = await (await fetch(`${url}/dead`, { headers: auth }))
          .text();
        const csrf = page.match(/name="_csrf" value="([^"]+)"/)?.[1];
        assert.ok(csrf);
        const failed = await fetch(`${url}/dead/redrive`, {
          method: "POST",
          headers: {
            ...auth,
            "content-type": "application/x-www-form-urlencoded",
          },
          body: `all=1&_csrf=${encodeURIComponent(csrf)}`,
          redirect: "manual",
        });
        assert.equal(failed.status, 500);
        assert.match(
          await failed.text(),
          /Before it failed, 1000 dead letters were redriven: they stay redriven; submit again for the rest\./,
        );
      } finally {
        console.error = errors;
        await server.shutdown();
        await viewed.stop();
      }

      // The refusal gone, the rest moves; nothing moved twice.
      await sql.query(`DROP TRIGGER refuse ON ${schema}.job`);
      const rest = await cli(["redrive", ...args]);
      assert.equal(rest.code, 0, rest.stderr);
      assert.equal(rest.stdout.trim(), "1 redriven");
      const { rows: [counts] } = await sql.query(
        `SELECT count(*)::int AS jobs,
           count(DISTINCT data->>'id')::int AS ids
         FROM ${schema}.job WHERE name = $1 AND state = 'created'`,
        [queue],
      );
      // The four thousands and the last: each once.
      assert.deepEqual(counts, { jobs: 4_001, ids: 4_001 });
    } finally {
      await sql.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
        .catch(() => {});
      await sql.end();
      await target.close();
    }
  },
});

Deno.test("redrive() and discard() called while stop() closes the outbox reject CLOSED (done 0) before their first batch, not a driver error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox_closing_" });
  try {
    const outbox = await openOutbox({ dir });
    const stopping = outbox.stop();
    // Both called at once: the database is still open (later, `stop()`
    // done, they are CLOSED at the call, with no done).
    const calls = [outbox.redrive(), outbox.discard(["an-id"])];
    for (const call of calls) {
      await assert.rejects(call, (error: unknown) => {
        assert.ok(error instanceof OutboxError, String(error));
        assert.equal(error.code, "CLOSED", error.message);
        assert.equal(error.done, 0);
        return true;
      });
    }
    await stopping;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
