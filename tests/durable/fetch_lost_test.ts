// A fetch whose connection is lost after PostgreSQL ran it: what a pooler
// restart (PgBouncer, or any pooler) or a dropped network path does while pg-boss's
// fetch statement is under way. The statement claims its jobs on the server;
// the client never sees them. A proxy between the outbox and PostgreSQL cuts
// exactly that connection, as the fetch's answer comes back.
import assert from "node:assert/strict";
import { openOutbox, type OutboxEvent } from "../../src/durable/mod.ts";
import { skipUnless } from "../_env.ts";
import { until } from "../_wait.ts";
import { DATABASE_URL, dropQueue } from "./_seed.ts";

/** pg-boss's fetch statement (plans.fetchNextJob), as the proxy sees it. */
const FETCH_MARK = new TextEncoder().encode("FOR UPDATE OF j SKIP LOCKED");

function includes(chunk: Uint8Array, mark: Uint8Array): boolean {
  outer: for (let i = 0; i + mark.length <= chunk.length; i++) {
    for (let j = 0; j < mark.length; j++) {
      if (chunk[i + j] !== mark[j]) continue outer;
    }
    return true;
  }
  return false;
}

/**
 * A TCP proxy to `upstream` that, once armed, lets the next fetch statement
 * through and then closes that connection (both sides) when the server's
 * answer arrives, dropping the answer.
 */
function cuttingProxy(upstream: URL) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let armed = false;
  let cuts = 0;
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const client of listener) {
      conns.add(client);
      const server = await Deno.connect({
        hostname: upstream.hostname,
        port: Number(upstream.port || 5432),
      }).catch(() => undefined);
      if (server === undefined) {
        client.close();
        continue;
      }
      conns.add(server);
      let cutOnAnswer = false;
      const close = () => {
        for (const conn of [client, server]) {
          conns.delete(conn);
          try {
            conn.close();
          } catch {
            // closed already
          }
        }
      };
      const pump = async (
        from: Deno.Conn,
        to: Deno.Conn,
        toServer: boolean,
      ) => {
        const buffer = new Uint8Array(64 * 1024);
        try {
          for (;;) {
            const n = await from.read(buffer);
            if (n === null) break;
            const chunk = buffer.subarray(0, n);
            if (!toServer && cutOnAnswer) {
              cuts++;
              break; // the answer is dropped, the connection cut
            }
            if (toServer && armed && includes(chunk, FETCH_MARK)) {
              armed = false;
              cutOnAnswer = true;
            }
            let written = 0;
            while (written < n) {
              written += await to.write(chunk.subarray(written));
            }
          }
        } catch {
          // The other side closed.
        }
        close();
      };
      pump(client, server, true);
      pump(server, client, false);
    }
  })().catch(() => {});
  const url = new URL(upstream);
  url.hostname = "127.0.0.1";
  url.port = String((listener.addr as Deno.NetAddr).port);
  return {
    url: url.href,
    arm() {
      armed = true;
    },
    cuts: () => cuts,
    close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // closed already
        }
      }
    },
  };
}

Deno.test({
  name:
    "a fetch whose connection is lost after PostgreSQL ran it claims nothing: its jobs are delivered at once, none left to lapse into a retry or (retry.limit: 0) an EXPIRED dead letter",
  ignore: skipUnless(
    DATABASE_URL !== undefined,
    "TRIGGER_TEST_DATABASE_URL is not set (bash .ci/postgres.sh)",
  ),
  async fn() {
    const hits = new Map<string, number>();
    const target = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (request) => {
        await request.arrayBuffer();
        const id = request.headers.get("webhook-id") ?? "";
        hits.set(id, (hits.get(id) ?? 0) + 1);
        return new Response(null, { status: 200 });
      },
    );
    const proxy = cuttingProxy(new URL(DATABASE_URL!));
    const queue = `fetch_lost_${Date.now()}`;
    const events: OutboxEvent[] = [];
    const outbox = await openOutbox({
      connectionString: proxy.url,
      queue,
      retry: { limit: 0 },
      onEvent: (event) => void events.push(event),
    });
    try {
      const jobs = 24;
      const ids: string[] = [];
      for (let i = 0; i < jobs; i++) {
        ids.push(
          (await outbox.trigger(
            `http://127.0.0.1:${target.addr.port}/job`,
            { json: { i } },
          )).id,
        );
      }
      proxy.arm();
      outbox.start({ concurrency: 4 });
      await until(() => proxy.cuts() === 1, "the fetch's connection cut");
      // Before, the cut fetch's jobs stayed active until their lease lapsed
      // (10–12 s), then went to the dead letters unattempted.
      let stats = await outbox.stats();
      await until(
        async () => {
          stats = await outbox.stats();
          return stats.queued === 0 && stats.active === 0;
        },
        "every job delivered or dead-lettered",
        {
          timeout: 45_000,
          interval: 100,
        },
      );
      assert.equal(stats.dead, 0, "no dead letters");
      assert.equal(stats.delivered, jobs);
      for (const id of ids) assert.equal(hits.get(id), 1, id);
      assert.ok(
        events.some((e) => e.type === "error"),
        "the lost fetch was reported",
      );
    } finally {
      await outbox.stop().catch(() => {});
      proxy.close();
      await target.shutdown();
      await dropQueue(queue);
    }
  },
});
