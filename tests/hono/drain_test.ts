// drainBackground()'s timeout: the shutdown wait of connection() is bounded
// in milliseconds like drainTriggers(), resolves false when the time is up
// (the work goes on), and refuses bad input synchronously.
import assert from "node:assert/strict";
import { Hono } from "hono";
import { connection, drainBackground } from "../../src/hono/mod.ts";
import { output, within } from "../_wait.ts";

function jobApp(gate: Promise<void>, done: string[]): Hono {
  const app = new Hono();
  app.post("/jobs", connection({ ack: true }), async (c) => {
    const job = await c.req.text();
    await gate;
    done.push(job);
  });
  return app;
}

Deno.test("drainBackground({ timeout }) resolves false when the work outlasts it; the work goes on", async () => {
  const gate = Promise.withResolvers<void>();
  const done: string[] = [];
  const app = jobApp(gate.promise, done);
  const response = await app.request("/jobs", { method: "POST", body: "a" });
  assert.equal(response.status, 202);

  const start = performance.now();
  assert.equal(
    await within(drainBackground({ timeout: 50 }), "the timed-out drain"),
    false,
  );
  const waited = performance.now() - start;
  assert.ok(waited >= 40, `resolved after ${waited} ms, before its timeout`);
  assert.deepEqual(done, [], "the work was not stopped, and is not over");

  gate.resolve();
  assert.equal(await within(drainBackground(), "the full drain"), true);
  assert.deepEqual(done, ["a"]);
});

Deno.test("drainBackground({ timeout }) resolves true when the work ends first (no timer left behind)", async () => {
  const gate = Promise.withResolvers<void>();
  const done: string[] = [];
  const app = jobApp(gate.promise, done);
  assert.equal(
    (await app.request("/jobs", { method: "POST", body: "b" })).status,
    202,
  );
  setTimeout(gate.resolve, 20);
  // The test's op sanitizer fails the test if the 60 s timer outlives it.
  assert.equal(
    await within(drainBackground({ timeout: 60_000 }), "the drain"),
    true,
  );
  assert.deepEqual(done, ["b"]);
  // Nothing running: true at once, whatever the options.
  const aborted = AbortSignal.abort();
  assert.equal(await drainBackground({ timeout: 1, signal: aborted }), true);
});

Deno.test("drainBackground() refuses a bad timeout or signal synchronously, naming the value", () => {
  for (const timeout of [0, -1, Number.NaN, 2 ** 31, Infinity]) {
    assert.throws(
      () => drainBackground({ timeout }),
      (error: unknown) =>
        error instanceof RangeError &&
        error.message.includes("timeout must be a number of milliseconds") &&
        error.message.endsWith(`received ${timeout}`),
      `timeout ${timeout}`,
    );
  }
  assert.throws(
    () => drainBackground({ timeout: "5" as unknown as number }),
    /received "5"/,
  );
  assert.throws(
    () => drainBackground({ signal: {} as AbortSignal }),
    /signal must be an AbortSignal, received Object/,
  );
  assert.throws(
    () => drainBackground(null as unknown as undefined),
    /options must be an object, received null/,
  );
});

Deno.test("the documented shutdown (stop taking requests, then drain) waits for the job of a request still in flight; the other order finds nothing to wait for", async () => {
  for (const order of ["shutdown, then drain", "drain, then shutdown"]) {
    const done: string[] = [];
    const store = Promise.withResolvers<void>();
    const held = Promise.withResolvers<void>();
    const app = new Hono();
    app.post(
      "/jobs",
      async (_c, next) => {
        // As verifyTrigger() awaiting its store before connection() runs.
        held.resolve();
        await store.promise;
        await next();
      },
      connection({ ack: true }),
      async (c) => {
        const job = await c.req.text();
        await new Promise((resolve) => setTimeout(resolve, 50));
        done.push(job);
      },
    );
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      app.fetch,
    );
    const answer = fetch(`http://127.0.0.1:${server.addr.port}/jobs`, {
      method: "POST",
      body: "job-1",
    });
    await within(held.promise, "the request in flight", 5_000);
    // SIGTERM now; the store answers a moment later.
    setTimeout(() => store.resolve(), 20);
    if (order === "shutdown, then drain") {
      await server.shutdown();
      await drainBackground({ timeout: 5_000 });
    } else {
      await drainBackground({ timeout: 5_000 });
      await server.shutdown();
    }
    // Here the process would exit.
    const ran = [...done];
    assert.equal((await answer).status, 202);
    assert.deepEqual(ran, order === "shutdown, then drain" ? ["job-1"] : []);
    await drainBackground({ timeout: 5_000 });
  }
});

Deno.test("a process that exits with connection() background work running says so on stderr, once; after drainBackground() it says nothing", async () => {
  const entry = new URL("./_background_exit.ts", import.meta.url).pathname;
  const run = async (...args: string[]) => {
    const result = await output(Deno.execPath(), {
      args: ["run", "-A", entry, ...args],
      env: { NO_COLOR: "1" },
      timeout: 60_000,
    });
    const stderr = new TextDecoder().decode(result.stderr);
    return {
      code: result.code,
      stdout: new TextDecoder().decode(result.stdout).trim(),
      lines: stderr.split("\n").filter((line) =>
        line.includes("fire-trigger:")
      ),
    };
  };
  const cut = await run();
  assert.deepEqual([cut.code, cut.stdout], [0, "202"]);
  assert.equal(cut.lines.length, 1);
  assert.match(
    cut.lines[0],
    /exited with 1 connection\(\) background task still running/,
  );
  const drained = await run("drain");
  assert.deepEqual([drained.code, drained.stdout, drained.lines], [
    0,
    "202",
    [],
  ]);
});
