// The dedup side of verifyTrigger(): the memory store's eviction, the time
// to live values a store is given, a key import that fails once, and
// PostgresDedupStore's errors (never a password).
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  type ClaimResult,
  type DedupStore,
  MemoryDedupStore,
  verifyTrigger,
} from "../../src/hono/mod.ts";
import { PostgresDedupStore } from "../../src/dedup/postgres.ts";
import { createSecret, signPayload } from "../../mod.ts";
import { sleep } from "../_hono_client.ts";
import { skipUnless } from "../_env.ts";
import { until, within } from "../_wait.ts";
import { storeKey } from "../_vector.ts";
import { CAN_START_POSTGRES, ThrowawayPostgres } from "../_postgres.ts";

let counter = 0;

async function signed(
  secret: string,
  body: string,
  id = `msg_dedup_${++counter}`,
): Promise<Record<string, string>> {
  const timestamp = Math.floor(Date.now() / 1000);
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": await signPayload(secret, { id, timestamp, body }),
  };
}

Deno.test("MemoryDedupStore evicts expired entries first, wherever they are", async () => {
  const store = new MemoryDedupStore({ maxEntries: 2 });
  await store.claim("long", 60_000, "t");
  await store.complete("long", 60_000); // first in the map, still remembered
  await store.claim("short", 60_000, "t");
  await store.complete("short", 20); // behind it, expires soon
  await sleep(40);
  assert.equal(await store.claim("new", 60_000, "t"), "claimed");
  assert.equal(await store.claim("long", 60_000, "t"), "done", "kept");
});

Deno.test("MemoryDedupStore shared by two middlewares: a replay never runs twice", async () => {
  // Two routes with different tolerances, one store: the long-lived id sits
  // before an expired one in the store's order.
  const secret = createSecret();
  const store = new MemoryDedupStore({ maxEntries: 2 });
  const runs = new Map<string, number>();
  const app = new Hono();
  const route = (c: { req: { path: string } }) => {
    runs.set(c.req.path, (runs.get(c.req.path) ?? 0) + 1);
    return new Response("ran");
  };
  app.post("/long", verifyTrigger({ secret, store, tolerance: 60_000 }), route);
  app.post(
    "/short",
    verifyTrigger({ secret, store, tolerance: 1_000, remember: 2_000 }),
    route,
  );
  const send = async (path: string, headers: Record<string, string>) => {
    const response = await app.request(path, {
      method: "POST",
      body: "x",
      headers,
    });
    await response.body?.cancel();
    return response.status;
  };
  const remembered = await signed(secret, "x");
  assert.equal(await send("/long", remembered), 200);
  assert.equal(await send("/short", await signed(secret, "x")), 200);
  await sleep(2_100); // the /short id expires; the /long one is remembered
  assert.equal(await send("/short", await signed(secret, "x")), 200);
  // A replay of the first request, well inside its 60 s tolerance.
  assert.equal(await send("/long", remembered), 200);
  assert.equal(runs.get("/long"), 1, "the replay ran the route again");
});

/** A store that records every call, backed by a real MemoryDedupStore. */
class RecordingStore implements DedupStore {
  calls: Array<[string, string, number?]> = [];
  /** The tokens given to claim() and release(), in order. */
  tokens: string[] = [];
  #store = new MemoryDedupStore();
  claim(id: string, ttl: number, token: string): Promise<ClaimResult> {
    this.calls.push(["claim", id, ttl]);
    this.tokens.push(token);
    return this.#store.claim(id, ttl, token);
  }
  complete(id: string, ttl: number): Promise<void> {
    this.calls.push(["complete", id, ttl]);
    return this.#store.complete(id, ttl);
  }
  release(id: string, token: string): Promise<void> {
    this.calls.push(["release", id]);
    this.tokens.push(token);
    return this.#store.release(id, token);
  }
}

Deno.test("verifyTrigger() gives the store lease to claim() and remember to complete(), in ms", async () => {
  const secret = createSecret();
  const cases: Array<[object, number, number]> = [
    [{}, 300_000, 600_000], // the defaults: lease 5 min, remember 2 x tolerance
    [{ tolerance: 60_000 }, 300_000, 120_000],
    [
      { tolerance: 60_000, remember: 86_400_000, lease: 30_000 },
      30_000,
      86_400_000,
    ],
  ];
  for (const [options, lease, remember] of cases) {
    const store = new RecordingStore();
    const app = new Hono();
    let fail = false;
    app.post("/hook", verifyTrigger({ secret, store, ...options }), (c) => {
      return fail ? c.text("failed", 500) : c.text("ran");
    });
    const ok = await signed(secret, "x");
    await (await app.request("/hook", {
      method: "POST",
      body: "x",
      headers: ok,
    }))
      .body?.cancel();
    fail = true;
    const bad = await signed(secret, "x");
    await (await app.request("/hook", {
      method: "POST",
      body: "x",
      headers: bad,
    }))
      .body?.cancel();
    const okId = await storeKey(secret, ok["webhook-id"]);
    const badId = await storeKey(secret, bad["webhook-id"]);
    assert.deepEqual(store.calls, [
      ["claim", okId, lease],
      ["complete", okId, remember],
      ["claim", badId, lease],
      ["release", badId],
    ], JSON.stringify(options));
  }
});

Deno.test("verifyTrigger() retries a key import that failed, instead of keeping the failure", async () => {
  const secret = createSecret();
  const app = new Hono();
  let runs = 0;
  app.post("/hook", verifyTrigger({ secret }), (c) => (runs++, c.text("ran")));
  app.onError((_error, c) => c.text("failed", 500)); // quiet
  const [firstHeaders, secondHeaders] = [
    await signed(secret, "x"),
    await signed(secret, "x"),
  ];
  const subtle = crypto.subtle;
  const realImport = subtle.importKey;
  let failures = 1;
  // One transient failure of the platform's key import; the real one after.
  subtle.importKey = function (...args: unknown[]) {
    if (failures-- > 0) {
      return Promise.reject(new DOMException("transient", "OperationError"));
    }
    return (realImport as (...a: unknown[]) => Promise<CryptoKey>).apply(
      subtle,
      args,
    );
  } as SubtleCrypto["importKey"];
  try {
    const first = await app.request("/hook", {
      method: "POST",
      body: "x",
      headers: firstHeaders,
    });
    assert.equal(first.status, 500);
    await first.body?.cancel();
    const second = await app.request("/hook", {
      method: "POST",
      body: "x",
      headers: secondHeaders,
    });
    assert.equal(second.status, 200);
    assert.equal(await second.text(), "ran");
  } finally {
    subtle.importKey = realImport;
  }
  assert.equal(runs, 1);
});

Deno.test("PostgresDedupStore never puts the password in an error message", async () => {
  const password = "s3cr#t-pa55word";
  const strings = [
    // Not a valid URL: an unencoded "#" in the password, a port out of range.
    `postgres://postgres:${password}@127.0.0.1:99999/postgres`,
    `postgres://postgres:${password}@127.0.0.1:5/postgres`,
    `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:1/postgres`,
    `postgres://postgres:${password}@127.0.0.1/db?sslmode=bogus`,
  ];
  const parts = [password, encodeURIComponent(password), "s3cr", "pa55word"];
  for (const connectionString of strings) {
    const store = new PostgresDedupStore({ connectionString });
    try {
      for (
        const call of [
          () => store.claim("msg_1", 1000, "t"),
          () => store.complete("msg_1", 1000),
          () => store.release("msg_1", "t"),
        ]
      ) {
        const error = await call().then(
          () => assert.fail(`no error for ${connectionString}`),
          (error: unknown) => error,
        );
        const shown = [
          String(error),
          (error as Error).stack ?? "",
          JSON.stringify(error),
          String((error as Error).cause ?? ""),
        ].join("\n");
        for (const part of parts) {
          assert.ok(
            !shown.includes(part),
            `"${part}" shown for ${connectionString}: ${shown}`,
          );
        }
      }
    } finally {
      await store.close();
    }
  }
});

const DATABASE_URL = Deno.env.get("TRIGGER_TEST_DATABASE_URL");

/** The stores the ownership rules are checked on: memory, and PostgreSQL when there is one. */
function ownedStores(): Array<
  [string, () => Promise<[DedupStore, () => Promise<void>]>]
> {
  const list: Array<
    [string, () => Promise<[DedupStore, () => Promise<void>]>]
  > = [
    [
      "MemoryDedupStore",
      () => Promise.resolve([new MemoryDedupStore(), () => Promise.resolve()]),
    ],
  ];
  if (DATABASE_URL !== undefined) {
    list.push(["PostgresDedupStore", async () => {
      const { default: pg } = await import("npm:pg@8.23.1");
      const db = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
      const table = `dedup_owner_${Date.now()}_${++counter}`;
      const store = new PostgresDedupStore({ db, table });
      return [store, async () => {
        await db.query(`DROP TABLE IF EXISTS ${table}`);
        await db.end();
      }];
    }]);
  } else {
    console.error(
      "TRIGGER_TEST_DATABASE_URL unset: PostgresDedupStore not checked",
    );
  }
  return list;
}

Deno.test("a claim has an owner: a lapsed claim's late release() never frees the claim taken since", async (t) => {
  for (const [name, open] of ownedStores()) {
    await t.step(name, async () => {
      const [store, close] = await open();
      try {
        assert.equal(await store.claim("msg_own", 50, "a"), "claimed");
        await sleep(120); // A's lease lapses; A still runs
        assert.equal(await store.claim("msg_own", 60_000, "b"), "claimed");
        await store.release("msg_own", "a"); // A ends late and fails
        assert.equal(
          await store.claim("msg_own", 60_000, "c"),
          "busy",
          "C would run beside B",
        );
        await store.release("msg_own", "b");
        assert.equal(await store.claim("msg_own", 60_000, "c"), "claimed");
        // complete() remembers an id whose entry is gone (never claimed
        // here: the same as a lapsed claim swept away).
        await store.complete("msg_swept", 60_000);
        assert.equal(await store.claim("msg_swept", 60_000, "d"), "done");
        // and overwrites a claim another delivery took since.
        assert.equal(await store.claim("msg_late", 50, "a"), "claimed");
        await sleep(120);
        assert.equal(await store.claim("msg_late", 60_000, "b"), "claimed");
        await store.complete("msg_late", 60_000); // A succeeded after all
        await store.release("msg_late", "b"); // B failed: A's success stays
        assert.equal(await store.claim("msg_late", 60_000, "c"), "done");
      } finally {
        await close();
      }
    });
  }
});

Deno.test("verifyTrigger() releases with the token it claimed with, a new one per delivery", async () => {
  const secret = createSecret();
  const store = new RecordingStore();
  const app = new Hono();
  app.post("/hook", verifyTrigger({ secret, store }), (c) => c.text("no", 500));
  const headers = await signed(secret, "x");
  for (let i = 0; i < 2; i++) {
    const response = await app.request("/hook", {
      method: "POST",
      body: "x",
      headers,
    });
    assert.equal(response.status, 500);
    await response.body?.cancel();
  }
  const [a, aRelease, b, bRelease] = store.tokens;
  assert.equal(store.tokens.length, 4);
  assert.equal(aRelease, a);
  assert.equal(bRelease, b);
  assert.notEqual(a, b);
  assert.ok(a.length >= 16, a);
});

Deno.test({
  name:
    "PostgresDedupStore: a stopped database (SIGSTOP) gives 503 and a report within the timeouts, not a hang",
  ignore: skipUnless(
    CAN_START_POSTGRES,
    "initdb and pg_ctl (and, as root, a postgres user) are needed to start a throwaway PostgreSQL",
  ),
  async fn() {
    const pg = await ThrowawayPostgres.start("dedup-pg-");
    const stores: PostgresDedupStore[] = [];
    try {
      const secret = createSecret();
      const reports: unknown[] = [];
      const appWith = (store: PostgresDedupStore) => {
        stores.push(store);
        const app = new Hono();
        app.post(
          "/hook",
          verifyTrigger({
            secret,
            store,
            reportError: (error) => void reports.push(error),
          }),
          (c) => c.text("ran"),
        );
        return (body: string) =>
          signed(secret, body).then((headers) =>
            app.request("/hook", { method: "POST", body, headers })
          );
      };
      const options = {
        connectionString: pg.url(),
        connectionTimeout: 1_000,
        queryTimeout: 1_000,
      };
      const connected = appWith(new PostgresDedupStore(options));
      const ok = await within(connected("a"), "the running database", 15_000);
      assert.equal(ok.status, 200, await ok.text());

      await pg.signal("SIGSTOP");
      // A pooled connection to a stopped server: the query timeout.
      const stalled = await within(
        connected("b"),
        "a query to the stopped database",
        15_000,
      );
      assert.equal(stalled.status, 503);
      assert.equal(await stalled.text(), "Deduplication store unavailable\n");
      assert.equal(reports.length, 1);
      // A new pool: the connection timeout.
      const fresh = appWith(new PostgresDedupStore(options));
      const refused = await within(
        fresh("c"),
        "a connection to the stopped database",
        15_000,
      );
      assert.equal(refused.status, 503);
      await refused.body?.cancel();
      assert.equal(reports.length, 2);
      console.log("reported:", reports.map((error) => String(error)));
      await pg.signal("SIGCONT");
      const again = await within(connected("d"), "the database again", 15_000);
      assert.equal(again.status, 200);
      await again.body?.cancel();
    } finally {
      await pg.signal("SIGCONT").catch(() => {});
      for (const store of stores) await store.close().catch(() => {});
      await pg.stop();
    }
  },
});

Deno.test("PostgresDedupStore refuses timeouts that are not milliseconds", () => {
  for (
    const [name, value] of [["connectionTimeout", -1], [
      "queryTimeout",
      Infinity,
    ], ["queryTimeout", "5s"]] as const
  ) {
    assert.throws(
      () =>
        new PostgresDedupStore({
          connectionString: "postgres://x@127.0.0.1/x",
          [name]: value as number,
        }),
      (error: Error) =>
        error instanceof RangeError && error.message.includes(name),
    );
  }
});

Deno.test({
  name:
    "PostgresDedupStore: a failed background sweep goes to reportError, and a reportError that throws takes nothing down",
  ignore: skipUnless(
    DATABASE_URL !== undefined,
    "TRIGGER_TEST_DATABASE_URL is not set (bash .ci/postgres.sh)",
  ),
  async fn() {
    const { default: pg } = await import("npm:pg@8.23.1");
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    const table = `dedup_sweep_${Date.now()}`;
    // The real database, with its sweep made to fail.
    const db = {
      query(text: string, values?: unknown[]) {
        if (text.startsWith(`WITH gone AS (DELETE FROM "${table}"`)) {
          return Promise.reject(new Error("sweep failed"));
        }
        return pool.query(text, values);
      },
    };
    const reported: unknown[] = [];
    try {
      const told = new PostgresDedupStore({
        db,
        table,
        reportError: (error) => reported.push(error),
      });
      assert.equal(await told.claim("a", 1_000, "t"), "claimed");
      await until(() => reported.length === 1, "the sweep's failure reported");
      assert.match(String(reported[0]), /sweep failed/);
      const throwing = new PostgresDedupStore({
        db,
        table,
        reportError: () => {
          throw new Error("reporter broke");
        },
      });
      assert.equal(await throwing.claim("b", 1_000, "t"), "claimed");
      // An unhandled rejection would fail this test (Deno's sanitizer).
      await sleep(50);
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
      await pool.end();
    }
  },
});

Deno.test("verifyTrigger(): a store whose complete() or release() fails is reported, and the route's answer does not wait for the reporter", async () => {
  const secret = createSecret();
  for (const succeeds of [true, false]) {
    const down = new Error(`store down (${succeeds ? "complete" : "release"})`);
    const memory = new MemoryDedupStore();
    const store: DedupStore = {
      claim: (id, ttl, token) => memory.claim(id, ttl, token),
      complete: () => Promise.reject(down),
      release: () => Promise.reject(down),
    };
    const reported: unknown[] = [];
    const reporterDone = Promise.withResolvers<void>();
    const app = new Hono();
    app.post(
      "/hook",
      verifyTrigger({
        secret,
        store,
        // An error tracker that is slow to answer (here: until released).
        reportError: (error) => {
          reported.push(error);
          return reporterDone.promise;
        },
      }),
      (c) => succeeds ? c.text("ran") : c.text("failed", 500),
    );
    const body = "{}";
    const headers = await signed(secret, body);
    const response = await within(
      Promise.resolve(app.request("/hook", { method: "POST", body, headers })),
      "the route's answer while the reporter is still pending",
      10_000,
    );
    assert.equal(response.status, succeeds ? 200 : 500);
    assert.deepEqual(reported, [down]);
    reporterDone.resolve();
  }
});

Deno.test("verifyTrigger(): one message sent to two endpoints with their own secrets runs on each, even through one shared store", async () => {
  // As Svix sends a message to every endpoint subscribed to it: the same
  // id, each endpoint's own secret. Two services on one database share
  // PostgresDedupStore's default table without knowing it.
  const store = new MemoryDedupStore();
  const billing = createSecret();
  const analytics = createSecret();
  const ran: string[] = [];
  const app = new Hono();
  app.post("/billing", verifyTrigger({ secret: billing, store }), (c) => {
    ran.push("billing");
    return c.text("ok");
  });
  app.post(
    "/analytics",
    verifyTrigger({ secret: [createSecret(), analytics], store }),
    (c) => {
      ran.push("analytics");
      return c.text("ok");
    },
  );
  const send = async (path: string, secret: string) => {
    const response = await app.request(path, {
      method: "POST",
      body: "{}",
      headers: await signed(secret, "{}", "msg_fanout"),
    });
    await response.body?.cancel();
    return [response.status, response.headers.get("x-trigger-duplicate")];
  };
  assert.deepEqual(await send("/billing", billing), [200, null]);
  assert.deepEqual(await send("/analytics", analytics), [200, null]);
  assert.deepEqual(ran, ["billing", "analytics"]);
  // Each endpoint still runs its message once.
  assert.deepEqual(await send("/billing", billing), [200, "done"]);
  assert.deepEqual(await send("/analytics", analytics), [200, "done"]);
  assert.deepEqual(ran, ["billing", "analytics"]);
});

Deno.test({
  name:
    "PostgresDedupStore: a role that may only read and write its table works, nothing waits on the table's lock once it is made, and reserved-word and 63-character names get their table and index",
  ignore: skipUnless(
    DATABASE_URL !== undefined,
    "TRIGGER_TEST_DATABASE_URL is not set (bash .ci/postgres.sh)",
  ),
  async fn() {
    const { default: pg } = await import("npm:pg@8.23.1");
    const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 3 });
    const schema = `dedup_names_${Date.now()}_${++counter}`;
    const role = `${schema}_app`;
    const long = "t".repeat(63);
    const stores: PostgresDedupStore[] = [];
    const open = (
      options: {
        table: string;
        user?: string;
        reportError?: (error: unknown) => void;
      },
    ) => {
      const url = new URL(DATABASE_URL!);
      if (options.user !== undefined) url.username = options.user;
      // Unqualified names are the schema's: a reserved word is one only
      // unqualified.
      url.searchParams.set("options", `-c search_path=${schema}`);
      const store = new PostgresDedupStore({
        connectionString: url.href,
        table: options.table,
        queryTimeout: 5_000,
        reportError: options.reportError,
      });
      stores.push(store);
      return store;
    };
    const indexed = async (table: string) =>
      (await admin.query(
        `SELECT count(*)::int AS n FROM pg_index i JOIN pg_attribute a
           ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE i.indrelid = to_regclass($1) AND a.attname = 'expires_at'`,
        [table],
      )).rows[0].n;
    try {
      await admin.query(`CREATE SCHEMA ${schema}`);
      // Reserved words: a syntax error on every call before.
      for (const table of ["user", "order"]) {
        const store = open({ table });
        assert.equal(await store.claim("msg_1", 60_000, "t"), "claimed");
        await store.complete("msg_1", 60_000);
        assert.equal(await store.claim("msg_1", 60_000, "u"), "done");
        assert.equal(await indexed(`${schema}."${table}"`), 1);
      }
      // 63 characters: the index name was cut to the table's own and
      // skipped, so the sweep scanned the table.
      // Two such names alike in their first 52 characters: one index name,
      // and the second table went without.
      for (const name of [long, `${"t".repeat(62)}u`]) {
        const longStore = open({ table: `${schema}.${name}` });
        assert.equal(await longStore.claim("msg_1", 60_000, "t"), "claimed");
        assert.equal(await indexed(`${schema}.${name}`), 1, name);
      }

      // An application role with only the table's rows: every claim failed
      // with "permission denied" (42501) before, answered 503.
      await admin.query(`CREATE ROLE ${role} LOGIN`);
      await admin.query(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
      await admin.query(
        `GRANT SELECT, INSERT, UPDATE, DELETE ON ${schema}."user" TO ${role}`,
      );
      const app = open({ table: "user", user: role });
      assert.equal(await app.claim("msg_2", 60_000, "t"), "claimed");
      await app.complete("msg_2", 60_000);
      assert.equal(await app.claim("msg_2", 60_000, "u"), "done");
      // A table made as DedupStore's sketch makes it, without the index,
      // which only its owner may add: told, and the claims work.
      await admin.query(
        `CREATE TABLE ${schema}.sketch (id text PRIMARY KEY,
           done boolean NOT NULL, expires_at timestamptz NOT NULL, token text)`,
      );
      await admin.query(
        `GRANT SELECT, INSERT, UPDATE, DELETE ON ${schema}.sketch TO ${role}`,
      );
      const told: unknown[] = [];
      const sketch = open({
        table: "sketch",
        user: role,
        reportError: (error) => told.push(error),
      });
      assert.equal(await sketch.claim("msg_2", 60_000, "t"), "claimed");
      assert.equal(await sketch.claim("msg_2", 60_000, "u"), "busy");
      assert.equal(told.length, 1);
      assert.match(String(told[0]), /owner/);

      // A reader holding the table (a long transaction, pg_dump): a new
      // instance's first claim waited behind its ALTER TABLE, and timed out.
      const reader = await admin.connect();
      try {
        await reader.query("BEGIN");
        await reader.query(`SELECT 1 FROM ${schema}."user" LIMIT 1`);
        const fresh = open({ table: "user" });
        assert.equal(await fresh.claim("msg_3", 60_000, "t"), "claimed");
      } finally {
        await reader.query("ROLLBACK");
        reader.release();
      }
    } finally {
      for (const store of stores) await store.close();
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    }
  },
});

Deno.test({
  name:
    "PostgresDedupStore: the sweep deletes expired rows batch after batch (one DELETE of millions timed out every minute), live ones kept",
  ignore: skipUnless(
    DATABASE_URL !== undefined,
    "TRIGGER_TEST_DATABASE_URL is not set (bash .ci/postgres.sh)",
  ),
  async fn() {
    const { default: pg } = await import("npm:pg@8.23.1");
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    const table = `dedup_batches_${Date.now()}_${++counter}`;
    try {
      const first = new PostgresDedupStore({ db: pool, table });
      assert.equal(await first.claim("live", 600_000, "t"), "claimed");
      await pool.query(
        `INSERT INTO ${table} (id, done, expires_at)
         SELECT 'old_' || i, true, now() - interval '1 hour'
         FROM generate_series(1, 25000) AS i`,
      );
      // A new instance sweeps on its first call: three batches.
      const second = new PostgresDedupStore({ db: pool, table });
      assert.equal(await second.claim("new", 600_000, "t"), "claimed");
      const count = async () =>
        (await pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n;
      await until(async () => await count() === 2, "the expired rows swept");
      assert.equal(await second.claim("live", 600_000, "u"), "busy");
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
      await pool.end();
    }
  },
});

Deno.test("verifyTrigger({ scope }): one key across a secret rotation, so a retry signed with the new secret waits for the delivery the old one still runs", async () => {
  const old = createSecret();
  const fresh = createSecret();
  for (const scope of ["billing", undefined]) {
    const store = new MemoryDedupStore();
    const release = Promise.withResolvers<void>();
    let runs = 0;
    const app = new Hono();
    app.post(
      "/hook",
      verifyTrigger({ secret: [fresh, old], store, scope }),
      async (c) => {
        if (++runs === 1) await release.promise; // the first runs on
        return c.text("ran");
      },
    );
    const send = (secret: string) =>
      signed(secret, "{}", `msg_rotation_${scope}`).then((headers) =>
        app.request("/hook", { method: "POST", body: "{}", headers })
      );
    const first = send(old); // still running
    await until(() => runs === 1, "the first delivery running");
    const retry = await send(fresh);
    await retry.body?.cancel();
    // With a scope, the same key: 429 while it runs. Without, as the
    // documentation says: another key, run beside it.
    assert.equal(retry.status, scope === undefined ? 200 : 429, `${scope}`);
    release.resolve();
    await (await first).body?.cancel();
    const later = await send(fresh);
    assert.equal(later.headers.get("x-trigger-duplicate"), "done");
    await later.body?.cancel();
  }
  for (const scope of ["", "a:b", "x".repeat(65), 7]) {
    assert.throws(
      () => verifyTrigger({ secret: old, scope: scope as string }),
      (error: Error) =>
        error instanceof TypeError && /scope must be/.test(error.message),
      String(scope),
    );
  }
});

Deno.test({
  name:
    "PostgresDedupStore: instances that create one table at once all get their claims (the loser of the race saw 42710 or 42P07, not only 23505)",
  ignore: skipUnless(
    DATABASE_URL !== undefined,
    "TRIGGER_TEST_DATABASE_URL is not set (bash .ci/postgres.sh)",
  ),
  async fn() {
    const { default: pg } = await import("npm:pg@8.23.1");
    const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    const base = `dedup_race_${Date.now()}_${++counter}`;
    let failed = 0;
    const messages = new Set<string>();
    try {
      for (let round = 0; round < 20; round++) {
        const table = `${base}_${round}`;
        const stores = Array.from(
          { length: 6 },
          () =>
            new PostgresDedupStore({
              connectionString: DATABASE_URL,
              table,
              reportError: () => {},
            }),
        );
        try {
          const results = await Promise.allSettled(
            stores.map((store, i) => store.claim(`id${i}`, 60_000, "t")),
          );
          for (const result of results) {
            if (result.status === "rejected") {
              failed++;
              messages.add(String(result.reason));
            }
          }
        } finally {
          await Promise.all(stores.map((store) => store.close()));
          await admin.query(`DROP TABLE IF EXISTS ${table}`);
        }
      }
      assert.equal(failed, 0, [...messages].join("\n"));
    } finally {
      await admin.end();
    }
  },
});

Deno.test("PostgresDedupStore refuses onError, 0.1's name for reportError (ignored, its reports went to console.error)", () => {
  assert.throws(
    () =>
      new PostgresDedupStore(
        { connectionString: "postgres://u@127.0.0.1/db", onError() {} } as
          & ConstructorParameters<typeof PostgresDedupStore>[0]
          & { onError(): void },
      ),
    (error: Error) => {
      assert.ok(error instanceof TypeError);
      assert.match(
        error.message,
        /^Cannot create PostgresDedupStore: onError is now reportError/,
      );
      return true;
    },
  );
});
