// Runs trigger() under Node or Bun (bundled by tests/platforms/node_bun_test.ts
// for the browser platform, so no static node:net import can hide in it).
// argv[2]: the JSON Targets below, servers the Deno test runs. Prints one JSON
// line per scenario: what the caller saw; the test checks the servers' side.
import { closeIdleConnections, drainTriggers, trigger } from "../../mod.ts";
import { print, summary } from "./_report.ts";
import { idleConnectionCount } from "../../src/transport/_pool.ts";
import { pattern } from "./_pattern.ts";

/** The servers the test started, all on 127.0.0.1. */
export interface Targets {
  /** Raw capture: the request's bytes exactly as written. */
  capture: string;
  /** A real HTTP server recording bodies (Node http or Deno.serve). */
  recorder: string;
  /** Deno.serve recording the client port of each request. */
  ports: string;
  /** Answers 503. */
  unavailable: string;
  /** Answers 202 after 300 ms. */
  slow: string;
  /** Nothing listens there. */
  refused: string;
  /** https with a self-signed certificate, and that certificate. */
  tls: string;
  cert: string;
  /** Reads 256 KB of a body, then closes with the rest unread (RST). */
  reset: string;
  /** Accepts and reads, never answers. */
  silent: string;
  /** Accepts and never reads (for 3 s). */
  stalled: string;
  /** Answers a connection's first request 204 (kept alive), then closes
   * without answering its second: a keep-alive race, every time. */
  resend: string;
  /** Deno.serve answering 202 after 200 ms, counting connections open at
   * once. */
  capped: string;
  /** Answers a body over 1 MB with 413 at its head and closes it unread;
   * smaller ones 200, kept alive. */
  early: string;
  /** node:http (its own process) dropping an upload past 1 MB with
   * `req.destroy()`. */
  limited: string;
  /** https (the certificate above): the handshake, then nothing read. */
  tlsStalled: string;
}

declare const process: { argv: string[]; versions: Record<string, string> };

const targets = JSON.parse(process.argv[2]) as Targets;
const MB = 1024 * 1024;

print("runtime", {
  bun: process.versions.bun ?? null,
  node: process.versions.node,
});

// The same request the Deno side sends, for a byte-for-byte comparison.
const wire = await trigger(`${targets.capture}/wire?q=1&r=%C3%A9`, {
  json: { a: "é", n: [1, 2] },
  headers: { "x-test": "wire" },
  wait: "accepted",
  reuse: false,
});
print("wire", summary(wire));

// Large bodies, both wait modes, checked by a real server.
for (const wait of ["sent", "accepted"] as const) {
  const result = await trigger(`${targets.recorder}/large?wait=${wait}`, {
    body: pattern(3 * MB),
    headers: { "content-type": "application/octet-stream" },
    wait,
    timeout: 20_000,
  });
  print(`large-${wait}`, summary(result));
  print(`large-${wait}-outcome`, await result.outcome);
}

// A burst: 300 at once, every one delivered (checked by the server).
const burst = await Promise.all(
  Array.from(
    { length: 300 },
    (_, i) =>
      trigger(`${targets.recorder}/burst?i=${i}`, {
        json: { i },
        timeout: 20_000,
      }),
  ),
);
await Promise.all(burst.map((result) => result.done));
print("burst", {
  sent: burst.filter((result) => result.ok).length,
  accepted: (await Promise.all(burst.map((result) => result.outcome)))
    .filter((outcome) => outcome.status === 202).length,
});

print(
  "accepted-503",
  summary(await trigger(targets.unavailable, { wait: "accepted" })),
);

// Sequential triggers to one origin: one kept-alive connection.
const reuse = [];
for (const wait of ["accepted", "sent", "accepted", "sent"] as const) {
  const result = await trigger(targets.ports, { wait, json: { wait } });
  await result.done;
  reuse.push(await result.outcome);
}
print("reuse", reuse);

print(
  "refused",
  summary(await trigger(targets.refused, { timeout: 5_000 })),
);
print(
  "dns",
  summary(await trigger("http://no-such-host.invalid/", { timeout: 5_000 })),
);
print(
  "tls-untrusted",
  summary(await trigger(targets.tls, { wait: "accepted", timeout: 5_000 })),
);
print(
  "tls-caCerts",
  summary(
    await trigger(`${targets.tls}/tls`, {
      wait: "accepted",
      caCerts: [targets.cert],
      json: { tls: true },
      timeout: 5_000,
    }),
  ),
);
// By name: SNI and the certificate's DNS name are checked.
print(
  "tls-localhost",
  summary(
    await trigger(`${targets.tls.replace("127.0.0.1", "localhost")}/name`, {
      wait: "accepted",
      caCerts: [targets.cert],
      timeout: 5_000,
    }),
  ),
);
// A caCerts entry that is no certificate: TLS (Bun refuses it before the
// handshake, Node and Deno at it), and no socket left open: the process
// still exits at its end (checked below).
print(
  "tls-bad-caCerts",
  summary(
    await trigger(`${targets.tls}/bad`, {
      wait: "accepted",
      caCerts: ["not a certificate"],
      timeout: 5_000,
    }),
  ),
);
for (const wait of ["sent", "accepted"] as const) {
  const result = await trigger(`${targets.reset}/upload`, {
    body: new Uint8Array(10 * MB),
    wait,
    timeout: 10_000,
    reuse: false,
  });
  print(`reset-${wait}`, summary(result));
  await result.done;
}
for (const wait of ["sent", "accepted"] as const) {
  const result = await trigger(`${targets.limited}/upload`, {
    body: new Uint8Array(16 * MB),
    wait,
    timeout: 10_000,
    reuse: false,
  });
  print(`limited-${wait}`, summary(result));
  await result.done;
}
// A 10 MB body the server never reads: the write cannot finish.
for (const wait of ["sent", "accepted"] as const) {
  const stalled = await trigger(`${targets.stalled}/upload`, {
    body: new Uint8Array(10 * MB),
    wait,
    timeout: 1_000,
    reuse: false,
  });
  print(`backpressure-${wait}`, summary(stalled));
}
// The same over TLS, each with its own timeout: settled at it (Bun called
// a pending TLS write's callback ~10 s after the socket was destroyed, and
// the trigger waited for it). Wall times in ms, for the test to bound.
const tlsStalled: Array<{ code?: string; timeout: number; wall: number }> = [];
for (const timeout of [300, 400, 500, 600, 700, 800, 900, 1_000]) {
  const start = Date.now();
  const result = await trigger(`${targets.tlsStalled}/upload`, {
    body: new Uint8Array(20 * MB),
    caCerts: [targets.cert],
    timeout,
    reuse: false,
  });
  tlsStalled.push({
    code: result.error?.code,
    timeout,
    wall: Date.now() - start,
  });
}
print("tls-backpressure", tlsStalled);
// A stream with a chunk that is no bytes: BODY, signed or not (Bun threw
// at arrayBuffer()'s call: a TypeError without a code, or SIGN).
for (const signed of [false, true]) {
  const result = await trigger(`${targets.recorder}/bad-chunk`, {
    body: new ReadableStream({
      start(controller) {
        controller.enqueue(42 as unknown as Uint8Array);
        controller.close();
      },
    }),
    sign: signed ? { secret: `whsec_${btoa("k".repeat(32))}` } : undefined,
    wait: "accepted",
    timeout: 5_000,
  });
  print(`stream-bad-chunk-${signed ? "signed" : "plain"}`, summary(result));
}
const silent = await trigger(targets.silent, {
  wait: "accepted",
  timeout: 300,
});
print("timeout", summary(silent));

// A reused connection that dies after the write: sent once more on a fresh
// one (the server checks both heads); resend: false reports it instead.
for (const resend of [true, false]) {
  await closeIdleConnections(); // each round starts on a fresh connection
  await (await trigger(`${targets.resend}?warm=${resend}`, {
    wait: "accepted",
  })).done;
  const again = await trigger(`${targets.resend}?resend=${resend}`, {
    wait: "accepted",
    json: { resend },
    resend,
    timeout: 5_000,
  });
  print(`resend-${resend}`, summary(again));
  await again.done;
}

// A server that refuses a large upload at its head and closes: the 413
// that arrived is reported, not the write's EPIPE, fresh or reused.
for (const reuse of [false, true]) {
  await closeIdleConnections();
  if (reuse) {
    await (await trigger(`${targets.early}/small`, {
      wait: "accepted",
      json: { small: true },
    })).done;
  }
  const early = await trigger(`${targets.early}/upload`, {
    wait: "accepted",
    body: new Uint8Array(8 * MB),
    timeout: 5_000,
  });
  print(`early-${reuse ? "reused" : "fresh"}`, summary(early));
  await early.done;
}

// maxConnections: 2 caps six triggers at two connections, the rest queue;
// a queued one whose timeout passes first leaves the queue with TIMEOUT.
const capped = Array.from(
  { length: 6 },
  (_, i) =>
    trigger(`${targets.capped}?i=${i}`, {
      wait: "accepted",
      json: { i },
      maxConnections: 2,
      timeout: 10_000,
    }),
);
const queuedOut = trigger(`${targets.capped}?queued-out`, {
  wait: "accepted",
  maxConnections: 2,
  timeout: 100,
});
print("capped", (await Promise.all(capped)).map(summary));
print("capped-queued-out", summary(await queuedOut));

// The background part, waited for as a shutdown handler would.
const slow = await trigger(targets.slow, { json: { slow: true } });
print("drain-before", summary(slow));
print("drain", await drainTriggers({ timeout: 10_000 }));
print("drain-outcome", await slow.outcome);

// Kept-alive connections (the ports origin's, say) stay in the pool but
// unref'd: the process exits now, not when they expire.
print("idle-at-end", { count: idleConnectionCount(), at: Date.now() });
