// A 429 or 503 that says when to come back (`Retry-After`, RFC 9110
// §10.2.3): the trigger's error carries the wait, over the socket and over
// fetch, whether the head comes whole or its status line first. The outbox
// retries no sooner (tests/durable/retry_after_test.ts).
import assert from "node:assert/strict";
import { trigger } from "../../mod.ts";
import { retryAfterMs } from "../../src/transport/_retry_after.ts";

Deno.test("retryAfterMs(): delay-seconds and HTTP-dates as RFC 9110 writes them; anything else is no wait", () => {
  assert.equal(retryAfterMs("120"), 120_000);
  assert.equal(retryAfterMs(" 5 "), 5_000);
  assert.equal(retryAfterMs("0"), 0);
  const at = Date.parse("Wed, 21 Oct 2026 07:28:00 GMT");
  assert.equal(
    retryAfterMs("Wed, 21 Oct 2026 07:28:00 GMT", at - 3_000),
    3_000,
  );
  assert.equal(retryAfterMs("Wed, 21 Oct 2026 07:28:00 GMT", at + 60_000), 0);
  for (const value of ["-5", "1.5", "5, 5", "soon", "", "1e3", "0x10", null]) {
    assert.equal(retryAfterMs(value), undefined, String(value));
  }
});

/**
 * A raw HTTP/1.1 server answering each request with `parts` (written one
 * after another, `gap` ms apart), then closing.
 */
function rawServer(parts: string[], gap = 0) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const served = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        try {
          const buffer = new Uint8Array(8192);
          let head = "";
          while (!head.includes("\r\n\r\n")) {
            const n = await conn.read(buffer);
            if (n === null) return;
            head += new TextDecoder().decode(buffer.subarray(0, n));
          }
          for (const [i, part] of parts.entries()) {
            if (i > 0 && gap > 0) {
              await new Promise((resolve) => setTimeout(resolve, gap));
            }
            await conn.write(new TextEncoder().encode(part));
          }
        } catch {
          // The trigger went away.
        } finally {
          conns.delete(conn);
          try {
            conn.close();
          } catch {
            // closed already
          }
        }
      })();
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/hook`,
    async close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // closed already
        }
      }
      await served;
    },
  };
}

const head = (status: string, ...fields: string[]) =>
  `HTTP/1.1 ${status}\r\n${
    fields.map((f) => `${f}\r\n`).join("")
  }content-length: 0\r\nconnection: close\r\n\r\n`;

for (const transport of ["socket", "fetch"] as const) {
  Deno.test(`trigger() (${transport}): a 429 or 503's Retry-After is the error's retryAfter, in ms; other statuses and unusable values carry none`, async () => {
    const inAMinute = new Date(Date.now() + 60_000).toUTCString();
    const cases: Array<[string, string[], (ms?: number) => boolean]> = [
      ["429 Too Many Requests", ["Retry-After: 7"], (ms) => ms === 7_000],
      [
        "503 Service Unavailable",
        [`retry-after: ${inAMinute}`],
        (ms) => ms !== undefined && ms > 50_000 && ms <= 60_000,
      ],
      ["429 Too Many Requests", [], (ms) => ms === undefined],
      [
        "429 Too Many Requests",
        ["Retry-After: soon"],
        (ms) => ms === undefined,
      ],
      [
        "500 Internal Server Error",
        ["Retry-After: 7"],
        (ms) => ms === undefined,
      ],
      [
        "301 Moved Permanently",
        ["Retry-After: 7", "location: /x"],
        (ms) => ms === undefined,
      ],
    ];
    for (const [status, fields, expected] of cases) {
      const server = rawServer([head(status, ...fields)]);
      try {
        const result = await trigger(server.url, {
          wait: "accepted",
          transport,
          timeout: 5_000,
        });
        await result.done;
        const what = `${status} ${fields.join(" ")}`;
        assert.equal(result.ok, false, what);
        assert.equal(result.error?.code, "HTTP_STATUS", what);
        assert.equal(result.status, Number(status.slice(0, 3)), what);
        assert.ok(
          expected(result.error?.retryAfter),
          `${what}: retryAfter ${result.error?.retryAfter}`,
        );
        const outcome = await result.outcome;
        assert.equal(outcome.error?.retryAfter, result.error?.retryAfter);
      } finally {
        await server.close();
      }
    }
  });
}

Deno.test("trigger() (socket): a 429 whose status line comes before the rest of its head is told with the head, its Retry-After read (at the line, the wait was unknown)", async () => {
  const server = rawServer([
    "HTTP/1.1 429 Too Many Requests\r\n",
    "Retry-After: 3\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
  ], 100);
  try {
    for (const wait of ["accepted", "sent"] as const) {
      const result = await trigger(server.url, {
        wait,
        transport: "socket",
        timeout: 5_000,
      });
      const outcome = await result.outcome;
      assert.equal(outcome.status, 429, wait);
      assert.equal(outcome.error?.retryAfter, 3_000, wait);
      if (wait === "accepted") assert.equal(result.error?.retryAfter, 3_000);
    }
  } finally {
    await server.close();
  }
});

Deno.test("trigger() (socket): a 503 whose head never ends is still its status once the server closes (no wait known)", async () => {
  const server = rawServer(["HTTP/1.1 503 Service Unavailable\r\nRetry-"]);
  try {
    const result = await trigger(server.url, {
      wait: "accepted",
      transport: "socket",
      timeout: 5_000,
    });
    assert.equal(result.status, 503);
    assert.equal(result.error?.code, "HTTP_STATUS");
    assert.equal(result.error?.retryAfter, undefined);
  } finally {
    await server.close();
  }
});
