// A prefetched job not attempted within the hold limit goes back to waiting
// at that limit, even when the limit's timer fires before the clock has
// reached it (Node's timers do, by up to 1 ms; here a clock running 3 %
// slow makes Deno's do too), and when the wall clock is set back (NTP, a
// resumed VM): the dispatcher times holds and polls on the monotonic clock.
// The Dispatcher is driven directly, on a fake engine, with a hold limit of
// 100 ms.
import assert from "node:assert/strict";
import { Dispatcher } from "../../src/durable/_dispatcher.ts";
import { fakeEngine } from "./_fake_engine.ts";

const realPerformanceNow = performance.now.bind(performance);

/** A fake engine whose queue holds `ids` and that records releases (when,
 * on the real monotonic clock) and counts fetches. */
function engineWith(ids: string[], url: string) {
  let fetches = 0;
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
    fetch: (_queue: string, { batchSize }: { batchSize: number }) => {
      fetches++;
      return Promise.resolve(queue.splice(0, batchSize));
    },
    complete: () => Promise.resolve({ affected: 0, requested: 0 }),
    fail: () => Promise.resolve({ affected: 0, requested: 0 }),
    touch: () => Promise.resolve(),
    getDb: () => ({
      // releaseJobs(): its ids are the second parameter.
      executeSql: (_sql: string, params: unknown[]) => {
        released.push(realPerformanceNow());
        return Promise.resolve({
          rows: (params[1] as string[]).map((id) => ({ id })),
        });
      },
    }),
  };
  const engine = fakeEngine(boss);
  return { engine, released, fetches: () => fetches };
}

/** Runs a dispatcher (concurrency 1, polling every 100 ms) on a fake engine
 * holding 4 jobs for a target that never answers, with `clock` set while it
 * runs; what it released when and how often it fetched, within 6 s. */
async function holding(clock: { set(): void; restore(): void }) {
  // A target that takes connections and never answers.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  const url = `http://127.0.0.1:${listener.addr.port}/job`;
  const { engine, released, fetches } = engineWith(["a", "b", "c", "d"], url);
  const dispatcher = new Dispatcher(engine, {
    queue: "q",
    schema: "pgboss",
    maxBodySize: 1 << 20,
    emit() {},
    leaseMargin: 0.2, // a hold limit of 100 ms
  });
  const start = realPerformanceNow();
  clock.set();
  try {
    dispatcher.start(1, 100);
    let polled = 0;
    while (realPerformanceNow() - start < 6_000) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (released.length > 0 && polled === 0) polled = fetches();
      // Polled on after the jobs ran out, every 100 ms: 5 more will do.
      if (polled > 0 && fetches() >= polled + 5) break;
    }
    return {
      released: released.map((at) => at - start),
      polls: fetches() - polled,
    };
  } finally {
    clock.restore();
    await dispatcher.stop(0);
    listener.close();
    for (const conn of held) conn.close();
    await accepting.catch(() => {});
  }
}

Deno.test("the hold limit's timer firing before the clock reaches it (a slow clock) still puts the prefetched jobs back at the limit, not once a hung delivery ends", async () => {
  const base = realPerformanceNow();
  const { released } = await holding({
    set() {
      performance.now = () =>
        base + Math.floor((realPerformanceNow() - base) * 0.97);
    },
    restore() {
      performance.now = realPerformanceNow;
    },
  });
  assert.ok(released.length > 0, "released at all");
  // Before: once the one delivery timed out (4 s), the loop's only wake.
  assert.ok(
    released[0] < 2_000,
    `released ${released[0].toFixed(0)} ms after start`,
  );
});

Deno.test("the wall clock set back an hour: prefetched jobs still go back at the hold limit, and the polls go on every 100 ms (before: none for the hour)", async () => {
  const realNow = Date.now;
  const { released, polls } = await holding({
    set() {
      const back = realNow() - 3_600_000;
      const at = realNow();
      // Set back an hour after 50 ms: while the first fetch's jobs wait.
      Date.now = () => {
        const now = realNow();
        return now - at < 50 ? now : back + (now - at);
      };
    },
    restore() {
      Date.now = realNow;
    },
  });
  assert.ok(released.length > 0, "released at all");
  assert.ok(
    released[0] < 2_000,
    `released ${released[0].toFixed(0)} ms after start`,
  );
  assert.ok(polls >= 5, `polled ${polls} times after the jobs ran out`);
});

Deno.test("a machine asleep (its monotonic clock stood still while the wall clock ran 2 minutes): prefetched jobs go back at once, not sent past their lease", async () => {
  const realNow = Date.now;
  const { released } = await holding({
    set() {
      const at = realPerformanceNow();
      // After 50 ms: asleep 2 minutes, the monotonic clock held there.
      performance.now = () => Math.min(realPerformanceNow(), at + 50);
      Date.now = () =>
        realNow() + (realPerformanceNow() - at >= 50 ? 120_000 : 0);
    },
    restore() {
      performance.now = realPerformanceNow;
      Date.now = realNow;
    },
  });
  assert.ok(released.length > 0, "released at all");
  assert.ok(
    released[0] < 2_000,
    `released ${released[0].toFixed(0)} ms after start`,
  );
});
