// Run by otel_test.ts under OTEL_DENO=true: a caller route (Deno.serve, so a
// server span is active) triggers a target route; prints what the target
// received as JSON. Usage: _otel_child.ts trigger <socket|fetch> | outbox
import { trigger } from "../../src/trigger/trigger.ts";
import { closeIdleConnections } from "../../src/transport/_pool.ts";
import { openOutbox, type OutboxEvent } from "../../src/durable/mod.ts";
import { verifyTrigger } from "../../src/hono/verify.ts";
import { connection } from "../../src/hono/connection.ts";
import type { ConnectionEnv } from "../../src/hono/connection_types.ts";
import { createSecret } from "../../src/signature/sign.ts";
import { Hono } from "hono";
import { deadPort } from "../_servers.ts";
import { dropQueue } from "../durable/_seed.ts";

const secret = createSecret();
/** The receiving side: verifyTrigger() and connection() on a Hono route
 * that fails its first delivery (503), then accepts. */
let hookHits = 0;
const hooks = new Hono<ConnectionEnv>().post(
  "/hook",
  verifyTrigger({ secret }),
  connection(),
  (c) => c.body(null, ++hookHits === 1 ? 503 : 200),
).post(
  "/ack",
  connection({ ack: true }),
  async (c) => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Fired after the 202: its span belongs under the background's.
    await (await trigger(`${base}/after-ack`, { wait: "accepted" })).done;
    return c.body(null, 204);
  },
).post(
  "/ack-fail",
  connection({ ack: true, reportError() {} }),
  async () => {
    await new Promise((resolve) => setTimeout(resolve, 10));
    throw new RangeError("background work failed");
  },
).post(
  "/limited",
  connection({ timeLimit: 50 }),
  async (c) => {
    // Past its limit, then stops at the signal: the 503 goes first.
    await new Promise((resolve) =>
      c.var.connection.signal.addEventListener("abort", resolve)
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    return c.body(null, 200);
  },
);

/** The headers a target route saw, per path, in arrival order. */
const received: Record<string, Array<Record<string, string | null>>> = {};
const target = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  targetRoute,
);
const base = `http://127.0.0.1:${target.addr.port}`;

/** The target's routes: records the trace headers each request carried. */
function targetRoute(request: Request): Response | Promise<Response> {
  const path = new URL(request.url).pathname;
  (received[path] ??= []).push({
    traceparent: request.headers.get("traceparent"),
    tracestate: request.headers.get("tracestate"),
    baggage: request.headers.get("baggage"),
  });
  if (path === "/fail") return new Response(null, { status: 503 });
  if (
    path === "/hook" || path === "/ack" || path === "/ack-fail" ||
    path === "/limited"
  ) {
    return hooks.fetch(request);
  }
  return new Response("ok");
}

/** Answers the first request on each connection, then closes at the next
 * one without answering: a keep-alive race, so the client resends. */
function staleServer(): { url: string; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        const buffer = new Uint8Array(16 * 1024);
        let n = 0;
        let text = "";
        try {
          while (true) {
            const read = await conn.read(buffer);
            if (read === null) break;
            text += new TextDecoder().decode(buffer.subarray(0, read));
            while (text.includes("\r\n\r\n")) {
              text = text.slice(text.indexOf("\r\n\r\n") + 4);
              if (++n > 1) throw new Error("stale");
              await conn.write(
                new TextEncoder().encode("HTTP/1.1 204 No Content\r\n\r\n"),
              );
            }
          }
        } catch {
          // closed
        } finally {
          conns.delete(conn);
          try {
            conn.close();
          } catch {
            // already closed
          }
        }
      })();
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/stale`,
    close() {
      listener.close();
      for (const conn of conns) conn.close();
    },
  };
}

async function triggerScenario(transport: "socket" | "fetch") {
  const stale = staleServer();
  const results: Record<string, unknown> = {};
  const caller = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async () => {
      const ok = await trigger(`${base}/ok?sig=secret`, {
        transport,
        wait: "accepted",
        json: { a: 1 },
      });
      const fail = await trigger(`${base}/fail`, {
        transport,
        wait: "accepted",
      });
      const refused = await trigger(`http://127.0.0.1:${deadPort()}/`, {
        transport,
        timeout: 5_000,
      });
      const sent = await trigger(`${base}/sent`, { transport, json: 1 });
      await Promise.all([ok.done, fail.done, refused.done, sent.done]);
      results.ok = ok.status;
      results.fail = fail.error?.code;
      results.refused = refused.error?.code;
      results.sent = (await sent.outcome).status;
      if (transport === "fetch") {
        // A fetch of the caller's own that never reaches Deno's fetch (an
        // app's handler, in process): the trace headers are ours to send.
        const custom = await trigger(`${base}/custom`, {
          transport,
          wait: "accepted",
          fetch: (input, init) =>
            Promise.resolve(targetRoute(new Request(input, init))),
        });
        results.custom = custom.status;
        // Deno's own fetch given as the option: it injects, not we.
        const global = await trigger(`${base}/global`, {
          transport,
          wait: "accepted",
          fetch,
        });
        results.global = global.status;
      }
      if (transport === "socket") {
        const explicit = await trigger(`${base}/explicit`, {
          transport,
          wait: "accepted",
          headers: {
            traceparent:
              "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
          },
        });
        await explicit.done;
        await closeIdleConnections();
        await (await trigger(stale.url, { wait: "accepted" })).done;
        const resent = await trigger(stale.url, { wait: "accepted" });
        await resent.done;
        results.resent = resent.status;
        // Two at once with room for one connection: the second waits in
        // the origin's queue, and its span says so.
        await closeIdleConnections();
        const queued = await Promise.all([
          trigger(`${base}/queued`, { wait: "accepted", maxConnections: 1 }),
          trigger(`${base}/queued`, { wait: "accepted", maxConnections: 1 }),
        ]);
        await Promise.all(queued.map((result) => result.done));
        results.queued = queued.map((result) => result.status);
      }
      return Response.json(results);
    },
  );
  const response = await fetch(`http://127.0.0.1:${caller.addr.port}/call`, {
    headers: { baggage: "tenant=acme" },
  });
  console.log(JSON.stringify({ results: await response.json(), received }));
  await closeIdleConnections();
  stale.close();
  await caller.shutdown();
}

/** Stores a trigger from inside a caller route, then delivers it: the
 * first attempt meets a 503, the retry a 200; then the same message again,
 * which the receiver reports as a duplicate. */
async function outboxScenario() {
  const url = Deno.env.get("TRIGGER_TEST_DATABASE_URL");
  const dir = url ? undefined : await Deno.makeTempDir();
  const queue = `otel_${crypto.randomUUID().slice(0, 8)}`;
  // On PostgreSQL the queue and its dead letters go when the scenario ends,
  // however it ends: the test database is shared by every run.
  await using _drop = {
    [Symbol.asyncDispose]: () => url ? dropQueue(queue) : Promise.resolve(),
  };
  const events: OutboxEvent[] = [];
  const delivered = Promise.withResolvers<void>();
  const outbox = await openOutbox({
    ...(url ? { connectionString: url, queue } : { dir }),
    sign: { secret },
    retry: { limit: 2, delay: 0, backoff: false },
    onEvent(event) {
      events.push(event);
      if (event.type === "delivered") delivered.resolve();
    },
  });
  let id = "";
  const caller = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async () => {
      ({ id } = await outbox.trigger(`${base}/hook`, { json: { n: 1 } }));
      return new Response(null, { status: 202 });
    },
  );
  await fetch(`http://127.0.0.1:${caller.addr.port}/enqueue`);
  await caller.shutdown();
  outbox.start({ pollInterval: 50 });
  const timer = setTimeout(
    () => delivered.reject(new Error("not delivered within 30 s")),
    30_000,
  );
  await delivered.promise.finally(() => clearTimeout(timer));
  await outbox.stop();
  // The same message again: a duplicate for verifyTrigger().
  const again = await trigger(`${base}/hook`, {
    wait: "accepted",
    json: { n: 1 },
    sign: { secret, id },
  });
  await again.done;
  // Unsigned: verifyTrigger() refuses it. And an early-acknowledged route.
  const unsigned = await trigger(`${base}/hook`, { wait: "accepted", json: 1 });
  await unsigned.done;
  const acked = await trigger(`${base}/ack`, { wait: "accepted", json: 1 });
  await acked.done;
  const ackFailed = await trigger(`${base}/ack-fail`, {
    wait: "accepted",
    json: 1,
  });
  await ackFailed.done;
  const limited = await trigger(`${base}/limited`, {
    wait: "accepted",
    json: 1,
  });
  await limited.done;
  // The background work ends after the 202: wait for its span to end.
  await new Promise((resolve) => setTimeout(resolve, 200));
  if (dir) await Deno.remove(dir, { recursive: true });
  console.log(JSON.stringify({
    received,
    events: events.map((e) => e.type),
    again: again.status,
    unsigned: unsigned.status,
    acked: acked.status,
    ackFailed: ackFailed.status,
    limited: limited.status,
  }));
}

/** A job stored by a caller without baggage, delivered by a dispatcher
 * started inside a request that carries some: the target must not get it. */
async function outboxBaggageScenario() {
  const url = Deno.env.get("TRIGGER_TEST_DATABASE_URL");
  const dir = url ? undefined : await Deno.makeTempDir();
  const queue = `otelb_${crypto.randomUUID().slice(0, 8)}`;
  await using _drop = {
    [Symbol.asyncDispose]: () => url ? dropQueue(queue) : Promise.resolve(),
  };
  const delivered = Promise.withResolvers<void>();
  const outbox = await openOutbox({
    ...(url ? { connectionString: url, queue } : { dir }),
    onEvent(event) {
      if (event.type === "delivered") delivered.resolve();
    },
  });
  await outbox.trigger(`${base}/bag`, { json: 1 });
  const starter = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => {
      outbox.start({ pollInterval: 50 });
      return new Response("started");
    },
  );
  await (await fetch(`http://127.0.0.1:${starter.addr.port}/`, {
    headers: { baggage: "tenant=acme,user=alice" },
  })).text();
  await starter.shutdown();
  const timer = setTimeout(
    () => delivered.reject(new Error("not delivered within 30 s")),
    30_000,
  );
  await delivered.promise.finally(() => clearTimeout(timer));
  await outbox.stop();
  if (dir) await Deno.remove(dir, { recursive: true });
  console.log(JSON.stringify({ received }));
}

if (Deno.args[0] === "trigger") {
  await triggerScenario(Deno.args[1] as "socket" | "fetch");
} else if (Deno.args[0] === "outbox") {
  await outboxScenario();
} else if (Deno.args[0] === "outbox-baggage") {
  await outboxBaggageScenario();
}
await target.shutdown();
