// The dispatcher's loop and stop(): no busy wait when every slot is busy,
// jobs never attempted are not charged a retry on stop, a second stop()
// waits for the first.
import assert from "node:assert/strict";
import {
  openOutbox,
  type OutboxEvent,
  type OutboxOptions,
} from "../../src/durable/mod.ts";
import { LEASE_MARGIN } from "../../src/durable/_enqueue.ts";
import { ADMIN, type Administered } from "../../src/durable/_admin_queries.ts";
import { within } from "../_wait.ts";
import { drainTriggers } from "../../mod.ts";
import { dropQueue } from "./_seed.ts";

const CHILD = new URL("../_durable_busy.ts", import.meta.url);

Deno.test({
  name:
    "a wake while every slot is busy and the prefetch buffer is full does not spin the process: all 21 jobs are delivered",
  sanitizeResources: false,
  async fn() {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CHILD.href],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // A spinning child never runs its own timers: bound it from here.
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill("SIGKILL");
    }, 90_000);
    const output = await child.output();
    clearTimeout(timer);
    const stdout = new TextDecoder().decode(output.stdout).trim();
    assert.ok(
      !killed,
      "the child was killed after 90 s: its dispatcher hung (a loop on resolved promises starves timers and sockets)",
    );
    assert.equal(
      output.code,
      0,
      `${stdout}\n${new TextDecoder().decode(output.stderr)}`,
    );
    assert.equal(stdout, "delivered 21");
  },
});

const DATABASE_URL = Deno.env.get("TRIGGER_TEST_DATABASE_URL");
const engines = [
  {
    name: "embedded",
    ignore: false,
    async fresh() {
      const dir = await Deno.makeTempDir({ prefix: "outbox_dispatch_" });
      return {
        options: { dir },
        cleanup: () => Deno.remove(dir, { recursive: true }),
      };
    },
  },
  {
    name: "PostgreSQL",
    ignore: DATABASE_URL === undefined,
    fresh() {
      const queue = `s_${crypto.randomUUID().slice(0, 8)}`;
      return Promise.resolve({
        options: { connectionString: DATABASE_URL, queue },
        cleanup: () => dropQueue(queue),
      });
    },
  },
];

/** A target that holds each request until `release()` (or `hold` ms). */
function slowTarget(hold: number) {
  const seen: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      seen.push(await request.text());
      await new Promise((resolve) => setTimeout(resolve, hold));
      return new Response(null, { status: 200 });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    seen,
    close: () => server.shutdown(),
  };
}

async function until(what: string, check: () => boolean | Promise<boolean>) {
  const deadline = Date.now() + 30_000;
  while (!await check()) {
    assert.ok(Date.now() < deadline, `${what} within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

for (const engine of engines) {
  Deno.test({
    name:
      `${engine.name}: stop({ timeout }) puts jobs never sent and aborted attempts back to waiting, no retry used up`,
    ignore: engine.ignore,
    async fn() {
      const { options, cleanup } = await engine.fresh();
      const target = slowTarget(2_000);
      const events: OutboxEvent[] = [];
      const outbox = await openOutbox({
        ...options,
        retry: { limit: 0 },
        onEvent: (event) => events.push(event),
      });
      try {
        for (let i = 0; i < 6; i++) {
          await outbox.trigger(target.url, { body: `${i}` });
        }
        outbox.start({ concurrency: 2, pollInterval: 50 });
        await until(
          "two requests at the target",
          () => target.seen.length >= 2,
        );
        await outbox.stop({ timeout: 50, close: false });
        const stats = await outbox.stats();
        assert.equal(target.seen.length, 2, "no job started after the stop");
        assert.equal(stats.dead, 0, "nothing dead-lettered");
        assert.equal(stats.deadLettered + stats.retried, 0);
        assert.equal(stats.queued, 6, "all six wait again");
        assert.equal(stats.active, 0);
        assert.deepEqual(events.filter((e) => e.type !== "delivered"), []);
      } finally {
        await outbox.stop();
        await target.close();
        await cleanup();
      }
    },
  });

  Deno.test({
    name:
      `${engine.name}: a second stop() waits for the first: the database is not closed under deliveries`,
    ignore: engine.ignore,
    async fn() {
      const { options, cleanup } = await engine.fresh();
      const target = slowTarget(500);
      const events: OutboxEvent[] = [];
      const outbox = await openOutbox({
        ...options,
        onEvent: (event) => events.push(event),
      });
      try {
        await outbox.trigger(target.url, { body: "a" });
        await outbox.trigger(target.url, { body: "b" });
        outbox.start({ concurrency: 2, pollInterval: 50 });
        await until(
          "two requests at the target",
          () => target.seen.length >= 2,
        );
        const first = outbox.stop({ close: false });
        const second = outbox.stop();
        await Promise.all([first, second]);
        assert.deepEqual(events.filter((e) => e.type === "error"), []);
        assert.equal(events.filter((e) => e.type === "delivered").length, 2);
      } finally {
        await outbox.stop();
        await target.close();
      }
      // Reopened: both delivered, nothing left active.
      const again = await openOutbox(options);
      try {
        const stats = await again.stats();
        assert.equal(stats.active + stats.queued, 0);
      } finally {
        await again.stop();
        await cleanup();
      }
    },
  });
}

Deno.test("a trigger whose body is still being read when the outbox closes rejects with CLOSED and stores nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox_dispatch_" });
  const outbox = await openOutbox({ dir });
  const gate = Promise.withResolvers<void>();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      await gate.promise;
      controller.enqueue(new TextEncoder().encode("late"));
      controller.close();
    },
  });
  const storing = outbox.trigger("http://127.0.0.1:9/", { body });
  await outbox.stop();
  gate.resolve();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const error = await Promise.race([
    storing.then(() => undefined, (error) => error),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve("no answer within 10 s"), 10_000);
    }),
  ]);
  clearTimeout(timer);
  assert.equal((error as { code?: string })?.code, "CLOSED", String(error));
  const again = await openOutbox({ dir });
  try {
    assert.equal((await again.stats()).queued, 0);
  } finally {
    await again.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a settlement pg-boss did not apply (the job was taken over meanwhile) is neither counted nor reported", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox_dispatch_" });
  const seen: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      seen.push(new URL(request.url).pathname);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      return new Response(null, {
        status: request.url.endsWith("/ok") ? 200 : 500,
      });
    },
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const events: OutboxEvent[] = [];
  const outbox = await openOutbox({
    dir,
    onEvent: (event) => events.push(event),
  });
  try {
    await outbox.trigger(`${base}/ok`);
    await outbox.trigger(`${base}/bad`);
    outbox.start({ concurrency: 2, pollInterval: 50 });
    await until("both requests at the target", () => seen.length >= 2);
    // Another dispatcher's attempt now holds both (as after an expiry and
    // a fetch elsewhere): this one's claims are stale.
    const { db, schema, queue } = (outbox as unknown as Administered)[ADMIN]();
    await db.executeSql(
      `UPDATE ${schema}.job SET retry_count = retry_count + 1
       WHERE name = $1 AND state = 'active'`,
      [queue],
    );
    await until(
      "both attempts settled",
      async () => (await outbox.stats()).inFlight === 0,
    );
    const stats = await outbox.stats();
    assert.equal(stats.delivered + stats.retried + stats.deadLettered, 0);
    assert.deepEqual(events.map((e) => e.type), []);
    assert.equal(stats.active, 2, "still the other attempt's");
  } finally {
    await outbox.stop();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "jobs prefetched behind a long delivery go back to waiting before their lease (HTTP timeout + lease margin) runs out: delivered on their first attempt, not expired (an 8 s lease margin instead of 60 s)",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "outbox_dispatch_" });
    // The short jobs' lease: 1 s timeout + the margin; pg-boss notices an
    // expired one within its 2 s supervise pass. The long delivery outlasts
    // both, so the short jobs, held behind it, would expire unless they go
    // back to waiting (at half the margin after their fetch).
    // 8 s, not less: the release (4 s after the fetch) then comes 5 s
    // before the lease runs out, slack for a loaded machine.
    const margin = 8;
    const lease = (1 + margin) * 1000;
    const long = lease + 2_000 + 3_000;
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (request) => {
        await request.arrayBuffer();
        if (request.url.endsWith("/long")) {
          await new Promise((resolve) => setTimeout(resolve, long));
        }
        return new Response(null, { status: 200 });
      },
    );
    const base = `http://127.0.0.1:${server.addr.port}`;
    const events: OutboxEvent[] = [];
    const outbox = await openOutbox({
      dir,
      retry: { limit: 0 },
      onEvent: (event) => events.push(event),
      [LEASE_MARGIN]: margin,
    } as OutboxOptions);
    try {
      await outbox.trigger(`${base}/long`, { timeout: 90_000 });
      await outbox.trigger(`${base}/short`, { timeout: 1_000 });
      await outbox.trigger(`${base}/short`, { timeout: 1_000 });
      const { rows } = await (outbox as unknown as Administered)[ADMIN]().db
        .executeSql(
          `SELECT expire_seconds FROM pgboss.job
           WHERE name = 'trigger_outbox' AND data->>'url' LIKE '%/short'`,
        );
      assert.deepEqual(
        rows.map((row) => row.expire_seconds),
        [lease / 1000, lease / 1000],
        "the short jobs' lease",
      );
      outbox.start({ concurrency: 1, pollInterval: 100 });
      const deadline = Date.now() + 60_000;
      while (events.filter((e) => e.type !== "error").length < 3) {
        assert.ok(Date.now() < deadline, JSON.stringify(events));
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.deepEqual(
        events.map((e) =>
          `${e.type} ${"url" in e ? new URL(e.url).pathname : ""} ${
            "attempt" in e ? e.attempt : ""
          }`
        ).sort(),
        ["delivered /long 1", "delivered /short 1", "delivered /short 1"],
      );
      const stats = await outbox.stats();
      assert.equal(stats.dead, 0, "none expired into the dead letters");
      assert.equal(stats.queued + stats.active, 0);
    } finally {
      await outbox.stop();
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("the dispatcher sets webhook-id and keeps the caller's other webhook-* headers (PGlite)", async () => {
  const received = Promise.withResolvers<Headers>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      received.resolve(request.headers);
      return new Response(null, { status: 204 });
    },
  );
  const dir = await Deno.makeTempDir({ prefix: "outbox_headers_" });
  const outbox = await openOutbox({ dir });
  try {
    const { id } = await outbox.trigger(
      `http://127.0.0.1:${server.addr.port}/hook`,
      { headers: { "webhook-version": "2", "x-a": "1" } },
    );
    outbox.start();
    const headers = await within(received.promise, "the delivery");
    assert.equal(headers.get("webhook-version"), "2");
    assert.equal(headers.get("x-a"), "1");
    assert.equal(headers.get("webhook-id"), id);
  } finally {
    await outbox.stop();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("retry or dead without a query for stored jobs and for a redriven dead letter (a new job with its trigger's retry limit): events match what pg-boss did", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox_redriven_" });
  const hits = new Map<string, number>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const id = request.headers.get("webhook-id")!;
      hits.set(id, (hits.get(id) ?? 0) + 1);
      return new Response(null, { status: 500 });
    },
  );
  const events: OutboxEvent[] = [];
  const outbox = await openOutbox({
    dir,
    onEvent: (event) => events.push(event),
  });
  const url = `http://127.0.0.1:${server.addr.port}/`;
  const settled = (id: string, n: number) =>
    until(
      `${n} outcomes of ${id}`,
      () => events.filter((e) => e.type !== "error" && e.id === id).length >= n,
    );
  try {
    // Stored with limit 1: a retry, then dead (from the stored form).
    const { id } = await outbox.trigger(url, {
      retry: { limit: 1, delay: 0, backoff: false },
    });
    outbox.start();
    await settled(id, 2);
    const kinds = () =>
      events.filter((e) => e.type !== "error" && e.id === id).map((e) =>
        e.type
      );
    assert.deepEqual(kinds(), ["retry", "dead"]);
    // Redriven: a new job with the stored limit 1 (not the queue's 2): a
    // retry, then dead again.
    assert.equal(await outbox.redrive([id]), 1);
    await settled(id, 4);
    assert.deepEqual(kinds(), ["retry", "dead", "retry", "dead"]);
    assert.equal(hits.get(id), 4);
    const stats = await outbox.stats();
    assert.equal(stats.dead, 1);
    assert.equal(stats.retried, 2);
    assert.equal(stats.deadLettered, 2);
    assert.equal(events.filter((e) => e.type === "error").length, 0);
  } finally {
    await outbox.stop();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a stored request that no longer passes trigger()'s checks is dead-lettered at once with code INVALID, never sent; one pg-boss failed itself is EXPIRED (PGlite)", async () => {
  let requests = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => {
      requests++;
      return new Response(null, { status: 204 });
    },
  );
  const dir = await Deno.makeTempDir({ prefix: "outbox_invalid_" });
  const events: OutboxEvent[] = [];
  const outbox = await openOutbox({
    dir,
    retry: { limit: 3 },
    onEvent: (event) => events.push(event),
  });
  try {
    const { id } = await outbox.trigger(
      `http://127.0.0.1:${server.addr.port}/hook`,
      { method: "POST", body: "x" },
    );
    // As a stored job another version or runtime would refuse: a method
    // trigger() does not send.
    const { db, schema, queue } = (outbox as unknown as Administered)[ADMIN]();
    const { rows } = await db.executeSql(
      `UPDATE ${schema}.job SET data = jsonb_set(data, '{method}', '"CONNECT"')
       WHERE name = $1 RETURNING id`,
      [queue],
    );
    assert.equal(rows.length, 1);
    outbox.start({ pollInterval: 50 });
    await until("the dead event", () => events.some((e) => e.type === "dead"));
    const [letter] = await outbox.deadLetters();
    assert.equal(letter.id, id);
    assert.equal(letter.error.code, "INVALID");
    assert.match(letter.error.message, /method "CONNECT" is not supported/);
    assert.equal(letter.attempts, 1, "no retry used: dead at once");
    assert.equal(requests, 0, "never sent");

    // A job pg-boss failed itself (its lease expired) stores its own output,
    // { value: { message } }: deadLetters() says EXPIRED, as the dashboard.
    const { dead } = (outbox as unknown as Administered)[ADMIN]();
    const expired = await db.executeSql(
      `UPDATE ${schema}.job
       SET source_output = '{"value":{"message":"job timed out"}}'::jsonb
       WHERE name = $1 RETURNING id`,
      [dead],
    );
    assert.equal(expired.rows.length, 1);
    const [lapsed] = await outbox.deadLetters();
    assert.deepEqual(lapsed.error, {
      code: "EXPIRED",
      message: "job timed out",
    });
  } finally {
    await outbox.stop();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stop() cuts what answered deliveries still read: a target that sends its status line and stalls in the body keeps no trigger in flight past the stop", async () => {
  // 200 and a Content-Length of 10, then 3 bytes and nothing more.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      conn.read(new Uint8Array(64 * 1024)).then(() =>
        conn.write(
          new TextEncoder().encode(
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
          ),
        )
      ).catch(() => {});
    }
  })();
  const dir = await Deno.makeTempDir({ prefix: "outbox_tails_" });
  const events: OutboxEvent[] = [];
  const outbox = await openOutbox({
    dir,
    onEvent: (event) => events.push(event),
  });
  try {
    const url = `http://127.0.0.1:${listener.addr.port}/job`;
    for (let i = 0; i < 3; i++) {
      await outbox.trigger(url, { body: `job ${i}`, timeout: 60_000 });
    }
    outbox.start({ pollInterval: 50 });
    await until(
      "the three deliveries",
      () => events.filter((event) => event.type === "delivered").length === 3,
    );
    await within(outbox.stop(), "the stop");
    // Before: each still read its body until its timeout (60 s here).
    assert.equal(await drainTriggers({ timeout: 10_000 }), true);
    assert.deepEqual(
      events.map((event) => event.type),
      ["delivered", "delivered", "delivered"],
    );
  } finally {
    await outbox.stop();
    listener.close();
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // Closed by the trigger's side already.
      }
    }
    await serving.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A target that holds every request until `count` are in at once, or until
 * `fallback(ms)` has passed (armed at start: past the jobs' timeout, not
 * before they were stored), then answers 204; `most()`: the most in at
 * once. `close()` lets the held ones go first.
 */
function gatheringTarget(count: number) {
  let inFlight = 0;
  let most = 0;
  const all = Promise.withResolvers<void>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      await request.arrayBuffer();
      most = Math.max(most, ++inFlight);
      if (inFlight === count) all.resolve();
      await all.promise;
      inFlight--;
      return new Response(null, { status: 204 });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/job`,
    most: () => most,
    fallback(ms: number) {
      timer = setTimeout(all.resolve, ms);
    },
    async close() {
      clearTimeout(timer);
      all.resolve();
      await server.shutdown();
    },
  };
}

Deno.test("start({ concurrency }) above the process's 128 connections per origin: every slot gets its connection (the jobs past 128 waited, their timeout running, and were dead-lettered TIMEOUT though delivered)", async () => {
  const JOBS = 150;
  const target = gatheringTarget(JOBS);
  const dir = await Deno.makeTempDir({ prefix: "outbox_cap_" });
  const events: OutboxEvent[] = [];
  const outbox = await openOutbox({
    dir,
    onEvent: (event) => events.push(event),
  });
  try {
    const url = target.url;
    await Promise.all(
      Array.from(
        { length: JOBS },
        (_, i) =>
          outbox.trigger(url, {
            body: `job ${i}`,
            timeout: 60_000,
            retry: { limit: 0 },
          }),
      ),
    );
    // Answers once all are in at once, or after 30 s (armed now: storing
    // the jobs on a loaded machine took longer than a fallback armed
    // before it, which then let them through one by one).
    target.fallback(30_000);
    outbox.start({ concurrency: JOBS, pollInterval: 50 });
    await until("every job's outcome", () => events.length >= JOBS);
    assert.equal(target.most(), JOBS, "requests in flight at once");
    assert.equal(
      events.filter((event) => event.type === "delivered").length,
      JOBS,
    );
  } finally {
    await target.close();
    await outbox.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("two outboxes in one process delivering to one origin: each one's slots get their connections (they shared one cap of 128, and the deliveries past it waited, their timeout running, and were dead-lettered TIMEOUT though delivered)", async () => {
  const PER_OUTBOX = 80;
  const JOBS = 2 * PER_OUTBOX;
  const target = gatheringTarget(JOBS);
  const dirs = [
    await Deno.makeTempDir({ prefix: "outbox_two_a_" }),
    await Deno.makeTempDir({ prefix: "outbox_two_b_" }),
  ];
  const events: OutboxEvent[] = [];
  const outboxes = await Promise.all(
    dirs.map((dir) =>
      openOutbox({ dir, onEvent: (event) => events.push(event) })
    ),
  );
  try {
    const url = target.url;
    for (const outbox of outboxes) {
      await Promise.all(
        Array.from(
          { length: PER_OUTBOX },
          (_, i) =>
            outbox.trigger(url, {
              body: `job ${i}`,
              timeout: 60_000,
              retry: { limit: 0 },
            }),
        ),
      );
    }
    // Answers once all are in at once, or after 30 s (armed now, as above).
    target.fallback(30_000);
    for (const outbox of outboxes) {
      outbox.start({ concurrency: PER_OUTBOX, pollInterval: 50 });
    }
    await until("every job's outcome", () => events.length >= JOBS);
    assert.equal(target.most(), JOBS, "requests in flight at once");
    assert.equal(
      events.filter((event) => event.type === "delivered").length,
      JOBS,
    );
  } finally {
    await target.close();
    await Promise.all(outboxes.map((outbox) => outbox.stop()));
    for (const dir of dirs) await Deno.remove(dir, { recursive: true });
  }
});
