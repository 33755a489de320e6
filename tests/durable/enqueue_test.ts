// Storing triggers: a string PostgreSQL's JSON cannot hold is refused at the
// call; a row that fails its group's INSERT fails only its own caller. The
// internal lease margin is set by the module's own symbol only.
import assert from "node:assert/strict";
import { openOutbox } from "../../src/durable/mod.ts";
import { openEngine } from "../../src/durable/_engine.ts";
import {
  groupCommit,
  jobRetry,
  jobRow,
  LEASE_MARGIN,
  LEASE_MARGIN_SECONDS,
} from "../../src/durable/_enqueue.ts";
import { ADMIN, type Administered } from "../../src/durable/_admin_queries.ts";
import {
  checkOpenOptions,
  DEFAULT_RETRY,
  retrySettings,
} from "../../src/durable/_validate.ts";
import { verdict } from "../../src/durable/_dispatcher.ts";
import { TriggerError, type TriggerResult } from "../../mod.ts";
import { countByState, type Sql } from "../../src/durable/_pgboss_sql.ts";
import { denoRecorder } from "../_servers.ts";

Deno.test("outbox.trigger() refuses strings PostgreSQL's JSON cannot store (NUL, unpaired surrogates) synchronously, naming the field", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox_enqueue_" });
  const outbox = await openOutbox({ dir });
  try {
    const url = "http://127.0.0.1:9/";
    assert.throws(
      () => outbox.trigger(url, { caCerts: ["-----BEGIN\0"] }),
      { name: "TypeError", message: /caCerts\[0\] contains a NUL character/ },
    );
    assert.throws(
      () => outbox.trigger(url, { caCerts: ["ok", "a\ud800b"] }),
      {
        name: "TypeError",
        message: /caCerts\[1\] contains an unpaired surrogate/,
      },
    );
    assert.equal((await outbox.stats()).queued, 0);
    // A good trigger beside them is stored.
    await outbox.trigger(url, { caCerts: ["-----BEGIN CERTIFICATE-----"] });
    assert.equal((await outbox.stats()).queued, 1);
  } finally {
    await outbox.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("outbox.trigger() stores the bytes its call was given: the caller's array changed at once after the call is not what is delivered", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox_enqueue_" });
  const target = denoRecorder();
  const outbox = await openOutbox({ dir });
  try {
    const array = new Uint8Array(64).fill(7);
    const stored = outbox.trigger(`${target.origin}/bytes`, { body: array });
    array.fill(0xee); // after the call, while the row is being stored
    await stored;
    outbox.start({ pollInterval: 100 });
    const seen = await target.seen.take();
    assert.equal(seen.url, "/bytes");
    assert.deepEqual(seen.body, new Uint8Array(64).fill(7));

    // Detached by the caller's own code during the call (a getter, read
    // as outbox.trigger() copies its options, before the body is looked
    // at): refused at the call like a detached body, nothing stored.
    const body = new Uint8Array(8);
    assert.throws(
      () =>
        outbox.trigger(`${target.origin}/detached`, {
          body,
          get headers() {
            if (body.buffer.byteLength > 0) {
              structuredClone(body.buffer, { transfer: [body.buffer] });
            }
            return { "x-a": "1" };
          },
        }),
      { name: "TypeError", message: /body's ArrayBuffer is detached/ },
    );
    assert.equal((await outbox.stats()).queued, 0);
  } finally {
    await outbox.stop();
    await target.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a row PostgreSQL refuses fails only its own caller: the rest of its group commit is stored", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox_enqueue_" });
  const engine = await openEngine(checkOpenOptions({ dir }), () => {});
  try {
    await engine.boss.createQueue("q");
    const insert = groupCommit(engine, "q", 10_000);
    const row = (n: number, caCerts?: string[]) => {
      const id = crypto.randomUUID();
      return jobRow(
        id,
        {
          id,
          method: "POST",
          url: `http://127.0.0.1:9/${n}`,
          headers: [],
          body: null,
          timeout: 1_000,
          ...(caCerts ? { caCerts } : {}),
        },
        DEFAULT_RETRY,
        undefined,
      );
    };
    // Past the synchronous check (as a stored form from elsewhere might be).
    const results = await Promise.allSettled([
      insert.add(row(1)),
      insert.add(row(2, ["bad\0cert"])),
      insert.add(row(3)),
    ]);
    assert.deepEqual(results.map((r) => r.status), [
      "fulfilled",
      "rejected",
      "fulfilled",
    ]);
    const reason = (results[1] as PromiseRejectedResult).reason;
    assert.equal(reason.code, "DATABASE", String(reason));
    const counts = await countByState(engine.boss.getDb() as Sql, "pgboss", [
      "q",
      "q",
    ]);
    assert.deepEqual(counts.map((c) => `${c.state} ${c.count}`), [
      "created 2",
    ]);
  } finally {
    await engine.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a group commit's INSERT is bounded by its bodies' size (8 MiB of base64), not only by its row count: 12 bodies of 1 MiB go 5 + 5 + 2, all stored", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox_enqueue_" });
  const engine = await openEngine(checkOpenOptions({ dir }), () => {});
  try {
    await engine.boss.createQueue("q");
    // The rows of each INSERT, counted on the real pg-boss call.
    const batches: number[] = [];
    const insertRows = engine.boss.insert.bind(engine.boss);
    engine.boss.insert = (name, rows, options) => {
      batches.push(rows.length);
      return insertRows(name, rows, options);
    };
    const insert = groupCommit(engine, "q", 60_000);
    // A 1 MiB body as stored: 1,398,104 base64 characters.
    const body = "A".repeat(1_398_104);
    const rows = Array.from({ length: 12 }, (_, n) => {
      const id = crypto.randomUUID();
      return jobRow(
        id,
        {
          id,
          method: "POST",
          url: `http://127.0.0.1:9/${n}`,
          headers: [],
          body,
          timeout: 1_000,
        },
        DEFAULT_RETRY,
        undefined,
      );
    });
    await Promise.all(rows.map((row) => insert.add(row)));
    assert.deepEqual(batches, [5, 5, 2]);
    const counts = await countByState(engine.boss.getDb() as Sql, "pgboss", [
      "q",
      "q",
    ]);
    assert.deepEqual(counts.map((c) => `${c.state} ${c.count}`), [
      "created 12",
    ]);
  } finally {
    await engine.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the triggers waiting for a group commit hold at most 64 MiB of body text: of 60 bodies of 1 MiB sent at once, 47 are stored and 13 refused OVERLOADED (not stored)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox_enqueue_" });
  const engine = await openEngine(checkOpenOptions({ dir }), () => {});
  try {
    await engine.boss.createQueue("q");
    const insert = groupCommit(engine, "q", 60_000);
    const body = "A".repeat(1_398_104); // 1 MiB as stored (base64)
    const results = await Promise.allSettled(
      Array.from({ length: 60 }, (_, n) => {
        const id = crypto.randomUUID();
        return insert.add(jobRow(
          id,
          {
            id,
            method: "POST",
            url: `http://127.0.0.1:9/${n}`,
            headers: [],
            body,
            timeout: 1_000,
          },
          DEFAULT_RETRY,
          undefined,
        ));
      }),
    );
    const refused = results.filter((r) => r.status === "rejected");
    // 47 × 1,398,104 characters fit in 67,108,864; 48 do not.
    assert.equal(refused.length, 13);
    for (const r of refused) {
      const error = (r as PromiseRejectedResult).reason;
      assert.equal(error?.code, "OVERLOADED", String(error));
      assert.match(
        error.message,
        /not stored: .* 67108864 bytes of their bodies/,
      );
    }
    const counts = await countByState(engine.boss.getDb() as Sql, "pgboss", [
      "q",
      "q",
    ]);
    assert.deepEqual(counts.map((c) => `${c.state} ${c.count}`), [
      "created 47",
    ]);
  } finally {
    await engine.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the internal lease margin: only the module's own symbol sets it (the same key in Symbol.for()'s registry is an ordinary option, ignored), whole seconds from 2 to 3600", async () => {
  for (const margin of [1, 3_601, 2.5, "4"]) {
    assert.throws(
      () => openOutbox({ dir: "unused", [LEASE_MARGIN]: margin } as object),
      {
        name: "RangeError",
        message: /lease margin must be whole seconds from 2 to 3600/,
      },
      String(margin),
    );
  }
  const dir = await Deno.makeTempDir({ prefix: "outbox_enqueue_" });
  const outbox = await openOutbox(
    {
      dir,
      [Symbol.for(LEASE_MARGIN.description!)]: 7,
    } as object,
  );
  try {
    await outbox.trigger("http://127.0.0.1:9/", { timeout: 1_000 });
    const { rows } = await (outbox as unknown as Administered)[ADMIN]().db
      .executeSql(`SELECT expire_seconds FROM pgboss.job WHERE name = $1`, [
        "trigger_outbox",
      ]);
    assert.deepEqual(rows, [{ expire_seconds: 1 + LEASE_MARGIN_SECONDS }]);
  } finally {
    await outbox.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("retry settings as stored: a delay of 0 stays 0 on every retry (stored without backoff: pg-boss's backoff starts at 1 s); a delay past maxDelay with backoff is refused at the call; statuses past 599 are no 5xx", async () => {
  const retry = { limit: 3, delay: 0, backoff: true, maxDelay: 300_000 };
  assert.deepEqual(jobRetry(retry), {
    retryLimit: 3,
    retryDelay: 0,
    retryBackoff: false,
  });
  assert.deepEqual(jobRetry({ ...retry, delay: 1_500 }), {
    retryLimit: 3,
    retryDelay: 2,
    retryBackoff: true,
    retryDelayMax: 300,
  });
  // Equal in whole seconds, as stored: taken.
  assert.equal(
    retrySettings({ delay: 2_500, maxDelay: 2_001 }, DEFAULT_RETRY, "x: ")
      .delay,
    2_500,
  );
  assert.equal(
    retrySettings({ delay: 600_000, backoff: false }, DEFAULT_RETRY, "x: ")
      .delay,
    600_000,
  );

  const dir = await Deno.makeTempDir({ prefix: "outbox_enqueue_" });
  const outbox = await openOutbox({ dir, retry: { maxDelay: 60_000 } });
  try {
    assert.throws(
      () =>
        outbox.trigger("http://127.0.0.1:9/", { retry: { delay: 120_000 } }),
      /retry\.delay \(120000 ms\) is longer than retry\.maxDelay \(60000 ms, the outbox's\)/,
    );
    assert.equal((await outbox.stats()).queued, 0);
  } finally {
    await outbox.stop();
    await Deno.remove(dir, { recursive: true });
  }

  const failed = (status: number) =>
    verdict({
      ok: false,
      status,
      error: new TriggerError("HTTP_STATUS", `Server answered ${status}`, {
        status,
      }),
    } as unknown as TriggerResult);
  assert.deepEqual(
    [500, 503, 599, 408, 429, 600, 999, 404, 425, 301].map(failed),
    [
      "retry",
      "retry",
      "retry",
      "retry",
      "retry",
      "dead",
      "dead",
      "dead",
      "dead",
      "dead",
    ],
  );
});

Deno.test("retry settings: a key given as undefined takes the default (or the outbox's), as every other option; null stays refused", () => {
  const outboxs = { limit: 3, delay: 2_000, maxDelay: 60_000, backoff: true };
  assert.deepEqual(
    retrySettings(
      {
        limit: undefined,
        delay: undefined,
        maxDelay: undefined,
        backoff: undefined,
      },
      DEFAULT_RETRY,
      "x: ",
    ),
    DEFAULT_RETRY,
  );
  assert.deepEqual(
    retrySettings({ limit: undefined, delay: 5_000 }, outboxs, "x: "),
    { ...outboxs, delay: 5_000 },
  );
  assert.equal(
    checkOpenOptions({ dir: "/tmp/x", retry: { limit: undefined } }).retry
      .limit,
    DEFAULT_RETRY.limit,
  );
  assert.throws(
    () => retrySettings({ limit: null as unknown as number }, outboxs, "x: "),
    { name: "RangeError", message: /retry\.limit .* received null/ },
  );
});

Deno.test("an insert PostgreSQL cancels for its statement_timeout (57014) rejects outbox.trigger() with DATABASE (an answer: nothing stored), not TIMEOUT (no answer, outcome unknown)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox_enqueue_" });
  const outbox = await openOutbox({ dir });
  try {
    const { db, schema } = (outbox as unknown as Administered)[ADMIN]();
    await db.executeSql(`CREATE SEQUENCE ${schema}.insert_refusals`);
    await db.executeSql(
      `CREATE FUNCTION ${schema}.insert_refused() RETURNS trigger AS $$
       BEGIN
         IF nextval('${schema}.insert_refusals') = 1 THEN
           RAISE EXCEPTION 'canceling statement due to statement timeout'
             USING ERRCODE = '57014';
         END IF;
         RETURN NEW;
       END $$ LANGUAGE plpgsql`,
    );
    await db.executeSql(
      `CREATE TRIGGER insert_refused BEFORE INSERT ON ${schema}.job
       FOR EACH ROW EXECUTE FUNCTION ${schema}.insert_refused()`,
    );
    const refused = await outbox.trigger("http://127.0.0.1:9/a").then(
      () => undefined,
      (error) => error,
    );
    assert.equal(refused?.code, "DATABASE", String(refused));
    assert.match(refused.message, /statement timeout/);
    assert.equal((await outbox.stats()).queued, 0);
    await outbox.trigger("http://127.0.0.1:9/b");
    assert.equal((await outbox.stats()).queued, 1);
  } finally {
    await outbox.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
