// Settling an attempt when the database misbehaves: a statement that fails
// once is tried again (not left to the heartbeat, which would send the
// request again), and an attempt whose lease lapsed does not stop the touches
// of the next attempt of the same job (PGlite).
import assert from "node:assert/strict";
import {
  openOutbox,
  type Outbox,
  type OutboxEvent,
} from "../../src/durable/mod.ts";
import { ADMIN, type Administered } from "../../src/durable/_admin_queries.ts";
import { connectionLost } from "../../src/durable/_dispatcher.ts";
import { until, within } from "../_wait.ts";

/** A target that holds each request until `release(n)` (1-based). */
function heldTarget() {
  const held: Array<() => void> = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      await request.arrayBuffer();
      const { promise, resolve } = Promise.withResolvers<void>();
      held.push(resolve);
      await promise;
      return new Response(null, { status: 200 });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/job`,
    requests: () => held.length,
    release: (n: number) => held[n - 1](),
    async close() {
      for (const resolve of held) resolve();
      await server.shutdown();
    },
  };
}

/** An embedded outbox in a temporary folder that records its events. */
async function recordingOutbox() {
  const dir = await Deno.makeTempDir({ prefix: "outbox_settle_" });
  const events: OutboxEvent[] = [];
  const outbox = await openOutbox({
    dir,
    onEvent: (event) => events.push(event),
  });
  return { outbox, events, dir };
}

/** The outbox's database, schema and queue, for the faults the tests make. */
function handleOf(outbox: Outbox) {
  return (outbox as unknown as Administered)[ADMIN]();
}

/** A target answering 200 at once, counting requests. */
function countingTarget() {
  let requests = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      await request.arrayBuffer();
      requests++;
      return new Response(null, { status: 200 });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/job`,
    requests: () => requests,
    close: () => server.shutdown(),
  };
}

/** Makes the database refuse the statements that complete jobs, as a
 * restart does (SQLSTATE 57P01): the first one only (`once`), the first
 * `times`, or all. The
 * refusals are counted in a sequence: it is not rolled back with the
 * statement. */
async function refuseCompletions(
  db: ReturnType<typeof handleOf>["db"],
  schema: string,
  { once, times, code = "57P01", message = "refused (injected)" }: {
    once?: boolean;
    times?: number;
    code?: string;
    message?: string;
  },
): Promise<void> {
  const refused = times !== undefined
    ? `nextval('${schema}.settle_refusals') <= ${times}`
    : `nextval('${schema}.settle_refusals') = 1 OR NOT ${once}`;
  await db.executeSql(`CREATE SEQUENCE ${schema}.settle_refusals`);
  await db.executeSql(
    `CREATE FUNCTION ${schema}.settle_refused() RETURNS trigger AS $$
     BEGIN
       IF ${refused} THEN
         RAISE EXCEPTION '${message}' USING ERRCODE = '${code}';
       END IF;
       RETURN NEW;
     END $$ LANGUAGE plpgsql`,
  );
  await db.executeSql(
    `CREATE TRIGGER settle_refused BEFORE UPDATE ON ${schema}.job
     FOR EACH ROW WHEN (NEW.state = 'completed')
     EXECUTE FUNCTION ${schema}.settle_refused()`,
  );
}

/**
 * One trigger whose completion the database refuses as `refusal` says:
 * its one outcome is `delivered` (no error event), its request sent once.
 * `after` checks more before the outbox stops.
 */
async function deliveredOnceDespite(
  refusal: Parameters<typeof refuseCompletions>[2],
  wait: { timeout?: number; interval?: number } = {},
  after?: (outbox: Outbox) => Promise<void>,
): Promise<void> {
  const target = countingTarget();
  const { outbox, events, dir } = await recordingOutbox();
  try {
    const { db, schema } = handleOf(outbox);
    await refuseCompletions(db, schema, refusal);
    const { id } = await outbox.trigger(target.url);
    outbox.start({ pollInterval: 50 });
    await until(
      () => events.some((e) => e.type === "delivered" || e.type === "error"),
      "delivered, or an error",
      wait,
    );
    const { rows } = await db.executeSql(
      `SELECT last_value FROM ${schema}.settle_refusals`,
    );
    assert.ok(Number(rows[0].last_value) >= 2, "the fault fired, then passed");
    assert.deepEqual(
      events.map((e) => `${e.type} ${"id" in e ? e.id : ""}`),
      [`delivered ${id}`],
    );
    assert.equal(target.requests(), 1);
    await after?.(outbox);
  } finally {
    await outbox.stop();
    await target.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a completion the database refuses once is tried again: delivered once, no error event, the request not sent again", async () => {
  await deliveredOnceDespite({ once: true }, {}, async (outbox) => {
    const stats = await outbox.stats();
    assert.deepEqual([stats.delivered, stats.active], [1, 0]);
  });
});

Deno.test("a completion PostgreSQL cancels for its statement_timeout (57014: an answer, nothing kept) is tried again like any refusal, not taken for no answer: delivered once, no error event, the request not sent again", async () => {
  // Before: taken for TIMEOUT (no answer), not tried again: an error event,
  // the job left active until its heartbeat lapsed, then sent again.
  await deliveredOnceDespite({
    once: true,
    code: "57014",
    message: "canceling statement due to statement timeout",
  });
});

Deno.test("a completion the database refuses four times is tried again (six tries over up to 11.75 s, past the 10 s heartbeat; four ended at 3.75 s): delivered once, no error event", async () => {
  await deliveredOnceDespite({ times: 4 }, { timeout: 30_000, interval: 50 });
});

Deno.test("completions the database keeps refusing are tried again together: one error event per failed statement, not one per job", async () => {
  const jobs = 20;
  const target = countingTarget();
  const { outbox, events, dir } = await recordingOutbox();
  try {
    const { db, schema } = handleOf(outbox);
    await refuseCompletions(db, schema, { once: false });
    for (let i = 0; i < jobs; i++) await outbox.trigger(target.url);
    outbox.start({ concurrency: jobs, pollInterval: 50 });
    await until(() => target.requests() === jobs, "every job sent");
    // Each settlement tried six times within ~12 s, then given up.
    await until(
      async () => (await outbox.stats()).inFlight === 0,
      "every settlement given up",
      { timeout: 30_000, interval: 50 },
    );
    const errors = events.filter((e) => e.type === "error");
    assert.ok(errors.length >= 1, "the refusal is reported");
    assert.ok(
      errors.length < jobs / 2,
      `${errors.length} error events for ${jobs} jobs`,
    );
    assert.equal(events.filter((e) => e.type === "delivered").length, 0);
  } finally {
    await outbox.stop();
    await target.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stop({ timeout }) keeps to its timeout while a settlement waits to be tried again after the statement itself was refused (a serialization failure, not woken by other statements)", async () => {
  const target = countingTarget();
  const { outbox, dir } = await recordingOutbox();
  try {
    const { db, schema } = handleOf(outbox);
    await refuseCompletions(db, schema, { times: 1_000, code: "40001" });
    await outbox.trigger(target.url);
    outbox.start({ pollInterval: 50 });
    await until(() => target.requests() === 1, "the job sent");
    await until(
      async () =>
        Number(
          (await db.executeSql(
            `SELECT last_value FROM ${schema}.settle_refusals`,
          )).rows[0].last_value,
        ) >= 2,
      "its settlement refused and tried again",
    );
    // Before, the backoff ran out first: 11.5 s with tries over 11.75 s.
    await within(
      outbox.stop({ timeout: 500, close: false }),
      "stop({ timeout: 500 }) still waiting after 5 s",
      5_000,
    );
  } finally {
    await outbox.stop();
    await target.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an attempt whose lease lapsed (the job fetched again meanwhile) ends without stopping the touches of the next attempt: that one is delivered", async () => {
  const target = heldTarget();
  const { outbox, events, dir } = await recordingOutbox();
  try {
    const { db, schema, queue } = handleOf(outbox);
    const { id } = await outbox.trigger(target.url);
    outbox.start({ concurrency: 2, pollInterval: 50 });
    await until(() => target.requests() === 1, "the first attempt sent");
    // As when pg-boss expires the first attempt (its heartbeat lapsed while
    // the database was away): a retry, which this dispatcher fetches again.
    // (pg-boss's fetch counts the retry.) A 6 s heartbeat: the 3 s touches
    // keep it, if they go on.
    await db.executeSql(
      `UPDATE ${schema}.job SET state = 'retry', heartbeat_seconds = 6,
         start_after = now()
       WHERE name = $1 AND state = 'active'`,
      [queue],
    );
    await until(() => target.requests() === 2, "the second attempt sent");
    // The first attempt ends; its settlement is not applied (fenced).
    target.release(1);
    const { rows: [{ at }] } = await db.executeSql(`SELECT now() AS at`);
    // The second attempt is still touched: its heartbeat moves on.
    await until(
      async () => {
        const { rows } = await db.executeSql(
          `SELECT heartbeat_on > $2::timestamptz + interval '1 second' AS on
           FROM ${schema}.job
           WHERE name = $1 AND state = 'active' AND retry_count = 1`,
          [queue, at],
        );
        return rows[0]?.on === true;
      },
      "the second attempt touched after the first ended",
      { timeout: 15_000, interval: 200 },
    );
    target.release(2);
    await until(
      () => events.some((e) => e.type === "delivered"),
      "the second attempt delivered",
    );
    assert.deepEqual(
      events.map((e) =>
        `${e.type} ${"id" in e ? e.id : ""} ${"attempt" in e ? e.attempt : ""}`
      ),
      [`delivered ${id} 2`],
    );
    assert.equal(target.requests(), 2);
  } finally {
    await within(outbox.stop(), "outbox.stop()");
    await target.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("connectionLost(): socket errors and connection-class SQLSTATEs wake a waiting settlement early; a statement's own refusal does not", () => {
  const wrapped = (cause: unknown) =>
    Object.assign(new Error("Cannot complete jobs"), {
      code: "DATABASE",
      cause,
    });
  for (
    const code of [undefined, "ECONNREFUSED", "ECONNRESET", "EPIPE", "08006"]
  ) {
    assert.equal(connectionLost(wrapped({ code })), true, String(code));
  }
  // The server shutting down; ending an idle session (idle_session_timeout).
  assert.equal(connectionLost(wrapped({ code: "57P01" })), true);
  assert.equal(connectionLost(wrapped({ code: "57P05" })), true);
  // A statement's own: cancelled for its statement_timeout (57014) too.
  for (
    const code of [
      "40001",
      "40P01",
      "55P03",
      "57014",
      "23505",
      "P0001",
      "XX000",
    ]
  ) {
    assert.equal(connectionLost(wrapped({ code })), false, code);
  }
});
