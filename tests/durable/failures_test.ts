// The outbox when things go wrong: passwords in connection strings that are
// not URLs, a PostgreSQL that stops answering (SIGSTOP on a throwaway server
// started here), a read-only or full directory, bad input, and a runtime
// without `Deno`. Every wait is bounded and fails with a message.
import assert from "node:assert/strict";
import {
  openOutbox,
  type Outbox,
  OutboxError,
  type OutboxEvent,
} from "../../src/durable/mod.ts";
import { hasDenoFileLocks } from "../../src/durable/_engine.ts";
import { within } from "../_wait.ts";
import { dropQueue } from "./_seed.ts";
import { CAN_START_POSTGRES, ThrowawayPostgres } from "../_postgres.ts";

const PASSWORD = "Pw-9f3k#x@7";
const isRoot = Deno.uid?.() === 0;

/** Everything a user could print of an error, causes included. */
function printed(error: unknown): string {
  return [
    String(error),
    (error as Error)?.stack ?? "",
    Deno.inspect(error, { depth: 10 }),
    String((error as Error)?.cause ?? ""),
    ((error as Error)?.cause as Error)?.stack ?? "",
  ].join("\n");
}

function assertNoPassword(error: unknown, password: string): void {
  const text = printed(error);
  assert.ok(!text.includes(password), `password in:\n${text}`);
  // Its parts too: "Pw-9f3k" before the "#", percent-encoded forms.
  for (const part of password.split(/[#@]/)) {
    if (part.length >= 4) {
      assert.ok(!text.includes(part), `password part ${part} in:\n${text}`);
    }
  }
}

Deno.test("openOutbox() never puts a password in an error: invalid URLs, a bad port, an unreachable or refusing server", async () => {
  const encoded = encodeURIComponent(PASSWORD);
  const cases = [
    // Not valid URLs: an unencoded "#" and "@" in the password.
    `postgres://app:${PASSWORD}@127.0.0.1:5432/db`,
    `postgres://app:${PASSWORD}@127.0.0.1:99999/db`,
    `postgresql://app:${PASSWORD}@[::1:5432/db`,
    // Valid URLs: nobody listens on port 1; a bad port.
    `postgres://app:${encoded}@127.0.0.1:1/db`,
    `postgres://app:${encoded}@127.0.0.1:99999/db`,
  ];
  for (const connectionString of cases) {
    const error = await within(
      openOutbox({ connectionString, connectTimeout: 2_000 }).then(
        async (outbox) => {
          await outbox.stop();
          return new Error(`opened ${connectionString}`);
        },
        (error) => error,
      ),
      `openOutbox(${connectionString}) did not settle`,
      20_000,
    );
    assert.ok(error instanceof OutboxError, printed(error));
    assert.ok(
      error.code === "DATABASE" || error.code === "TIMEOUT",
      error.code,
    );
    assert.match(error.message, /^Cannot open outbox: PostgreSQL at /);
    assertNoPassword(error, PASSWORD);
  }
});

Deno.test("openOutbox() refuses bad options synchronously, naming the value, in milliseconds", () => {
  const cases: Array<[Record<string, unknown>, ErrorConstructor, RegExp]> = [
    [{ queryTimeout: -1 }, RangeError, /queryTimeout .* received -1/],
    [{ connectTimeout: "5s" }, RangeError, /connectTimeout .* received "5s"/],
    [{ retry: { delay: -1 } }, RangeError, /retry\.delay .* received -1/],
    [
      { retry: { maxDelay: 86_400_001 } },
      RangeError,
      /retry\.maxDelay .* received 86400001/,
    ],
    [{ retry: { delaySeconds: 2 } }, TypeError, /give retry\.delay in milli/],
    // With backoff no retry waits longer than maxDelay (pg-boss cut a
    // longer delay to it without a word).
    [
      { retry: { maxDelay: 1_000 } },
      RangeError,
      /retry\.delay \(2000 ms, the default\) is longer than retry\.maxDelay \(1000 ms\)/,
    ],
    [
      { retry: { delay: 600_000 } },
      RangeError,
      /retry\.delay \(600000 ms\) is longer than retry\.maxDelay \(300000 ms, the default\)/,
    ],
    [{ queue: "Bad-Name" }, TypeError, /queue .* received "Bad-Name"/],
    [{ connectionString: "" }, TypeError, /connectionString .* received ""/],
  ];
  for (const [options, type, message] of cases) {
    // A throw, not a rejected promise: nothing to await.
    assert.throws(() => openOutbox(options), (error: unknown) => {
      assert.ok(error instanceof type, `${error}`);
      assert.match((error as Error).message, message);
      return true;
    });
  }
});

Deno.test("the embedded engine's runtime check does not throw where Deno is undeclared (Node)", async () => {
  assert.equal(hasDenoFileLocks(), true);
  // The same function's compiled source, evaluated by Node, where a bare
  // `Deno` reference would be a ReferenceError.
  const source = `const check = ${hasDenoFileLocks.toString()};
    console.log(JSON.stringify(check()));`;
  const { code, stdout, stderr } = await within(
    new Deno.Command("node", { args: ["-e", source] }).output(),
    "node did not exit",
    20_000,
  );
  const decoder = new TextDecoder();
  assert.equal(code, 0, decoder.decode(stderr));
  assert.equal(decoder.decode(stdout).trim(), "false");
});

/** A tmpfs mounted here for one test (root only), unmounted after. */
async function withTmpfs(
  options: string,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "outbox_fs_" });
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", options, "tmpfs", dir],
    stderr: "piped",
  }).output();
  if (mount.code !== 0) {
    await Deno.remove(dir);
    throw new Error(
      `mount tmpfs failed: ${new TextDecoder().decode(mount.stderr)}`,
    );
  }
  try {
    await fn(dir);
  } finally {
    // Lazily: PGlite keeps files open after a failed create (upstream).
    const umount = await new Deno.Command("umount", { args: ["-l", dir] })
      .output();
    assert.equal(umount.code, 0, "umount");
    await Deno.remove(dir, { recursive: true });
  }
}

if (!isRoot) {
  console.log(
    "failures_test.ts: not root, skipping the read-only and full filesystem tests (they mount a tmpfs)",
  );
}

Deno.test({
  name:
    "openOutbox() on a read-only filesystem: OutboxError STORAGE naming the directory, not a raw EROFS",
  ignore: !isRoot,
  async fn() {
    await withTmpfs("ro,size=1m", async (mounted) => {
      for (const dir of [mounted, `${mounted}/outbox`]) {
        const error = await within(
          openOutbox({ dir }).then(() => new Error("opened"), (e) => e),
          "openOutbox() did not settle",
          60_000,
        );
        assert.ok(error instanceof OutboxError, printed(error));
        assert.equal(error.code, "STORAGE");
        assert.match(
          error.message,
          new RegExp(
            `^Cannot open outbox: the directory "${dir}" cannot be written: Read-only file system`,
          ),
        );
      }
    });
  },
});

Deno.test({
  name:
    "openOutbox() on a full filesystem: OutboxError STORAGE saying ENOSPC, not [object Object]",
  ignore: !isRoot,
  async fn() {
    await withTmpfs("size=2m", async (dir) => {
      const error = await within(
        openOutbox({ dir }).then(() => new Error("opened"), (e) => e),
        "openOutbox() did not settle",
        120_000,
      );
      assert.ok(error instanceof OutboxError, printed(error));
      assert.equal(error.code, "STORAGE");
      assert.match(
        error.message,
        /^Cannot open outbox: the embedded database in ".*" could not be opened: ENOSPC \(no space left on device\)$/,
      );
      assert.doesNotMatch(printed(error), /\[object Object\]/);
      // The lock was released: a second try meets the disk, not the lock.
      await assert.rejects(openOutbox({ dir }), { code: "STORAGE" });
    });
  },
});

if (!CAN_START_POSTGRES) {
  console.log(
    "failures_test.ts: initdb/pg_ctl not found, skipping the SIGSTOP test",
  );
}

Deno.test({
  name:
    "outbox on a PostgreSQL that stops answering (SIGSTOP): trigger() and stats() fail with OutboxError TIMEOUT, nothing half-written, no password; it recovers on SIGCONT",
  ignore: !CAN_START_POSTGRES,
  async fn() {
    const server = await ThrowawayPostgres.start();
    const events: OutboxEvent[] = [];
    let outbox: Outbox | undefined;
    let frozen = false;
    try {
      outbox = await within(
        openOutbox({
          connectionString: server.url(PASSWORD),
          queryTimeout: 1_500,
          connectTimeout: 1_500,
          onEvent: (event) => events.push(event),
        }),
        "openOutbox() did not settle",
        60_000,
      );
      const stored = await outbox.trigger("http://127.0.0.1:9/stored", {
        json: { n: 0 },
      });
      assert.equal((await outbox.stats()).queued, 1);

      await server.signal("SIGSTOP");
      frozen = true;
      const errors = await within(
        Promise.all([
          ...Array.from(
            { length: 5 },
            (_, n) =>
              outbox!.trigger("http://127.0.0.1:9/lost", { json: { n } }).then(
                () => new Error("stored while the server was stopped"),
                (e) => e,
              ),
          ),
          outbox.stats().then(() => new Error("counted"), (e) => e),
        ]),
        "a database call did not fail while the server was stopped",
        30_000,
      );
      for (const error of errors) {
        assert.ok(error instanceof OutboxError, printed(error));
        assert.equal(error.code, "TIMEOUT", error.message);
        assert.match(
          error.message,
          /^Cannot (trigger request|count jobs): PostgreSQL at 127\.0\.0\.1:\d+\/postgres failed: /,
        );
        assertNoPassword(error, PASSWORD);
      }

      await server.signal("SIGCONT");
      frozen = false;
      // Whatever the stopped server had buffered has run by now: wait
      // until it answers, then count. Only the first trigger is stored.
      let stats;
      for (let i = 0;; i++) {
        try {
          stats = await outbox.stats();
          break;
        } catch (error) {
          assert.ok(i < 20, `no recovery after SIGCONT: ${error}`);
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      assert.equal(stats.queued, 1, "the timed-out triggers were not stored");
      const again = await outbox.trigger("http://127.0.0.1:9/after", {
        json: { n: 9 },
      });
      assert.notEqual(again.id, stored.id);
      assert.equal((await outbox.stats()).queued, 2);
      for (const event of events) {
        if (event.type !== "error") continue;
        assert.ok(event.error instanceof OutboxError, printed(event.error));
        assertNoPassword(event.error, PASSWORD);
      }
    } finally {
      if (frozen) await server.signal("SIGCONT");
      await outbox?.stop();
      await server.stop();
    }
  },
});

Deno.test({
  name:
    "outbox on a stalled PostgreSQL: 11,000 waiting triggers all settle within about one queryTimeout (OVERLOADED past 10,000, TIMEOUT for the rest), none stored",
  ignore: !CAN_START_POSTGRES,
  async fn() {
    const server = await ThrowawayPostgres.start();
    let outbox: Outbox | undefined;
    let frozen = false;
    try {
      outbox = await within(
        openOutbox({
          connectionString: server.url(PASSWORD),
          queryTimeout: 1_500,
          connectTimeout: 1_500,
          onEvent: () => {},
        }),
        "openOutbox() did not settle",
        60_000,
      );
      const opened = outbox;
      await server.signal("SIGSTOP");
      frozen = true;
      const started = Date.now();
      // Unbounded, 22 batches would wait 1.5 s each, one after another.
      const results = await within(
        Promise.all(
          Array.from(
            { length: 11_000 },
            (_, n) =>
              opened.trigger("http://127.0.0.1:9/lost", { json: { n } }).then(
                () => "stored",
                (e) => e instanceof OutboxError ? e : String(e),
              ),
          ),
        ),
        "the waiting triggers did not all settle within 20 s",
        20_000,
      );
      const elapsed = Date.now() - started;
      const codes = new Map<string, number>();
      for (const r of results) {
        const code = typeof r === "string" ? r : r.code;
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
      assert.deepEqual(Object.fromEntries(codes), {
        OVERLOADED: 1_000,
        TIMEOUT: 10_000,
      });
      assert.ok(elapsed < 10_000, `settled after ${elapsed} ms`);
      const rest = results.filter((r) =>
        r instanceof OutboxError && r.code === "TIMEOUT" &&
        /not stored/.test(r.message)
      );
      assert.equal(rest.length, 9_500, "the rest were told: not stored");
      await server.signal("SIGCONT");
      frozen = false;
      for (let i = 0;; i++) {
        try {
          assert.equal((await opened.stats()).queued, 0);
          break;
        } catch (error) {
          if (error instanceof assert.AssertionError) throw error;
          assert.ok(i < 20, `no recovery after SIGCONT: ${error}`);
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    } finally {
      if (frozen) await server.signal("SIGCONT");
      await outbox?.stop();
      await server.stop();
    }
  },
});

const SHARED_DATABASE_URL = Deno.env.get("TRIGGER_TEST_DATABASE_URL");

/** A TCP relay to PostgreSQL that, once armed, forwards the next COMMIT
 * but never relays the server's answer on that connection: the client
 * times out while the row is committed. */
function commitBlackhole(target: URL) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const state = { armed: false, swallowed: 0 };
  const COMMIT = new TextEncoder().encode("COMMIT\0");
  const has = (chunk: Uint8Array) => {
    outer: for (let i = 0; i + COMMIT.length <= chunk.length; i++) {
      for (let j = 0; j < COMMIT.length; j++) {
        if (chunk[i + j] !== COMMIT[j]) continue outer;
      }
      return true;
    }
    return false;
  };
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const client of listener) {
      const server = await Deno.connect({
        hostname: target.hostname,
        port: Number(target.port || 5432),
      });
      conns.add(client).add(server);
      let blackhole = false;
      (async () => {
        for await (const chunk of client.readable) {
          if (state.armed && has(chunk)) {
            state.armed = false;
            state.swallowed++;
            blackhole = true;
          }
          await server.write(chunk);
        }
      })().catch(() => {});
      (async () => {
        for await (const chunk of server.readable) {
          if (!blackhole) await client.write(chunk);
        }
      })().catch(() => {});
    }
  })().catch(() => {});
  const url = new URL(target);
  url.host = `127.0.0.1:${listener.addr.port}`;
  return {
    url: url.href,
    state,
    close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // closed already
        }
      }
    },
  };
}

Deno.test({
  name:
    "outbox.trigger() when COMMIT gets no answer: TIMEOUT saying the outcome is unknown (and the row is in fact stored)",
  ignore: SHARED_DATABASE_URL === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const relay = commitBlackhole(new URL(SHARED_DATABASE_URL!));
    const queue = `c_${crypto.randomUUID().slice(0, 8)}`;
    let outbox: Outbox | undefined;
    try {
      outbox = await within(
        openOutbox({
          connectionString: relay.url,
          queue,
          queryTimeout: 1_500,
          onEvent: () => {},
        }),
        "openOutbox() did not settle",
        60_000,
      );
      relay.state.armed = true;
      const error = await within(
        outbox.trigger("http://127.0.0.1:9/x", {
          sign: { secret: "whsec_" + btoa("k".repeat(24)), id: "order-7" },
        }).then(() => new Error("resolved"), (e) => e),
        "trigger() did not settle",
        20_000,
      );
      assert.equal(relay.state.swallowed, 1);
      assert.ok(error instanceof OutboxError, printed(error));
      assert.equal(error.code, "TIMEOUT");
      assert.match(error.message, /did not answer COMMIT.*outcome unknown/);
      assert.equal((await outbox.stats()).queued, 1, "it was committed");
    } finally {
      await outbox?.stop();
      relay.close();
      await dropQueue(queue);
    }
  },
});
