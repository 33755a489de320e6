// The dispatcher's fetch size: about 50 ms of deliveries at the rate
// attempts start, never below `concurrency`, at most 4 × `concurrency` and
// 256 (or `concurrency` when larger), and within 384 MiB of bodies at
// `maxBodySize`. Driven with explicit times: no clock,
// no timing assertion.
import assert from "node:assert/strict";
import { FetchSize } from "../../src/durable/_dispatcher.ts";
import { openOutbox } from "../../src/durable/mod.ts";
import { until } from "../_wait.ts";

/** `n` attempts started evenly over `ms` from `from`; the size asked at the end. */
function after(size: FetchSize, from: number, n: number, ms: number): number {
  for (let i = 0; i < n; i++) size.started();
  return size.next(from + ms);
}

Deno.test("FetchSize: `concurrency` before any attempt and for a slow target", () => {
  const size = new FetchSize(10, 0);
  assert.equal(size.next(0), 10, "no rate measured yet");
  // 10 attempts per second (a target answering in a second): 0.5 jobs per
  // 50 ms, so the floor holds.
  let now = 0;
  for (let i = 0; i < 20; i++) {
    assert.equal(after(size, now, 1, 100), 10);
    now += 100;
  }
});

Deno.test("FetchSize: fast deliveries ask for more than `concurrency`, capped at 256", () => {
  const size = new FetchSize(64, 0);
  // 2 attempts per ms: 100 per 50 ms once the smoothed rate has caught up.
  let now = 0;
  let asked = 0;
  for (let i = 0; i < 10; i++) {
    asked = after(size, now, 40, 20);
    now += 20;
  }
  assert.ok(asked > 64, `asked ${asked}`);
  assert.ok(asked <= 100, `asked ${asked}`);
  assert.ok(asked >= 95, `the rate converges: asked ${asked}`);
  // 20 attempts per ms would be 1,000 per 50 ms: capped.
  for (let i = 0; i < 10; i++) {
    asked = after(size, now, 400, 20);
    now += 20;
  }
  assert.equal(asked, 256);
});

Deno.test("FetchSize: at most 4 × `concurrency`", () => {
  const size = new FetchSize(8, 0);
  let asked = 0;
  for (let now = 0; now < 200; now += 20) asked = after(size, now, 400, 20);
  assert.equal(asked, 32);
});

Deno.test("FetchSize: a concurrency above the cap is the size; the rate falls back when deliveries slow down", () => {
  const big = new FetchSize(1_000, 0, 64 * 1024);
  assert.equal(after(big, 0, 5_000, 10), 1_000);
  const size = new FetchSize(4, 0);
  let now = 0;
  for (let i = 0; i < 10; i++) {
    after(size, now, 100, 10);
    now += 10;
  }
  assert.ok(size.next(now) > 4);
  // Idle (the queue drained): each measured window halves the rate.
  for (let i = 0; i < 20; i++) {
    now += 500;
    size.next(now);
  }
  assert.equal(size.next(now + 500), 4);
});

Deno.test("FetchSize: calls within one 10 ms window keep the last size", () => {
  const size = new FetchSize(64, 0);
  const first = after(size, 0, 50, 10);
  // Many more attempts, but measured only once 10 ms have passed.
  for (let i = 0; i < 500; i++) size.started();
  assert.equal(size.next(15), first);
  assert.ok(size.next(20) > first);
});

Deno.test("FetchSize: never more jobs than 384 MiB of stored bodies at maxBodySize (base64), even below `concurrency`", () => {
  const MiB = 1_048_576;
  const fast = (size: FetchSize) => {
    let asked = 0;
    for (let now = 0; now < 400; now += 20) asked = after(size, now, 400, 20);
    return asked;
  };
  // 64 MiB bodies are 85.3 MiB stored: 4 fit.
  const huge = new FetchSize(10, 0, 64 * MiB);
  assert.equal(huge.next(0), 4);
  assert.equal(fast(huge), 4);
  // 8 MiB: 36, whatever the rate.
  assert.equal(fast(new FetchSize(32, 0, 8 * MiB)), 36);
  // The 1 MiB default leaves 288: the other caps decide, as before.
  assert.equal(fast(new FetchSize(32, 0, MiB)), 128);
  assert.equal(fast(new FetchSize(64, 0, MiB)), 256);
  assert.equal(fast(new FetchSize(1_000, 0, MiB)), 288);
  // No body allowed: no bound by bytes.
  assert.equal(fast(new FetchSize(1_000, 0, 0)), 1_000);
});

Deno.test("the dispatcher holds at most two fetches of jobs ahead: a target that stops answering after a fast start (PGlite)", async () => {
  const concurrency = 2;
  const fast = 60;
  let hits = 0;
  const hanging: Array<() => void> = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async () => {
      if (++hits > fast) await new Promise<void>((r) => hanging.push(r));
      return new Response("ok");
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}/jobs`;
  const dir = await Deno.makeTempDir({ prefix: "outbox_prefetch_" });
  const outbox = await openOutbox({ dir });
  try {
    await Promise.all(
      Array.from(
        { length: 300 },
        (_, i) => outbox.trigger(url, { json: { i }, timeout: 30_000 }),
      ),
    );
    outbox.start({ concurrency });
    // Fast deliveries first (fetches grow to 4 × concurrency), then every
    // slot hangs on the target: what is active now is attempts + prefetch.
    await until(
      () => hanging.length >= concurrency,
      "the target holds every slot",
    );
    let most = 0;
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 50));
      most = Math.max(most, (await outbox.stats()).inFlight);
    }
    const bound = concurrency + 2 * 4 * concurrency;
    assert.ok(most <= bound, `${most} active, at most ${bound}`);
    assert.ok(most > concurrency, `${most} active: jobs were fetched ahead`);
  } finally {
    for (const wake of hanging) wake();
    await outbox.stop({ timeout: 1_000 });
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
