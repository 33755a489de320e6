// The dashboard's and CLI's queries on pg-boss's tables, on both engines,
// and a loud failure when pg-boss's job table no longer has what they read.
import assert from "node:assert/strict";
import {
  ADMIN,
  type Administered,
  adminOf,
} from "../../src/durable/_admin_queries.ts";
import { missingFromSchema } from "../../src/durable/_pgboss_sql.ts";
import { redactHeaders, redactText, redactUrl } from "../../src/_redact.ts";
import {
  DATABASE_URL,
  freshOptions,
  openOutbox,
  seed,
  startTarget,
  XSS,
} from "./_seed.ts";
import { until } from "../_wait.ts";

if (DATABASE_URL === undefined) {
  console.log(
    "admin_queries_test.ts: TRIGGER_TEST_DATABASE_URL is not set, skipping the PostgreSQL tests",
  );
}

for (const engine of ["embedded", "postgres"] as const) {
  Deno.test({
    name:
      `admin queries (${engine}): pg-boss's job table has every column and state they use`,
    ignore: engine === "postgres" && DATABASE_URL === undefined,
    async fn() {
      const { cleanup, ...options } = await freshOptions(engine);
      const outbox = await openOutbox(options);
      try {
        const handle = (outbox as unknown as Administered)[ADMIN]();
        assert.deepEqual(
          await missingFromSchema(handle.db, handle.schema),
          [],
          "pg-boss's job table lost what the dashboard reads: update src/durable/_pgboss_sql.ts for the new pg-boss schema.",
        );
      } finally {
        await outbox.stop();
        await cleanup();
      }
    },
  });

  Deno.test({
    name:
      `admin queries (${engine}): counts per origin, last hour, dead letters, history, retry now, events`,
    ignore: engine === "postgres" && DATABASE_URL === undefined,
    async fn() {
      const target = startTarget();
      const { cleanup, ...options } = await freshOptions(engine);
      const outbox = await openOutbox(options);
      try {
        const start = new Date(Date.now() - 1000);
        const seeded = await seed(outbox, target, 3);
        const admin = adminOf(outbox);

        const origins = await admin.origins();
        assert.equal(origins.length, 1);
        const [counts] = origins;
        assert.equal(counts.origin, target.url);
        assert.deepEqual(
          { ...counts, oldestQueued: null },
          {
            origin: target.url,
            queued: 0,
            active: 0,
            retrying: 1,
            delivered: 3,
            dead: 1,
            oldestQueued: null,
          },
        );
        assert.ok(counts.oldestQueued instanceof Date);

        const minutes = await admin.lastHour();
        assert.equal(minutes.length, 60);
        const sum = minutes.reduce(
          (s, m) => ({
            delivered: s.delivered + m.delivered,
            failed: s.failed + m.failed,
          }),
          { delivered: 0, failed: 0 },
        );
        assert.deepEqual(sum, { delivered: 3, failed: 2 });

        const { total, letters } = await admin.deadLetters({ bodyLimit: 10 });
        assert.equal(total, 1);
        assert.equal(letters[0].id, seeded.deadId);
        assert.equal(letters[0].body, XSS.slice(0, 10));
        assert.equal(letters[0].bodyTruncated, true);
        assert.equal(letters[0].bodySize, XSS.length);
        assert.equal(letters[0].error.status, 404);
        assert.equal(letters[0].attempts, 1);
        assert.equal(letters[0].ownSecret, true);
        assert.ok(!JSON.stringify(letters).includes("whsec_"));

        const history = await admin.history(seeded.deliveredIds[0]);
        assert.ok(history);
        assert.equal(history.rows.length, 1);
        assert.equal(history.rows[0].state, "completed");
        assert.equal(history.rows[0].attempts, 1);
        assert.deepEqual(
          history.job.headers.find(([n]) => n === "authorization"),
          ["authorization", "[redacted]"],
        );
        assert.equal(await admin.history("no-such-id"), null);

        const dead = await admin.history(seeded.deadId);
        assert.deepEqual(dead?.rows.map((r) => [r.queue, r.state]), [
          ["queue", "failed"],
          ["dead", "created"],
        ]);

        const [retrying] = await admin.retrying();
        assert.equal(retrying.id, seeded.retryingId);
        assert.equal(retrying.error.status, 503);
        assert.ok(retrying.nextAttempt.getTime() > Date.now() + 3_000_000);
        const before = target.hits.get("/flaky") ?? 0;
        assert.equal(await admin.retryNow([seeded.retryingId]), 1);
        await until(
          () => (target.hits.get("/flaky") ?? 0) > before,
          "the retried job's second attempt",
          { interval: 100 },
        );
        assert.equal(await admin.retryNow(["no-such-id"]), 0);

        const events = await admin.events(start);
        const types = events.map((e) => e.type).sort();
        assert.deepEqual(types, [
          "dead",
          "delivered",
          "delivered",
          "delivered",
          "retry",
        ]);
        const later = await admin.events(
          new Date(events[events.length - 1].at.getTime() + 1),
        );
        assert.ok(later.every((e) => e.type === "retry"));
      } finally {
        await outbox.stop({ timeout: 1000 });
        await target.close();
        await cleanup();
      }
    },
  });
}

Deno.test("admin queries: adminOf() refuses an object openOutbox() did not make", () => {
  assert.throws(() => adminOf({}), TypeError);
});

Deno.test("redaction: URL credentials, secret query values and headers never pass", () => {
  assert.equal(
    redactUrl("https://user:hunter2@example.test/x?token=abc&page=2"),
    "https://%5Bredacted%5D@example.test/x?token=%5Bredacted%5D&page=2",
  );
  assert.deepEqual(
    redactHeaders([
      ["Authorization", "Bearer abc"],
      ["x-api-key", "k"],
      ["X-Webhook-Secret", "s"],
      ["content-type", "text/plain"],
    ]),
    [
      ["Authorization", "[redacted]"],
      ["x-api-key", "[redacted]"],
      ["X-Webhook-Secret", "[redacted]"],
      ["content-type", "text/plain"],
    ],
  );
  assert.equal(
    redactText("Cannot connect to postgres://app:pw@db:5432/x"),
    "Cannot connect to postgres://[redacted]@db:5432/x",
  );
  // A stored error names the request's URL: its secret query values go, as
  // in the URL column beside it; so do those of a URL in a header's value.
  assert.equal(
    redactText(
      "Server answered 500: GET https://h.test/fail?token=abc&page=2&api_key=k#x",
    ),
    "Server answered 500: GET https://h.test/fail?token=[redacted]&page=2&api_key=[redacted]#x",
  );
  assert.deepEqual(
    redactHeaders([["x-callback", "https://h.test/?sig=SECRETQ&n=1"]]),
    [["x-callback", "https://h.test/?sig=[redacted]&n=1"]],
  );
  assert.equal(redactText("a?b=c and x=y"), "a?b=c and x=y");
  // A form-like value with no "?" (a header's): its pairs after an "&".
  assert.equal(redactText("a=1&token=t&b=2"), "a=1&token=[redacted]&b=2");
  // Encoded names as the URL column reads them.
  assert.equal(redactText("GET /?%74oken=abc"), "GET /?%74oken=[redacted]");
});
