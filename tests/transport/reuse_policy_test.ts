// The reuse policy (what the pool learns of an origin's unannounced closes)
// and the read bound (every response byte counts against 1 MB).
import assert from "node:assert/strict";
import { closeIdleConnections, trigger } from "../../mod.ts";
import {
  IDLE_TIMEOUT_MS,
  MAX_IDLE_TIMEOUT_MS,
} from "../../src/transport/_pool.ts";
import { MAX_DRAIN_BYTES } from "../../src/transport/_response.ts";
import { misbehaving } from "../_servers.ts";
import { lossBody, rawClosingTarget } from "../_stale_servers.ts";
import { within } from "../_wait.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const encoder = new TextEncoder();

Deno.test("an unannounced idle timeout is learned: connections idle past 3/4 of it are not reused", async () => {
  await closeIdleConnections();
  const target = rawClosingTarget({ idleMs: 300 });
  try {
    const send = async (id: string) => {
      const result = await trigger(target.url, { body: lossBody(id) });
      assert.equal((await result.outcome).ok, true);
    };
    await send("a"); // connection 1
    await sleep(400); // the server closes it at 300 ms; the pool sees it
    await send("b"); // connection 2: nothing idle
    await sleep(260); // past the learned 225 ms: dropped before reuse
    await send("c"); // connection 3
    await sleep(50); // well within it
    await send("d"); // reuses connection 3
    assert.deepEqual(target.connections, [1, 2, 3, 3]);
    assert.ok(IDLE_TIMEOUT_MS < 2_000, "below gunicorn's 2 s by default");
  } finally {
    await closeIdleConnections();
    const received = await target.stop();
    assert.equal(received.size, 4);
  }
});

Deno.test("an origin that closes right after each response is sent Connection: close", async () => {
  await closeIdleConnections();
  const target = rawClosingTarget({ closeAfterMs: [1, 3] });
  try {
    for (let i = 0; i < 6; i++) {
      const result = await trigger(target.url, { body: lossBody(`c${i}`) });
      assert.equal((await result.outcome).ok, true);
      await sleep(20); // the server's close arrives while idle
    }
    const closing = target.heads.map((head) =>
      /\r\nConnection: close(\r\n|$)/.test(head)
    );
    assert.equal(closing[0], false, "keep-alive is offered at first");
    assert.equal(closing.at(-1), true, "then no longer");
    assert.equal(new Set(target.connections).size, target.connections.length);
  } finally {
    await closeIdleConnections();
    await target.stop();
  }
});

/** A server answering 200 with a chunked body whose framing never ends:
 * `framing(i)` is the i-th line it sends after the head. */
function endless(framing: (i: number) => string) {
  let written = 0;
  const server = misbehaving(async (conn) => {
    const buffer = new Uint8Array(4096);
    await conn.read(buffer);
    await conn.write(encoder.encode(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    ));
    for (let i = 0; i < 1_000_000; i++) {
      const bytes = encoder.encode(framing(i));
      await conn.write(bytes); // fails once the client closes
      written += bytes.length;
    }
  });
  return { server, written: () => written };
}

Deno.test("chunk extensions and trailers count against the 1 MB read bound: reading stops past it", async () => {
  const cases: Array<[string, (i: number) => string]> = [
    ["chunk extensions", () => `1;ext=${"e".repeat(4000)}\r\nx\r\n`],
    ["trailers", (i) => (i === 0 ? "0\r\n" : `x-t: ${"t".repeat(4000)}\r\n`)],
  ];
  for (const [name, framing] of cases) {
    const { server, written } = endless(framing);
    try {
      const result = await trigger(server.origin + "/", {
        wait: "accepted",
        timeout: 20_000,
      });
      assert.equal(result.status, 200, name);
      await within(result.done, `${name}: the read stops`, 10_000);
      assert.equal((await result.outcome).status, 200);
      await sleep(100);
      // What the server wrote before the close: the bound, plus what the
      // kernel's socket buffers held.
      assert.ok(
        written() < MAX_DRAIN_BYTES + 8 * 1024 * 1024,
        `${name}: ${written()} bytes written`,
      );
    } finally {
      await closeIdleConnections();
      await server.close();
    }
  }
});

Deno.test("idle connections that last their whole keep time teach that the origin tolerates it: a sporadic sender reuses again", async () => {
  await closeIdleConnections();
  const target = rawClosingTarget({}); // never closes an idle connection
  try {
    const send = async (id: string) => {
      const result = await trigger(target.url, { body: lossBody(id) });
      assert.equal((await result.outcome).ok, true);
    };
    await send("a"); // connection 1, kept 4 s, reused up to 1.5 s
    await sleep(IDLE_TIMEOUT_MS + 150);
    await send("b"); // connection 2: 1 was idle too long to trust
    // Connection 1 lasts its 4 s: the origin tolerates 4 s of idle.
    await sleep(MAX_IDLE_TIMEOUT_MS - IDLE_TIMEOUT_MS + 600);
    await send("c"); // reuses connection 2, idle for about 3.1 s
    assert.deepEqual(target.connections, [1, 2, 2]);
  } finally {
    await closeIdleConnections();
    await target.stop();
  }
});
