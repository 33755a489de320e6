// The dispatcher's jobs fetched ahead whose lease may have lapsed (a frozen
// process, slow touches): what a fenced touch says decides, and stop() waits
// for what such a touch starts. A fake engine (pg-boss's calls answered
// here) and a clock moved by hand stand for the freeze: the cases are about
// the order of the dispatcher's own steps, which a real freeze leaves to the
// scheduler (tests/durable/frozen_dispatcher_test.ts freezes a real one).
import assert from "node:assert/strict";
import { Dispatcher } from "../../src/durable/_dispatcher.ts";
import { type FakeBoss, fakeEngine } from "./_fake_engine.ts";
import { until } from "../_wait.ts";

function job(id: string, url: string, timeout = 20_000) {
  return {
    id,
    name: "q",
    retryCount: 0,
    heartbeatSeconds: 10,
    data: { id, method: "POST", url, headers: [], body: null, timeout },
  };
}

/** `Date.now()` moved forward by `shift()` (the wall clock a frozen
 * process finds on thaw), restored by `restore()`. */
function movableClock() {
  const real = Date.now;
  let offset = 0;
  Date.now = () => real() + offset;
  return {
    shift(ms: number) {
      offset += ms;
    },
    restore() {
      Date.now = real;
    },
  };
}

Deno.test("a touch marks as renewed only the jobs it renewed: one fetched ahead that another dispatcher took while this one was frozen is not sent", async () => {
  const received: string[] = [];
  const { promise: answer, resolve: release } = Promise.withResolvers<void>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      received.push(request.headers.get("webhook-id")!);
      await answer;
      return new Response(null, { status: 200 });
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}/job`;
  const queue = [job("a", url), job("b", url)];
  const delivered: string[] = [];
  const boss: FakeBoss = {
    fetch: (_queue, { batchSize }) =>
      Promise.resolve(queue.splice(0, batchSize)),
    complete: (_queue, claims) =>
      Promise.resolve({
        affected: claims.length,
        requested: claims.length,
        settled: claims.map((c) => c.id),
      }),
    fail: () => Promise.resolve({ affected: 0, requested: 0 }),
    // "b" lapsed during the freeze and another dispatcher has it: the
    // fenced touch renews only "a".
    touch: (_queue, claims) => {
      const settled = claims.map((c) => c.id).filter((id) => id !== "b");
      return Promise.resolve({
        affected: settled.length,
        requested: claims.length,
        settled,
      });
    },
    getDb: () => ({ executeSql: () => Promise.resolve({ rows: [] }) }),
  };
  const dispatcher = new Dispatcher(fakeEngine(boss), {
    queue: "q",
    schema: "pgboss",
    maxBodySize: 1 << 20,
    emit(event) {
      if (event.type === "delivered") delivered.push(event.id);
    },
  });
  const clock = movableClock();
  try {
    // One place: "a" under way, "b" fetched ahead and waiting.
    dispatcher.start(1, 60_000);
    await until(() => received.length === 1, "a's request");
    // Frozen 12 s: past the 10 s heartbeat, within the 30 s hold limit.
    clock.shift(12_000);
    // The periodic touch (every 3 s) answers while "a" is still under way.
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    release();
    await until(() => delivered.includes("a"), "a delivered");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(received, ["a"], "b, another dispatcher's now, not sent");
  } finally {
    release();
    await dispatcher.stop(1_000);
    clock.restore();
    await server.shutdown();
  }
});

Deno.test("stop() waits for the release a touch of jobs at risk starts after the dispatch loop ended", async () => {
  const clock = { shift(_ms: number) {}, restore() {} };
  const events: string[] = [];
  let fetched = false;
  const boss: FakeBoss = {
    fetch: (_queue, { batchSize }) => {
      if (fetched) return Promise.resolve([]);
      fetched = true;
      // Frozen 7 s during the fetch: its jobs' leases are at risk.
      clock.shift(7_000);
      return Promise.resolve(
        [job("a", "http://127.0.0.1:9/job"), job("b", "http://127.0.0.1:9/job")]
          .slice(0, batchSize),
      );
    },
    complete: () => Promise.resolve({ affected: 0, requested: 0 }),
    fail: () => Promise.resolve({ affected: 0, requested: 0 }),
    touch: (_queue, claims) => {
      events.push("touch");
      return new Promise((resolve) =>
        setTimeout(() => {
          events.push("touch answered");
          resolve({
            affected: claims.length,
            settled: claims.map((c) => c.id),
          });
        }, 300)
      );
    },
    getDb: () => ({
      executeSql: (_sql, params) => {
        events.push("release");
        return new Promise((resolve) =>
          setTimeout(() => {
            events.push("released");
            resolve({ rows: (params[1] as string[]).map((id) => ({ id })) });
          }, 300)
        );
      },
    }),
  };
  const dispatcher = new Dispatcher(fakeEngine(boss), {
    queue: "q",
    schema: "pgboss",
    maxBodySize: 1 << 20,
    emit() {},
  });
  Object.assign(clock, movableClock());
  try {
    dispatcher.start(1, 60_000);
    await until(() => events.includes("touch"), "the touch of jobs at risk");
    await dispatcher.stop(1_000);
    events.push("stopped");
    assert.deepEqual(
      events,
      ["touch", "touch answered", "release", "released", "stopped"],
    );
    assert.equal(dispatcher.inFlight.size, 0);
  } finally {
    await dispatcher.stop(1_000);
    clock.restore();
  }
});
