// Empty lines before a status line (a stray CR LF a server wrote after its
// previous answer) are skipped, as fetch skips them: before, the trigger
// failed with PROTOCOL though the server had answered.
import assert from "node:assert/strict";
import { closeIdleConnections, trigger } from "../../mod.ts";

const encoder = new TextEncoder();

/** A raw server: each request on a connection gets `answers[n]` (n counts
 * the connection's requests); past the list, the connection is closed. */
function rawServer(answers: string[]) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const serving = (async () => {
    for await (const conn of listener) {
      connections++;
      (async () => {
        const buffer = new Uint8Array(16 * 1024);
        for (const answer of [...answers, null]) {
          let head = "";
          while (!head.includes("\r\n\r\n")) {
            const n = await conn.read(buffer).catch(() => null);
            if (n === null) return conn.close();
            head += new TextDecoder().decode(buffer.subarray(0, n));
          }
          if (answer === null) return conn.close();
          await conn.write(encoder.encode(answer));
          if (answer.endsWith("\r\n") && !answer.includes("HTTP/")) {
            return conn.close(); // only the stray line, then gone
          }
        }
      })().catch(() => {});
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${listener.addr.port}/`,
    connections: () => connections,
    async close() {
      listener.close();
      await serving;
    },
  };
}

Deno.test("a stray CR LF before the status line: the answer is taken, fresh or reused, in both wait modes", async () => {
  for (const wait of ["sent", "accepted"] as const) {
    const server = rawServer([
      "\r\nHTTP/1.1 204 No Content\r\n\r\n",
      "\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
    ]);
    try {
      const first = await trigger(server.url, { wait });
      assert.equal(first.ok, true, first.error?.message);
      assert.equal((await first.outcome).status, 204);
      await first.done;
      const second = await trigger(server.url, { wait });
      assert.equal(second.ok, true, second.error?.message);
      const outcome = await second.outcome;
      assert.equal(outcome.ok, true, outcome.error?.message);
      assert.equal(outcome.status, 201);
      await second.done;
      assert.equal(server.connections(), 1); // the second one reused it
    } finally {
      await closeIdleConnections();
      await server.close();
    }
  }
});

Deno.test("a reused connection that sends only a stray CR LF and closes is stale: the request goes again on a fresh one", async () => {
  const server = rawServer(["HTTP/1.1 204 No Content\r\n\r\n", "\r\n"]);
  try {
    const first = await trigger(server.url, { wait: "accepted" });
    assert.equal(first.status, 204);
    await first.done;
    const second = await trigger(server.url, { wait: "accepted" });
    assert.equal(second.ok, true, second.error?.message);
    assert.equal(second.status, 204);
    await second.done;
    assert.equal(server.connections(), 2);
  } finally {
    await closeIdleConnections();
    await server.close();
  }
});
