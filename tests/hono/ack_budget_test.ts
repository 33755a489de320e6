// connection({ ack: true }) holds an acknowledged body against its budget
// until the background run is over: a flood of acknowledged jobs gets
// 503 + Retry-After instead of growing memory without bound.
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  connection,
  type ConnectionEnv,
  drainBackground,
} from "../../src/hono/mod.ts";
import { within } from "../_wait.ts";

Deno.test("connection({ ack: true }): a body stays counted until its background run ends", async () => {
  const SIZE = 1024;
  const gate = Promise.withResolvers<void>();
  const started: string[] = [];
  const app = new Hono<ConnectionEnv>();
  app.post(
    "/jobs",
    connection({ ack: true, maxBodySize: SIZE, maxBufferedBytes: SIZE }),
    async (c) => {
      started.push(await c.req.text());
      await gate.promise;
    },
  );
  const post = (fill: string) =>
    app.request("/jobs", { method: "POST", body: fill.repeat(SIZE) });

  assert.equal((await post("a")).status, 202);
  const busy = await post("b");
  assert.equal(busy.status, 503, "the first job's body still holds the budget");
  assert.ok(busy.headers.get("retry-after"));
  await busy.arrayBuffer();

  gate.resolve();
  assert.equal(
    await within(drainBackground(), "the first background run"),
    true,
  );
  assert.equal((await post("c")).status, 202, "the budget was given back");
  assert.equal(
    await within(drainBackground(), "the second background run"),
    true,
  );
  assert.deepEqual(started.map((body) => body[0]), ["a", "c"]);
});
