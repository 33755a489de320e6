// openOutbox({ create: false }): only an outbox that exists opens; a
// mistyped directory, schema or queue is a NOT_FOUND naming it, and nothing
// is created (checked in the catalogs afterwards). On both engines.
import assert from "node:assert/strict";
import { openOutbox, type Outbox, OutboxError } from "../../src/durable/mod.ts";
import { ADMIN, type Administered } from "../../src/durable/_admin_queries.ts";
import type { Sql } from "../../src/durable/_pgboss_sql.ts";
import { openEngine, SCHEMA_VERSION } from "../../src/durable/_engine.ts";
import { checkOpenOptions } from "../../src/durable/_validate.ts";
import { DATABASE_URL, freshOptions } from "./_seed.ts";

function sqlOf(outbox: Outbox): Sql {
  return (outbox as unknown as Administered)[ADMIN]().db;
}

/** What pg-boss writes to a schema as it starts: its instance rows
 * (registered in start()), its BAM commands, a migration's version. Equal
 * before and after an open means the open wrote nothing. */
async function writesTo(sql: Sql, schema: string): Promise<string> {
  // The version row's version, not its `*_on` times: the first outbox's
  // pg-boss, still running, stamps `bam_on` and `flow_on` there as its own
  // background work starts (a second or so after its open, later under
  // load), which is no write of the refused open.
  const { rows: [row] } = await sql.executeSql(
    `SELECT (SELECT count(*)::int FROM ${schema}.instance) AS instances,
       (SELECT count(*)::int FROM ${schema}.bam) AS bam,
       (SELECT version::int FROM ${schema}.version) AS version`,
  );
  return JSON.stringify(row);
}

/** Rejects with an OutboxError "NOT_FOUND" whose message matches. */
async function notFound(
  opening: Promise<Outbox>,
  message: RegExp,
): Promise<void> {
  await assert.rejects(opening, (error: unknown) => {
    assert.ok(error instanceof OutboxError, String(error));
    assert.equal(error.code, "NOT_FOUND", error.message);
    assert.match(error.message, message);
    return true;
  });
}

/** Schemas and queues by these names, as the database has them. */
async function present(
  sql: Sql,
  schemas: string[],
  queues: string[],
): Promise<string[]> {
  const { rows: spaces } = await sql.executeSql(
    `SELECT nspname::text AS name FROM pg_namespace WHERE nspname = ANY($1)`,
    [schemas],
  );
  const { rows: names } = await sql.executeSql(
    `SELECT name FROM pgboss.queue WHERE name = ANY($1)`,
    [queues],
  );
  return [
    ...spaces.map((row) => `schema ${row.name}`),
    ...names.map((row) => `queue ${row.name}`),
  ];
}

Deno.test("openOutbox({ create: false }) (embedded): a missing directory, or one whose pgdata holds no database, is NOT_FOUND and nothing is created", async () => {
  const parent = await Deno.makeTempDir({ prefix: "outbox_existing_" });
  try {
    const dir = `${parent}/typo`;
    await notFound(
      openOutbox({ dir, create: false }),
      new RegExp(`no embedded outbox in ".*/typo"`),
    );
    await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);

    // An empty pgdata (a first open cut short, a stray mkdir): still no
    // database, and none is made in it.
    const half = `${parent}/half`;
    await Deno.mkdir(`${half}/pgdata`, { recursive: true });
    await notFound(
      openOutbox({ dir: half, create: false }),
      /no database in its pgdata directory/,
    );
    const left = [];
    for await (const entry of Deno.readDir(half)) left.push(entry.name);
    for await (const entry of Deno.readDir(`${half}/pgdata`)) {
      left.push(`pgdata/${entry.name}`);
    }
    assert.deepEqual(left, ["pgdata"], "nothing written in the directory");
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("openOutbox(): create must be a boolean", () => {
  assert.throws(
    // @ts-expect-error: the wrong type on purpose
    () => openOutbox({ create: "no" }),
    { name: "TypeError", message: /create must be a boolean, received "no"/ },
  );
});

for (const engine of ["embedded", "postgres"] as const) {
  Deno.test({
    name:
      `openOutbox({ create: false }) (${engine}): a mistyped schema or queue is NOT_FOUND naming it and creates nothing; the outbox that exists opens`,
    ignore: engine === "postgres" && DATABASE_URL === undefined,
    async fn() {
      const { cleanup, ...options } = await freshOptions(engine);
      const queue = options.queue ?? "trigger_outbox";
      const suffix = crypto.randomUUID().slice(0, 8);
      const typoSchema = `pgbos_${suffix}`;
      const typoQueue = `${queue}_typo_${suffix}`;
      const emptySchema = `empty_${suffix}`;
      const outbox = await openOutbox(options);
      try {
        await outbox.trigger("http://127.0.0.1:9/later", { delay: 3_600_000 });
        // A schema that exists but holds no outbox (PostgreSQL only: the
        // test database is shared, so it is made and dropped here).
        if (engine === "postgres") {
          await sqlOf(outbox).executeSql(`CREATE SCHEMA ${emptySchema}`);
        }
      } finally {
        await outbox.stop();
      }
      try {
        await notFound(
          openOutbox({ ...options, schema: typoSchema, create: false }),
          new RegExp(
            `has no schema "${typoSchema}" \\(create: false installs nothing\\); outbox schemas there: .*"pgboss"`,
          ),
        );
        await notFound(
          openOutbox({ ...options, queue: typoQueue, create: false }),
          new RegExp(
            `no queue "${typoQueue}" in schema "pgboss" of .*; queues there: `,
          ),
        );
        if (engine === "postgres") {
          await notFound(
            openOutbox({ ...options, schema: emptySchema, create: false }),
            new RegExp(
              `has no outbox \\(pg-boss\\) in schema "${emptySchema}"`,
            ),
          );
        }

        // The right names open, read and store.
        const existing = await openOutbox({ ...options, create: false });
        try {
          assert.equal((await existing.stats()).queued, 1);
          await existing.trigger("http://127.0.0.1:9/later", {
            delay: 3_600_000,
          });
          assert.equal((await existing.stats()).queued, 2);
          const sql = sqlOf(existing);
          assert.deepEqual(
            await present(sql, [typoSchema], [
              typoQueue,
              `${typoQueue}_dead`,
            ]),
            [],
            "nothing created for the mistyped names",
          );
          if (engine === "postgres") {
            const { rows } = await sql.executeSql(
              `SELECT count(*)::int AS n FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = $1`,
              [emptySchema],
            );
            assert.equal(rows[0].n, 0, "nothing installed in the empty schema");
          }
        } finally {
          await existing.stop();
        }
      } finally {
        if (engine === "postgres") {
          const again = await openOutbox(options);
          await sqlOf(again).executeSql(`DROP SCHEMA ${emptySchema}`);
          await again.stop();
        }
        await cleanup();
      }
    },
  });
}

for (const [age, step] of [["older", -1], ["newer", 1]] as const) {
  Deno.test({
    name:
      `openOutbox({ create: false }) (postgres): a pg-boss schema ${age} than the supported one is DATABASE naming the found and supported versions, and is not migrated`,
    ignore: DATABASE_URL === undefined,
    async fn() {
      const schema = `v_${crypto.randomUUID().slice(0, 8)}`;
      const options = { connectionString: DATABASE_URL, schema };
      const outbox = await openOutbox(options);
      const sql = sqlOf(outbox);
      try {
        const { rows: [installed] } = await sql.executeSql(
          `SELECT version::int AS version FROM ${schema}.version`,
        );
        assert.equal(installed.version, SCHEMA_VERSION, "pg-boss 12.38's");
        const found = SCHEMA_VERSION + step;
        await sql.executeSql(`UPDATE ${schema}.version SET version = $1`, [
          found,
        ]);
        const before = await writesTo(sql, schema);
        await assert.rejects(
          openOutbox({ ...options, create: false }),
          (error: unknown) => {
            assert.ok(error instanceof OutboxError, String(error));
            assert.equal(error.code, "DATABASE", error.message);
            assert.match(
              error.message,
              new RegExp(
                `schema "${schema}" in PostgreSQL at .* is at version ${found}, ${age} than the version ${SCHEMA_VERSION} \\(pg-boss 12\\.38\\) this fire-trigger supports`,
              ),
            );
            assert.doesNotMatch(error.message, /requires migrations/);
            return true;
          },
        );
        const { rows: [after] } = await sql.executeSql(
          `SELECT version::int AS version FROM ${schema}.version`,
        );
        assert.equal(after.version, found, "not migrated");
        assert.equal(await writesTo(sql, schema), before, "nothing written");
      } finally {
        await sql.executeSql(`DROP SCHEMA ${schema} CASCADE`).catch(() => {});
        await outbox.stop();
      }
    },
  });
}

Deno.test({
  name:
    "openOutbox({ create: false }) (postgres): the outbox opens in a schema with more queues than pg-boss lists in one page (1,000)",
  ignore: DATABASE_URL === undefined,
  async fn() {
    const schema = `many_${crypto.randomUUID().slice(0, 8)}`;
    // Sorted after the 1,001 others.
    const options = {
      connectionString: DATABASE_URL,
      schema,
      queue: "z_outbox",
    };
    const engine = await openEngine(checkOpenOptions(options), () => {});
    try {
      for (let n = 0; n <= 1_000; n++) {
        await engine.boss.createQueue(`q_${String(n).padStart(4, "0")}`);
      }
    } finally {
      await engine.close();
    }
    const outbox = await openOutbox(options);
    try {
      await outbox.stop();
      const existing = await openOutbox({ ...options, create: false });
      await existing.stop();
    } finally {
      const again = await openOutbox(options);
      await sqlOf(again).executeSql(`DROP SCHEMA ${schema} CASCADE`);
      await again.stop();
    }
  },
});

for (const engine of ["embedded", "postgres"] as const) {
  Deno.test({
    name:
      `openOutbox({ create: true }) (${engine}): a pg-boss schema newer than the supported one is DATABASE too (pg-boss's start() would open it as it is), refused before pg-boss writes to it`,
    ignore: engine === "postgres" && DATABASE_URL === undefined,
    async fn() {
      const { cleanup, ...fresh } = await freshOptions(engine);
      const schema = `n_${crypto.randomUUID().slice(0, 8)}`;
      const options = { ...fresh, schema };
      const outbox = await openOutbox(options);
      const found = SCHEMA_VERSION + 1;
      try {
        await sqlOf(outbox).executeSql(
          `UPDATE ${schema}.version SET version = $1`,
          [found],
        );
      } finally {
        await outbox.stop({ close: engine === "embedded" });
      }
      // The schema as it is; the embedded one read with the outbox closed
      // (so it has stopped writing) and without pg-boss.
      const reading = async (read: (sql: Sql) => Promise<string>) => {
        if (engine === "postgres") return await read(sqlOf(outbox));
        const { PGlite } = await import("npm:@electric-sql/pglite@0.5.16");
        const pglite = await PGlite.create(`${fresh.dir}/pgdata`);
        try {
          return await read({
            executeSql: (text, values) => pglite.query(text, values),
          });
        } finally {
          await pglite.close();
        }
      };
      try {
        const before = await reading((sql) => writesTo(sql, schema));
        await assert.rejects(openOutbox(options), (error: unknown) => {
          assert.ok(error instanceof OutboxError, String(error));
          assert.equal(error.code, "DATABASE", error.message);
          assert.match(
            error.message,
            new RegExp(
              `schema "${schema}" in .* is at version ${found}, newer than the version ${SCHEMA_VERSION} \\(pg-boss 12\\.38\\) this fire-trigger supports`,
            ),
          );
          return true;
        });
        assert.equal(
          await reading((sql) => writesTo(sql, schema)),
          before,
          "nothing written to the newer schema",
        );
      } finally {
        if (engine === "postgres") {
          await sqlOf(outbox).executeSql(`DROP SCHEMA ${schema} CASCADE`);
        }
        await outbox.stop();
        await cleanup();
      }
    },
  });
}

Deno.test({
  name:
    "openOutbox({ create: false }) (postgres): among many schemas and queues, a mistyped name's message names the nearest first (alphabetically, twelve sorting before left out the one meant)",
  ignore: DATABASE_URL === undefined,
  async fn() {
    const suffix = crypto.randomUUID().slice(0, 8);
    const queue = `q_${suffix}`;
    const lookAlikes = Array.from(
      { length: 12 },
      (_, n) => `aa_${suffix}_${n}`,
    );
    const db = await openEngine(
      checkOpenOptions({ connectionString: DATABASE_URL, queue }),
      () => {},
    );
    const sql = db.boss.getDb() as Sql;
    try {
      // Schemas that look like installs (their three tables) and queues,
      // all sorting before the ones meant.
      for (const schema of lookAlikes) {
        await sql.executeSql(
          `CREATE SCHEMA ${schema};
           CREATE TABLE ${schema}.version (v int);
           CREATE TABLE ${schema}.queue (v int);
           CREATE TABLE ${schema}.job (v int)`,
        );
      }
      for (const name of [queue, ...lookAlikes]) {
        await db.boss.createQueue(name);
      }
      await db.boss.createQueue(`${queue}_dead`);
      const open = { connectionString: DATABASE_URL, create: false };
      await notFound(
        openOutbox({ ...open, queue, schema: "pgbos" }),
        /has no schema "pgbos" .*; outbox schemas there: "pgboss", ".*", \d+ more$/,
      );
      await notFound(
        openOutbox({ ...open, queue: `${queue}x` }),
        new RegExp(`; queues there: "${queue}", ".*", \\d+ more$`),
      );
    } finally {
      for (const name of [queue, `${queue}_dead`, ...lookAlikes]) {
        await db.boss.deleteQueue(name).catch(() => {});
      }
      for (const schema of lookAlikes) {
        await sql.executeSql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      }
      await db.close();
    }
  },
});

Deno.test("nearest(): the fewest edits first, ties alphabetical, then how many more", async () => {
  const { nearest } = await import("../../src/durable/_nearest.ts");
  assert.deepEqual(
    nearest(["alpha", "pgboss", "pgboss_2", "beta", "zeta"], "pgbos", 3),
    ['"pgboss"', '"pgboss_2"', '"alpha"', "2 more"],
  );
  assert.deepEqual(nearest(["b", "a"], "x"), ['"a"', '"b"']);
  assert.deepEqual(nearest([], "x"), []);
  assert.deepEqual(nearest(["kitten"], "sitting", 1), ['"kitten"']);
});
