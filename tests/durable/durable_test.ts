// The durable outbox on both engines: embedded PGlite in a temp dir, and
// PostgreSQL at TRIGGER_TEST_DATABASE_URL (.ci/postgres.sh starts one; the
// PostgreSQL half is skipped, with a printed reason, when it is not set).
import assert from "node:assert/strict";
import {
  type DeadLetter,
  openOutbox,
  type Outbox,
  OutboxError,
  type OutboxEvent,
  type OutboxOptions,
} from "../../src/durable/mod.ts";
import { trigger } from "../../src/trigger/trigger.ts";
import { createSecret, verifyPayload } from "../../src/signature/sign.ts";
import { Hono } from "hono";
import { verifyTrigger } from "../../src/hono/verify.ts";
import { PostgresDedupStore } from "../../src/dedup/postgres.ts";
import { within } from "../_wait.ts";
import { dropQueue, dropTable } from "./_seed.ts";

const DATABASE_URL = Deno.env.get("TRIGGER_TEST_DATABASE_URL");
if (DATABASE_URL === undefined) {
  console.log(
    "durable_test.ts: TRIGGER_TEST_DATABASE_URL is not set, skipping the PostgreSQL tests (.ci/postgres.sh starts a server)",
  );
}
const DISPATCHER = new URL("../_durable_dispatcher.ts", import.meta.url);

interface Engine {
  name: "embedded" | "PostgreSQL";
  ignore: boolean;
  /** Options for a fresh outbox: a new temp dir or a new queue. */
  fresh(): Promise<OutboxOptions & { cleanup(): Promise<void> }>;
}

const engines: Engine[] = [
  {
    name: "embedded",
    ignore: false,
    async fresh() {
      const dir = await Deno.makeTempDir({ prefix: "outbox_test_" });
      return {
        dir,
        cleanup: () => Deno.remove(dir, { recursive: true }),
      };
    },
  },
  {
    name: "PostgreSQL",
    ignore: DATABASE_URL === undefined,
    fresh() {
      const queue = `t_${crypto.randomUUID().slice(0, 8)}`;
      return Promise.resolve({
        connectionString: DATABASE_URL,
        queue,
        cleanup: () => dropQueue(queue),
      });
    },
  },
];

/** A receiving route that deduplicates by webhook-id, as verifyTrigger
 * does: a duplicate of a done id gets 200 without running the work again. */
class Receiver {
  /** Requests per webhook-id, failed ones included. */
  attempts = new Map<string, number>();
  /** Times the work ran per webhook-id (must end at 1). */
  work = new Map<string, number>();
  duplicates = 0;
  /** Ids whose request is in the route now. */
  running = new Set<string>();
  /** Every request's webhook-id, in arrival order, with its time. */
  log: Array<{ id: string; at: number }> = [];
  #server: Deno.HttpServer<Deno.NetAddr>;
  #changed = new Set<() => void>();

  constructor(
    answer: (id: string, attempt: number, body: string) => number = () => 200,
    options: {
      delay?: number;
      check?: (request: Request, body: string) => Promise<void>;
    } = {},
  ) {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (request) => {
        const id = request.headers.get("webhook-id") ?? "(none)";
        const body = await request.text();
        await options.check?.(request, body);
        const attempt = (this.attempts.get(id) ?? 0) + 1;
        this.attempts.set(id, attempt);
        this.log.push({ id, at: performance.now() });
        let status = 200;
        if (this.work.has(id)) {
          this.duplicates++;
        } else {
          status = answer(id, attempt, body);
          if (status < 300) {
            this.running.add(id);
            if (options.delay) {
              await new Promise((r) => setTimeout(r, options.delay));
            }
            this.work.set(id, (this.work.get(id) ?? 0) + 1);
            this.running.delete(id);
          }
        }

        for (const wake of this.#changed) wake();
        return new Response(null, { status });
      },
    );
  }

  get url(): string {
    return `http://127.0.0.1:${this.#server.addr.port}/jobs`;
  }

  /** Waits until `done()` holds, checking on each request. */
  async until(done: () => boolean, timeout = 60_000): Promise<void> {
    const deadline = Date.now() + timeout;
    while (!done()) {
      if (Date.now() > deadline) throw new Error("Receiver: timed out");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(wake, 200);
        const changed = this.#changed;
        function wake() {
          clearTimeout(timer);
          changed.delete(wake);
          resolve();
        }
        changed.add(wake);
      });
    }
  }

  close(): Promise<void> {
    return this.#server.shutdown();
  }
}

async function waitFor<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeout = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error("Timed out waiting");
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A dispatcher in its own process (tests/_durable_dispatcher.ts). */
class Dispatcher {
  #child: Deno.ChildProcess;
  #lines: ReadableStreamDefaultReader<string>;
  constructor(options: OutboxOptions & { concurrency?: number }) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", DISPATCHER.href, JSON.stringify(options)],
      stdout: "piped",
      stderr: "inherit",
      stdin: "null",
    }).spawn();
    this.#lines = this.#child.stdout
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(lines())
      .getReader();
  }
  /** The next line the child prints; fails after `timeout` ms. */
  async line(timeout = 60_000): Promise<string> {
    const { value, done } = await within(
      this.#lines.read(),
      "the dispatcher process printed nothing",
      timeout,
    );
    return done ? "" : value;
  }
  async kill9(): Promise<void> {
    this.#child.kill("SIGKILL");
    await within(this.#child.status, "kill -9 did not end it", 30_000);
    await this.#lines.cancel();
  }
  /** Graceful stop; resolves with the dispatcher's stats. */
  async stop(): Promise<{ delivered: number }> {
    this.#child.kill("SIGTERM");
    const stats = JSON.parse(await this.line());
    await within(this.#child.status, "the dispatcher did not exit", 30_000);
    await this.#lines.cancel();
    return stats;
  }
  async exit(): Promise<{ code: number; output: string }> {
    const output = await this.line();
    const { code } = await within(
      this.#child.status,
      "the dispatcher did not exit",
      30_000,
    );
    await this.#lines.cancel();
    return { code, output };
  }
}

function lines(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const line of parts) controller.enqueue(line);
    },
    flush(controller) {
      if (rest) controller.enqueue(rest);
    },
  });
}

const FAST_RETRY = { limit: 3, delay: 0, backoff: false };

Deno.test("outbox.trigger() refuses bad input with trigger()'s TypeError and stores nothing", async () => {
  const engine = await engines[0].fresh();
  const outbox = await openOutbox(engine);
  try {
    const cases: Array<[string, Record<string, unknown>]> = [
      ["ftp://example.test/", {}],
      ["http://example.test/", { headers: { "x-a": "1\r\nx-b: 2" } }],
      ["http://example.test/", { method: "GET", body: "x" }],
      ["http://example.test/", { json: 1, form: { a: 1 } }],
    ];
    for (const [url, init] of cases) {
      let expected = "";
      try {
        trigger(url, init);
      } catch (error) {
        expected = (error as Error).message;
      }
      assert.throws(() => outbox.trigger(url, init), {
        name: "TypeError",
        message: expected,
      });
    }
    assert.throws(
      () => outbox.trigger("http://example.test/", { timeout: -1 }),
      RangeError,
    );
    assert.throws(
      () =>
        outbox.trigger("http://example.test/", {
          signal: new AbortController().signal,
        }),
      /signal cannot be stored/,
    );
    assert.throws(
      () => outbox.trigger("http://example.test/", { retry: { limit: 1.5 } }),
      RangeError,
    );
    assert.throws(
      () => outbox.trigger("http://example.test/", { delay: -5 }),
      RangeError,
    );
    const stats = await outbox.stats();
    assert.equal(stats.queued, 0);
    assert.equal(stats.dead, 0);
  } finally {
    await outbox.stop();
    await engine.cleanup();
  }
});

Deno.test("openOutbox() reports an unreachable PostgreSQL clearly", async () => {
  await assert.rejects(
    openOutbox({
      connectionString: "postgres://nobody:secret@127.0.0.1:1/none",
      connectTimeout: 3_000,
    }),
    (error: unknown) => {
      assert.ok(error instanceof OutboxError);
      assert.equal(error.code, "DATABASE");
      assert.match(
        error.message,
        /^Cannot open outbox: PostgreSQL at 127\.0\.0\.1:1\/none/,
      );
      assert.doesNotMatch(error.message, /secret/);
      return true;
    },
  );
});

Deno.test("openOutbox() refuses an embedded directory another process has open", async () => {
  const engine = await engines[0].fresh();
  const outbox = await openOutbox(engine);
  try {
    const child = new Dispatcher({ dir: engine.dir });
    const { code, output } = await child.exit();
    assert.equal(code, 2);
    assert.match(
      output,
      new RegExp(
        `^error LOCKED Cannot open outbox: the embedded database in ".*" is in use by another process \\(pid ${Deno.pid}\\)`,
      ),
    );
    // In the same process too: a second outbox on the directory is refused,
    // and the message says so (not "another process" with its own pid).
    await assert.rejects(openOutbox({ dir: engine.dir }), (error) => {
      assert.ok(error instanceof OutboxError);
      assert.equal(error.code, "LOCKED");
      assert.match(
        error.message,
        /^Cannot open outbox: the embedded database in ".*" is in use by another outbox in this process\. /,
      );
      return true;
    });
  } finally {
    await outbox.stop();
  }
  // Released on stop: it opens again.
  const again = await openOutbox({ dir: engine.dir });
  await again.stop();
  await engine.cleanup();
});

Deno.test("openOutbox() names another process as the holder even when its lock file shows this process's pid (two containers, each pid 1)", async () => {
  const engine = await engines[0].fresh();
  const child = new Dispatcher({ dir: engine.dir });
  try {
    assert.equal(await child.line(), "ready");
    // What a holder in another pid namespace with our number would write.
    await Deno.writeTextFile(`${engine.dir}/outbox.lock`, `${Deno.pid}\n`);
    await assert.rejects(openOutbox({ dir: engine.dir }), (error) => {
      assert.ok(error instanceof OutboxError);
      assert.equal(error.code, "LOCKED");
      assert.match(
        error.message,
        new RegExp(`is in use by another process \\(pid ${Deno.pid}\\)\\. `),
      );
      return true;
    });
  } finally {
    await child.stop();
    await engine.cleanup();
  }
});

for (const engine of engines) {
  Deno.test({
    name:
      `outbox (${engine.name}): 1,000 triggers, 1 in 3 failing once with 500 → each runs once at the receiver, none dead`,
    ignore: engine.ignore,
    async fn() {
      const options = await engine.fresh();
      const failFirst = new Set<string>();
      const receiver = new Receiver((id, attempt, body) => {
        const n = JSON.parse(body).n as number;
        if (n % 3 === 0 && attempt === 1) {
          failFirst.add(id);
          return 500;
        }
        return 200;
      });
      const events: OutboxEvent[] = [];
      const outbox = await openOutbox({
        ...options,
        retry: FAST_RETRY,
        onEvent: (event) => events.push(event),
      });
      try {
        const ids = new Set<string>();
        const started = performance.now();
        const triggers = [];
        for (let n = 0; n < 1000; n++) {
          triggers.push(outbox.trigger(receiver.url, { json: { n } }));
        }
        for (const { id } of await Promise.all(triggers)) ids.add(id);
        const persisted = performance.now() - started;
        assert.equal(ids.size, 1000);
        outbox.start({ concurrency: 20 });
        await receiver.until(() => receiver.work.size === 1000);
        const delivered = performance.now() - started;
        const stats = await waitFor(
          () => outbox.stats(),
          (s) => s.queued === 0 && s.active === 0 && s.inFlight === 0,
        );
        console.log(
          `  ${engine.name}: 1,000 persisted in ${
            persisted.toFixed(0)
          } ms, all delivered after ${delivered.toFixed(0)} ms`,
        );
        assert.equal(stats.dead, 0);
        assert.equal(stats.delivered, 1000);
        assert.equal(stats.retried, 334);
        assert.equal(failFirst.size, 334);
        for (const id of ids) {
          assert.equal(receiver.work.get(id), 1, id);
          // Same webhook-id on the retry: two requests under one id.
          assert.equal(receiver.attempts.get(id), failFirst.has(id) ? 2 : 1);
        }
        assert.equal(receiver.duplicates, 0);
        // Raw route entries, before any deduplication: one per attempt.
        assert.equal(receiver.log.length, 1000 + 334);
        assert.equal(
          events.filter((e) => e.type === "delivered").length,
          1000,
        );
        assert.ok(
          events.some((e) =>
            e.type === "retry" && e.status === 500 && e.attempt === 1 &&
            e.error?.code === "HTTP_STATUS"
          ),
        );
        assert.equal(events.filter((e) => e.type === "error").length, 0);
      } finally {
        await outbox.stop();
        await receiver.close();
        await options.cleanup();
      }
    },
  });

  Deno.test({
    name:
      `outbox (${engine.name}): always-500 → dead letter after the retry limit; 404 at once; redrive keeps the webhook-id`,
    ignore: engine.ignore,
    async fn() {
      const options = await engine.fresh();
      let healthy = false;
      const receiver = new Receiver((_id, _attempt, body) =>
        healthy ? 200 : body === "gone" ? 404 : 500
      );
      const outbox = await openOutbox(options);
      try {
        const failing = await outbox.trigger(receiver.url, {
          body: "boom",
          retry: { limit: 2, delay: 0, backoff: false },
        });
        const gone = await outbox.trigger(receiver.url, {
          body: "gone",
          retry: { limit: 5, delay: 0, backoff: false },
        });
        outbox.start();
        const letters = await waitFor(
          () => outbox.deadLetters(),
          (l) => l.length === 2,
        );
        const byId = new Map<string, DeadLetter>(letters.map((l) => [l.id, l]));
        const boom = byId.get(failing.id)!;
        assert.equal(boom.attempts, 3);
        assert.equal(boom.error.code, "HTTP_STATUS");
        assert.equal(boom.error.status, 500);
        assert.match(boom.error.message, /Server answered 500/);
        assert.equal(boom.method, "POST");
        assert.equal(boom.url, receiver.url);
        assert.equal(receiver.attempts.get(failing.id), 3);
        const notFound = byId.get(gone.id)!;
        assert.equal(notFound.attempts, 1);
        assert.equal(notFound.error.status, 404);
        assert.equal(receiver.attempts.get(gone.id), 1);
        const stats = await outbox.stats();
        assert.equal(stats.dead, 2);
        assert.equal(stats.deadLettered, 2);

        healthy = true;
        assert.equal(await outbox.redrive([failing.id]), 1);
        await receiver.until(() => receiver.work.has(failing.id));
        assert.equal(receiver.attempts.get(failing.id), 4);
        assert.deepEqual((await outbox.deadLetters()).map((l) => l.id), [
          gone.id,
        ]);
        assert.equal(await outbox.discard([gone.id]), 1);
        assert.equal((await outbox.stats()).dead, 0);
      } finally {
        await outbox.stop();
        await receiver.close();
        await options.cleanup();
      }
    },
  });

  Deno.test({
    name:
      `outbox (${engine.name}): signed deliveries, re-signed on retry under one webhook-id; delay`,
    ignore: engine.ignore,
    async fn() {
      const options = await engine.fresh();
      const secret = createSecret();
      const verified: boolean[] = [];
      const receiver = new Receiver(
        (_id, attempt) => attempt === 1 ? 503 : 200,
        {
          async check(request, body) {
            verified.push(
              await verifyPayload(secret, {
                id: request.headers.get("webhook-id")!,
                timestamp: Number(request.headers.get("webhook-timestamp")),
                body,
                signature: request.headers.get("webhook-signature") ?? "",
              }),
            );
          },
        },
      );
      const outbox = await openOutbox({
        ...options,
        sign: { secret },
        retry: { limit: 1, delay: 1_000, backoff: false },
      });
      try {
        outbox.start({ pollInterval: 100 });
        const started = performance.now();
        const { id } = await outbox.trigger(receiver.url, {
          json: { a: 1 },
          delay: 1_000,
        });
        await receiver.until(() => receiver.work.has(id));
        assert.equal(receiver.attempts.get(id), 2);
        assert.deepEqual(verified, [true, true]);
        const [first, second] = receiver.log;
        assert.ok(first.at - started >= 950, `delayed: ${first.at - started}`);
        assert.ok(second.at - first.at >= 950, "retry delay");
      } finally {
        await outbox.stop();
        await receiver.close();
        await options.cleanup();
      }
    },
  });

  Deno.test({
    name:
      `outbox (${engine.name}): kill -9 of the dispatcher mid-run, then a restart → every job delivered`,
    ignore: engine.ignore,
    async fn() {
      const options = await engine.fresh();
      const receiver = new Receiver(() => 200, { delay: 150 });
      const { cleanup, ...where } = options;
      const outbox = await openOutbox(where);
      const ids: string[] = [];
      for (let n = 0; n < 150; n++) {
        const { id } = await outbox.trigger(receiver.url, {
          json: { n },
          retry: { limit: 5, delay: 1_000, backoff: false },
        });
        ids.push(id);
      }
      await outbox.stop(); // the embedded directory is one process's at a time
      try {
        const first = new Dispatcher({ ...where, concurrency: 10 });
        assert.equal(await first.line(), "ready");
        await receiver.until(() => receiver.log.length >= 40);
        // Requests in the route when the process dies: it never reads their
        // answer, so they are delivered again, absorbed as duplicates.
        const lost = [...receiver.running];
        assert.ok(lost.length > 0);
        await first.kill9();
        const restarted = performance.now();
        const second = new Dispatcher({ ...where, concurrency: 10 });
        assert.equal(await second.line(), "ready");
        await receiver.until(
          () =>
            receiver.work.size === ids.length &&
            lost.every((id) => receiver.attempts.get(id)! >= 2),
          40_000,
        );
        const window = Math.max(
          ...receiver.log.filter(({ id, at }) =>
            at > restarted && lost.includes(id)
          ).map(({ at }) => at),
        ) - restarted;
        const stats = await second.stop();
        assert.ok(stats.delivered > 0);
        // Anything still owed is delivered by a last dispatcher here.
        const last = await openOutbox(where);
        last.start({ pollInterval: 100 });
        await waitFor(
          () => last.stats(),
          (s) => s.queued === 0 && s.active === 0 && s.inFlight === 0,
          40_000,
        );
        await last.stop();
        console.log(
          `  ${engine.name}: ${lost.length} deliveries cut by kill -9, delivered again ${
            (window / 1000).toFixed(1)
          } s after the restart; ${receiver.duplicates} duplicates absorbed`,
        );
        assert.ok(window < 30_000, `redelivery window ${window} ms`);
        for (const id of ids) assert.equal(receiver.work.get(id), 1, id);
        assert.ok(receiver.duplicates >= lost.length);
        // Raw route entries: a job reached the route again only if it was
        // in flight at the kill (at most 2 × concurrency: requests under way
        // and answers not yet settled), and at most twice; the deduplicated
        // count above hides neither.
        const twice = ids.filter((id) => receiver.attempts.get(id)! > 1);
        assert.ok(twice.length <= 20, `${twice.length} delivered twice`);
        for (const id of ids) {
          assert.ok(receiver.attempts.get(id)! <= 2, `${id} raw entries`);
        }
        assert.equal(receiver.log.length, ids.length + twice.length);
      } finally {
        await receiver.close();
        await cleanup();
      }
    },
  });
}

Deno.test({
  name:
    "outbox (PostgreSQL): two dispatcher processes share the work, no job delivered twice",
  ignore: DATABASE_URL === undefined,
  async fn() {
    const options = await engines[1].fresh();
    const { cleanup, ...where } = options;
    const receiver = new Receiver(() => 200, { delay: 5 });
    const outbox = await openOutbox(where);
    const ids: string[] = [];
    try {
      for (let n = 0; n < 400; n++) {
        ids.push((await outbox.trigger(receiver.url, { json: { n } })).id);
      }
      const a = new Dispatcher({ ...where, concurrency: 8 });
      const b = new Dispatcher({ ...where, concurrency: 8 });
      assert.equal(await a.line(), "ready");
      assert.equal(await b.line(), "ready");
      await receiver.until(() => receiver.work.size === ids.length);
      const [statsA, statsB] = await Promise.all([a.stop(), b.stop()]);
      console.log(
        `  delivered by the two processes: ${statsA.delivered} + ${statsB.delivered}`,
      );
      assert.equal(statsA.delivered + statsB.delivered, ids.length);
      assert.ok(statsA.delivered > 0 && statsB.delivered > 0);
      // No duplicates at all: each id reached the route exactly once, raw.
      for (const id of ids) assert.equal(receiver.attempts.get(id), 1, id);
      assert.equal(receiver.log.length, ids.length);
      assert.equal(receiver.duplicates, 0);
    } finally {
      await outbox.stop();
      await receiver.close();
      await cleanup();
    }
  },
});

for (const engine of engines) {
  Deno.test({
    name:
      `PostgresDedupStore (${engine.name}) behind verifyTrigger(): a retry after a timed-out delivery and a replay to another instance run the route once`,
    ignore: engine.ignore,
    async fn() {
      const options = await engine.fresh();
      // Embedded: the store on its own in-memory PGlite (a receiver's DB).
      const { PGlite } = await import("npm:@electric-sql/pglite@0.5.16");
      const memory = engine.name === "embedded" ? await PGlite.create() : null;
      const store = new PostgresDedupStore(
        memory
          ? { db: memory }
          : { connectionString: DATABASE_URL, table: `ids_${options.queue}` },
      );
      const secret = createSecret();
      let runs = 0;
      /** Requests that reached the app, before verifyTrigger() dedups. */
      let entries = 0;
      // The route outlasts attempt 1's 1 s timeout by 2 s, and the two
      // concurrent deliveries below by 3 s: wide margins on a busy machine.
      let slow = 3_000;
      const servers = [0, 1].map(() => {
        const app = new Hono();
        app.use("/jobs", async (_c, next) => {
          entries++;
          await next();
        });
        app.use("/jobs", verifyTrigger({ secret, store }));
        app.post("/jobs", async (c) => {
          runs++;
          await new Promise((r) => setTimeout(r, slow));
          return c.text("done");
        });
        return Deno.serve(
          { hostname: "127.0.0.1", port: 0, onListen() {} },
          app.fetch,
        );
      });
      const [a, b] = servers.map((s) => `http://127.0.0.1:${s.addr.port}/jobs`);
      const events: OutboxEvent[] = [];
      const outbox = await openOutbox({
        ...options,
        sign: { secret },
        onEvent: (event) => events.push(event),
      });
      try {
        outbox.start({ pollInterval: 100 });
        // Attempt 1 times out while the route runs; attempt 2 finds it done.
        const { id } = await outbox.trigger(a, {
          json: { report: 7 },
          timeout: 1_000,
          retry: { limit: 5, delay: 1_000, backoff: false },
        });
        await waitFor(
          () => Promise.resolve(events),
          (e) => e.some((x) => x.type === "delivered"),
        );
        assert.equal(runs, 1);
        // Raw: the timed-out attempt and at least one more reached the app.
        assert.ok(entries >= 2, `${entries} raw entries`);
        const before = entries;
        const kinds = events.map((e) =>
          e.type === "error" ? e.type : `${e.type} ${e.error?.code ?? e.status}`
        );
        assert.equal(kinds[0], "retry TIMEOUT");
        assert.equal(kinds.at(-1), "delivered 200");

        // The same message replayed to the other instance: 200, not run.
        const replay = await trigger(b, {
          json: { report: 7 },
          sign: { secret, id },
          wait: "accepted",
        });
        assert.equal(replay.status, 200);
        assert.equal(runs, 1);
        assert.equal(entries, before + 1, "the replay reached the app");

        // Two concurrent deliveries of one new id: one runs, one is told 429.
        slow = 3_000;
        const message = {
          secret,
          id: `msg_${crypto.randomUUID().slice(0, 8)}`,
        };
        const both = await Promise.all(
          [a, b].map((url) =>
            trigger(url, { json: { n: 1 }, sign: message, wait: "accepted" })
          ),
        );
        assert.deepEqual(both.map((r) => r.status).sort(), [200, 429]);
        assert.equal(runs, 2);
        assert.equal(entries, before + 3);
      } finally {
        await outbox.stop();
        await Promise.all(servers.map((s) => s.shutdown()));
        await store.close();
        await memory?.close();
        if (!memory) await dropTable(`ids_${options.queue}`);
        await options.cleanup();
      }
    },
  });
}

// Keep the type import used when every engine is ignored.
export type { Outbox };

Deno.test({
  name:
    "PostgresDedupStore (PostgreSQL): a terminated idle connection is reported, not a crash",
  ignore: DATABASE_URL === undefined,
  async fn() {
    const errors: unknown[] = [];
    const table = `dedup_terminate_${crypto.randomUUID().slice(0, 8)}`;
    const store = new PostgresDedupStore({
      connectionString: DATABASE_URL!,
      table,
      reportError: (error) => errors.push(error),
    });
    const admin = new PostgresDedupStore({ connectionString: DATABASE_URL! });
    try {
      assert.equal(await store.claim("msg_terminate", 60_000, "t"), "claimed");
      // End the store's idle backend, as a database restart would.
      const { default: pg } = await import("npm:pg@8.23.1");
      const client = new pg.Client({ connectionString: DATABASE_URL });
      await client.connect();
      try {
        await client.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE pid <> pg_backend_pid() AND query LIKE $1`,
          [`%${table}%`],
        );
      } finally {
        await client.end();
      }
      for (let i = 0; i < 100 && errors.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(
        errors.length,
        1,
        "the idle connection's error was reported",
      );
      // The pool replaces the connection: the store keeps working.
      assert.equal(await store.claim("msg_terminate", 60_000, "t"), "busy");
    } finally {
      await store.close();
      await admin.close();
      await dropTable(table);
    }
  },
});

Deno.test("openOutbox() on a Deno without FsFile#tryLock (before 2.7, as platforms' Deno may be): a TypeError naming the version needed, not LOCKED", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox-no-lock-" });
  const proto = Deno.FsFile.prototype as unknown as Record<string, unknown>;
  const tryLock = proto.tryLock;
  delete proto.tryLock;
  try {
    await assert.rejects(openOutbox({ dir }), (error) => {
      assert.ok(error instanceof TypeError, String(error));
      assert.match(
        (error as Error).message,
        /^Cannot open outbox: the embedded engine needs Deno's file locks \(Deno\.FsFile#tryLock, Deno 2\.7 or later\); give connectionString to use PostgreSQL$/,
      );
      return true;
    });
  } finally {
    proto.tryLock = tryLock;
    await Deno.remove(dir, { recursive: true });
  }
  // Restored: it opens.
  const again = await Deno.makeTempDir({ prefix: "outbox-no-lock-" });
  const outbox = await openOutbox({ dir: again });
  await outbox.stop();
  await Deno.remove(again, { recursive: true });
});
