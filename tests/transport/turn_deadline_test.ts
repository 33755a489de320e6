// A request whose time ran out while it waited for a connection (the
// per-origin cap) and that is handed one before its own timer ran (a
// process thawed after a freeze reads its sockets before it runs its overdue
// timers): the socket transport gives the place back and writes nothing.
// The transport is called directly, its trigger's clock started long ago and
// no timer of its own, so the hand-over always comes first.
import assert from "node:assert/strict";
import { trigger } from "../../mod.ts";
import { prepare } from "../../src/trigger/_request.ts";
import { sendOverSocket } from "../../src/transport/_socket.ts";
import {
  closeIdleConnections,
  idleConnectionCount,
} from "../../src/transport/_pool.ts";
import { TriggerError } from "../../src/trigger/errors.ts";
import { until } from "../_wait.ts";

Deno.test("a request handed a connection after its time ran out while it waited is TIMEOUT, never written, and the connection goes back to the pool", async () => {
  const received: string[] = [];
  const { promise: answer, resolve: release } = Promise.withResolvers<void>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      received.push(new URL(request.url).pathname);
      await answer;
      return new Response(null, { status: 202 });
    },
  );
  const origin = `http://127.0.0.1:${server.addr.port}`;
  try {
    // The only place (maxConnections: 1), held until the server answers.
    const first = trigger(`${origin}/first`, {
      wait: "accepted",
      maxConnections: 1,
      timeout: 10_000,
    });
    await until(() => received.length === 1, "the first request received");
    const req = prepare(`${origin}/late`, {
      transport: "socket",
      wait: "accepted",
      maxConnections: 1,
      timeout: 1_000,
    });
    const late = sendOverSocket(req, new AbortController().signal, {
      start: performance.now() - 5_000,
      onSent() {
        throw new Error("the late request was written");
      },
      onStatus() {},
    }).then(() => undefined, (error: unknown) => error);
    release();
    const result = await first;
    assert.equal(result.ok, true, String(result.error));
    await result.done;
    const error = await late;
    assert.ok(error instanceof TriggerError, String(error));
    assert.equal(error.code, "TIMEOUT");
    assert.match(error.message, /waiting for a connection/);
    assert.deepEqual(received, ["/first"]);
    // The first request's connection, given back: idle in the pool.
    await until(() => idleConnectionCount() === 1, "the connection kept");
  } finally {
    release();
    await closeIdleConnections();
    await server.shutdown();
  }
});
