// A stored body is bounded by maxBodySize (1 MiB by default): over it,
// refused at the call when its size is known then (RangeError), else once
// read past the bound (OutboxError "TOO_LARGE"); nothing is stored either
// way. A body at the bound is stored and delivered byte for byte.
import assert from "node:assert/strict";
import { openOutbox, OutboxError } from "../../src/durable/mod.ts";
import { until, within } from "../_wait.ts";

const MiB = 1_048_576;

/** Bytes 0…size-1 with a pattern (so a reordered or truncated copy shows). */
function pattern(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7 + (i >> 11)) & 0xff;
  return bytes;
}

/** A stream of `bytes` in `chunk`-sized pieces, pulled on demand; counts
 * the pieces pulled and whether it was cancelled. */
function streamOf(bytes: Uint8Array, chunk: number) {
  const seen = { pulled: 0, cancelled: false };
  let offset = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.byteLength) return controller.close();
      seen.pulled++;
      controller.enqueue(bytes.slice(offset, offset + chunk));
      offset += chunk;
    },
    cancel() {
      seen.cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, seen };
}

Deno.test("outbox.trigger() refuses a body over maxBodySize (1 MiB by default) and stores nothing; one at the bound is stored and delivered byte for byte", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox_body_" });
  const received: Uint8Array[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      received.push(new Uint8Array(await request.arrayBuffer()));
      return new Response(null, { status: 204 });
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}/hook`;
  const outbox = await openOutbox({ dir });
  try {
    // Known at the call: a RangeError naming the size, nothing to await.
    const over = pattern(MiB + 1);
    const refused = { name: "RangeError", message: /1048577 bytes/ };
    assert.throws(() => outbox.trigger(url, { body: over }), refused);
    assert.throws(() => outbox.trigger(url, { body: over.buffer }), refused);
    assert.throws(
      () => outbox.trigger(url, { body: "x".repeat(MiB + 1) }),
      refused,
    );
    assert.throws(
      () => outbox.trigger(url, { body: new Blob([over]) }),
      refused,
    );
    assert.throws(
      () => outbox.trigger(url, { json: "x".repeat(MiB - 1) }),
      { name: "RangeError", message: /maxBodySize.*1048577 bytes/ },
    );

    // Known once read: reading stops past the bound (the stream is
    // cancelled, not drained) and the call rejects with TOO_LARGE.
    const endless = streamOf(pattern(8 * MiB), 64 * 1024);
    await assert.rejects(
      within(outbox.trigger(url, { body: endless.stream }), "stream refused"),
      (error) => {
        assert.ok(error instanceof OutboxError, String(error));
        assert.equal(error.code, "TOO_LARGE");
        assert.match(
          error.message,
          /not stored.*maxBodySize \(1048576 bytes\)/,
        );
        return true;
      },
    );
    assert.ok(endless.seen.cancelled, "the stream was cancelled");
    assert.ok(
      endless.seen.pulled <= 18,
      `read ${endless.seen.pulled} chunks of 64 KiB, not the whole 8 MiB`,
    );
    const form = new FormData();
    form.append("file", new Blob([over]), "big.bin");
    await assert.rejects(
      within(outbox.trigger(url, { body: form }), "form refused"),
      { name: "OutboxError", code: "TOO_LARGE" },
    );
    // A stream that fails: a typed error too, not the stream's own.
    const broken = new ReadableStream({
      start(controller) {
        controller.enqueue(new Uint8Array(10));
        controller.error(new Error("disk gone"));
      },
    });
    await assert.rejects(
      within(outbox.trigger(url, { body: broken }), "broken refused"),
      { name: "OutboxError", code: "BODY", message: /disk gone/ },
    );
    assert.equal((await outbox.stats()).queued, 0, "nothing was stored");

    // At the bound: stored, then delivered unchanged.
    const atBound = pattern(MiB);
    await outbox.trigger(url, { body: atBound });
    await outbox.trigger(url, { body: streamOf(atBound, 100_000).stream });
    await outbox.trigger(url, { body: new Blob([atBound]) });
    assert.equal((await outbox.stats()).queued, 3);
    outbox.start();
    await until(() => received.length === 3, "three deliveries");
    for (const body of received) assert.deepEqual(body, atBound);
    await until(
      async () => (await outbox.stats()).delivered === 3,
      "three settled",
    );
  } finally {
    await outbox.stop();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openOutbox({ maxBodySize }) takes whole bytes from 0 to 64 MiB, refusing others synchronously by value; 0 allows no body", async () => {
  for (const bad of [-1, 1.5, NaN, "1024", 67_108_865]) {
    assert.throws(
      () => openOutbox({ maxBodySize: bad as number }),
      {
        name: "RangeError",
        message: new RegExp(
          `maxBodySize must be a whole number of bytes from 0 to 67108864, received ${
            typeof bad === "string" ? `"${bad}"` : bad
          }`,
        ),
      },
    );
  }
  const dir = await Deno.makeTempDir({ prefix: "outbox_body_" });
  const outbox = await openOutbox({ dir, maxBodySize: 0 });
  try {
    const url = "http://127.0.0.1:9/";
    assert.throws(() => outbox.trigger(url, { body: "x" }), {
      name: "RangeError",
      message: /at most 0 bytes \(maxBodySize\), received 1 bytes/,
    });
    await assert.rejects(
      outbox.trigger(url, { body: streamOf(new Uint8Array(1), 1).stream }),
      { name: "OutboxError", code: "TOO_LARGE" },
    );
    assert.equal((await outbox.stats()).queued, 0);
    await outbox.trigger(url, { method: "POST" });
    await outbox.trigger(url, {
      body: new ReadableStream({ start: (c) => c.close() }),
    });
    assert.equal((await outbox.stats()).queued, 2);
  } finally {
    await outbox.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A body stream that sends `first` and then nothing more, ever; tells
 * whether it was cancelled. */
function stalled(first: Uint8Array) {
  const seen = { cancelled: false };
  let sent = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(first);
      }
      return new Promise<void>(() => {}); // never more
    },
    cancel() {
      seen.cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, seen };
}

Deno.test("outbox.trigger() with a body stream that stops: TIMEOUT (not stored) after queryTimeout, CLOSED when the outbox closes first, the caller's stream cancelled; a refused trigger cancels its stream too", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox_body_" });
  const url = "http://127.0.0.1:9/never";
  const outbox = await openOutbox({ dir, queryTimeout: 300 });
  try {
    const slow = stalled(new Uint8Array([1, 2, 3]));
    await within(
      assert.rejects(
        outbox.trigger(url, { method: "POST", body: slow.stream }),
        (error: unknown) => {
          assert.ok(error instanceof OutboxError, String(error));
          assert.equal(error.code, "TIMEOUT");
          assert.match(
            error.message,
            /not stored: the body was not read within 300 ms/,
          );
          return true;
        },
      ),
      "a stalled body's TIMEOUT (no read deadline)",
      10_000,
    );
    assert.equal(slow.seen.cancelled, true, "the stalled stream was cancelled");

    // Refused at the call (a bad delay): the stream is let go at once.
    const refused = stalled(new Uint8Array([1]));
    assert.throws(
      () =>
        outbox.trigger(url, {
          method: "POST",
          body: refused.stream,
          delay: -1,
        }),
      RangeError,
    );
    await until(() => refused.seen.cancelled, "the refused stream cancelled");
    // Refused before the outbox takes it (trigger()'s own checks, an option
    // the outbox cannot store): let go too.
    for (
      const bad of [
        { headers: { "bad name": "x" } },
        { signal: new AbortController().signal },
        { method: "GET" },
      ]
    ) {
      const early = stalled(new Uint8Array([1]));
      assert.throws(
        () =>
          outbox.trigger(url, { method: "POST", ...bad, body: early.stream }),
        TypeError,
      );
      await until(
        () => early.seen.cancelled,
        `the stream refused with ${JSON.stringify(bad)} cancelled`,
      );
    }

    assert.equal((await outbox.stats()).queued, 0, "nothing stored");
  } finally {
    await outbox.stop();
  }

  // Closed while a body is read (a long queryTimeout): CLOSED at once.
  const again = await openOutbox({ dir, queryTimeout: 60_000 });
  const open = stalled(new Uint8Array([4, 5]));
  const storing = again.trigger(url, { method: "POST", body: open.stream });
  await new Promise((resolve) => setTimeout(resolve, 50));
  await again.stop();
  await within(
    assert.rejects(storing, (error: unknown) => {
      assert.ok(error instanceof OutboxError, String(error));
      assert.equal(error.code, "CLOSED");
      assert.match(
        error.message,
        /not stored: the outbox closed while the body was read/,
      );
      return true;
    }),
    "the read's end when the outbox closed (stop() did not end it)",
    10_000,
  );
  assert.equal(open.seen.cancelled, true);
  // A closed outbox refuses, and lets the stream go.
  const late = stalled(new Uint8Array([6]));
  await assert.rejects(
    again.trigger(url, { method: "POST", body: late.stream }),
    { name: "OutboxError", message: /the outbox is closed/ },
  );
  await until(
    () => late.seen.cancelled,
    "the stream given to a closed outbox cancelled",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("outbox.trigger(): stream bodies being read count against the 64 MiB of body text waiting to be stored: of 60 streams that stall after 1 MiB, at least 13 are refused OVERLOADED (cancelled, before any TIMEOUT), the others TIMEOUT; then the budget is back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox_body_" });
  const url = "http://127.0.0.1:9/never";
  const outbox = await openOutbox({ dir, queryTimeout: 3_000 });
  // One 64 KiB chunk given 16 times per stream: 60 MiB read in all, little
  // of it held by the test itself.
  const chunk = pattern(64 * 1024);
  const streams = Array.from({ length: 60 }, () => {
    const seen = { cancelled: false };
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 16) return controller.enqueue(chunk);
        return new Promise<void>(() => {}); // never more
      },
      cancel() {
        seen.cancelled = true;
      },
    }, { highWaterMark: 0 });
    return { stream, seen };
  });
  try {
    const settled: string[] = [];
    await within(
      Promise.all(
        streams.map(({ stream }) =>
          outbox.trigger(url, { method: "POST", body: stream }).then(
            () => settled.push("stored"),
            (error) => {
              assert.ok(error instanceof OutboxError, String(error));
              if (error.code === "OVERLOADED") {
                assert.match(
                  error.message,
                  /not stored: .* 67108864 bytes of their bodies, are already waiting .* or being read/,
                );
              }
              settled.push(error.code);
            },
          )
        ),
      ),
      "60 stalled stream bodies settled",
      30_000,
    );
    const overloaded = settled.filter((code) => code === "OVERLOADED").length;
    // 1 MiB stored is 1,398,104 characters of base64: 47 fit in 64 MiB.
    assert.ok(
      overloaded >= 13,
      `${overloaded} OVERLOADED (bodies being read were not counted): ${settled}`,
    );
    assert.deepEqual(
      settled,
      [
        ...Array(overloaded).fill("OVERLOADED"),
        ...Array(60 - overloaded).fill("TIMEOUT"),
      ],
      "refused at once, before the reads under way timed out",
    );
    for (const [i, { seen }] of streams.entries()) {
      assert.ok(seen.cancelled, `stream ${i} cancelled`);
    }
    assert.equal((await outbox.stats()).queued, 0, "nothing stored");
    // Every read gave its share back: a body of 1 MiB is read and stored.
    await within(
      outbox.trigger(url, { body: streamOf(pattern(MiB), 64 * 1024).stream }),
      "a stream after the refusals",
    );
    assert.equal((await outbox.stats()).queued, 1);
  } finally {
    await outbox.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
