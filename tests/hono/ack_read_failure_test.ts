// connection({ ack: true }) when reading the body fails: a caller who left
// (Deno.serve's BadResource; Node's and Bun's request signal, probed by
// hand) is ABORTED and answered 499; a middleware's stream that errored
// (a corrupt gzip) is no caller's leaving: it goes to Hono's error handling,
// as the route's own read would (it was a 499 and ABORTED).
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  connection,
  type ConnectionEnv,
  ConnectionStatus,
  drainBackground,
} from "../../src/hono/mod.ts";
import { within } from "../_wait.ts";

Deno.test("connection({ ack: true }) behind a middleware whose body stream errors (a corrupt gzip): Hono's error handler answers, the route does not run, the status is not ABORTED", async () => {
  const seen: string[] = [];
  const errors: string[] = [];
  const statuses: ConnectionStatus[] = [];
  const app = new Hono<ConnectionEnv>();
  app.onError((error, c) => {
    errors.push(error.name);
    return c.text("bad body", 400);
  });
  // Decodes a gzip body, as an app might in front of its routes.
  app.use("*", async (c, next) => {
    const raw = c.req.raw;
    c.req.raw = new Request(raw.url, {
      method: raw.method,
      headers: raw.headers,
      body: raw.body!.pipeThrough(new DecompressionStream("gzip")),
      duplex: "half",
    } as RequestInit);
    await next();
  });
  app.post(
    "/job",
    async (c, next) => {
      await next();
      statuses.push(c.var.connection.status);
    },
    connection({ ack: true }),
    (c) => {
      seen.push("ran");
      return c.text("done");
    },
  );
  const corrupt = new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
  const refused = await app.request("/job", { method: "POST", body: corrupt });
  // Before: 499, ABORTED.
  assert.equal(refused.status, 400, await refused.text());
  assert.equal(await drainBackground({ timeout: 10_000 }), true);
  assert.deepEqual(seen, []);
  assert.deepEqual(errors, ["TypeError"]);
  assert.deepEqual(statuses, [ConnectionStatus.NORMAL]);
  // A body that decodes: acknowledged and run.
  const good = await new Response(
    new Blob(["hello"]).stream().pipeThrough(new CompressionStream("gzip")),
  ).arrayBuffer();
  const ok = await app.request("/job", { method: "POST", body: good });
  await ok.body?.cancel();
  assert.equal(ok.status, 202);
  assert.equal(await drainBackground({ timeout: 10_000 }), true);
  assert.deepEqual(seen, ["ran"]);
});

Deno.test("Deno.serve: a caller that leaves in the middle of an acknowledged route's body is ABORTED (BadResource), the route never runs", async () => {
  const shutdown: ConnectionStatus[] = [];
  let ran = 0;
  const app = new Hono<ConnectionEnv>();
  app.post(
    "/job",
    async (c, next) => {
      await next();
      shutdown.push(c.var.connection.status);
    },
    connection({ ack: true }),
    (c) => {
      ran++;
      return c.text("done");
    },
  );
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    app.fetch,
  );
  try {
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: server.addr.port,
    });
    await conn.write(
      new TextEncoder().encode(
        `POST /job HTTP/1.1\r\nHost: app\r\nContent-Length: 5000\r\n\r\n${
          "a".repeat(1000)
        }`,
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    conn.close();
    await within(
      (async () => {
        while (shutdown.length === 0) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      })(),
      "the connection's end",
      10_000,
    );
    assert.deepEqual(shutdown, [ConnectionStatus.ABORTED]);
    assert.equal(ran, 0);
  } finally {
    await server.shutdown();
  }
});
