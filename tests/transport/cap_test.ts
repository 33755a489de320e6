// The per-origin connection cap: triggers beyond it wait in a queue, within
// their timeout and signal; a flood at one origin stays within a bounded
// number of file descriptors; running out of descriptors anyway is a typed
// CONNECT failure, not a crash.
import assert from "node:assert/strict";
import { closeIdleConnections, trigger } from "../../mod.ts";
import {
  connectionCounts,
  DEFAULT_MAX_CONNECTIONS,
  MAX_IDLE_PER_ORIGIN,
  release,
  tryAcquire,
  waitTurn,
} from "../../src/transport/_pool.ts";
import { denoRecorder, netServer } from "../_servers.ts";
import { within } from "../_wait.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function openFds(): number {
  let count = 0;
  for (const _ of Deno.readDirSync("/proc/self/fd")) count++;
  return count;
}

const NODE_COUNTER = `
let received = 0;
const server = require("node:http").createServer((req, res) => {
  let length = 0;
  req.on("data", (chunk) => length += chunk.length);
  req.on("end", () => {
    if (length === Number(req.headers["content-length"])) received++;
    res.writeHead(202).end();
  });
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
process.stdin.on("data", () => console.log(received)).on("end", () => process.exit(0));
`;

/** A Node http target in its own process (its descriptors are its own),
 * counting intact bodies. */
async function nodeCounter() {
  const child = new Deno.Command("node", {
    args: ["-e", NODE_COUNTER],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const port = Number((await within(lines.read(), "node", 10_000)).value);
  const writer = child.stdin.getWriter();
  return {
    url: `http://127.0.0.1:${port}/hook`,
    async received(): Promise<number> {
      await writer.write(new Uint8Array([10]));
      return Number((await within(lines.read(), "count", 10_000)).value);
    },
    async close() {
      await writer.close();
      await lines.cancel();
      await child.status;
    },
  };
}

Deno.test("15,000 triggers at once at one origin all arrive, the sender under 1,500 open descriptors", async () => {
  const target = await nodeCounter();
  const before = openFds();
  let peak = before;
  const sampler = setInterval(() => peak = Math.max(peak, openFds()), 5);
  try {
    const started = performance.now();
    const results = await within(
      Promise.all(
        Array.from(
          { length: 15_000 },
          (_, i) => trigger(target.url, { json: { i }, timeout: 60_000 }),
        ),
      ),
      "15,000 triggers",
      60_000,
    );
    const outcomes = await within(
      Promise.all(results.map((r) => r.outcome)),
      "their outcomes",
      60_000,
    );
    const took = performance.now() - started;
    peak = Math.max(peak, openFds());
    const failed = outcomes.filter((o) => !o.ok);
    assert.equal(failed.length, 0, failed[0]?.error?.message);
    assert.equal(results.filter((r) => !r.ok).length, 0);
    assert.equal(await target.received(), 15_000);
    console.log(
      `15,000 triggers in ${
        took.toFixed(0)
      } ms; open fds ${before} before, at most ${peak}`,
    );
    assert.ok(peak < 1_500, `at most ${peak} open descriptors`);
  } finally {
    clearInterval(sampler);
    await closeIdleConnections();
    await target.close();
  }
  assert.deepEqual(connectionCounts(), { open: 0, waiting: 0 });
});

Deno.test("queued triggers obey their timeout and signal, and the queue moves on", async () => {
  const target = denoRecorder({ delay: 300 });
  const url = `${target.origin}/slow`;
  try {
    const options = { wait: "accepted", maxConnections: 1 } as const;
    const holder = trigger(url, { ...options, json: "holder" });
    await sleep(20); // the holder has the one connection
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const [timedOut, aborted] = await Promise.all([
      trigger(url, { ...options, json: "timeout", timeout: 100 }),
      trigger(url, { ...options, json: "signal", signal: controller.signal }),
    ]);
    assert.equal(timedOut.error?.code, "TIMEOUT", timedOut.error?.message);
    assert.equal(aborted.error?.code, "ABORTED", aborted.error?.message);
    assert.match(timedOut.error!.message, /waiting for a connection/);
    assert.ok(timedOut.elapsed < 290, `${timedOut.elapsed} ms in the queue`);
    assert.ok(aborted.elapsed < 290, `${aborted.elapsed} ms in the queue`);
    assert.equal(connectionCounts().waiting, 0, "both left the queue");

    const next = trigger(url, { ...options, json: "next" });
    assert.equal((await holder).status, 202);
    assert.equal((await next).status, 202);
    await (await holder).done;
    await (await next).done;
    const seen = [
      await within(target.seen.take(), "the holder's request", 5_000),
      await within(target.seen.take(), "the next request", 5_000),
    ];
    assert.deepEqual(
      seen.map((s) => new TextDecoder().decode(s.body)),
      ['"holder"', '"next"'],
    );
    await sleep(50);
    assert.equal(
      target.seen.size,
      0,
      "the queued-out triggers were never sent",
    );
  } finally {
    await closeIdleConnections();
    await target.close();
  }
});

Deno.test("maxConnections must be a positive integer", () => {
  for (const bad of [0, -1, 1.5, NaN, "8"]) {
    assert.throws(
      () => trigger("http://127.0.0.1:1/", { maxConnections: bad as number }),
      RangeError,
    );
  }
  assert.throws(
    () =>
      trigger("http://127.0.0.1:1/", { resend: "no" as unknown as boolean }),
    TypeError,
  );
});

Deno.test("running out of file descriptors is a typed CONNECT failure, not a crash", async () => {
  const target = denoRecorder();
  const child = `
    import { trigger } from ${
    JSON.stringify(new URL("../../mod.ts", import.meta.url).href)
  };
    const results = await Promise.all(Array.from({ length: 300 }, () =>
      trigger(${
    JSON.stringify(target.origin + "/")
  }, { body: "x", maxConnections: 1000, timeout: 10000 })));
    const codes = {};
    let message;
    for (const result of results) {
      const outcome = await result.outcome;
      const code = outcome.ok ? "ok" : outcome.error.code;
      codes[code] = (codes[code] ?? 0) + 1;
      if (!outcome.ok) message = outcome.error.message;
    }
    console.log(JSON.stringify({ codes, message }));
  `;
  try {
    const { code, stdout, stderr } = await new Deno.Command("sh", {
      args: [
        "-c",
        `ulimit -n 100 && exec "$0" eval --no-config "$1"`,
        Deno.execPath(),
        child,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    assert.equal(code, 0, decoder.decode(stderr));
    const { codes, message } = JSON.parse(decoder.decode(stdout));
    assert.ok(codes.CONNECT > 0, JSON.stringify(codes));
    assert.deepEqual(Object.keys(codes).sort(), ["CONNECT", "ok"]);
    assert.match(message, /too many open files|os error 24/i);
    while (target.seen.size > 0) await target.seen.take();
  } finally {
    await target.close();
  }
});

Deno.test("accepted callers that fire again at once: with maxConnections 1 each waits its turn; an abort right after the answer closes the connection", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("a body to read on", { status: 202 }),
  );
  const url = `http://127.0.0.1:${server.addr.port}/again`;
  try {
    // The caller resumes at its status, before the connection is back in
    // the pool: the next trigger queues for the one place, then takes it.
    let last;
    for (let i = 0; i < 20; i++) {
      last = await within(
        trigger(url, { wait: "accepted", maxConnections: 1, timeout: 5_000 }),
        `accepted trigger ${i}`,
      );
      assert.equal(last.status, 202);
    }
    await within(last!.done, "the last trigger's background part");
    assert.deepEqual(connectionCounts(), { open: 1, waiting: 0 });
    await closeIdleConnections();

    const controller = new AbortController();
    const result = await trigger(url, {
      wait: "accepted",
      signal: controller.signal,
    });
    controller.abort();
    assert.equal(result.status, 202);
    const outcome = await within(result.outcome, "the outcome");
    assert.equal(outcome.status, 202, "the status already reported stands");
    assert.deepEqual(connectionCounts(), { open: 0, waiting: 0 });
  } finally {
    await closeIdleConnections();
    await server.shutdown();
  }
});

/** `count` triggers to `url` at once under `maxConnections: 1`, each
 * answered 202 and over. */
async function cappedAtOne(url: string, count: number): Promise<void> {
  const capped = await Promise.all(
    Array.from(
      { length: count },
      () =>
        trigger(url, { wait: "accepted", maxConnections: 1, timeout: 10_000 }),
    ),
  );
  for (const result of capped) {
    assert.equal(result.status, 202, result.error?.message);
    await within(result.done, "a capped trigger's done");
  }
}

Deno.test("maxConnections counts connections carrying a request: idle ones left by triggers with a larger cap make no room beyond it", async () => {
  let inFlight = 0;
  let peak = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await request.text();
      if (new URL(request.url).pathname === "/slow") await sleep(200);
      inFlight--;
      return new Response(null, { status: 202 });
    },
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    // Four at once with the default cap: four connections, idle after.
    const warm = await Promise.all(
      Array.from({ length: 4 }, () => trigger(`${base}/warm`)),
    );
    await within(Promise.all(warm.map((r) => r.done)), "the warm-up");
    assert.equal(connectionCounts().open, 4, "four idle connections");
    peak = 0;
    await cappedAtOne(`${base}/slow`, 4);
    assert.equal(peak, 1, "one request at a time under maxConnections: 1");
  } finally {
    await closeIdleConnections();
    await server.shutdown();
  }
});

Deno.test("a trigger queued at its maxConnections is not given a fresh connection when an idle one closes while its cap is still taken", async () => {
  // Answers keep-alive, /slow after 500 ms, and closes a connection idle for
  // 100 ms (without announcing it): the idle ones close while one capped
  // trigger runs and another waits.
  let inFlight = 0;
  let peak = 0;
  const server = await netServer((socket) => {
    let idle: ReturnType<typeof setTimeout> | undefined;
    socket.on("data", (chunk) => {
      clearTimeout(idle);
      const slow = chunk.toString("latin1").startsWith("GET /slow");
      inFlight++;
      peak = Math.max(peak, inFlight);
      setTimeout(() => {
        inFlight--;
        socket.write("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
        idle = setTimeout(() => socket.end(), 100);
      }, slow ? 500 : 0);
    });
  });
  const base = `http://127.0.0.1:${server.port}`;
  try {
    const warm = await Promise.all(
      Array.from({ length: 3 }, () => trigger(`${base}/warm`)),
    );
    await within(Promise.all(warm.map((r) => r.done)), "the warm-up");
    peak = 0;
    await cappedAtOne(`${base}/slow`, 2);
    assert.equal(peak, 1, "one request at a time under maxConnections: 1");
  } finally {
    await closeIdleConnections();
    await server.close();
  }
});

Deno.test("a connection closed goes to the first waiter whose maxConnections leaves room: one still at its lower cap keeps its place but holds nobody up", async () => {
  // Two callers with different caps on one origin, answered with
  // Connection: close (every answer closes its connection).
  const key = "http://mixed-caps.test:1";
  const signal = new AbortController().signal;
  const served: string[] = [];
  const first = tryAcquire(key, 2, false);
  const second = tryAcquire(key, 2, false);
  assert.ok(first && second, "two places under a cap of 2");
  const low = waitTurn(key, { reuse: false, max: 1, signal }).then(() => {
    served.push("cap 1");
  });
  const high = waitTurn(key, { reuse: false, max: 2, signal }).then(() => {
    served.push("cap 2");
  });
  assert.deepEqual(connectionCounts(), { open: 2, waiting: 2 });
  // One closes: one carries a request, so cap 1 still waits; cap 2 fits.
  release(key, undefined);
  await within(high, "the cap-2 waiter given the freed place", 5_000);
  assert.deepEqual(served, ["cap 2"]);
  // Nobody arriving now takes a place ahead of the line: both are taken.
  assert.equal(tryAcquire(key, 2, false), undefined);
  assert.deepEqual(connectionCounts(), { open: 2, waiting: 1 });
  // Another closes, one still carries a request: cap 1 waits on; the
  // last closes, and cap 1 gets its turn.
  release(key, undefined);
  assert.deepEqual(served, ["cap 2"], "cap 1 still at its cap");
  release(key, undefined);
  await within(low, "the cap-1 waiter served", 5_000);
  assert.deepEqual(served, ["cap 2", "cap 1"]);
  release(key, undefined);
  assert.deepEqual(connectionCounts(), { open: 0, waiting: 0 });
});

Deno.test("the first waiter, at its lower cap, is passed over 16 times at most: then places are held back for it, newcomers wait", async () => {
  const key = "http://passed-over.test:1";
  const signal = new AbortController().signal;
  const served: string[] = [];
  // Two requests under way with a cap of 2; a cap-1 trigger waits first in
  // line, then cap-2 ones, and each request's connection closes after it.
  assert.ok(tryAcquire(key, 2, false) && tryAcquire(key, 2, false));
  const low = waitTurn(key, { reuse: false, max: 1, signal }).then(() => {
    served.push("cap 1");
  });
  const highs = Array.from(
    { length: 20 },
    (_, i) =>
      waitTurn(key, { reuse: false, max: 2, signal }).then(() => {
        served.push(`cap 2 #${i}`);
      }),
  );
  // Each close with two under way leaves one: cap 1 is at its cap, the
  // next cap-2 waiter goes past it, 16 times.
  for (let i = 0; i < 16; i++) {
    release(key, undefined);
    await Promise.resolve();
  }
  await within(highs[15], "the 16th cap-2 waiter served", 5_000);
  assert.deepEqual(served, highs.slice(0, 16).map((_, i) => `cap 2 #${i}`));
  // The next close leaves the place free for cap 1, and nobody else takes
  // it: not the next waiter, not a newcomer.
  release(key, undefined);
  assert.equal(tryAcquire(key, 2, false), undefined, "a newcomer waits");
  assert.deepEqual(connectionCounts(), { open: 1, waiting: 5 });
  release(key, undefined);
  await within(low, "the cap-1 waiter served", 5_000);
  // Then the line moves on in order, the place cap 1 leaves at once.
  await within(highs[16], "cap-2 waiter #16", 5_000);
  assert.deepEqual(served.slice(16), ["cap 1", "cap 2 #16"]);
  for (let i = 17; i < 20; i++) {
    release(key, undefined);
    await within(highs[i], `cap-2 waiter #${i}`, 5_000);
  }
  assert.deepEqual(served.slice(18), ["cap 2 #17", "cap 2 #18", "cap 2 #19"]);
  release(key, undefined);
  release(key, undefined);
  assert.deepEqual(connectionCounts(), { open: 0, waiting: 0 });
});

Deno.test("places held back for the first waiter go to the ones behind it when it gives up", async () => {
  const key = "http://held-back.test:1";
  const signal = new AbortController().signal;
  const lowAbort = new AbortController();
  assert.ok(tryAcquire(key, 2, false) && tryAcquire(key, 2, false));
  const low = waitTurn(key, { reuse: false, max: 1, signal: lowAbort.signal });
  const highs = Array.from(
    { length: 18 },
    () => waitTurn(key, { reuse: false, max: 2, signal }),
  );
  for (let i = 0; i < 16; i++) release(key, undefined); // 16 passes
  await within(highs[15], "the 16th cap-2 waiter served", 5_000);
  release(key, undefined); // held back for cap 1: one carries a request
  assert.deepEqual(connectionCounts(), { open: 1, waiting: 3 });
  lowAbort.abort(new Error("gave up"));
  await assert.rejects(low, /gave up/);
  // The place held back goes to the next in line at once.
  await within(highs[16], "cap-2 waiter #16 given the held place", 5_000);
  assert.deepEqual(connectionCounts(), { open: 2, waiting: 1 });
  release(key, undefined);
  await within(highs[17], "cap-2 waiter #17", 5_000);
  release(key, undefined);
  release(key, undefined);
  assert.deepEqual(connectionCounts(), { open: 0, waiting: 0 });
});

Deno.test("an expired idle connection discarded as a trigger asks for a place: the place is counted, the cap holds", () => {
  const key = "http://expired-idle.test:1";
  const conn = {
    write: () => Promise.resolve(),
    read: () => new Promise<Uint8Array | null>(() => {}),
    close() {},
  };
  assert.ok(tryAcquire(key, 1, true));
  release(key, conn); // idle now (its watch not started)
  // Later than it may be kept, before the sweeper ran: discarded here, it
  // was the origin's last connection.
  const later = performance.now() + 10_000;
  assert.ok(tryAcquire(key, 1, true, later), "a fresh place");
  assert.deepEqual(connectionCounts(), { open: 1, waiting: 0 });
  assert.equal(tryAcquire(key, 1, false), undefined, "the cap of 1 holds");
  release(key, undefined);
  assert.deepEqual(connectionCounts(), { open: 0, waiting: 0 });
});

Deno.test("a burst that fills the default cap finds its connections again: the next burst opens none; past the idle cap, the rest are closed", async () => {
  const ports = new Set<number>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request, info) => {
      await request.arrayBuffer();
      ports.add(info.remoteAddr.port);
      // Slow enough that a burst fills the cap before answers come back.
      await sleep(20);
      return new Response(null, { status: 202 });
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}/burst`;
  const burst = async (maxConnections?: number) => {
    const results = await Promise.all(
      Array.from({ length: 200 }, () => trigger(url, { maxConnections })),
    );
    assert.ok(results.every((result) => result.ok));
    await within(Promise.all(results.map((r) => r.done)), "the burst", 20_000);
  };
  try {
    await burst();
    assert.equal(ports.size, DEFAULT_MAX_CONNECTIONS, "the cap filled");
    assert.equal(connectionCounts().open, MAX_IDLE_PER_ORIGIN, "all kept");
    for (let i = 0; i < 3; i++) await burst();
    assert.equal(ports.size, DEFAULT_MAX_CONNECTIONS, "no new connection");
    // A larger cap opens more; only MAX_IDLE_PER_ORIGIN of them are kept.
    await burst(200);
    assert.ok(ports.size > MAX_IDLE_PER_ORIGIN, `${ports.size} connections`);
    assert.equal(connectionCounts().open, MAX_IDLE_PER_ORIGIN);
  } finally {
    await closeIdleConnections();
    await server.shutdown();
  }
});
