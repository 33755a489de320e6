// connection({ ack: true }) behind an outer middleware that awaits after
// next() (an audit log, a metrics flush): the route runs in the background
// meanwhile, and its throw must not turn the caller's 202 into Hono's 500.
import assert from "node:assert/strict";
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { connection, drainBackground } from "../../src/hono/mod.ts";

/** An app whose outer middleware awaits `ms` after next(), then sets a
 * header of its own and replaces the answer with a copy (as compress or
 * etag middleware do). */
function app(route: () => never, reported: unknown[], ms = 10) {
  const app = new Hono();
  app.use("*", async (c, next) => {
    await next();
    await new Promise((resolve) => setTimeout(resolve, ms));
    c.res.headers.set("x-outer", "1");
    c.res = new Response(c.res.body, c.res);
  });
  app.post(
    "/job",
    connection({ ack: true, reportError: (error) => reported.push(error) }),
    route,
  );
  return app;
}

Deno.test("connection({ ack: true }): a route that throws while an outer middleware awaits leaves the caller's 202, and is reported", async () => {
  const reported: unknown[] = [];
  const failure = new Error("job failed in the background");
  const response = await app(() => {
    throw failure;
  }, reported).request("/job", { method: "POST", body: "x" });
  assert.equal(await drainBackground(), true);
  assert.equal(response.status, 202);
  assert.equal(response.headers.get("x-outer"), "1");
  assert.deepEqual(reported, [failure]);
});

Deno.test("connection({ ack: true }): an HTTPException thrown in the background leaves the 202 too", async () => {
  const reported: unknown[] = [];
  const response = await app(() => {
    throw new HTTPException(401, { message: "no" });
  }, reported).request("/job", { method: "POST", body: "x" });
  assert.equal(await drainBackground(), true);
  assert.equal(response.status, 202);
  assert.equal(reported.length, 1);
});

Deno.test("connection({ ack: true }): after the background run, the Context's res is Hono's own again", async () => {
  const app = new Hono();
  let during: boolean | undefined;
  let own: boolean | undefined;
  app.post("/job", connection({ ack: true, reportError: () => {} }), (c) => {
    during = Object.hasOwn(c, "res");
    setTimeout(() => own = Object.hasOwn(c, "res"), 0);
    throw new Error("x");
  });
  const response = await app.request("/job", { method: "POST", body: "x" });
  await drainBackground();
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(response.status, 202);
  assert.equal(during, true);
  assert.equal(own, false);
});

Deno.test("connection({ ack: true }): an error already on the Context before the route ran is not reported as the route's", async () => {
  const reported: unknown[] = [];
  const app = new Hono();
  app.use("*", async (c, next) => {
    c.error = new Error("handled earlier, kept in c.error");
    await next();
  });
  app.post(
    "/job",
    connection({ ack: true, reportError: (error) => reported.push(error) }),
    (c) => c.body(null),
  );
  const response = await app.request("/job", { method: "POST", body: "x" });
  assert.equal(await drainBackground(), true);
  assert.equal(response.status, 202);
  assert.deepEqual(reported, []);
});

Deno.test("connection({ ack: true }): an outer middleware that throws while the route runs (at once after next(), or later) gets Hono's error handler, and the caller keeps its 202", async () => {
  for (const wait of [undefined, 5]) {
    const handled: unknown[] = [];
    let runs = 0;
    const outer = new Error("audit log insert failed");
    const app = new Hono();
    app.onError((error, c) => {
      handled.push(error);
      return c.text("failed", 500);
    });
    app.use("*", async (_c, next) => {
      await next();
      if (wait !== undefined) {
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
      throw outer;
    });
    app.post(
      "/job",
      connection({ ack: true, reportError: () => {} }),
      async (c) => {
        runs++;
        await new Promise((resolve) => setTimeout(resolve, 30));
        return c.body(null);
      },
    );
    const response = await app.request("/job", { method: "POST", body: "x" });
    assert.equal(await drainBackground(), true);
    assert.equal(response.status, 202, `outer throws after ${wait} ms`);
    assert.deepEqual(handled, [outer]);
    assert.equal(runs, 1);
  }
});

Deno.test("connection({ timeLimit }): a route that throws after its 503, while an outer middleware awaits, leaves the 503", async () => {
  const app = new Hono();
  app.use("*", async (_c, next) => {
    await next();
    await new Promise((resolve) => setTimeout(resolve, 40));
  });
  app.get(
    "/report",
    connection({ timeLimit: 10, reportError: () => {} }),
    async () => {
      await new Promise((resolve) => setTimeout(resolve, 25)); // no signal
      throw new Error("late failure");
    },
  );
  const response = await app.request("/report");
  await drainBackground();
  assert.equal(response.status, 503);
});
