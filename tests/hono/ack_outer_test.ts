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
