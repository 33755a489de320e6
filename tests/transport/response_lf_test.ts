// Response heads whose lines end with a bare LF (RFC 9112 §2.2: a recipient
// may take a LF alone as a line's end and ignore a CR before it), and a
// status line the connection is reset right after.
import assert from "node:assert/strict";
import { closeIdleConnections, trigger } from "../../mod.ts";
import { latin1 } from "../../src/transport/_http1.ts";
import {
  ResponseProtocolError,
  ResponseReader,
} from "../../src/transport/_response.ts";
import { netServer, rawKeepAlive } from "../_servers.ts";
import { within } from "../_wait.ts";

/** What a reader made of `text` fed in the pieces `at` cuts it into. */
function read(text: string, at: number[] = [], method = "GET") {
  const bytes = latin1(text);
  const reader = new ResponseReader(method);
  let from = 0;
  for (const to of [...at, bytes.length]) {
    reader.push(bytes.subarray(from, to));
    from = to;
  }
  return {
    status: reader.status,
    keepAlive: reader.keepAlive,
    complete: reader.complete,
    reusable: reader.reusable,
    giveUp: reader.giveUp,
    keepAliveMs: reader.keepAliveMs,
  };
}

/** Every way to cut `text` in two, and byte by byte. */
function cuts(text: string): number[][] {
  const all = [];
  for (let at = 1; at < text.length; at++) all.push([at]);
  all.push(Array.from({ length: text.length - 1 }, (_, i) => i + 1));
  return all;
}

// A head with lines ended both ways is read, but its connection is not
// reused: a bare LF inside a CRLF server's answer may be an injected header
// (it would end the head early and leave the rest for the next request).
const HEADS: Array<
  [string, { status: number; reusable: boolean; keepAliveMs?: number }]
> = [
  ["HTTP/1.1 202 Accepted\nContent-Length: 0\n\n", {
    status: 202,
    reusable: true,
  }],
  ["HTTP/1.1 204 No Content\n\n", { status: 204, reusable: true }],
  ["HTTP/1.1 200 OK\r\nContent-Length: 2\n\r\nok", {
    status: 200,
    reusable: false,
  }],
  ["HTTP/1.1 200 OK\nConnection: close\r\nContent-Length: 0\r\n\n", {
    status: 200,
    reusable: false,
  }],
  ["HTTP/1.1 204 No Content\nKeep-Alive: timeout=7\n\r\n", {
    status: 204,
    reusable: false,
    keepAliveMs: 7_000,
  }],
  ["HTTP/1.1 204 No Content\nKeep-Alive: timeout=7\n\n", {
    status: 204,
    reusable: true,
    keepAliveMs: 7_000,
  }],
  ["HTTP/1.1 100 Continue\n\nHTTP/1.1 201 Created\r\nContent-Length: 1\n\nx", {
    status: 201,
    reusable: false,
  }],
  ["HTTP/1.1 100 Continue\n\nHTTP/1.1 201 Created\nContent-Length: 1\n\nx", {
    status: 201,
    reusable: true,
  }],
  // Interim heads and chunk lines count too.
  [
    "HTTP/1.1 103 Early Hints\r\nLink: </a>\n\r\nHTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
    { status: 500, reusable: false },
  ],
  [
    "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
    { status: 500, reusable: true },
  ],
  [
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\nX: y\r\n\r\n",
    { status: 200, reusable: false },
  ],
  [
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n\r\n",
    { status: 200, reusable: true },
  ],
  [
    "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\nX-Trailer: t\n\n",
    { status: 200, reusable: true },
  ],
  [
    "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\r\n\n3\r\nabc\n0\r\n\n",
    { status: 200, reusable: false },
  ],
  // A header injected with a bare LF into a CRLF answer ends it early: read
  // as sent, the connection closed.
  ["HTTP/1.1 200 OK\r\nX-A: v\nContent-Length: 0\n\n", {
    status: 200,
    reusable: false,
  }],
  // A folded line (obs-fold) is no field of its own: this Content-Length is
  // part of X-A's value; the connection is not reused.
  [
    "HTTP/1.1 200 OK\r\nX-A: a\r\n Content-Length: 0\r\nContent-Length: 2\r\n\r\nok",
    {
      status: 200,
      reusable: false,
    },
  ],
];

Deno.test("ResponseReader: heads with bare-LF and mixed line ends, whole, cut anywhere and byte by byte", () => {
  for (const [text, want] of HEADS) {
    const whole = read(text);
    assert.deepEqual(
      {
        status: whole.status,
        reusable: whole.reusable,
        keepAliveMs: whole.keepAliveMs,
      },
      { keepAliveMs: undefined, ...want },
      JSON.stringify(text),
    );
    assert.equal(whole.complete, true, JSON.stringify(text));
    for (const at of cuts(text)) {
      assert.deepEqual(
        read(text, at),
        whole,
        `${JSON.stringify(text)} cut at ${at.length > 1 ? "every byte" : at}`,
      );
    }
  }
});

Deno.test("ResponseReader: a bare CR ends no line; header rules hold with LF line ends", () => {
  // "Content-Length: 5" is part of X-A's value: no framing, read until close.
  const inLine = read("HTTP/1.1 200 OK\nX-A: a\rContent-Length: 5\n\nhello");
  assert.equal(inLine.status, 200);
  assert.equal(inLine.giveUp, true);
  assert.equal(inLine.keepAlive, false);
  // A CR alone after the status line does not end the head.
  const cr = new ResponseReader("GET");
  cr.push(latin1("HTTP/1.1 200 OK\r\r\r\r"));
  assert.equal(cr.status, undefined);
  // Both framings (a smuggling pattern), conflicting lengths, HTTP/1.0.
  for (
    const text of [
      "HTTP/1.1 200 OK\nContent-Length: 3\nTransfer-Encoding: chunked\n\n0\n\n",
      "HTTP/1.1 200 OK\nContent-Length: 1\nContent-Length: 2\n\n",
      "HTTP/1.0 200 OK\nContent-Length: 0\n\n",
      "HTTP/1.1 200 OK\nCONNECTION: Close\nContent-Length: 0\n\n",
    ]
  ) assert.equal(read(text).reusable, false, JSON.stringify(text));
  // HEAD: no body whatever the length says.
  assert.equal(
    read("HTTP/1.1 200 OK\nContent-Length: 99\n\n", [], "HEAD").reusable,
    true,
  );
  // Not HTTP/1.x, with a LF where the line ends.
  for (const text of ["SSH-2.0-x\n", "HTTP/2 200\n", "HTTP/1.1 2000 x\n"]) {
    for (const at of [[], ...cuts(text)]) {
      assert.throws(() => read(text, at), ResponseProtocolError, text);
    }
  }
});

Deno.test("ResponseReader: a LF-terminated status line the server closed right after is taken; a partial one is not", () => {
  for (const text of ["HTTP/1.1 201 Created\n", "HTTP/1.1 201 Created\r\n"]) {
    const reader = new ResponseReader("GET");
    reader.push(latin1(text));
    reader.end();
    assert.equal(reader.status, 201, JSON.stringify(text));
    assert.equal(reader.reusable, false);
  }
  const partial = new ResponseReader("GET");
  partial.push(latin1("HTTP/1.1 201 Created\r"));
  partial.end();
  assert.equal(partial.status, undefined);
});

Deno.test("trigger() reads a bare-LF head at the status line and reuses the connection", async () => {
  const server = rawKeepAlive(() =>
    "HTTP/1.1 202 Accepted\nContent-Length: 0\n\n"
  );
  try {
    for (let i = 0; i < 2; i++) {
      const result = await within(
        trigger(server.url, { wait: "accepted", timeout: 10_000 }),
        `trigger ${i + 1}`,
      );
      assert.equal(result.ok, true, result.error?.message);
      assert.equal(result.status, 202);
      await within(result.done, "trigger()'s done");
    }
    assert.equal(server.connections(), 1);
  } finally {
    await closeIdleConnections();
    await server.close();
  }
});

/** A node:net server that writes `reply` on the `nth` request bytes of a
 * connection, then resets it (RST), or closes it (FIN) when `close` is set;
 * before, it answers 202. */
async function resetAfter(reply: string, nth = 1, close = false) {
  let connections = 0;
  let requests = 0;
  const server = await netServer((socket) => {
    connections++;
    let n = 0;
    socket.on("data", () => {
      requests++;
      if (++n < nth) {
        socket.write("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      socket.write(
        reply,
        () =>
          setTimeout(() => close ? socket.end() : socket.resetAndDestroy(), 50),
      );
    });
  });
  return {
    url: `http://127.0.0.1:${server.port}/job`,
    connections: () => connections,
    requests: () => requests,
    close: server.close,
  };
}

Deno.test("trigger() takes a complete status line the connection is reset right after", async () => {
  for (const line of ["HTTP/1.1 200 OK\r\n", "HTTP/1.1 503 Busy\n"]) {
    const server = await resetAfter(line);
    try {
      const result = await within(
        trigger(server.url, { wait: "accepted", timeout: 10_000 }),
        "trigger",
      );
      const status = Number(line.slice(9, 12));
      assert.equal(result.status, status, result.error?.message);
      assert.equal(result.ok, status === 200);
      await within(result.done, "trigger()'s done");
      assert.equal((await result.outcome).status, status);
    } finally {
      await closeIdleConnections();
      await server.close();
    }
  }
});

Deno.test("trigger(): a reset in the middle of the status line is still CLOSED", async () => {
  const server = await resetAfter("HTTP/1.1 200 O");
  try {
    const result = await within(
      trigger(server.url, { wait: "accepted", timeout: 10_000 }),
      "trigger",
    );
    assert.equal(result.ok, false);
    assert.equal(result.error?.code, "CLOSED");
    assert.equal(result.status, undefined);
  } finally {
    await closeIdleConnections();
    await server.close();
  }
});

Deno.test("trigger(): a 408 status line and a reset or close on a reused connection is its idle timeout: sent again on a fresh one", async () => {
  for (const close of [false, true]) {
    const server = await resetAfter(
      "HTTP/1.1 408 Request Timeout\r\n",
      2,
      close,
    );
    try {
      for (let i = 0; i < 2; i++) {
        const result = await within(
          trigger(server.url, { wait: "accepted", timeout: 10_000 }),
          `trigger ${i + 1}`,
        );
        assert.equal(result.status, 202, result.error?.message);
        await within(result.done, "trigger()'s done");
      }
      // The second went out on the first connection (reused), got the 408,
      // and went again on a second one.
      assert.equal(server.requests(), 3, close ? "close" : "reset");
      assert.equal(server.connections(), 2, close ? "close" : "reset");
    } finally {
      await closeIdleConnections();
      await server.close();
    }
  }
});

Deno.test("trigger() with resend: false ends with a reused connection's 408 (the server read nothing), not CLOSED", async () => {
  const server = await resetAfter("HTTP/1.1 408 Request Timeout\r\n", 2);
  try {
    const first = await within(
      trigger(server.url, { wait: "accepted", timeout: 10_000 }),
      "trigger 1",
    );
    assert.equal(first.status, 202);
    await within(first.done, "trigger 1's done");
    const second = await within(
      trigger(server.url, { wait: "accepted", timeout: 10_000, resend: false }),
      "trigger 2",
    );
    assert.equal(second.ok, false);
    assert.equal(second.status, 408, second.error?.message);
    assert.equal(second.error?.code, "HTTP_STATUS");
    await within(second.done, "trigger 2's done");
    assert.equal(server.requests(), 2, "not sent again");
  } finally {
    await closeIdleConnections();
    await server.close();
  }
});

Deno.test("trigger(): a status line the server closes or resets right after, mid-upload, is the answer (413), not CLOSED", async () => {
  for (const close of [false, true]) {
    let requests = 0;
    const server = await netServer((socket) => {
      socket.once("data", () => {
        requests++;
        socket.write(
          "HTTP/1.1 413 Content Too Large\r\n",
          () =>
            setTimeout(
              () => close ? socket.destroy() : socket.resetAndDestroy(),
              50,
            ),
        );
      });
    });
    try {
      const result = await within(
        trigger(`http://127.0.0.1:${server.port}/upload`, {
          wait: "accepted",
          timeout: 10_000,
          body: new Uint8Array(32 * 1024 * 1024),
        }),
        "trigger",
      );
      assert.equal(result.status, 413, result.error?.message);
      assert.equal(result.error?.code, "HTTP_STATUS");
      await within(result.done, "trigger()'s done");
      assert.equal(requests, 1);
    } finally {
      await closeIdleConnections();
      await server.close();
    }
  }
});

Deno.test("trigger(): a 408 read on a reused connection (kept alive), its body then cut by a close, is the answer: told once, not sent again", async () => {
  const server = await resetAfter(
    "HTTP/1.1 408 Request Timeout\r\nContent-Length: 10\r\n\r\nabc",
    2,
    true,
  );
  try {
    const first = await within(
      trigger(server.url, { wait: "accepted", timeout: 10_000 }),
      "trigger 1",
    );
    assert.equal(first.status, 202);
    await within(first.done, "trigger 1's done");
    const second = await within(
      trigger(server.url, { wait: "accepted", timeout: 10_000 }),
      "trigger 2",
    );
    assert.equal(second.status, 408);
    await within(second.done, "trigger 2's done");
    const outcome = await second.outcome;
    assert.equal(outcome.status, 408, "the outcome agrees with the answer");
    assert.equal(server.requests(), 2, "not sent again");
  } finally {
    await closeIdleConnections();
    await server.close();
  }
});
