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

Deno.test("a stray response in the same write as an answer that fills a read exactly: the connection is not reused, no later trigger gets the answer before its own", async () => {
  // Each request /N is answered with status 220 + N in a response of
  // exactly `size` bytes; the first one's write also carries a stray 299.
  for (const size of [1024, 2048, 1000]) {
    let served = 0;
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const serving = (async () => {
      for await (const conn of listener) {
        (async () => {
          const buffer = new Uint8Array(64 * 1024);
          let text = "";
          while (true) {
            const n = await conn.read(buffer);
            if (n === null) break;
            text += new TextDecoder().decode(buffer.subarray(0, n));
            let end;
            while ((end = text.indexOf("\r\n\r\n")) >= 0) {
              const id = Number(/ \/(\d+) /.exec(text.slice(0, end))![1]);
              text = text.slice(end + 4);
              const start = `HTTP/1.1 ${220 + id} OK\r\nContent-Length: `;
              const length = size - `${start}0000\r\n\r\n`.length;
              let answer = `${start}${String(length).padStart(4, "0")}\r\n\r\n${
                "b".repeat(length)
              }`;
              if (served++ === 0) {
                answer += "HTTP/1.1 299 Stray\r\nContent-Length: 0\r\n\r\n";
              }
              await conn.write(encoder.encode(answer));
            }
          }
        })().catch(() => {}).finally(() => conn.close());
      }
    })().catch(() => {});
    try {
      const origin = `http://127.0.0.1:${listener.addr.port}`;
      for (let id = 0; id < 4; id++) {
        const result = await trigger(`${origin}/${id}`, { wait: "accepted" });
        await result.done;
        assert.equal(result.status, 220 + id, `${size} bytes, request ${id}`);
      }
    } finally {
      await closeIdleConnections();
      listener.close();
      await serving;
    }
  }
});

Deno.test("an answer that ends where a read filled its buffer, nothing after it: its connection is still reused, on a waiter's or the pool's", async () => {
  // Head, then (a moment later, a read of its own) a body of exactly 1 KiB
  // or 4 KiB: the last read fills the buffer.
  let connections = 0;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of listener) {
      connections++;
      (async () => {
        const buffer = new Uint8Array(64 * 1024);
        let text = "";
        while (true) {
          const n = await conn.read(buffer);
          if (n === null) break;
          text += new TextDecoder().decode(buffer.subarray(0, n));
          let end;
          while ((end = text.indexOf("\r\n\r\n")) >= 0) {
            const size = / \/(\d+) /.exec(text.slice(0, end))![1];
            text = text.slice(end + 4);
            await conn.write(
              encoder.encode(
                `HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`,
              ),
            );
            await new Promise((resolve) => setTimeout(resolve, 5));
            await conn.write(new Uint8Array(Number(size)).fill(98));
          }
        }
      })().catch(() => {}).finally(() => conn.close());
    }
  })().catch(() => {});
  try {
    const origin = `http://127.0.0.1:${listener.addr.port}`;
    for (const size of [1024, 4096]) {
      // One after the other: each takes the idle connection from the pool.
      for (let i = 0; i < 3; i++) {
        const result = await trigger(`${origin}/${size}`, { wait: "accepted" });
        await result.done;
        assert.equal((await result.outcome).status, 200);
      }
      // Three at once on one connection: each goes to the next in line.
      const results = await Promise.all(
        [0, 1, 2].map(() =>
          trigger(`${origin}/${size}`, { maxConnections: 1, wait: "accepted" })
        ),
      );
      for (const result of results) {
        assert.equal((await result.outcome).status, 200);
      }
    }
    assert.equal(connections, 1);
  } finally {
    await closeIdleConnections();
    listener.close();
    await serving;
  }
});
