// The outbox's life cycle at its edges: start() while a stop is under way,
// admin calls after close, and live-call options that cannot be stored.
import assert from "node:assert/strict";
import { openOutbox, OutboxError } from "../../src/durable/mod.ts";
import { within } from "../_wait.ts";
import { adminOf } from "../../src/durable/_admin_queries.ts";

async function embedded() {
  const dir = await Deno.makeTempDir({ prefix: "outbox_lifecycle_" });
  const outbox = await openOutbox({ dir });
  return {
    outbox,
    async [Symbol.asyncDispose]() {
      await outbox.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("start() during stop({ close: false }) starts again once the stop is over; the stop itself ends", async () => {
  await using box = await embedded();
  const { outbox } = box;
  const hits: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      hits.push(await request.text());
      return new Response(null, { status: 200 });
    },
  );
  try {
    outbox.start({ pollInterval: 50 });
    const stopping = outbox.stop({ close: false });
    outbox.start({ pollInterval: 50 }); // the same tick as the stop
    await within(stopping, "stop({ close: false }) with a start() behind it");
    await outbox.trigger(`http://127.0.0.1:${server.addr.port}/`, {
      body: "after the restart",
    });
    const deadline = Date.now() + 20_000;
    while (hits.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.deepEqual(
      hits,
      ["after the restart"],
      "the restarted dispatcher delivers",
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("admin calls on a stopped outbox reject with CLOSED; start() throws it", async () => {
  await using box = await embedded();
  const { outbox } = box;
  await outbox.stop();
  for (
    const call of [
      () => outbox.stats(),
      () => outbox.deadLetters(),
      () => outbox.redrive(),
      () => outbox.discard(["x"]),
    ]
  ) {
    await assert.rejects(
      call(),
      (error) => error instanceof OutboxError && error.code === "CLOSED",
    );
  }
  assert.throws(
    () => outbox.start(),
    (error) => error instanceof OutboxError && error.code === "CLOSED",
  );
  // The dashboard's and the command line's reads too (not a driver error).
  const admin = adminOf(outbox);
  for (const call of [() => admin.origins(), () => admin.retrying()]) {
    await assert.rejects(
      call(),
      (error) => error instanceof OutboxError && error.code === "CLOSED",
    );
  }
});

Deno.test("outbox.trigger() refuses a fetch option: a live function cannot be stored", async () => {
  await using box = await embedded();
  assert.throws(
    () =>
      box.outbox.trigger("http://127.0.0.1:9/", { fetch: globalThis.fetch }),
    /fetch cannot be stored/,
  );
});

Deno.test("an async onEvent that rejects is ignored as a throwing one is: delivery goes on, nothing unhandled", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox_lifecycle_" });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(null, { status: 200 }),
  );
  const seen: string[] = [];
  const outbox = await openOutbox({
    dir,
    onEvent: async (event) => {
      seen.push(event.type);
      await Promise.resolve();
      throw new Error("listener failed");
    },
  });
  try {
    const url = `http://127.0.0.1:${server.addr.port}/job`;
    await outbox.trigger(url);
    await outbox.trigger(url);
    outbox.start({ pollInterval: 50 });
    const deadline = Date.now() + 30_000;
    while (seen.filter((type) => type === "delivered").length < 2) {
      assert.ok(Date.now() < deadline, JSON.stringify(seen));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await outbox.stop();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test('start() and stop() refuse options that are not an object, and a close that is not a boolean ("no" closed the outbox)', async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox_lifecycle_" });
  const outbox = await openOutbox({ dir });
  try {
    for (const bad of [null, "x"]) {
      assert.throws(
        () => outbox.start(bad as never),
        (error: unknown) =>
          error instanceof TypeError && /options/.test(error.message),
      );
      assert.throws(
        () => outbox.stop(bad as never),
        (error: unknown) =>
          error instanceof TypeError && /options/.test(error.message),
      );
    }
    assert.throws(
      () => outbox.stop({ close: "no" as never }),
      (error: unknown) =>
        error instanceof TypeError && /close/.test(error.message),
    );
    assert.equal((await outbox.stats()).queued, 0, "still open");
  } finally {
    await outbox.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
