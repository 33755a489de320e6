// connection() against PHP's order of things: shutdown functions run after
// the route's last statement (not while it still runs past its caller or
// its limit), a caller gone and then the limit give both bits, and a route
// that holds the event loop past its limit (synchronous work: no timer can
// fire) has timed out all the same. PHP 8.2 behind nginx was compared by
// hand: its shutdown functions ran after the script, with status 3 for a
// caller gone and then the limit.
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  connection,
  type ConnectionEnv,
  ConnectionStatus,
  drainBackground,
} from "../../src/hono/mod.ts";
import { sleep } from "../_hono_client.ts";
import { within } from "../_wait.ts";

/** Busy for `ms` without yielding, as a CPU-bound route is. */
function burn(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // the event loop is held
  }
}

Deno.test("a route that holds the event loop past its time limit has timed out: 503, TIMEOUT, the signal aborted (inline and ack)", async () => {
  for (const ack of [false, true]) {
    const seen: string[] = [];
    const app = new Hono<ConnectionEnv>();
    app.post("/job", connection({ timeLimit: 200, ack }), (c) => {
      const conn = c.var.connection;
      conn.onShutdown((status) => seen.push(`shutdown ${status}`));
      burn(400);
      seen.push(`signal ${conn.signal.aborted}`);
      return c.text("done");
    });
    const response = await app.request("/job", { method: "POST", body: "x" });
    assert.equal(await drainBackground({ timeout: 10_000 }), true);
    if (ack) {
      assert.equal(response.status, 202, "the caller had its answer");
      await response.body?.cancel();
    } else {
      assert.equal(response.status, 503, `ack ${ack}`);
      assert.match(await response.text(), /Time limit exceeded/);
    }
    assert.deepEqual(
      seen,
      ["signal false", `shutdown ${ConnectionStatus.TIMEOUT}`],
      `ack ${ack}`,
    );
  }
});

Deno.test("a route that holds the event loop past its time limit, then sets a new limit (or none): it has timed out all the same, as PHP kills it at the limit (the new limit erased the overrun: 200, NORMAL)", async () => {
  for (const next of [5_000, 0]) {
    const seen: string[] = [];
    const app = new Hono<ConnectionEnv>();
    app.post("/job", connection({ timeLimit: 100 }), async (c) => {
      const conn = c.var.connection;
      conn.onShutdown((status) => seen.push(`shutdown ${status}`));
      burn(300);
      conn.setTimeLimit(next);
      seen.push(`signal ${conn.signal.aborted}`);
      await sleep(10);
      return c.text("done");
    });
    const response = await app.request("/job", { method: "POST", body: "x" });
    assert.equal(await drainBackground({ timeout: 10_000 }), true);
    assert.equal(response.status, 503, `then setTimeLimit(${next})`);
    // The limit that ran out, not the one set after.
    assert.match(await response.text(), /Time limit exceeded.*100 ms/);
    assert.deepEqual(
      seen,
      ["signal true", `shutdown ${ConnectionStatus.TIMEOUT}`],
      `then setTimeLimit(${next})`,
    );
  }
});

Deno.test("a route that holds the event loop past its limit and then throws a value that is no Error: the caller gets the 503, the value goes to reportError, the shutdown functions see TIMEOUT", async () => {
  const reported: unknown[] = [];
  const seen: number[] = [];
  const app = new Hono<ConnectionEnv>();
  app.get(
    "/job",
    connection({ timeLimit: 100, reportError: (e) => reported.push(e) }),
    (c) => {
      c.var.connection.onShutdown((status) => seen.push(status));
      burn(250);
      throw "not an Error";
    },
  );
  const response = await app.request("/job");
  assert.equal(response.status, 503);
  assert.match(await response.text(), /Time limit exceeded/);
  assert.deepEqual(reported, ["not an Error"]);
  assert.deepEqual(seen, [ConnectionStatus.TIMEOUT]);

  // Within its limit, the same throw is the route's own: Hono rethrows it.
  const within = new Hono<ConnectionEnv>();
  within.get("/job", connection({ timeLimit: 10_000 }), () => {
    throw "not an Error";
  });
  await assert.rejects(
    async () => await within.request("/job"),
    (e: unknown) => e === "not an Error",
  );
});

Deno.test("shutdown functions run once the route has ended, not while it runs on past its limit; the caller has its 503 at the limit", async () => {
  const seen: string[] = [];
  const app = new Hono<ConnectionEnv>();
  app.get("/job", connection({ timeLimit: 200 }), async (c) => {
    const conn = c.var.connection;
    conn.onShutdown((status) => seen.push(`shutdown ${status}`));
    await sleep(800); // ignores the signal
    seen.push("route ended");
    return c.text("late");
  });
  const response = await within(
    Promise.resolve(app.request("/job")),
    "the 503",
  );
  assert.equal(response.status, 503);
  await response.body?.cancel();
  seen.push("503 answered");
  assert.equal(await drainBackground({ timeout: 10_000 }), true);
  assert.deepEqual(seen, [
    "503 answered",
    "route ended",
    `shutdown ${ConnectionStatus.TIMEOUT}`,
  ]);
});

Deno.test("a caller gone, then the time limit, while the route runs on: the shutdown functions see both (status 3), after the route", async () => {
  const seen: string[] = [];
  const app = new Hono<ConnectionEnv>();
  app.get("/job", connection({ timeLimit: 300 }), async (c) => {
    const conn = c.var.connection;
    conn.onShutdown((status) => seen.push(`shutdown ${status}`));
    await sleep(700); // ignores the signal
    seen.push(`route ended ${conn.status}`);
    return c.text("late");
  });
  const caller = new AbortController();
  const answered = Promise.resolve(
    app.request("/job", { signal: caller.signal }),
  );
  await sleep(100);
  caller.abort();
  const response = await within(answered, "the early answer");
  assert.equal(response.status, 499);
  await response.body?.cancel();
  assert.equal(await drainBackground({ timeout: 10_000 }), true);
  const both = ConnectionStatus.ABORTED | ConnectionStatus.TIMEOUT;
  assert.deepEqual(seen, [`route ended ${both}`, `shutdown ${both}`]);
});

Deno.test("after the early 503, a body read that fails (Deno.serve closed the request with its answer) is no caller leaving: status stays TIMEOUT", async () => {
  const seen: string[] = [];
  const app = new Hono<ConnectionEnv>();
  app.post("/job", connection({ timeLimit: 100 }), async (c) => {
    const conn = c.var.connection;
    conn.onShutdown((status) => seen.push(`shutdown ${status}`));
    await sleep(300);
    try {
      await c.req.text();
      seen.push("read");
    } catch {
      seen.push("read failed");
    }
    return c.text("late");
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    app.fetch,
  );
  try {
    const response = await fetch(`http://127.0.0.1:${server.addr.port}/job`, {
      method: "POST",
      body: "x".repeat(2048),
    });
    assert.equal(response.status, 503);
    assert.match(await response.text(), /past 100 ms/);
    assert.equal(await drainBackground({ timeout: 10_000 }), true);
    assert.equal(seen.at(-1), `shutdown ${ConnectionStatus.TIMEOUT}`);
  } finally {
    await server.shutdown();
  }
});

Deno.test("setTimeLimit() once the work is over changes nothing, the limit the 503 names included", async () => {
  const app = new Hono<ConnectionEnv>();
  app.get("/job", connection({ timeLimit: 100 }), (c) => {
    const conn = c.var.connection;
    conn.onShutdown(() => conn.setTimeLimit(0));
    burn(200);
    return c.text("done");
  });
  const response = await app.request("/job");
  assert.equal(response.status, 503);
  assert.match(await response.text(), /past 100 ms/);
  assert.equal(await drainBackground({ timeout: 10_000 }), true);
});
