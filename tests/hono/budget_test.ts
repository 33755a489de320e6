// verifyTrigger()'s memory bound for bodies not yet authenticated: 200
// connections that each declare a 1 MiB body with a current timestamp and a
// random signature, send all of it but the last byte, and stall. The server
// (another process, so its memory is its own) must grow by less than 200 MB
// (without the budget: +295 MB; with it, +35 MB while declared lengths were
// reserved, +80 to +96 MB since the budget counts arriving bytes: every
// connection's body starts being read, and the platform's buffers for 200
// reads are what grows);
// once the bytes that arrived fill its budget it answers 503 with
// Retry-After, and the stalled ones end at the default body timeout with 408.
// Then the shared stream reader's own bounds: chunks that are views on large
// buffers, and declared lengths that never arrive.
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createSecret, signPayload } from "../../mod.ts";
import { sleep } from "../_hono_client.ts";
import { until, within } from "../_wait.ts";
import { Hono } from "hono";
import { verifyTrigger } from "../../src/hono/mod.ts";
import { readBody } from "../../src/hono/_body.ts";
import { ByteBudget } from "../../src/_byte_budget.ts";
import { readStream } from "../../src/_read_stream.ts";

const CONNECTIONS = 200;
const BODY = 1_048_576;
const encoder = new TextEncoder();

async function rss(base: string): Promise<number> {
  const response = await fetch(`${base}/rss`);
  return (await response.json()).rss;
}

/** The first bytes a connection answers; one read, shared by every wait. */
function firstAnswer(conn: Deno.Conn): Promise<string> {
  const buffer = new Uint8Array(1024);
  return conn.read(buffer).then(
    (n) => n === null ? "" : new TextDecoder().decode(buffer.subarray(0, n)),
    () => "",
  );
}

Deno.test({
  name:
    "verifyTrigger() bounds unauthenticated bodies in memory: 200 stalled 1 MiB bodies grow the server < 200 MB",
  // The writes left pending on stalled sockets end with the connections.
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const secret = createSecret();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      new URL("../_hono_budget_server.ts", import.meta.url).pathname,
      secret,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const conns: Deno.Conn[] = [];
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    const first = await Promise.race([
      reader.read(),
      sleep(30_000).then(() => ({ value: undefined })),
    ]);
    assert.ok(first.value, "the server did not start within 30 s");
    reader.releaseLock();
    child.stdout.cancel().catch(() => {});
    const { port } = JSON.parse(first.value);
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 3; i++) await rss(base); // warm up
    const before = await rss(base);

    const timestamp = Math.floor(Date.now() / 1000);
    const body = new Uint8Array(BODY - 1).fill(0x61);
    for (let i = 0; i < CONNECTIONS; i++) {
      const signature = "v1," +
        btoa(
          String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))),
        );
      const head = `POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        `Content-Length: ${BODY}\r\nwebhook-id: msg_stall_${i}\r\n` +
        `webhook-timestamp: ${timestamp}\r\nwebhook-signature: ${signature}\r\n\r\n`;
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(conn);
      await conn.write(encoder.encode(head));
      // Not awaited: a refused request's body is never read.
      conn.write(body).catch(() => {});
    }
    // Let the admitted bodies arrive (well within the 10 s body timeout).
    let peak = 0;
    for (let i = 0; i < 6; i++) {
      await sleep(500);
      peak = Math.max(peak, await rss(base));
    }
    const grown = (peak - before) / 1_048_576;
    const pending = conns.map(firstAnswer);
    const answers = await Promise.all(
      pending.map((a) => within(a, "an answer at once", 1000).catch(() => "")),
    );
    const refused = answers.filter((a) => a.startsWith("HTTP/1.1 503"));
    console.log(
      `server RSS ${Math.round(before / 1_048_576)} MB -> peak ${
        Math.round(peak / 1_048_576)
      } MB (+${
        grown.toFixed(1)
      } MB); ${refused.length} of ${CONNECTIONS} answered 503 at once`,
    );
    assert.ok(grown < 200, `the server grew by ${grown.toFixed(1)} MB`);
    assert.ok(refused.length >= CONNECTIONS / 2, `${refused.length} refused`);
    assert.match(refused[0], /\r\nretry-after: 5\r\n/i);
    // The admitted ones stall: the default bodyTimeout (10 s) ends them.
    const admitted = pending.filter((_, i) => answers[i] === "");
    const late = await Promise.all(
      admitted.map((a) => within(a, "the 408 at the body timeout", 15_000)),
    );
    assert.ok(late.length > 0, "no body was admitted at all");
    for (const answer of late) {
      assert.match(answer, /^HTTP\/1\.1 408/);
      assert.match(answer, /Request body not received within 10000 ms/);
    }
  } finally {
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // Closed by the server already.
      }
    }
    child.kill("SIGTERM");
    await child.status;
  }
});

Deno.test("the body reader answers 'too large', never 'busy', for a body over the whole budget", async () => {
  // The middlewares refuse maxBodySize > maxBufferedBytes at construction;
  // the reader holds the line on its own too: a retry could never fit.
  const budget = new ByteBudget(100);
  const app = new Hono();
  app.post("/", async (c) => {
    const read = await readBody(c, { maxBodySize: Infinity, budget });
    if (read.ok) read.release();
    return c.text(read.ok ? "ok" : read.failure);
  });
  const declared = await app.request("/", {
    method: "POST",
    body: "x".repeat(200),
  });
  assert.equal(await declared.text(), "too large");
  const chunked = await app.request("/", {
    method: "POST",
    body: new Blob(["x".repeat(200)]).stream(),
    // @ts-ignore: Deno's RequestInit takes duplex for a stream body
    duplex: "half",
  });
  assert.equal(await chunked.text(), "too large");
  assert.equal(budget.left, 100, "every byte given back");
  const fits = await app.request("/", {
    method: "POST",
    body: "x".repeat(100),
  });
  assert.equal(await fits.text(), "ok");
  assert.equal(budget.left, 100);
});

Deno.test("the shared stream reader: a budget's lone holder may pass its bound only with `lone` (the outbox's rule); every refusal cancels the stream and gives its bytes back", async () => {
  /** A stream of `count` chunks of `size` bytes; tells if cancelled. */
  const chunks = (count: number, size: number) => {
    const seen = { cancelled: false };
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < count) controller.enqueue(new Uint8Array(size));
        else controller.close();
      },
      cancel() {
        seen.cancelled = true;
      },
    }, { highWaterMark: 0 });
    return { stream, seen };
  };
  // The outbox's rule: alone, a body larger than the whole budget is read.
  const lone = new ByteBudget(100, true);
  const alone = await readStream(chunks(3, 50).stream, {
    max: 1000,
    budget: lone,
  });
  assert.ok(alone.ok);
  assert.equal(alone.bytes.byteLength, 150);
  // Not while it is held: another holder finds no room, and is cancelled.
  const other = chunks(1, 1);
  const refused = await readStream(other.stream, { max: 1000, budget: lone });
  assert.deepEqual(refused, { ok: false, end: "busy" });
  assert.ok(other.seen.cancelled);
  // Nothing to hold fits even then: a body-less trigger is not OVERLOADED
  // while one large stream is read.
  assert.equal(lone.take(0), true);
  alone.release();
  alone.release(); // once only
  assert.equal(lone.left, 100);
  // Counted by `weigh` (the outbox counts base64): 75 bytes weigh 100.
  const weighed = await readStream(chunks(3, 25).stream, {
    max: 1000,
    budget: lone,
    weigh: (n) => Math.ceil(n / 3) * 4,
  });
  assert.ok(weighed.ok);
  assert.equal(lone.left, 0);
  if (weighed.ok) weighed.release();

  // The receiving side's rule: never past the bound; the bytes go back.
  const strict = new ByteBudget(100);
  const over = chunks(3, 50);
  const busy = await readStream(over.stream, { max: 1000, budget: strict });
  assert.deepEqual(busy, { ok: false, end: "busy" });
  assert.ok(over.seen.cancelled);
  assert.equal(strict.left, 100);
  // Stopped by its signal: "stopped", cancelled.
  const stop = new AbortController();
  const stalled = new ReadableStream<Uint8Array>({
    pull: () => new Promise<void>(() => {}),
  });
  const reading = readStream(stalled, { max: 10, signal: stop.signal });
  stop.abort();
  assert.deepEqual(await within(reading, "the stopped read"), {
    ok: false,
    end: "stopped",
  });
});

Deno.test("the shared stream reader refuses a chunk that is not a Uint8Array (a string's size is NaN) before counting it: the read fails, the stream is cancelled, and the budget still refuses what it should", async () => {
  // Found by review: a stream of strings made the budget's count NaN, and
  // from then on every take() succeeded (the outbox's 64 MiB bound gone).
  for (const lone of [false, true]) {
    const budget = new ByteBudget(100, lone);
    for (
      const chunk of [
        "abc",
        new ArrayBuffer(5),
        new Uint16Array(4),
        null,
        { byteLength: 1 },
      ]
    ) {
      const seen = { cancelled: false };
      let sent = 0;
      // A first Uint8Array chunk takes 10 bytes of the budget.
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent++ === 0) controller.enqueue(new Uint8Array(10));
          else controller.enqueue(chunk as Uint8Array);
        },
        cancel() {
          seen.cancelled = true;
        },
      }, { highWaterMark: 0 });
      const read = await readStream(stream, { max: 1000, budget });
      assert.equal(read.ok, false, `${lone}: ${Deno.inspect(chunk)}`);
      if (read.ok) continue;
      assert.equal(read.end, "failed");
      assert.ok(read.error instanceof TypeError, String(read.error));
      assert.match(
        String(read.error),
        /A stream chunk must be a Uint8Array, received /,
      );
      assert.ok(seen.cancelled, "the stream is cancelled");
      assert.equal(budget.left, 100, "every byte given back");
    }
    // The bound still holds: 101 bytes do not fit beside 1 held.
    assert.equal(budget.take(1), true);
    assert.equal(budget.take(100), false, `lone: ${lone}`);
    assert.equal(budget.take(99), true);
    budget.give(100);
    assert.equal(budget.left, 100);
  }
  // The budget refuses what cannot be a count of bytes.
  const budget = new ByteBudget(100);
  for (const bad of [NaN, -1, Infinity, -Infinity]) {
    assert.throws(() => budget.take(bad), RangeError);
    assert.throws(() => budget.take(1, bad), RangeError);
    assert.throws(() => budget.give(bad), RangeError);
  }
  assert.equal(budget.left, 100);
  assert.equal(budget.take(101), false);
  // A `weigh` that answers NaN fails the read the same way.
  const weighed = await readStream(ReadableStream.from([new Uint8Array(3)]), {
    max: 10,
    budget,
    weigh: () => NaN,
  });
  assert.equal(weighed.ok, false);
  assert.equal(!weighed.ok && weighed.end, "failed");
  assert.equal(budget.left, 100);
});

/** A full garbage collection (V8's `gc`, exposed at run time). */
function collector(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc");
}

/** Bytes of ArrayBuffers alive after a full collection. */
function external(gc: () => void): number {
  gc();
  return Deno.memoryUsage().external;
}

const KIB64 = 65_536;

Deno.test("the shared stream reader keeps no chunk's larger buffer: 1,000 one-byte views on 64 KiB buffers hold < 8 MiB while read", async () => {
  // Deno.serve hands a body sent a byte per write as views like these; the
  // reader kept the views, so each byte held its 64 KiB (64 MiB here).
  const gc = collector();
  const COUNT = 1000;
  const before = external(gc);
  let sent = 0;
  let during = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent === COUNT - 1) during = external(gc) - before;
      if (sent++ < COUNT) {
        controller.enqueue(new Uint8Array(new ArrayBuffer(KIB64), 7, 1));
      } else controller.close();
    },
  }, { highWaterMark: 0 });
  const read = await readStream(stream, { max: 1_048_576 });
  assert.ok(read.ok);
  assert.equal(read.bytes.byteLength, COUNT);
  console.log(
    `ArrayBuffers alive while reading ${COUNT - 1} one-byte chunks: +${
      (during / 1_048_576).toFixed(2)
    } MiB`,
  );
  assert.ok(during < 8 * 1_048_576, `+${during} bytes held while reading`);
  assert.ok(
    read.bytes.buffer.byteLength <= COUNT * 9 / 8,
    `the bytes keep a ${read.bytes.buffer.byteLength}-byte buffer`,
  );
  // A lone small view is copied out of its large buffer too; a chunk that
  // fills its buffer is returned as is (no copy).
  const one = new Uint8Array(new ArrayBuffer(KIB64), 0, 1);
  const lone = await readStream(new Blob([]).stream(), { max: 10 });
  assert.ok(lone.ok);
  assert.equal(lone.bytes.byteLength, 0);
  const single = await readStream(
    new ReadableStream({
      start(c) {
        c.enqueue(one);
        c.close();
      },
    }),
    { max: 10 },
  );
  assert.ok(single.ok);
  assert.equal(single.bytes.buffer.byteLength, 1);
  const whole = new Uint8Array(KIB64);
  const kept = await readStream(
    new ReadableStream({
      start(c) {
        c.enqueue(whole);
        c.close();
      },
    }),
    { max: KIB64 },
  );
  assert.ok(kept.ok);
  assert.equal(kept.bytes, whole);
});

Deno.test({
  name:
    "Deno.serve: a body dribbled a byte per write is held in ~its size, not 64 KiB per byte",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const gc = collector();
  const BYTES = 2000;
  let chunks = 0;
  let before = 0;
  let during = 0;
  let measured = false;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      // Counts the chunks as they pass, and measures near the end.
      let seen = 0;
      const counted = request.body!.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            chunks++;
            seen += chunk.byteLength;
            // Once, near the end (writes may merge: no exact count).
            if (!measured && seen >= BYTES - 100) {
              measured = true;
              during = external(gc) - before;
            }
            controller.enqueue(chunk);
          },
        }),
      );
      const read = await readStream(counted, {
        max: 1_048_576,

        budget: new ByteBudget(1_048_576),
      });
      return new Response(read.ok ? String(read.bytes.byteLength) : read.end);
    },
  );
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
  });
  try {
    conn.setNoDelay(true);
    before = external(gc);
    await conn.write(encoder.encode(
      `POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${BYTES}\r\n\r\n`,
    ));
    const x = encoder.encode("x");
    const started = Date.now();
    for (let i = 0; i < BYTES && Date.now() - started < 20_000; i++) {
      await conn.write(x);
      if (i % 2 === 0) await sleep(1);
    }
    const answer = await within(firstAnswer(conn), "the answer");
    assert.match(answer, new RegExp(`\r\n\r\n${BYTES}$`));
    console.log(
      `${BYTES} bytes arrived in ${chunks} chunks; ArrayBuffers alive near the end: +${
        (during / 1_048_576).toFixed(2)
      } MiB`,
    );
    // Fewer chunks would not show the bound (the kernel merged the writes).
    assert.ok(chunks >= 200, `only ${chunks} chunks`);
    // Measured (the chunk in hand alone keeps its buffer alive), and small.
    assert.ok(measured, "never measured near the end");
    assert.ok(during > 0, `+${during} bytes measured near the end`);
    assert.ok(during < 8 * 1_048_576, `+${during} bytes held while reading`);
  } finally {
    conn.close();
    await server.shutdown();
  }
});

Deno.test({
  name:
    "verifyTrigger(): 20 requests that declare 1 MiB and send no body hold none of the budget; a signed webhook gets its 200",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const secret = createSecret();
  const app = new Hono();
  // Counts the requests that reached verifyTrigger(): the stalled ones must
  // all be in it, waiting for bodies, before the signed one is sent.
  let entered = 0;
  app.use("/hook", async (_c, next) => {
    entered++;
    await next();
  });
  app.post("/hook", verifyTrigger({ secret }), (c) => c.text("ran"));
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    app.fetch,
  );
  const port = server.addr.port;
  const stalled: Deno.Conn[] = [];
  try {
    const timestamp = Math.floor(Date.now() / 1000);
    for (let i = 0; i < 20; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      stalled.push(conn);
      await conn.write(encoder.encode(
        `POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1048576\r\n` +
          `webhook-id: msg_lock_${i}\r\nwebhook-timestamp: ${timestamp}\r\n` +
          `webhook-signature: v1,${"A".repeat(43)}=\r\n\r\n`,
      ));
    }
    // The server has their headers, and waits for bodies.
    await until(
      () => entered === 20,
      "the 20 stalled requests in verifyTrigger()",
    );
    const body = JSON.stringify({ ok: true });
    const id = "msg_real";
    const signature = await signPayload(secret, { id, timestamp, body });
    const response = await within(
      fetch(`http://127.0.0.1:${port}/hook`, {
        method: "POST",
        body,
        headers: {
          "webhook-id": id,
          "webhook-timestamp": String(timestamp),
          "webhook-signature": signature,
        },
      }),
      "the signed webhook's answer",
    );
    assert.equal(response.status, 200, await response.clone().text());
    assert.equal(await response.text(), "ran");
  } finally {
    for (const conn of stalled) conn.close();
    await server.shutdown();
  }
});
