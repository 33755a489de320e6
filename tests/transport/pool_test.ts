import assert from "node:assert/strict";
import { closeIdleConnections, trigger } from "../../mod.ts";
import {
  connectionCounts,
  idleConnectionCount,
} from "../../src/transport/_pool.ts";
import { portRecorder, rawKeepAlive } from "../_servers.ts";
import { until, within } from "../_wait.ts";
import { VECTOR } from "../_vector.ts";

/** The next request the server saw, failing after 5 s. */
function take(server: ReturnType<typeof rawKeepAlive>) {
  return within(server.requests.take(), "the next request", 5_000);
}

async function eventually(check: () => boolean, what: string) {
  await until(check, what, { timeout: 10_000, interval: 10 });
}

Deno.test("triggers to one origin reuse a kept-alive connection, in both wait modes", async () => {
  const target = portRecorder();
  try {
    for (const wait of ["accepted", "sent", "accepted", "sent"] as const) {
      const result = await trigger(target.url, { wait, json: { wait } });
      assert.equal(result.ok, true);
      await within(result.done, "trigger()'s done");
      assert.deepEqual(await result.outcome, { ok: true, status: 202 });
    }
    assert.equal(target.ports.length, 4);
    assert.equal(new Set(target.ports).size, 1, `ports ${target.ports}`);
    assert.equal(idleConnectionCount(), 1);
  } finally {
    await closeIdleConnections();
    assert.equal(idleConnectionCount(), 0);
    await target.close();
  }
});

Deno.test("reuse: false sends Connection: close and uses a fresh connection each time", async () => {
  const server = rawKeepAlive(() => "HTTP/1.1 204 No Content\r\n\r\n");
  try {
    for (let i = 0; i < 3; i++) {
      const result = await trigger(server.url, {
        wait: "accepted",
        reuse: false,
      });
      assert.equal(result.status, 204);
      const { head } = await server.requests.take();
      assert.match(head, /\r\nConnection: close(\r\n|$)/);
      await within(result.done, "trigger()'s done");
    }
    assert.equal(server.connections(), 3);
    assert.equal(idleConnectionCount(), 0);
  } finally {
    await server.close();
  }
});

Deno.test("a response body, Content-Length or chunked, is read to its end before the connection carries the next request", async () => {
  const replies = [
    "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
    "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
    "HTTP/1.1 204 No Content\r\n\r\n",
  ];
  const server = rawKeepAlive((n) => replies[(n - 1) % replies.length]);
  try {
    const statuses = [];
    for (let i = 0; i < replies.length; i++) {
      const result = await trigger(server.url, {
        wait: "accepted",
        form: { i },
      });
      statuses.push(result.status);
      await within(result.done, "trigger()'s done");
    }
    assert.deepEqual(statuses, [200, 202, 201, 204]);
    assert.equal(server.connections(), 1, "one connection carried all four");
    for (let i = 0; i < replies.length; i++) {
      const { n, head } = await server.requests.take();
      assert.equal(n, i + 1);
      assert.match(head, /^POST \/job HTTP\/1\.1\r\n/);
    }
  } finally {
    await closeIdleConnections();
    await server.close();
  }
});

Deno.test("Connection: close, a short Keep-Alive timeout, or a body read until close keep nothing", async () => {
  const replies = [
    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
  ];
  for (const reply of replies) {
    const server = rawKeepAlive(() => reply);
    try {
      const first = await trigger(server.url, { wait: "accepted" });
      assert.equal(first.status, 200);
      await within(first.done, "trigger()'s done");
      assert.equal(idleConnectionCount(), 0, reply);
      await within(
        (await trigger(server.url, { wait: "accepted" })).done,
        "trigger()'s done",
      );
      assert.equal(server.connections(), 2, reply);
    } finally {
      await server.close();
    }
  }
  // No framing at all: the body runs until the server closes.
  const server = rawKeepAlive(() => "HTTP/1.1 200 OK\r\n\r\nstreaming...");
  try {
    const result = await trigger(server.url, { wait: "accepted" });
    assert.equal(result.status, 200);
    await within(result.done, "trigger()'s done");
    assert.equal(idleConnectionCount(), 0);
  } finally {
    await server.close();
  }
});

Deno.test("an idle connection the server closes is dropped before it is reused", async () => {
  const server = rawKeepAlive(() => "HTTP/1.1 204 No Content\r\n\r\n");
  try {
    await within(
      (await trigger(server.url, { wait: "accepted" })).done,
      "trigger()'s done",
    );
    assert.equal(idleConnectionCount(), 1);
    server.dropConnections();
    await eventually(() => idleConnectionCount() === 0, "pool noticed");
    const result = await trigger(server.url, { wait: "accepted", json: 1 });
    assert.equal(result.status, 204);
    await within(result.done, "trigger()'s done");
    assert.equal(server.connections(), 2);
  } finally {
    await closeIdleConnections();
    await server.close();
  }
});

Deno.test("a reused connection that dies after the write: the request goes out once more, whatever the method; resend: false reports it instead", async () => {
  // Answers the first request on a connection, then closes without answering
  // the second: what a keep-alive race looks like from the client.
  const server = rawKeepAlive((n) =>
    n === 1 ? "HTTP/1.1 204 No Content\r\n\r\n" : null
  );
  try {
    for (const method of ["GET", "POST", "signed POST"]) {
      await closeIdleConnections(); // forgets what the last round taught
      await (await trigger(server.url, { wait: "accepted" })).done;
      await take(server);
      const again = await trigger(server.url, {
        wait: "accepted",
        body: method === "GET" ? undefined : "charge=1",
        sign: method === "signed POST" ? { secret: VECTOR.secret } : undefined,
      });
      assert.equal(again.ok, true, again.error?.message);
      assert.equal(again.status, 204);
      await again.done;
      const [died, fresh] = [
        await take(server),
        await take(server),
      ];
      assert.deepEqual(
        [died.n, fresh.n],
        [2, 1],
        `the ${method} died on the reused connection, then went out on a fresh one`,
      );
      assert.equal(died.head, fresh.head, "byte for byte the same head");
      if (method === "signed POST") {
        assert.match(fresh.head, /\r\nwebhook-id: msg_[0-9a-f]+\r\n/);
        assert.match(fresh.head, /\r\nwebhook-signature: v1,/);
      }
    }

    await closeIdleConnections();
    await (await trigger(server.url, { wait: "accepted" })).done;
    await take(server);
    const post = await trigger(server.url, {
      wait: "accepted",
      json: { charge: 1 },
      resend: false,
    });
    assert.equal(post.ok, false);
    assert.equal(post.error?.code, "CLOSED");
    assert.match(post.error!.message, /not sent again \(resend: false\)/);
    assert.equal((await take(server)).n, 2);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(server.requests.size, 0, "the POST went out exactly once");

    // In "sent" mode the caller has moved on: the outcome reports it.
    await closeIdleConnections();
    await (await trigger(server.url, { wait: "accepted" })).done;
    await take(server);
    const sent = await trigger(server.url, {
      json: { charge: 2 },
      resend: false,
    });
    assert.equal(sent.ok, true);
    const outcome = await sent.outcome;
    assert.equal(outcome.ok, false);
    assert.equal(outcome.error?.code, "CLOSED");
    assert.equal((await take(server)).n, 2);
    await closeIdleConnections();
    assert.deepEqual(connectionCounts(), { open: 0, waiting: 0 });
  } finally {
    await closeIdleConnections();
    await server.close();
  }
});

Deno.test("a 408 that closes a reused connection (the server's idle timeout) sends the request again", async () => {
  const server = rawKeepAlive((n) =>
    n === 1
      ? "HTTP/1.1 204 No Content\r\n\r\n"
      : "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
  );
  try {
    await closeIdleConnections();
    await (await trigger(server.url, { wait: "accepted" })).done;
    await take(server);
    const result = await trigger(server.url, {
      wait: "accepted",
      json: { n: 2 },
    });
    assert.equal(result.status, 204, result.error?.message);
    await result.done;
    const [timedOut, fresh] = [
      await take(server),
      await take(server),
    ];
    assert.deepEqual([timedOut.n, fresh.n], [2, 1]);
    assert.equal(server.connections(), 2);
  } finally {
    await closeIdleConnections();
    await server.close();
  }
});

Deno.test("idle connections all closed at once (a restart) do not mark the origin as closing after each response", async () => {
  const server = rawKeepAlive(() => "HTTP/1.1 204 No Content\r\n\r\n");
  try {
    await closeIdleConnections();
    const burst = await Promise.all(
      Array.from(
        { length: 4 },
        () => trigger(server.url, { wait: "accepted" }),
      ),
    );
    await Promise.all(burst.map((r) => r.done));
    for (let i = 0; i < 4; i++) await take(server);
    assert.equal(idleConnectionCount(), 4);
    server.dropConnections();
    await eventually(() => idleConnectionCount() === 0, "pool noticed");
    const next = await trigger(server.url, { wait: "accepted" });
    assert.equal(next.status, 204);
    await next.done;
    const { head } = await take(server);
    assert.doesNotMatch(head, /\r\nConnection: close/i);
    assert.equal(idleConnectionCount(), 1, "kept for reuse");
  } finally {
    await closeIdleConnections();
    await server.close();
  }
});

Deno.test("idle pooled connections do not keep the process alive", async () => {
  const target = portRecorder();
  try {
    const script = `
      import { trigger } from ${
      JSON.stringify(new URL("../../mod.ts", import.meta.url).href)
    };
      const result = await trigger(${
      JSON.stringify(target.url)
    }, { wait: "accepted" });
      await result.done;
      console.log(result.status);
    `;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-config", script],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    // From the last line the script prints to its exit: startup time, which
    // a loaded machine stretches, is not part of what is measured.
    let printed = "";
    let printedAt = 0;
    try {
      await within(
        (async () => {
          for await (
            const chunk of child.stdout.pipeThrough(
              new TextDecoderStream(),
            )
          ) {
            printed += chunk;
            printedAt = performance.now();
          }
        })(),
        "the script's output",
        60_000,
      );
      const { code } = await within(child.status, "the script's exit");
      const lingered = performance.now() - printedAt;
      assert.equal(code, 0);
      assert.equal(printed.trim(), "202");
      // The server keeps the connection open; an idle socket that held the
      // process would keep it until the 4 s idle timeout.
      assert.ok(lingered < 3_000, `exited ${lingered.toFixed(0)} ms after`);
    } catch (error) {
      try {
        child.kill("SIGKILL");
      } catch {
        // exited
      }
      throw error;
    }
  } finally {
    await target.close();
  }
});

Deno.test("connections are pooled per set of caCerts, told apart exactly (no joined strings)", async () => {
  const server = rawKeepAlive(() => "HTTP/1.1 204 No Content\r\n\r\n");
  try {
    // Plain http ignores the certificates for the handshake, but they still
    // name the pool: ["ab", "c"] and ["a", "bc"] must not share one.
    for (const caCerts of [["ab", "c"], ["a", "bc"], ["ab", "c"]]) {
      const result = await trigger(server.url, { wait: "accepted", caCerts });
      assert.equal(result.ok, true, result.error?.message);
      await within(result.done, "trigger()'s done");
      await server.requests.take();
    }
    assert.equal(
      server.connections(),
      2,
      "two pools; the third trigger reused the first one's connection",
    );
  } finally {
    await closeIdleConnections();
    await server.close();
  }
});

Deno.test("an array of caCerts changed between triggers names a new pool (its key is not kept stale)", async () => {
  const server = rawKeepAlive(() => "HTTP/1.1 204 No Content\r\n\r\n");
  try {
    const caCerts = ["one"];
    for (const change of [() => {}, () => caCerts.push("two"), () => {}]) {
      change();
      const result = await trigger(server.url, { wait: "accepted", caCerts });
      assert.equal(result.ok, true, result.error?.message);
      await within(result.done, "trigger()'s done");
      await server.requests.take();
    }
    assert.equal(
      server.connections(),
      2,
      "the same array with a CA added is another pool; unchanged, it reuses",
    );
  } finally {
    await closeIdleConnections();
    await server.close();
  }
});
