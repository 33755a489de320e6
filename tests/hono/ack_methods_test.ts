// Requests a copy cannot be made of, and reads that outlive their answer,
// hold nothing (found by hunt S).
// Deno.serve hands a method on as it came: a lower-case `get` with a body
// was read as a body, and its copy (a GET, which may carry none) threw
// after the 202; a `TRACE` copy throws whatever it carries. The throw left
// connection({ ack: true })'s bytes counted for good (every later ack a
// 503) and verifyTrigger()'s id claimed (its retry a 429 until the lease).
// And a time limit that answered 503 while the body was still coming, with
// no bodyTimeout, left the read (and its bytes) held for as long as the
// caller stayed quiet (seen on @hono/node-server).
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  connection,
  type ConnectionEnv,
  drainBackground,
  MemoryDedupStore,
  verifyTrigger,
} from "../../src/hono/mod.ts";
import { createSecret, signPayload } from "../../mod.ts";
import { sendAndReadStatus } from "../_hono_client.ts";
import { within } from "../_wait.ts";

const SIZE = 65_536;
const encoder = new TextEncoder();

/** A raw request with `headers` and a body of `length` bytes. */
function request(
  method: string,
  path: string,
  length: number,
  headers: Record<string, string> = {},
): Uint8Array {
  const head = [
    `${method} ${path} HTTP/1.1`,
    "Host: 127.0.0.1",
    `Content-Length: ${length}`,
    "Connection: close",
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return encoder.encode(head.join("\r\n") + "\r\n\r\n" + "x".repeat(length));
}

Deno.test("Deno.serve: a lower-case get or a TRACE with a body leaves neither connection()'s budget nor verifyTrigger()'s claim held", async () => {
  const secret = createSecret();
  const ran: string[] = [];
  const app = new Hono<ConnectionEnv>();
  // Hono's default error handler answers the copy's throw with 500, quietly.
  app.onError((_error, c) => c.text("refused", 500));
  app.all(
    "/job",
    connection({ ack: true, maxBodySize: SIZE, maxBufferedBytes: SIZE }),
    async (c) =>
      void ran.push(`${c.req.method} ${(await c.req.text()).length}`),
  );
  app.all(
    "/hook",
    verifyTrigger({ secret, store: new MemoryDedupStore() }),
    (c) => c.text("handled"),
  );
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    app.fetch,
  );
  try {
    const { port } = server.addr;
    // Every one of these would have held the whole budget.
    const statuses: Record<string, number> = {};
    for (const method of ["get", "gEt", "TRACE", "trace"]) {
      statuses[method] = await sendAndReadStatus(
        port,
        request(method, "/job", SIZE),
      );
    }
    // A get is acknowledged as a GET; a TRACE is the error handler's.
    assert.deepEqual(statuses, { get: 202, gEt: 202, TRACE: 500, trace: 500 });
    assert.equal(await within(drainBackground(), "the background runs"), true);
    const later = await fetch(`http://127.0.0.1:${port}/job`, {
      method: "POST",
      body: "y".repeat(SIZE),
    });
    await later.body?.cancel();
    assert.equal(later.status, 202, "the budget was given back");
    assert.equal(await within(drainBackground(), "the last run"), true);
    assert.ok(ran.includes(`POST ${SIZE}`), ran.join());
    // A lower-case get is a GET: its body was never read as one.
    assert.ok(!ran.includes(`GET ${SIZE}`), ran.join());

    // Signed as if its body counted: a lower-case get is checked without
    // one (401); a TRACE cannot be copied (500). Neither claims the id.
    for (const method of ["get", "TRACE"]) {
      const id = `msg_${method}_${crypto.randomUUID()}`;
      const timestamp = Math.floor(Date.now() / 1000);
      const body = "x".repeat(16);
      const headers = {
        "webhook-id": id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": await signPayload(secret, { id, timestamp, body }),
      };
      const status = await sendAndReadStatus(
        port,
        request(method, "/hook", body.length, headers),
      );
      assert.equal(status, method === "get" ? 401 : 500, method);
      const retry = await fetch(`http://127.0.0.1:${port}/hook`, {
        method: "POST",
        headers,
        body,
      });
      assert.equal(
        `${retry.status} ${await retry.text()}`,
        "200 handled",
        `the POST after a signed ${method}: the id was left claimed`,
      );
    }
  } finally {
    await server.shutdown();
  }
});

Deno.test("connection({ ack: true }): a read still going when the time limit answers stops, and its bytes leave the budget", async () => {
  const app = new Hono<ConnectionEnv>();
  app.post(
    "/job",
    connection({
      ack: true,
      timeLimit: 50,
      bodyTimeout: 0,
      maxBodySize: SIZE,
      maxBufferedBytes: SIZE,
    }),
    (c) => c.body(null, 204),
  );
  // Most of a body, then nothing: the caller stays, quiet.
  let cancelled = false;
  const stalled = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new Uint8Array(SIZE - 1024));
    },
    cancel() {
      cancelled = true;
    },
  });
  const first = await app.request("/job", {
    method: "POST",
    body: stalled,
    duplex: "half",
  } as RequestInit);
  assert.equal(first.status, 503, "the time limit answered");
  await first.body?.cancel();
  const later = await app.request("/job", {
    method: "POST",
    body: "z".repeat(SIZE / 2),
  });
  await later.body?.cancel();
  assert.equal(later.status, 202, "the stalled read's bytes were given back");
  assert.ok(cancelled, "the stalled read was stopped");
  assert.equal(await within(drainBackground(), "the background run"), true);
});
