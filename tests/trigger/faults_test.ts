// Faults on the wire: each one a typed `ok: false` within its timeout, and
// nothing leaked (the sanitizers are on; file descriptors are counted).
// Refused, DNS, mid-status-line closes and untrusted certificates are in
// trigger_test.ts; this file adds what those do not cover.
import assert from "node:assert/strict";
import { trigger, type TriggerResult } from "../../mod.ts";
import { deadPort, earlyAnswerServer, misbehaving } from "../_servers.ts";
import { until, within } from "../_wait.ts";
import { closeIdleConnections } from "../../src/transport/_pool.ts";

const MB = 1024 * 1024;

function openFds(): number {
  let count = 0;
  for (const _ of Deno.readDirSync("/proc/self/fd")) count++;
  return count;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A bound that says "ended by its own timeout, not by a hang or a longer
 * default": twice the timeout plus 2 s, wide enough for a loaded 2-core
 * machine, far below the 30 s default a forgotten timeout would fall back to.
 */
const ended = (timeout: number) => timeout * 2 + 2_000;

/** Checks a failure: its code, and that it came by its timeout. */
function assertFailed(
  result: TriggerResult,
  code: string,
  timeout: number,
): void {
  assert.equal(result.ok, false);
  assert.equal(result.error?.code, code, result.error?.message);
  assert.ok(
    result.elapsed < ended(timeout),
    `${result.elapsed.toFixed(0)} ms for a ${timeout} ms timeout`,
  );
}

Deno.test("a reset in the middle of a large body → CLOSED, not a hang", async () => {
  let readBeforeReset = 0;
  const server = misbehaving(async (conn) => {
    // Read a little, then close with unread data pending: Linux sends RST.
    const buffer = new Uint8Array(64 * 1024);
    while (readBeforeReset < 256 * 1024) {
      const n = await conn.read(buffer);
      if (n === null) return;
      readBeforeReset += n;
    }
    conn.close();
  });
  try {
    for (const wait of ["sent", "accepted"] as const) {
      const result = await trigger(server.origin + "/upload", {
        body: new Uint8Array(10 * MB),
        wait,
        timeout: 10_000,
        reuse: false,
      });
      assertFailed(result, "CLOSED", 10_000);
      assert.match(result.error!.message, /reset|broken pipe|closed/i);
      await within(result.done, "trigger()'s done");
    }
    assert.ok(readBeforeReset >= 256 * 1024);
  } finally {
    await server.close();
  }
});

Deno.test("a server that never reads a 10 MB body → TIMEOUT from write backpressure", async () => {
  const hold = Promise.withResolvers<void>();
  let accepted = 0;
  const server = misbehaving(async () => {
    accepted++;
    await hold.promise; // accept, never read
  });
  try {
    for (const wait of ["sent", "accepted"] as const) {
      const started = performance.now();
      const result = await trigger(server.origin + "/upload", {
        body: new Uint8Array(10 * MB),
        wait,
        timeout: 1_000,
        reuse: false,
      });
      assertFailed(result, "TIMEOUT", 1_000);
      assert.ok(performance.now() - started >= 950, "waited for the timeout");
      assert.equal(
        (result.error?.cause as DOMException).name,
        "TimeoutError",
      );
      await within(result.done, "trigger()'s done");
    }
    assert.equal(accepted, 2);
  } finally {
    hold.resolve();
    await server.close();
  }
});

Deno.test("TLS handshake failures → TLS: a plain-HTTP answer, a close, silence", async (t) => {
  const plainHttp = misbehaving(async (conn) => {
    await conn.read(new Uint8Array(4096)); // the ClientHello
    await conn.write(
      new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n"),
    );
  });
  const closes = misbehaving(async (conn) => {
    await conn.read(new Uint8Array(4096));
  });
  const hold = Promise.withResolvers<void>();
  const silent = misbehaving(async (conn) => {
    await conn.read(new Uint8Array(4096));
    await hold.promise; // silent until the test ends
  });
  try {
    await t.step("a plain HTTP server on the https port", async () => {
      const result = await trigger(
        plainHttp.origin.replace("http:", "https:"),
        { wait: "accepted", timeout: 5_000 },
      );
      assertFailed(result, "TLS", 5_000);
    });
    await t.step("a server closing during the handshake", async () => {
      const result = await trigger(
        closes.origin.replace("http:", "https:"),
        { wait: "accepted", timeout: 5_000 },
      );
      assertFailed(result, "TLS", 5_000);
    });
    await t.step(
      "a server silent during the handshake → TIMEOUT at the timeout",
      async () => {
        const result = await trigger(
          silent.origin.replace("http:", "https:"),
          { wait: "sent", timeout: 500 },
        );
        assertFailed(result, "TIMEOUT", 500);
      },
    );
  } finally {
    hold.resolve();
    await plainHttp.close();
    await closes.close();
    await silent.close();
  }
});

Deno.test("a server closing mid-status-line after reading a large body → CLOSED", async () => {
  const server = misbehaving(async (conn) => {
    const buffer = new Uint8Array(64 * 1024);
    let total = 0;
    while (total < MB - 200) {
      const n = await conn.read(buffer);
      if (n === null) return;
      total += n;
    }
    // The whole body read (no RST), then half a status line and a close.
    await conn.write(new TextEncoder().encode("HTTP/1.1 2"));
  });
  try {
    const result = await trigger(server.origin, {
      body: new Uint8Array(MB - 200), // head + body just over 1 MB
      wait: "accepted",
      timeout: 5_000,
      reuse: false,
    });
    assert.equal(result.ok, false);
    assert.ok(
      ["CLOSED"].includes(result.error!.code),
      result.error?.message,
    );
  } finally {
    await server.close();
  }
});

Deno.test("10,000 failing triggers leave no file descriptor behind", async () => {
  const port = deadPort();
  // Warm up whatever the runtime opens once (resolver, timers).
  await trigger(`http://127.0.0.1:${port}/`, { timeout: 5_000 });
  await trigger("http://no-such-host.invalid/", { timeout: 5_000 });
  await sleep(50);
  const before = openFds();
  const codes = new Map<string, number>();
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < 10_000) {
      const i = next++;
      const result = await trigger(`http://127.0.0.1:${port}/job?i=${i}`, {
        json: { i },
        wait: i % 2 === 0 ? "sent" : "accepted",
        timeout: 5_000,
      });
      assert.equal(result.ok, false);
      const code = result.error!.code;
      codes.set(code, (codes.get(code) ?? 0) + 1);
      await within(result.done, "trigger()'s done");
    }
  };
  const during: number[] = [];
  const sampler = setInterval(() => during.push(openFds()), 20);
  await Promise.all(Array.from({ length: 64 }, worker));
  clearInterval(sampler);
  const elapsed = performance.now() - started;
  await until(() => openFds() <= before, "every socket closed", {
    timeout: 10_000,
  }).catch(() => {}); // the assertion below says what is left
  const after = openFds();
  console.log(
    `10,000 failing triggers (64 at a time) in ${elapsed.toFixed(0)} ms: ${
      JSON.stringify(Object.fromEntries(codes))
    }; open fds ${before} before, ${after} after, at most ${
      Math.max(before, ...during)
    } during`,
  );
  assert.deepEqual(Object.fromEntries(codes), { CONNECT: 10_000 });
  assert.equal(after, before, "every socket was closed");

  // DNS failures too: fewer, 4 at a time (each asks the resolver, which may
  // drop queries under load: the trigger then ends at its timeout).
  const dnsCodes = new Map<string, number>();
  let nextDns = 0;
  const dnsStarted = performance.now();
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (nextDns < 40) {
      const i = nextDns++;
      const result = await trigger(`http://no-such-host-${i}.invalid/`, {
        timeout: 3_000,
      });
      assert.ok(
        result.error?.code === "DNS" || result.error?.code === "TIMEOUT",
        result.error?.message,
      );
      assert.ok(result.elapsed < ended(3_000), `${result.elapsed} ms`);
      const code = result.error!.code;
      dnsCodes.set(code, (dnsCodes.get(code) ?? 0) + 1);
    }
  }));
  // A lookup abandoned at the timeout finishes in the resolver's thread.
  let settled = openFds();
  for (let i = 0; i < 100 && settled !== before; i++) {
    await sleep(100);
    settled = openFds();
  }
  console.log(
    `40 DNS failures in ${(performance.now() - dnsStarted).toFixed(0)} ms: ${
      JSON.stringify(Object.fromEntries(dnsCodes))
    }; open fds ${settled} after`,
  );
  assert.equal(settled, before, "no resolver socket left open");
});

Deno.test("a server that answers 413 to a large body and closes: the 413 is reported (not CLOSED) and the body is not uploaded again, fresh or reused connection", async () => {
  const server = earlyAnswerServer();
  try {
    for (const reuse of [true, false]) {
      server.heads.length = 0;
      if (reuse) {
        // Leaves a kept-alive connection for the large request to reuse.
        const first = await trigger(`${server.origin}/small`, {
          wait: "accepted",
          json: { small: true },
        });
        assert.equal(first.status, 200);
        await within(first.done, "the small trigger's done");
      }
      const result = await within(
        trigger(`${server.origin}/upload`, {
          body: new Uint8Array(32 * MB),
          wait: "accepted",
          timeout: 10_000,
          reuse,
        }),
        "the large trigger",
      );
      assert.equal(
        result.status,
        413,
        `reuse ${reuse}: ${result.error?.message}`,
      );
      assert.equal(result.error?.code, "HTTP_STATUS");
      await within(result.done, "the large trigger's done");
      assert.deepEqual(
        server.heads,
        ["POST /upload HTTP/1.1"],
        `reuse ${reuse}`,
      );
    }
  } finally {
    await closeIdleConnections();
    await server.close();
  }
});
