// A caller that left before connection() ran (an earlier middleware awaited,
// as verifyTrigger() does on its store; on Node the request's signal is
// aborted by then) is seen as gone: the same as a caller leaving during
// connection()'s own work.
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  connection,
  type ConnectionEnv,
  ConnectionStatus,
  drainBackground,
  MemoryDedupStore,
  verifyTrigger,
} from "../../src/hono/mod.ts";
import { createSecret, signPayload } from "../../mod.ts";

/** A request whose signal aborts while `gate` holds it, before
 * connection() runs. */
function leavingRequest(
  path: string,
  init: { body?: string; headers?: Record<string, string> } = {},
) {
  const controller = new AbortController();
  const request = new Request(`http://app.test${path}`, {
    method: "POST",
    body: init.body ?? "{}",
    headers: init.headers,
    signal: controller.signal,
  });
  return { request, leave: () => controller.abort() };
}

Deno.test("connection({ ack: true }) after an earlier middleware that awaited while the caller left: 499, the route does not run", async () => {
  const app = new Hono<ConnectionEnv>();
  const runs: number[] = [];
  let leave = () => {};
  app.post(
    "/job",
    async (_c, next) => {
      leave(); // the caller leaves while this middleware awaits
      await new Promise((resolve) => setTimeout(resolve, 5));
      await next();
    },
    connection({ ack: true }),
    (c) => {
      runs.push(c.var.connection.status);
      return c.body(null);
    },
  );
  const sent = leavingRequest("/job");
  leave = sent.leave;
  const response = await app.request(sent.request);
  assert.equal(await drainBackground(), true);
  assert.equal(response.status, 499);
  assert.deepEqual(runs, []);
});

Deno.test("connection() inline after an earlier middleware that awaited while the caller left: the early 499 and ABORTED", async () => {
  const app = new Hono<ConnectionEnv>();
  const statuses: number[] = [];
  let leave = () => {};
  app.post(
    "/job",
    async (_c, next) => {
      leave();
      await new Promise((resolve) => setTimeout(resolve, 5));
      await next();
    },
    connection(),
    async (c) => {
      const conn = c.var.connection;
      // Work that stops at the signal, as the docs advise.
      await new Promise((resolve) => {
        if (conn.signal.aborted) resolve(undefined);
        else conn.signal.addEventListener("abort", resolve, { once: true });
      });
      statuses.push(conn.status);
      return c.text("done");
    },
  );
  const sent = leavingRequest("/job");
  leave = sent.leave;
  const response = await app.request(sent.request);
  assert.equal(response.status, 499);
  await drainBackground();
  assert.deepEqual(statuses, [ConnectionStatus.ABORTED]);
});

Deno.test("verifyTrigger() then connection({ ack: true }): a caller that left while the store was asked is not marked done, and its retry runs", async () => {
  const secret = createSecret();
  const memory = new MemoryDedupStore();
  let leave = () => {};
  const store = {
    claim: async (id: string, ttlMs: number, token: string) => {
      leave(); // the caller leaves during the store's round trip
      await new Promise((resolve) => setTimeout(resolve, 5));
      return memory.claim(id, ttlMs, token);
    },
    complete: memory.complete.bind(memory),
    release: memory.release.bind(memory),
  };
  const app = new Hono<ConnectionEnv>();
  const runs: string[] = [];
  app.post(
    "/job",
    verifyTrigger({ secret, store }),
    connection({ ack: true }),
    (c) => {
      runs.push(c.req.header("webhook-id")!);
      return c.body(null);
    },
  );
  const id = "msg_left_early";
  const timestamp = Math.floor(Date.now() / 1000);
  const body = '{"a":1}';
  const headers = {
    "content-type": "application/json",
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": await signPayload(secret, { id, timestamp, body }),
  };
  const sent = leavingRequest("/job", { body, headers });
  leave = sent.leave;
  const first = await app.request(sent.request);
  assert.equal(await drainBackground(), true);
  assert.equal(first.status, 499);
  assert.deepEqual(runs, []);

  leave = () => {};
  const retry = await app.request("/job", { method: "POST", body, headers });
  assert.equal(retry.status, 202);
  assert.equal(retry.headers.get("x-trigger-duplicate"), null);
  assert.equal(await drainBackground(), true);
  assert.deepEqual(runs, [id]);
});
