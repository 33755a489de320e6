// connection({ ack: true }) on Deno.serve over HTTP/2: a caller that cancels
// its upload the way node:http2 documents (`stream.close(NGHTTP2_CANCEL)`:
// END_STREAM, then RST_STREAM) leaves Deno.serve handing on the bytes so far
// as a whole body, short of its Content-Length; the request's signal aborts
// a few ms later. The route must not run on half a body: 499, ABORTED. And a
// body shorter than a stale Content-Length a middleware left, with its
// caller still there, is acknowledged and run (after a short wait).
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  connection,
  type ConnectionEnv,
  ConnectionStatus,
  drainBackground,
} from "../../src/hono/mod.ts";
import { makeCert } from "../_servers.ts";
import { run, withTempFile } from "../_node/_runtimes.ts";

/** K POSTs on one HTTP/2 connection, each declaring 2 × SIZE bytes, SIZE
 * written, then cancelled with close(NGHTTP2_CANCEL) 100 ms later. */
const client = `
import http2 from "node:http2";
const [origin, size, count] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const session = http2.connect(origin, { rejectUnauthorized: false });
session.on("error", () => {});
for (let i = 0; i < count; i++) {
  const stream = session.request({ ":path": "/job?i=" + i, ":method": "POST", "content-length": String(2 * size) });
  stream.on("error", () => {});
  stream.resume();
  stream.write(Buffer.alloc(size, 97));
  await new Promise((r) => setTimeout(r, 100));
  stream.close(http2.constants.NGHTTP2_CANCEL);
}
await new Promise((r) => setTimeout(r, 500));
session.close();
console.log("sent");
`;

for (const ignoreUserAbort of [false, true]) {
  Deno.test(`connection({ ack: true${ignoreUserAbort ? ", ignoreUserAbort: true" : ""} }) on Deno.serve over HTTP/2: uploads cancelled with END_STREAM + RST_STREAM do not run the route on half a body (ABORTED, not 202 and NORMAL)`, async () => {
    const { cert, key } = await makeCert();
    const ran: number[] = [];
    const statuses: ConnectionStatus[] = [];
    const app = new Hono<ConnectionEnv>();
    app.post(
      "/job",
      async (c, next) => {
        await next();
        c.var.connection.onShutdown(() => {
          statuses.push(c.var.connection.status);
        });
      },
      connection({ ack: true, ignoreUserAbort }),
      async (c) => {
        ran.push((await c.req.arrayBuffer()).byteLength);
        return c.text("done");
      },
    );
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, cert, key, onListen() {} },
      app.fetch,
    );
    try {
      for (const size of [2_048, 100_000]) {
        ran.length = 0;
        statuses.length = 0;
        const out = await withTempFile(
          client,
          (path) =>
            run(
              "node",
              [
                path,
                `https://127.0.0.1:${server.addr.port}`,
                String(size),
                "8",
              ],
              60_000,
            ),
        );
        assert.equal(out.code, 0, out.stderr);
        assert.equal(await drainBackground({ timeout: 10_000 }), true);
        // Before: most ran with `size` bytes and ended NORMAL.
        assert.deepEqual(
          ran,
          [],
          `size ${size}: ran on ${ran.join(", ")} bytes`,
        );
        assert.equal(statuses.length, 8, `size ${size}: ${statuses}`);
        assert.ok(
          statuses.every((s) => (s & ConnectionStatus.ABORTED) !== 0),
          `size ${size}: ${statuses.join(", ")}`,
        );
      }
    } finally {
      await server.shutdown();
    }
  });
}

Deno.test("connection({ ack: true }): a body shorter than a Content-Length a middleware left stale, its caller still there, is acknowledged and run", async () => {
  const ran: string[] = [];
  const app = new Hono<ConnectionEnv>();
  // Swaps in a shorter body and keeps the old headers, length included.
  app.use("*", async (c, next) => {
    const raw = c.req.raw;
    const headers = new Headers(raw.headers);
    headers.set("content-length", "1000");
    c.req.raw = new Request(raw.url, {
      method: raw.method,
      headers,
      body: "short",
    });
    assert.equal(c.req.raw.headers.get("content-length"), "1000");
    await next();
  });
  app.post("/job", connection({ ack: true }), async (c) => {
    ran.push(await c.req.text());
    return c.text("done");
  });
  const response = await app.request("/job", {
    method: "POST",
    body: "a longer body than the middleware's",
  });
  await response.body?.cancel();
  assert.equal(response.status, 202);
  assert.equal(await drainBackground({ timeout: 10_000 }), true);
  assert.deepEqual(ran, ["short"]);
});

Deno.test("connection({ ack: true }): a GET or HEAD declaring a Content-Length (no body read) is acknowledged at once, not after the short-body wait (a 50 ms time limit does not run out first)", async () => {
  const ran: string[] = [];
  const app = new Hono<ConnectionEnv>();
  app.on(
    ["GET", "HEAD"],
    "/job",
    connection({ ack: true, timeLimit: 50 }),
    (c) => {
      ran.push(c.req.method);
      return c.text("done");
    },
  );
  for (const method of ["GET", "HEAD"]) {
    const response = await app.request("/job", {
      method,
      headers: { "content-length": "5" },
    });
    await response.body?.cancel();
    // Before: 503 (the limit ran out during a 100 ms wait for nothing).
    assert.equal(response.status, 202, method);
  }
  assert.equal(await drainBackground({ timeout: 10_000 }), true);
  assert.deepEqual(ran.sort(), ["GET", "HEAD"]);
});

Deno.test("connection({ ack: true }): a body an earlier middleware read through Hono (kept re-encoded: a text() without its BOM) is not taken for a short one (no wait: a 50 ms time limit does not run out first)", async () => {
  const ran: number[] = [];
  const app = new Hono<ConnectionEnv>();
  app.post(
    "/job",
    async (c, next) => {
      await c.req.text(); // Hono keeps the text, BOM dropped: 3 bytes fewer
      await next();
    },
    connection({ ack: true, timeLimit: 50 }),
    async (c) => {
      ran.push((await c.req.arrayBuffer()).byteLength);
      return c.text("done");
    },
  );
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    app.fetch,
  );
  try {
    const response = await fetch(`http://127.0.0.1:${server.addr.port}/job`, {
      method: "POST",
      body: '\uFEFF{"job": 7}',
    });
    await response.body?.cancel();
    // Before: 503 (the limit ran out during the wait for a departure).
    assert.equal(response.status, 202);
    assert.equal(await drainBackground({ timeout: 10_000 }), true);
    assert.deepEqual(ran, [10]); // as Hono kept it
  } finally {
    await server.shutdown();
  }
});
