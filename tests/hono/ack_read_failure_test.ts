// connection({ ack: true }) when reading the body fails: a caller who left
// (Deno.serve's BadResource or Http; @hono/node-server's own request
// aborted; Node's and Bun's request signal, probed by hand; workerd in
// tests/platforms/workers_test.ts) is ABORTED and answered 499; a
// middleware's stream that errored (a corrupt gzip, an upstream's reset) is
// no caller's leaving: it goes to Hono's error handling, as the route's own
// read would (it was a 499 and ABORTED).
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  connection,
  type ConnectionEnv,
  ConnectionStatus,
  drainBackground,
} from "../../src/hono/mod.ts";
import { within } from "../_wait.ts";
import net from "node:net";
import http from "node:http";
import { Readable } from "node:stream";
// deno-lint-ignore no-import-prefix
import { serve } from "npm:@hono/node-server@^2.1.9";

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

/** An app whose acknowledged route records its final status; `replace`
 * swaps the request first, as a middleware in front may. */
function recordingApp(
  replace?: (c: { req: { raw: Request } }) => Promise<Request>,
) {
  const shutdown: ConnectionStatus[] = [];
  const errors: string[] = [];
  let ran = 0;
  const app = new Hono<ConnectionEnv>();
  app.onError((error, c) => {
    errors.push(error.name);
    return c.text("failed", 500);
  });
  if (replace) {
    app.use("*", async (c, next) => {
      c.req.raw = await replace(c);
      await next();
    });
  }
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
  return { app, shutdown, errors, ran: () => ran };
}

/** Serves `app` on Deno.serve or @hono/node-server. */
async function listen(
  server: string,
  app: { fetch: (request: Request) => Response | Promise<Response> },
): Promise<{ port: number; close(): Promise<void> }> {
  if (server === "Deno.serve") {
    const served = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      app.fetch,
    );
    return { port: served.addr.port, close: () => served.shutdown() };
  }
  const served = await new Promise<
    { port: number; close(fn: () => void): void }
  >((resolve) => {
    const s = serve(
      { fetch: app.fetch, hostname: "127.0.0.1", port: 0 },
      (info) => resolve({ port: info.port, close: (fn) => s.close(fn) }),
    );
  });
  return {
    port: served.port,
    close: () => new Promise<void>((resolve) => served.close(() => resolve())),
  };
}

/** Sends 1,000 of 5,000 declared bytes, then closes (FIN) or resets (RST). */
async function leaveMidBody(port: number, how: "close" | "reset") {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  await new Promise((resolve) => socket.once("connect", resolve));
  socket.write(
    `POST /job HTTP/1.1\r\nHost: app\r\nContent-Length: 5000\r\n\r\n${
      "a".repeat(1000)
    }`,
  );
  await new Promise((resolve) => setTimeout(resolve, 100));
  if (how === "reset") socket.resetAndDestroy();
  else socket.destroy();
}

for (const server of ["Deno.serve", "@hono/node-server on Deno"] as const) {
  for (const how of ["close", "reset"] as const) {
    Deno.test(`${server}: a caller that leaves in the middle of an acknowledged route's body (${how}) is ABORTED, the route never runs (a reset on Deno.serve, and a close on Deno's node:http, were answered 500 and NORMAL)`, async () => {
      const { app, shutdown, errors, ran } = recordingApp();
      const { port, close } = await listen(server, app);
      try {
        await leaveMidBody(port, how);
        await within(
          (async () => {
            while (shutdown.length === 0) {
              await new Promise((resolve) => setTimeout(resolve, 10));
            }
          })(),
          "the connection's end",
          10_000,
        );
        assert.deepEqual(shutdown, [ConnectionStatus.ABORTED], `${errors}`);
        assert.deepEqual(errors, []);
        assert.equal(ran(), 0);
      } finally {
        await close();
      }
    });
  }
}

// (On Deno.serve it was right before, the check there being Deno's own
// error names: 500 and NORMAL, checked by hand.)
Deno.test("an upstream's reset that a middleware piped in as the body (ECONNRESET) is no caller leaving on @hono/node-server: the caller, still there, gets Hono's error answer and the status stays NORMAL (it was 499 and ABORTED)", async () => {
  // An upstream that answers 1,000 of 5,000 bytes, then resets.
  const upstream = net.createServer((socket) => {
    socket.on("error", () => {});
    socket.once("data", () => {
      socket.write(
        `HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n${"a".repeat(1000)}`,
      );
      setTimeout(() => socket.resetAndDestroy(), 100);
    });
  });
  await new Promise<void>((resolve) =>
    upstream.listen(0, "127.0.0.1", () => resolve())
  );
  const upstreamPort = (upstream.address() as net.AddressInfo).port;
  const { app, shutdown, errors, ran } = recordingApp(async (c) => {
    // The caller's body goes upstream; the upstream's answer is the body.
    const input = new Uint8Array(await c.req.raw.arrayBuffer());
    return await new Promise<Request>((resolve, reject) => {
      const request = http.request({
        host: "127.0.0.1",
        port: upstreamPort,
        method: "POST",
        path: "/",
      }, (response) =>
        resolve(
          new Request(c.req.raw.url, {
            method: "POST",
            headers: c.req.raw.headers,
            body: Readable.toWeb(response) as ReadableStream,
            duplex: "half",
          } as RequestInit),
        ));
      request.on("error", reject);
      request.end(input);
    });
  });
  try {
    for (const server of ["@hono/node-server on Deno"]) {
      const { port, close } = await listen(server, app);
      try {
        shutdown.length = 0;
        const response = await fetch(`http://127.0.0.1:${port}/job`, {
          method: "POST",
          body: "hello",
        });
        assert.equal(response.status, 500, server);
        await response.body?.cancel();
        assert.deepEqual(shutdown, [ConnectionStatus.NORMAL], server);
      } finally {
        await close();
      }
    }
    assert.equal(errors.length, 1);
    assert.equal(ran(), 0);
  } finally {
    await new Promise((resolve) => upstream.close(resolve));
  }
});
