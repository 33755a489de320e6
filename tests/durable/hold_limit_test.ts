// A prefetched job not attempted within the hold limit goes back to waiting
// at that limit, even when the limit's timer fires before Date.now() has
// reached it (Node's timers do, by up to 1 ms; here a clock running 3 %
// slow makes Deno's do too). The Dispatcher is driven directly, on a fake
// engine, with a hold limit of 100 ms.
import assert from "node:assert/strict";
import { Dispatcher } from "../../src/durable/_dispatcher.ts";
import { fakeEngine } from "./_fake_engine.ts";

/** A fake engine whose queue holds `ids` and that records releases. */
function engineWith(ids: string[], url: string) {
  const queue = ids.map((id) => ({
    id,
    name: "q",
    retryCount: 0,
    data: {
      id,
      method: "POST",
      url,
      headers: [],
      body: null,
      timeout: 4_000,
    },
  }));
  const released: number[] = [];
  const boss = {
    fetch: (_queue: string, { batchSize }: { batchSize: number }) =>
      Promise.resolve(queue.splice(0, batchSize)),
    complete: () => Promise.resolve({ affected: 0, requested: 0 }),
    fail: () => Promise.resolve({ affected: 0, requested: 0 }),
    touch: () => Promise.resolve(),
    getDb: () => ({
      // releaseJobs(): its ids are the second parameter.
      executeSql: (_sql: string, params: unknown[]) => {
        released.push(performance.now());
        return Promise.resolve({
          rows: (params[1] as string[]).map((id) => ({ id })),
        });
      },
    }),
  };
  const engine = fakeEngine(boss);
  return { engine, released };
}

Deno.test("the hold limit's timer firing before Date.now() reaches it (a slow clock) still puts the prefetched jobs back at the limit, not once a hung delivery ends", async () => {
  // A target that takes connections and never answers.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  const url = `http://127.0.0.1:${listener.addr.port}/job`;
  const realNow = Date.now;
  const base = realNow();
  Date.now = () => base + Math.floor((realNow() - base) * 0.97);
  const { engine, released } = engineWith(["a", "b", "c", "d"], url);
  const dispatcher = new Dispatcher(engine, {
    queue: "q",
    schema: "pgboss",
    maxBodySize: 1 << 20,
    emit() {},
    leaseMargin: 0.2, // a hold limit of 100 ms
  });
  try {
    const start = performance.now();
    dispatcher.start(1, 60_000);
    while (released.length === 0 && performance.now() - start < 6_000) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.ok(released.length > 0, "released at all");
    // Before: once the one delivery timed out (4 s), the loop's only wake.
    const after = released[0] - start;
    assert.ok(after < 2_000, `released ${after.toFixed(0)} ms after start`);
  } finally {
    Date.now = realNow;
    await dispatcher.stop(0);
    listener.close();
    for (const conn of held) conn.close();
    await accepting.catch(() => {});
  }
});
