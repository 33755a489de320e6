// One signal shared by many triggers (a server's shutdown controller): one
// "abort" listener on it, not one per trigger in flight.
import assert from "node:assert/strict";
import { trigger } from "../../mod.ts";
import { misbehaving, silent } from "../_servers.ts";
import { bundle } from "../_bundle.ts";
import { bunBinary, run, withTempFile } from "../_node/_runtimes.ts";
import { until } from "../_wait.ts";

/** A signal that counts its live "abort" listeners. */
function countingSignal() {
  const controller = new AbortController();
  const { signal } = controller;
  let live = 0;
  let most = 0;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  const seen = new Set<unknown>();
  Object.defineProperties(signal, {
    addEventListener: {
      value(type: string, listener: () => void, options?: unknown) {
        if (type === "abort" && !seen.has(listener)) {
          seen.add(listener);
          most = Math.max(most, ++live);
        }
        // A once listener that fires is gone too.
        const counted = () => {
          if (seen.delete(listener)) live--;
          listener();
        };
        wrapped.set(listener, counted);
        return add(type, counted, options as AddEventListenerOptions);
      },
    },
    removeEventListener: {
      value(type: string, listener: () => void) {
        if (type === "abort" && seen.delete(listener)) live--;
        return remove(type, wrapped.get(listener) ?? listener);
      },
    },
  });
  const wrapped = new Map<unknown, () => void>();
  return {
    controller,
    signal,
    live: () => live,
    most: () => most,
  };
}

/** A server that reads every request and never answers, counting
 * connections. */
function countingSilent() {
  let connections = 0;
  const server = misbehaving(async (conn) => {
    connections++;
    const buffer = new Uint8Array(4096);
    while ((await conn.read(buffer)) !== null);
  });
  return { ...server, connections: () => connections };
}

Deno.test("40 triggers in flight sharing one signal: one abort listener on it (one each made Node warn of a leak from the 11th); aborting it aborts every one; none left after", async () => {
  const server = countingSilent();
  try {
    for (const transport of ["socket", "fetch"] as const) {
      const shared = countingSignal();
      const pending = Array.from(
        { length: 40 },
        () =>
          trigger(server.origin, {
            transport,
            wait: "accepted",
            signal: shared.signal,
            timeout: 20_000,
          }),
      );
      await until(
        () => server.connections() >= (transport === "socket" ? 40 : 80),
        `${transport}: the 40 connections`,
      );
      assert.equal(shared.live(), 1, `${transport}: live listeners`);
      shared.controller.abort();
      const results = await Promise.all(pending);
      await Promise.all(results.map((result) => result.done));
      assert.deepEqual(
        [...new Set(results.map((result) => result.error?.code))],
        ["ABORTED"],
      );
      assert.equal(shared.most(), 1, `${transport}: most listeners at once`);
      assert.equal(shared.live(), 0, `${transport}: listeners left`);
    }
  } finally {
    await server.close();
  }
});

Deno.test("triggers sharing one signal that end on their own leave no listener on it, one at a time or together", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      await request.arrayBuffer();
      return new Response(null, { status: 202 });
    },
  );
  try {
    const shared = countingSignal();
    const url = `http://127.0.0.1:${server.addr.port}/`;
    for (let i = 0; i < 5; i++) {
      const result = await trigger(url, { signal: shared.signal });
      assert.equal(result.ok, true);
      await result.done;
      assert.equal(shared.live(), 0);
    }
    const results = await Promise.all(
      Array.from({ length: 20 }, () => trigger(url, { signal: shared.signal })),
    );
    await Promise.all(results.map((result) => result.done));
    assert.ok(results.every((result) => result.ok));
    assert.equal(shared.live(), 0);
    assert.equal(shared.most(), 1);
    // The signal still works for the next one.
    const next = trigger(url, { signal: shared.signal, wait: "accepted" });
    shared.controller.abort();
    const aborted = await next;
    await aborted.done;
    assert.equal(aborted.error?.code, "ABORTED");
  } finally {
    await server.shutdown();
  }
});

Deno.test("Node and Bun: 40 triggers in flight sharing one signal print no MaxListenersExceededWarning; all ABORTED", async (t) => {
  const server = silent();
  const code = await bundle("./_node/shared_signal_entry.ts", "node");
  try {
    for (const runtime of ["node", "bun"] as const) {
      await t.step(runtime, async () => {
        const binary = runtime === "bun" ? await bunBinary() : "node";
        const ran = await withTempFile(
          code,
          (path) => run(binary, [path, server.origin], 60_000),
        );
        assert.equal(ran.code, 0, ran.stderr);
        assert.doesNotMatch(ran.stderr, /MaxListeners|memory leak/i);
        const line = ran.stdout.split("\n").find((l) => l.includes("codes"));
        assert.ok(line, ran.stdout + ran.stderr);
        assert.deepEqual(JSON.parse(line).value, ["ABORTED"]);
      });
    }
  } finally {
    await server.close();
  }
});
