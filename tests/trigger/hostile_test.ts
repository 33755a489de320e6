// Hostile values from the caller (found by an audit): a caller's fetch that
// resolves late with no Response, abort reasons whose `name` throws, errors
// that cannot be shown, signals whose methods throw. Each is a synchronous
// TypeError or a typed result; none is an unhandled rejection or a timer
// left running (Deno's test sanitizers fail a test on either).
import assert from "node:assert/strict";
import { drainTriggers, trigger, TriggerError } from "../../mod.ts";
import { silent } from "../_servers.ts";

const URL_ = "http://127.0.0.1:9/job"; // never reached: fetch is the caller's

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("a caller's fetch that answers after the timeout with no Response (or one whose body.cancel throws) is dropped: TIMEOUT, nothing unhandled", async () => {
  const lates: unknown[] = [
    undefined,
    null,
    42,
    { body: { cancel: () => Promise.reject(new Error("cancel refused")) } },
    {
      body: {
        cancel() {
          throw new Error("cancel threw");
        },
      },
    },
  ];
  for (const late of lates) {
    const result = await trigger(URL_, {
      transport: "fetch",
      wait: "accepted",
      timeout: 50,
      fetch: () => sleep(150).then(() => late as Response),
    });
    assert.equal(result.error?.code, "TIMEOUT", String(late));
    await sleep(200); // the late answer arrives, and is dropped
  }
});

Deno.test("a caller's fetch that resolves something that is no Response is NETWORK, not a status", async () => {
  for (const value of [undefined, { status: "x" }, { status: 20.5 }, {}]) {
    const result = await trigger(URL_, {
      transport: "fetch",
      wait: "accepted",
      fetch: () => Promise.resolve(value as Response),
    });
    assert.equal(result.ok, false);
    assert.equal(result.status, undefined);
    assert.equal(result.error?.code, "NETWORK", JSON.stringify(value));
  }
});

Deno.test("an error that cannot be shown (its toString or message throws) is still a TriggerError with a code", async () => {
  const hostile = {
    toString() {
      throw new Error("toString threw");
    },
  };
  const result = await trigger(URL_, {
    transport: "fetch",
    wait: "accepted",
    fetch: () => Promise.reject(hostile),
  });
  assert.ok(result.error instanceof TriggerError);
  assert.equal(result.error.code, "NETWORK");
  assert.match(result.error.message, /cannot be shown/);
});

Deno.test("an abort reason whose name throws is ABORTED, on both transports, nothing unhandled", async () => {
  const reason = {
    get name(): string {
      throw new Error("name threw");
    },
  };
  for (const transport of ["fetch", "socket"] as const) {
    const controller = new AbortController();
    const pending = trigger(URL_, {
      transport,
      wait: "accepted",
      signal: controller.signal,
      fetch: transport === "socket"
        ? undefined
        : (_, init) =>
          new Promise((_, reject) =>
            init?.signal?.addEventListener("abort", () =>
              reject(new Error("x")))
          ),
    });
    controller.abort(reason);
    const result = await pending;
    assert.equal(result.error?.code, "ABORTED", transport);
    await result.done;
  }
});

Deno.test("a caller's signal whose reason getter throws, aborted later: ABORTED on both transports, nothing uncaught", async () => {
  const server = silent(); // never answers
  try {
    for (const transport of ["fetch", "socket"] as const) {
      const controller = new AbortController();
      Object.defineProperty(controller.signal, "reason", {
        get() {
          throw new Error("reason threw");
        },
      });
      const pending = trigger(server.origin, {
        transport,
        wait: "accepted",
        signal: controller.signal,
        timeout: 10_000,
      });
      await sleep(20); // under way
      controller.abort();
      const result = await pending;
      assert.equal(
        result.error?.code,
        "ABORTED",
        `${transport}: ${result.error}`,
      );
      await result.done;
    }
  } finally {
    await server.close();
  }
});

Deno.test("a signal whose addEventListener throws is a synchronous TypeError naming signal, with no timer left running", () => {
  const signal = new AbortController().signal;
  Object.defineProperty(signal, "addEventListener", {
    value() {
      throw new Error("add threw");
    },
  });
  assert.throws(
    () => trigger(URL_, { signal, timeout: 60_000 }),
    (error: unknown) =>
      error instanceof TypeError && /signal/.test(error.message),
  );
  // The sanitizer fails this test if the 60 s deadline was left running.
});

Deno.test("drainTriggers(): a signal whose removeEventListener throws changes nothing; options must be an object", async () => {
  const controller = new AbortController();
  Object.defineProperty(controller.signal, "removeEventListener", {
    value() {
      throw new Error("remove threw");
    },
  });
  const pending = trigger(URL_, {
    transport: "fetch",
    fetch: () => sleep(50).then(() => new Response(null, { status: 202 })),
  });
  const drained = drainTriggers({ signal: controller.signal });
  assert.equal(await drained, true);
  await (await pending).done;
  for (const bad of [null, "x", 5]) {
    assert.throws(
      () => drainTriggers(bad as never),
      (error: unknown) =>
        error instanceof TypeError && /options/.test(error.message),
    );
  }
});

Deno.test("a caller's async waitUntil that rejects is never unhandled; a fetch answering Response.error() is NETWORK", async () => {
  const kept = await trigger(URL_, {
    transport: "fetch",
    wait: "accepted",
    fetch: () => Promise.resolve(new Response(null, { status: 202 })),
    waitUntil: () => Promise.reject(new Error("waitUntil failed")),
  });
  assert.equal(kept.status, 202);
  await kept.done;
  await sleep(20);
  const failed = await trigger(URL_, {
    transport: "fetch",
    wait: "accepted",
    fetch: () => Promise.resolve(Response.error()),
  });
  assert.equal(failed.error?.code, "NETWORK");
});

Deno.test("drainTriggers(): a signal whose addEventListener throws is a synchronous TypeError naming signal, no timer started", async () => {
  const signal = new AbortController().signal;
  Object.defineProperty(signal, "addEventListener", {
    value() {
      throw new Error("add threw");
    },
  });
  const pending = trigger(URL_, {
    transport: "fetch",
    fetch: () => sleep(50).then(() => new Response(null, { status: 202 })),
  });
  assert.throws(
    () => drainTriggers({ signal, timeout: 60_000 }),
    (error: unknown) =>
      error instanceof TypeError && /signal/.test(error.message),
  );
  await (await pending).done;
});
