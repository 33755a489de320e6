// A 429 or 503 that says when to come back (`Retry-After`, RFC 9110
// §10.2.3): the trigger's error carries the wait, over the socket and over
// fetch, whether the head comes whole or its status line first. The outbox
// retries no sooner (tests/durable/retry_after_test.ts).
import assert from "node:assert/strict";
import { trigger } from "../../mod.ts";
import type * as net from "node:net";
import { retryAfterMs } from "../../src/transport/_retry_after.ts";
import { netServer } from "../_servers.ts";

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
  // The two obsolete forms, in UTC whatever the local zone (Date.parse
  // read an asctime date as local time).
  assert.equal(
    retryAfterMs("Wednesday, 21-Oct-26 07:28:00 GMT", at - 4_000),
    4_000,
  );
  assert.equal(retryAfterMs("Wed Oct 21 07:28:00 2026", at - 5_000), 5_000);
  const first = Date.UTC(2026, 9, 1, 7, 28, 0);
  assert.equal(retryAfterMs("Thu Oct  1 07:28:00 2026", first - 6_000), 6_000);
  // A two-digit year more than 50 years ahead is in the past century.
  const now = Date.UTC(2026, 0, 1);
  assert.equal(retryAfterMs("Sunday, 06-Nov-94 08:49:37 GMT", now), 0);
  assert.equal(
    retryAfterMs("Tuesday, 06-Nov-74 08:49:37 GMT", now),
    Date.UTC(2074, 10, 6, 8, 49, 37) - now,
  );
  // At a century's end, 00 is the next one's (2100), not 2000.
  const late = Date.UTC(2099, 11, 31, 23, 59, 0);
  assert.equal(retryAfterMs("Friday, 01-Jan-00 00:00:00 GMT", late), 60_000);
  const in2060 = Date.UTC(2060, 0, 1);
  assert.equal(
    retryAfterMs("Monday, 05-Jan-05 00:00:00 GMT", in2060),
    Date.UTC(2105, 0, 5) - in2060,
  );
  // 29 February only in a leap year; a leap second is the second before.
  assert.equal(
    retryAfterMs("Tue, 29 Feb 2028 00:00:00 GMT", Date.UTC(2028, 1, 28)),
    86_400_000,
  );
  assert.equal(retryAfterMs("Sat, 29 Feb 2027 00:00:00 GMT", 0), undefined);
  assert.equal(
    retryAfterMs("Thu, 31 Dec 2026 23:59:60 GMT", Date.UTC(2026, 11, 31, 23)),
    3_599_000,
  );
  // Digits past what a number holds exactly: the most there is.
  assert.equal(retryAfterMs("9".repeat(30)), Number.MAX_SAFE_INTEGER);
  for (
    const value of [
      "-5",
      "+5",
      "1.5",
      "5, 5",
      "soon",
      "",
      "1e3",
      "0x10",
      null,
      undefined,
      "Wed, 21 Oct 2026 07:28:00 GMT junk", // Date.parse: 21 June
      "Wed, 21 Oct 2026 07:28:00 GMT, 5", // a list
      "Tomorrow, 5",
      "Retry in 5",
      "Wed, 31 Feb 2026 07:28:00 GMT", // no such day
      "Wed, 21 Oct 2026 25:28:00 GMT",
      "Wed, 21 Oct 2026 07:28:00 PST",
      "Wed, 21 Oct 2026 07:28:00",
    ]
  ) {
    assert.equal(retryAfterMs(value), undefined, String(value));
  }
});

/**
 * A raw HTTP/1.1 server answering each request with `parts` (written one
 * after another, `gap` ms apart), then ending the connection.
 */
async function rawServer(parts: string[], gap = 0) {
  const sockets = new Set<net.Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const server = await netServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    let head = "";
    socket.on("data", (chunk: Uint8Array) => {
      if (head.includes("\r\n\r\n")) return;
      head += new TextDecoder("latin1").decode(chunk);
      if (!head.includes("\r\n\r\n")) return;
      const write = (i: number) => {
        if (socket.destroyed) return;
        if (i === parts.length) return void socket.end();
        socket.write(parts[i]);
        if (gap === 0) return write(i + 1);
        const timer = setTimeout(() => {
          timers.delete(timer);
          write(i + 1);
        }, gap);
        timers.add(timer);
      };
      write(0);
    });
  });
  return {
    url: `http://127.0.0.1:${server.port}/hook`,
    async close() {
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      await server.close();
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
      // Two fields are a list (fetch's Headers joins them): no wait.
      [
        "429 Too Many Requests",
        ["Retry-After: 5", "Retry-After: 7"],
        (ms) => ms === undefined,
      ],
    ];
    for (const [status, fields, expected] of cases) {
      const server = await rawServer([head(status, ...fields)]);
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
  const server = await rawServer([
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
  const server = await rawServer([
    "HTTP/1.1 503 Service Unavailable\r\nRetry-",
  ]);
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

Deno.test("trigger() (socket): a 429 or 503 whose head stalls or grows too long is still that status, no wait known (not TIMEOUT or PROTOCOL)", async () => {
  const cases: Array<[string, string, number]> = [
    // The line and the wait, then nothing until the trigger's timeout.
    ["stalled", "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n", 429],
    // A head past the 64 KiB limit.
    [
      "too long",
      `HTTP/1.1 503 Service Unavailable\r\nx-pad: ${
        "a".repeat(70_000)
      }\r\nRetry-After: 3\r\n\r\n`,
      503,
    ],
  ];
  for (const [what, part, status] of cases) {
    // Held open after the part (a last write 10 s on, never reached).
    const server = await rawServer([part, ""], 10_000);
    try {
      for (const wait of ["accepted", "sent"] as const) {
        const result = await trigger(server.url, {
          wait,
          transport: "socket",
          timeout: 500,
        });
        const outcome = await result.outcome;
        assert.equal(outcome.status, status, `${what}, ${wait}`);
        assert.equal(outcome.error?.code, "HTTP_STATUS", `${what}, ${wait}`);
        assert.equal(outcome.error?.retryAfter, undefined, `${what}, ${wait}`);
        if (wait === "accepted") assert.equal(result.status, status);
      }
      // The caller's abort, not the timeout, ends the wait: the same.
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 300);
      const aborted = await trigger(server.url, {
        wait: "accepted",
        transport: "socket",
        signal: controller.signal,
      });
      assert.equal(aborted.status, status, `${what}, aborted`);
      assert.equal(aborted.error?.code, "HTTP_STATUS", `${what}, aborted`);
    } finally {
      await server.close();
    }
  }
});
