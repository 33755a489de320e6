// connection({ ack: true }) when reading the body throws (an earlier
// middleware locked the request's stream): the connection still ends as on
// every other path — time limit cleared, shutdown functions run, `finished`
// settled — and the bytes taken from the body budget go back.
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  connection,
  type ConnectionEnv,
  ConnectionStatus,
  drainBackground,
} from "../../src/hono/mod.ts";
import { within } from "../_wait.ts";

Deno.test("connection({ ack: true }) finishes the connection when the body read throws", async () => {
  const SIZE = 64;
  const seen: { finished?: Promise<ConnectionStatus>; shutdown: number[] } = {
    shutdown: [],
  };
  const errors: unknown[] = [];
  const ran: string[] = [];
  const app = new Hono<ConnectionEnv>();
  app.onError((error, c) => {
    errors.push(error);
    return c.text("failed", 500);
  });
  // Outermost: sees the connection after connection() gave up, and
  // registers a shutdown function then (it runs at once once finished).
  app.use(async (c, next) => {
    await next();
    const conn = c.get("connection");
    if (conn === undefined) return;
    seen.finished = conn.finished;
    conn.onShutdown((status) => {
      seen.shutdown.push(status);
    });
  });
  // Locks the body's stream without reading it when asked to.
  app.use(async (c, next) => {
    if (c.req.header("x-lock") === "1") c.req.raw.body?.getReader();
    await next();
  });
  app.post(
    "/jobs",
    // A time limit: a connection never finished would fire it later (and
    // the test's timer sanitizer would see the timer left behind).
    connection({
      ack: true,
      timeLimit: 60_000,
      maxBodySize: SIZE,
      maxBufferedBytes: SIZE,
    }),
    async (c) => {
      ran.push(await c.req.text());
    },
  );

  const locked = await app.request("/jobs", {
    method: "POST",
    headers: { "x-lock": "1", "content-length": String(SIZE) },
    body: "a".repeat(SIZE),
  });
  assert.equal(locked.status, 500);
  await locked.body?.cancel();
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof TypeError, String(errors[0]));
  assert.ok(seen.finished, "the outer middleware saw the connection");
  assert.equal(
    await within(seen.finished, "connection.finished after the failed read"),
    ConnectionStatus.NORMAL,
  );
  assert.deepEqual(seen.shutdown, [ConnectionStatus.NORMAL]);
  assert.deepEqual(ran, [], "the route did not run");

  // The bytes taken from the budget went back: a body of the
  // whole budget is accepted.
  const next = await app.request("/jobs", {
    method: "POST",
    headers: { "content-length": String(SIZE) },
    body: "b".repeat(SIZE),
  });
  assert.equal(next.status, 202, "the failed read's bytes were given back");
  assert.equal(await within(drainBackground(), "the background run"), true);
  assert.deepEqual(ran, ["b".repeat(SIZE)]);
});
