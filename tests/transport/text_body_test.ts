// Bodies given as text (form, json, a string) are encoded when sent: on a
// reused Deno connection straight into the buffer that connection keeps, on
// a fresh one (or a text too long for that buffer) into bytes of their own.
// Both ways must put the same bytes on the wire as fetch would: UTF-8, a
// lone surrogate as U+FFFD, and nothing left over from a longer request
// before. A raw server records every request's bytes.
import assert from "node:assert/strict";
import { closeIdleConnections, trigger } from "../../mod.ts";
import { within } from "../_wait.ts";

interface Recorded {
  conn: number;
  head: string;
  body: Uint8Array;
  /** The whole request, head and body. */
  bytes: Uint8Array;
}

/** A keep-alive server that answers 204 to each request and keeps its
 * bytes; `drop(i)` (i counts requests from 0) closes the connection instead
 * of answering that one. */
function recorder(drop: (i: number) => boolean = () => false) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const seen: Recorded[] = [];
  let connections = 0;
  const open = new Set<Deno.Conn>();
  const loop = (async () => {
    for await (const conn of listener) {
      const id = ++connections;
      open.add(conn);
      (async () => {
        let buffered = new Uint8Array(0);
        const chunk = new Uint8Array(64 * 1024);
        try {
          for (;;) {
            const n = await conn.read(chunk);
            if (n === null) return;
            const next = new Uint8Array(buffered.length + n);
            next.set(buffered);
            next.set(chunk.subarray(0, n), buffered.length);
            buffered = next;
            for (;;) {
              const text = String.fromCharCode(...buffered.subarray(0, 4096));
              const end = text.indexOf("\r\n\r\n");
              if (end < 0) break;
              const head = text.slice(0, end);
              const length = Number(
                /\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0,
              );
              const total = end + 4 + length;
              if (buffered.length < total) break;
              seen.push({
                conn: id,
                head,
                body: buffered.slice(end + 4, total),
                bytes: buffered.slice(0, total),
              });
              buffered = buffered.slice(total);
              if (drop(seen.length - 1)) return; // closed without answering
              await conn.write(
                new TextEncoder().encode(
                  "HTTP/1.1 204 No Content\r\nKeep-Alive: timeout=5\r\n\r\n",
                ),
              );
            }
          }
        } catch {
          // closed
        } finally {
          open.delete(conn);
          try {
            conn.close();
          } catch {
            // closed already
          }
        }
      })();
    }
  })().catch(() => {});
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    url: `http://127.0.0.1:${port}/text`,
    seen,
    connections: () => connections,
    async close() {
      listener.close();
      for (const conn of open) {
        try {
          conn.close();
        } catch {
          // closed already
        }
      }
      await loop;
    },
  };
}

const utf8 = (text: string) => new TextEncoder().encode(text);

Deno.test("text bodies on a reused connection go out byte for byte as on a fresh one: UTF-8, lone surrogates as U+FFFD, nothing left from a longer request before", async () => {
  const server = recorder();
  try {
    const form = { a: "x y", b: "é&=", c: "😀" };
    const cases: Array<
      { options: Parameters<typeof trigger>[1]; body: Uint8Array }
    > = [
      // The first goes on a fresh connection, the second reuses it.
      { options: { form }, body: utf8(new URLSearchParams(form).toString()) },
      { options: { form }, body: utf8(new URLSearchParams(form).toString()) },
      {
        options: { json: { s: "é😀", n: 1 } },
        body: utf8(JSON.stringify({ s: "é😀", n: 1 })),
      },
      {
        options: { body: "a\uD800b\uDC00c" },
        body: utf8("a\uFFFDb\uFFFDc"),
      },
      // Long enough to grow the connection's buffer; then a short one.
      { options: { body: "z".repeat(20_000) }, body: utf8("z".repeat(20_000)) },
      { options: { form: { k: "v" } }, body: utf8("k=v") },
      // Too long for the connection's buffer: bytes of its own.
      { options: { body: "é".repeat(30_000) }, body: utf8("é".repeat(30_000)) },
      // The caller's own headers: a head made for this request alone.
      {
        options: { form: { k: "w" }, headers: { "x-case": "own" } },
        body: utf8("k=w"),
      },
      { options: { json: [] }, body: utf8("[]") },
      {
        options: { body: new URLSearchParams({ q: "a b&c", r: "é" }) },
        body: utf8("q=a+b%26c&r=%C3%A9"),
      },
    ];
    for (const [i, { options, body }] of cases.entries()) {
      const result = await trigger(server.url, {
        ...options,
        wait: "accepted",
      });
      assert.equal(result.ok, true, `${i}: ${result.error?.message}`);
      await within(result.done, `case ${i}: trigger()'s done`);
      const got = server.seen[i];
      assert.ok(got, `case ${i} reached the server`);
      assert.ok(
        got.head.startsWith("POST /text HTTP/1.1\r\n"),
        `case ${i}: the request line: ${JSON.stringify(got.head.slice(0, 30))}`,
      );
      assert.deepEqual(got.body, body, `case ${i}: the body's bytes`);
      assert.match(
        got.head,
        new RegExp(`\\r\\nContent-Length: ${body.length}(\\r\\n|$)`),
        `case ${i}: ${got.head}`,
      );
    }
    assert.equal(server.connections(), 1, "all on one reused connection");
    assert.deepEqual(
      server.seen[1].bytes,
      server.seen[0].bytes,
      "the same form, fresh and reused: the same request",
    );
    assert.match(server.seen[7].head, /\r\nx-case: own\r\n/);
    assert.match(
      server.seen[9].head,
      /\r\nContent-Type: application\/x-www-form-urlencoded;charset=UTF-8\r\n/,
    );
  } finally {
    await closeIdleConnections();
    await server.close();
  }
});

Deno.test("a text request a reused connection dropped goes again byte for byte on a fresh one (its bytes live in the old connection's buffer)", async () => {
  // The third request (the second on the first connection) is dropped: it
  // was written from that connection's buffer, and is sent again.
  const server = recorder((i) => i === 2);
  try {
    const bodies: Array<Parameters<typeof trigger>[1]> = [
      { form: { first: "é".repeat(700) } },
      { json: { second: "x".repeat(900) } },
      { body: "third 😀 ".repeat(50) },
      { form: { fourth: "y" } },
    ];
    for (const [i, options] of bodies.entries()) {
      const result = await trigger(server.url, {
        ...options,
        wait: "accepted",
      });
      assert.equal(result.ok, true, `${i}: ${result.error?.message}`);
      await within(result.done, `request ${i}: trigger()'s done`);
    }
    const seen = server.seen;
    assert.equal(seen.length, 5, "four requests, one of them twice");
    assert.equal(seen[2].conn, 1, "dropped on the reused connection");
    assert.equal(seen[3].conn, 2, "sent again on a fresh one");
    assert.deepEqual(seen[3].bytes, seen[2].bytes, "the same bytes again");
    assert.deepEqual(seen[3].body, utf8("third 😀 ".repeat(50)));
    assert.deepEqual(seen[4].body, utf8("fourth=y"));
  } finally {
    await closeIdleConnections();
    await server.close();
  }
});
