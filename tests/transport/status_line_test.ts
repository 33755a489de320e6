// An "accepted" trigger is told at the status line: the rest of the head may
// come later (or never), and the exchange still ends with that status.
import assert from "node:assert/strict";
import { closeIdleConnections, trigger } from "../../mod.ts";
import { latin1 } from "../../src/transport/_http1.ts";
import { ResponseReader } from "../../src/transport/_response.ts";
import { netServer } from "../_servers.ts";
import { within } from "../_wait.ts";

Deno.test("ResponseReader.takeStatusLine(): a whole final status line at the response's start, nothing else", () => {
  const taken: Record<string, number> = {
    "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n": 202,
    "HTTP/1.1 200\r\n": 200,
    "HTTP/1.0 502 Bad Gateway\n": 502,
    "HTTP/1.1 204 \n": 204,
    "HTTP/1.1 999 x\r\n": 999,
  };
  for (const [text, status] of Object.entries(taken)) {
    const reader = new ResponseReader("GET");
    assert.equal(reader.takeStatusLine(latin1(text)), status, text);
    assert.equal(reader.status, status);
    assert.equal(reader.headRead, false, "the head is not read yet");
  }
  const refused = [
    "HTTP/1.1 202 Accepted", // no line end yet
    "HTTP/1.1 202 Accepted\r", // nor here
    "HTTP/1.1 100 Continue\r\n\r\n", // interim
    "HTTP/1.1 101 Switching\r\n\r\n",
    "HTTP/1.1 408 Request Timeout\r\n\r\n", // depends on its head
    "HTTP/1.0 503 Busy\n", // its head carries Retry-After
    "HTTP/1.1 429 Too Many Requests\r\n", // so does this one's
    "HTTP/1.1 2020 Long\r\n",
    "HTTP/1.1 20 Short\r\n",
    "HTTP/1.1 202\rX\n", // a lone CR: push() refuses this line
    "HTTP/1.2 202 Accepted\r\n",
    "HTTP/2 202 Accepted\r\n",
    "http/1.1 202 Accepted\r\n",
    " HTTP/1.1 202 Accepted\r\n",
    "HTTP/1.1 0202 Accepted\r\n",
    "HTTP/1.1 20a Accepted\r\n",
    "HTTP/1.1\t202 Accepted\r\n",
  ];
  for (const text of refused) {
    const reader = new ResponseReader("GET");
    assert.equal(reader.takeStatusLine(latin1(text)), undefined, text);
    assert.equal(reader.status, undefined, text);
  }
  // Not taken, but kept: the status if the head never comes whole.
  for (
    const [text, status] of [["HTTP/1.0 503 Busy\n", 503], [
      "HTTP/1.1 429 x\r\n",
      429,
    ]] as const
  ) {
    const reader = new ResponseReader("GET");
    reader.takeStatusLine(latin1(text));
    assert.equal(reader.lineStatus, status, text);
  }
  // Only the response's first bytes.
  const later = new ResponseReader("GET");
  later.push(latin1("HTTP/1.1 100 Continue\r\n\r\n"));
  assert.equal(
    later.takeStatusLine(latin1("HTTP/1.1 200 OK\r\n\r\n")),
    undefined,
  );
});

Deno.test("ResponseReader: a status taken from the line stays the response's, whatever its head then does", () => {
  // The head read whole afterwards: the same status, the fields known.
  const whole = new ResponseReader("GET");
  const bytes = latin1("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
  whole.takeStatusLine(bytes);
  whole.push(bytes);
  assert.deepEqual(
    [whole.status, whole.headRead, whole.complete, whole.reusable],
    [202, true, true, true],
  );
  // Closed in the middle of the head: complete, with that status, not kept.
  const cut = new ResponseReader("GET");
  const start = latin1("HTTP/1.1 202 Accepted\r\nContent-Le");
  cut.takeStatusLine(start);
  cut.push(start);
  cut.end();
  assert.deepEqual([cut.status, cut.complete, cut.reusable], [
    202,
    true,
    false,
  ]);
});

/** A node:net server that answers each request with the status line at
 * once and the rest of the head (keep-alive, no body) only when `release()`
 * is called; counts connections and requests. */
async function slowHead() {
  let connections = 0;
  let requests = 0;
  const waiting: (() => void)[] = [];
  const server = await netServer((socket) => {
    connections++;
    socket.on("data", () => {
      requests++;
      socket.write("HTTP/1.1 202 Accepted\r\n");
      waiting.push(() => socket.write("Content-Length: 0\r\n\r\n"));
    });
  });
  return {
    url: `http://127.0.0.1:${server.port}/job`,
    connections: () => connections,
    requests: () => requests,
    release() {
      for (const rest of waiting.splice(0)) rest();
    },
    close: server.close,
  };
}

Deno.test("trigger() with wait: accepted resolves at the status line, before the rest of the head; the connection is reused once it is read", async () => {
  const server = await slowHead();
  try {
    for (let i = 0; i < 2; i++) {
      // On the previous code this waited for the head: a TIMEOUT at 2 s.
      const result = await within(
        trigger(server.url, { wait: "accepted", timeout: 2_000 }),
        `trigger ${i + 1}`,
      );
      assert.equal(result.ok, true, result.error?.message);
      assert.equal(result.status, 202);
      server.release();
      const outcome = await within(result.outcome, "trigger()'s outcome");
      assert.deepEqual([outcome.ok, outcome.status], [true, 202]);
    }
    assert.equal(server.requests(), 2);
    assert.equal(server.connections(), 1, "the split head's connection kept");
  } finally {
    await closeIdleConnections();
    await server.close();
  }
});

Deno.test("trigger(): a status line told to an accepted caller stays the outcome when the head then breaks off", async () => {
  const server = await netServer((socket) => {
    socket.on("data", () => {
      socket.write(
        "HTTP/1.1 201 Created\r\nX-Cut: ",
        () => setTimeout(() => socket.resetAndDestroy(), 50),
      );
    });
  });
  try {
    const result = await within(
      trigger(`http://127.0.0.1:${server.port}/job`, {
        wait: "accepted",
        timeout: 10_000,
      }),
      "trigger",
    );
    assert.deepEqual([result.ok, result.status], [true, 201]);
    const outcome = await within(result.outcome, "trigger()'s outcome");
    assert.deepEqual([outcome.ok, outcome.status], [true, 201]);
  } finally {
    await closeIdleConnections();
    await server.close();
  }
});

Deno.test("trigger(): a final status line is the outcome in both wait modes, whatever the head then does (never finished, or too long), however the line came (split across reads, after a 100 Continue)", async () => {
  const tails = {
    "never finished": "X-Slow: 1\r\n",
    "too long": `X-Long: ${"a".repeat(70 * 1024)}\r\n`,
  };
  // Pieces written 50 ms apart, so each is a read of its own.
  const lines = {
    "whole": ["HTTP/1.1 202 Accepted\r\n"],
    "split": ["HTTP/1.1 2", "02 Accepted\r\n"],
    "after 100 Continue": [
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\n",
    ],
    "after 100 Continue, split": [
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202",
      " Accepted\r\n",
    ],
  };
  for (
    const [what, [line, tail]] of Object.entries(lines).flatMap(([how, line]) =>
      Object.entries(tails).map(([end, tail]) =>
        [`${how}, ${end}`, [line, tail]] as const
      )
    )
  ) {
    const server = await netServer((socket) => {
      socket.on("data", async () => {
        for (const piece of [...line, tail]) {
          socket.write(piece);
          await new Promise((resolve) => setTimeout(resolve, 50));
        } // and nothing more, the socket left open
      });
    });
    try {
      for (const wait of ["sent", "accepted"] as const) {
        const result = await within(
          trigger(`http://127.0.0.1:${server.port}/job`, {
            wait,
            timeout: 1_000,
          }),
          `${wait} trigger`,
        );
        assert.equal(result.ok, true, result.error?.message);
        const outcome = await within(result.outcome, "trigger()'s outcome");
        assert.deepEqual(
          [outcome.ok, outcome.status, outcome.error?.code],
          [true, 202, undefined],
          `${what}, wait: ${wait}`,
        );
      }
    } finally {
      await closeIdleConnections();
      await server.close();
    }
  }
});

Deno.test("trigger() with reuse: false is over at the status line: done does not wait for the rest of the head", async () => {
  const server = await slowHead();
  try {
    for (const wait of ["sent", "accepted"] as const) {
      const result = await within(
        trigger(server.url, { wait, reuse: false, timeout: 60_000 }),
        `${wait} trigger`,
      );
      assert.equal(result.ok, true, result.error?.message);
      // The head's rest never comes; the connection is not kept anyway.
      await within(
        result.done,
        `${wait}: done, well before the timeout`,
        10_000,
      );
      assert.equal((await result.outcome).status, 202);
    }
  } finally {
    server.release();
    await server.close();
  }
});

Deno.test("trigger(): a status line that is not HTTP is PROTOCOL, its bytes shown with DEL and C1 controls escaped (a server's CSI reached the message raw)", async () => {
  const server = await netServer((socket) => {
    socket.on("data", () => socket.end(latin1("\x9B31m\x7FX\r\n\r\n")));
  });
  try {
    const result = await trigger(`http://127.0.0.1:${server.port}/`, {
      wait: "accepted",
      timeout: 5_000,
    });
    assert.equal(result.error?.code, "PROTOCOL");
    assert.ok(
      result.error!.message.includes(String.raw`"\u009b31m\u007fX"`),
      result.error!.message,
    );
    assert.doesNotMatch(result.error!.message, /[\x7F-\x9F]/);
  } finally {
    await closeIdleConnections();
    await server.close();
  }
});
