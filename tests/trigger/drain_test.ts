import assert from "node:assert/strict";
import { drainTriggers, trigger } from "../../mod.ts";
import { misbehaving } from "../_servers.ts";
import { within } from "../_wait.ts";
import { onProcessExit } from "../../src/_exit.ts";

/** Accepts, reads, answers 202 when `release()` is called. */
function heldServer() {
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  const server = misbehaving(async (conn) => {
    const buffer = new Uint8Array(16 * 1024);
    await conn.read(buffer);
    await released;
    await conn.write(
      new TextEncoder().encode(
        "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
      ),
    );
  });
  return { ...server, release };
}

Deno.test("drainTriggers() resolves false at its timeout or on abort, true once every trigger is over, including ones started while it waits", async () => {
  const server = heldServer();
  try {
    const first = await trigger(`${server.origin}/a`, { json: { n: 1 } });
    assert.equal(first.ok, true);
    assert.equal(await drainTriggers({ timeout: 100 }), false);
    const stop = new AbortController();
    const aborted = drainTriggers({ signal: stop.signal });
    stop.abort();
    assert.equal(await aborted, false);

    const draining = drainTriggers({ timeout: 10_000 });
    const second = await trigger(`${server.origin}/b`, { json: { n: 2 } });
    let settled = false;
    draining.then(() => settled = true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(settled, false, "still waiting for both");
    server.release();
    assert.equal(await draining, true);
    assert.deepEqual(await first.outcome, { ok: true, status: 202 });
    assert.deepEqual(await second.outcome, { ok: true, status: 202 });
    assert.equal(await drainTriggers(), true, "nothing in flight");
  } finally {
    server.release();
    await server.close();
  }
});

Deno.test("drainTriggers() refuses a timeout that is not a positive number of ms, or a signal that is not one, naming it", () => {
  assert.throws(
    () => drainTriggers({ signal: "stop" as unknown as AbortSignal }),
    TypeError,
  );
  for (const timeout of [0, -1, NaN, 2 ** 31, "5" as unknown as number]) {
    assert.throws(
      () => drainTriggers({ timeout }),
      (error: Error) =>
        error instanceof RangeError &&
        error.message.includes(String(timeout)),
    );
  }
});

/** An object that passes for an AbortSignal but throws from `remove`. */
function signalThatThrowsOnRemove(): AbortSignal {
  const real = new AbortController().signal;
  return {
    aborted: false,
    reason: undefined,
    addEventListener: real.addEventListener.bind(real),
    removeEventListener() {
      throw new Error("removeEventListener is broken");
    },
  } as unknown as AbortSignal;
}

Deno.test("a signal without removeEventListener is refused by trigger() and drainTriggers(), naming signal", () => {
  const partial = {
    aborted: false,
    addEventListener() {},
  } as unknown as AbortSignal;
  assert.throws(
    () => trigger("http://app.test/", { signal: partial }),
    (error: Error) =>
      error instanceof TypeError && /signal must be an AbortSignal/.test(
        error.message,
      ),
  );
  assert.throws(
    () => drainTriggers({ signal: partial }),
    (error: Error) =>
      error instanceof TypeError && /signal must be an AbortSignal/.test(
        error.message,
      ),
  );
});

Deno.test("a signal whose removeEventListener throws: the trigger still ends (done settles, drain reaches 0) and every drain waiter is woken", async () => {
  const server = heldServer();
  try {
    const result = await trigger(`${server.origin}/a`, {
      json: { n: 1 },
      signal: signalThatThrowsOnRemove(),
    });
    assert.equal(result.ok, true);
    const throwing = drainTriggers({ signal: signalThatThrowsOnRemove() });
    const plain = drainTriggers({ timeout: 10_000 });
    server.release();
    assert.deepEqual(
      await within(result.outcome, "the outcome settling", 10_000),
      { ok: true, status: 202 },
    );
    assert.equal(await within(throwing, "the first waiter", 10_000), true);
    assert.equal(await within(plain, "the second waiter", 10_000), true);
    assert.equal(await drainTriggers({ timeout: 1_000 }), true);
  } finally {
    server.release();
    await server.close();
  }
});

Deno.test("a Deno-like runtime whose addEventListener refuses unload: the exit watch reports false instead of throwing", () => {
  const original = globalThis.addEventListener;
  globalThis.addEventListener = () => {
    throw new TypeError("unload is not supported here");
  };
  try {
    assert.equal(onProcessExit(() => {}), false);
  } finally {
    globalThis.addEventListener = original;
  }
});
