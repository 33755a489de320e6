// The `fetch` option: the function the fetch transport calls (a Workers
// service binding, a logger). Its effect inside workerd, through a service
// binding, is in tests/platforms/workers_test.ts.
import assert from "node:assert/strict";
import { drainTriggers, trigger } from "../../mod.ts";
import { denoRecorder } from "../_servers.ts";
import { within } from "../_wait.ts";

const decoder = new TextDecoder();

Deno.test("fetch option: auto picks the fetch transport on Deno and the caller's fetch carries the request to a real server", async () => {
  const recorder = denoRecorder();
  const calls: Array<{ url: string; init: RequestInit }> = [];
  try {
    const result = await trigger(`${recorder.origin}/jobs?x=1`, {
      json: { a: 1 },
      wait: "accepted",
      headers: { "x-trace": "t1" },
      fetch: (url, init) => {
        calls.push({ url, init });
        return fetch(url, init);
      },
    });
    assert.equal(result.ok, true);
    assert.equal(result.transport, "fetch");
    assert.equal(result.status, 202);
    assert.equal(calls.length, 1);
    assert.equal(calls[0].url, `${recorder.origin}/jobs?x=1`);
    assert.equal(calls[0].init.method, "POST");
    assert.equal(calls[0].init.redirect, "manual");
    assert.ok(calls[0].init.signal instanceof AbortSignal);
    const seen = await recorder.seen.take();
    assert.equal(seen.url, "/jobs?x=1");
    assert.equal(seen.headers["x-trace"], "t1");
    assert.deepEqual(JSON.parse(decoder.decode(seen.body)), { a: 1 });
  } finally {
    await recorder.close();
  }
});

Deno.test("fetch option: a fetch that throws resolves as a typed failure with the error as its cause", async () => {
  const boom = new TypeError("Illegal invocation");
  const result = await trigger("http://app.test/", {
    wait: "accepted",
    fetch: () => {
      throw boom;
    },
  });
  assert.equal(result.ok, false);
  assert.equal(result.transport, "fetch");
  assert.equal(result.error?.code, "NETWORK");
  assert.equal(result.error?.cause, boom);
  await result.done;
});

Deno.test("fetch option: bad input is a TypeError naming it (not a function, with transport socket, with caCerts)", () => {
  assert.throws(
    () => trigger("http://app.test/", { fetch: "fetch" as never }),
    {
      name: "TypeError",
      message:
        'Cannot trigger request: fetch must be a function, received "fetch"',
    },
  );
  assert.throws(
    () => trigger("http://app.test/", { fetch, transport: "socket" }),
    { name: "TypeError", message: /fetch is for the fetch transport/ },
  );
  assert.throws(
    () => trigger("https://app.test/", { fetch, caCerts: ["PEM"] }),
    { name: "TypeError", message: /caCerts cannot be combined with fetch/ },
  );
});

Deno.test("fetch option: a fetch that ignores init.signal still ends at the timeout (result, done and drainTriggers)", async () => {
  const result = await within(
    trigger("http://app.test/", {
      wait: "accepted",
      timeout: 200,
      fetch: () => new Promise<Response>(() => {}),
    }),
    "the trigger resolving at its timeout",
    5_000,
  );
  assert.equal(result.ok, false);
  assert.equal(result.error?.code, "TIMEOUT");
  await within(result.done, "done settling", 5_000);
  assert.equal(await drainTriggers({ timeout: 2_000 }), true);
});

Deno.test("fetch option: a response body that never ends does not hold the trigger past its status", async () => {
  const result = await trigger("http://app.test/", {
    wait: "accepted",
    timeout: 5_000,
    fetch: () =>
      Promise.resolve(
        new Response(
          new ReadableStream({
            pull: () => new Promise(() => {}),
            cancel: () => new Promise(() => {}),
          }),
          { status: 202 },
        ),
      ),
  });
  assert.equal(result.status, 202);
  const outcome = await within(result.outcome, "the outcome settling", 5_000);
  assert.deepEqual(outcome, { ok: true, status: 202 });
});

Deno.test("fetch option: a response that arrives after the timeout has its body cancelled", async () => {
  const cancelled = Promise.withResolvers<void>();
  const late = Promise.withResolvers<Response>();
  const result = await trigger("http://app.test/", {
    wait: "accepted",
    timeout: 200,
    fetch: () => late.promise, // ignores init.signal
  });
  assert.equal(result.error?.code, "TIMEOUT");
  late.resolve(
    new Response(
      new ReadableStream({ cancel: () => cancelled.resolve() }),
      { status: 200 },
    ),
  );
  await within(cancelled.promise, "the late body's cancel", 5_000);
  await within(result.done, "done settling", 5_000);
});

Deno.test("fetch option: the headers a caller's fetch gets are its own to change (a wrapper adding one)", async () => {
  const seen: string[] = [];
  for (const options of [{}, { json: { a: 1 } }, { headers: { "x-a": "1" } }]) {
    const result = await trigger("https://app.example/jobs", {
      ...options,
      wait: "accepted",
      fetch: (_url, init) => {
        const headers = init.headers as Array<[string, string]>;
        headers.push(["x-wrapper", "yes"]);
        seen.push(new Headers(headers).get("x-wrapper")!);
        return Promise.resolve(new Response(null, { status: 202 }));
      },
    });
    assert.equal(result.error?.message, undefined);
    assert.equal(result.status, 202);
  }
  assert.deepEqual(seen, ["yes", "yes", "yes"]);
  // The next request's headers are not the wrapper's.
  const plain = await trigger("https://app.example/jobs", {
    wait: "accepted",
    fetch: (_url, init) => {
      seen.push(String(new Headers(init.headers).has("x-wrapper")));
      return Promise.resolve(new Response(null, { status: 202 }));
    },
  });
  assert.equal(plain.status, 202);
  assert.equal(seen.at(-1), "false");
});

Deno.test("fetch option: an interim 1xx status (workerd's fetch exposes 100 and 103) is PROTOCOL, not HTTP_STATUS", async () => {
  for (const status of [100, 103]) {
    // A Response cannot be made with a 1xx status here: what workerd's
    // fetch resolves with, as far as trigger() reads it.
    const interim = { status, type: "default", body: null } as unknown;
    const result = await trigger("http://app.test/", {
      wait: "accepted",
      fetch: () => Promise.resolve(interim as Response),
    });
    assert.equal(result.ok, false);
    assert.equal(result.error?.code, "PROTOCOL", String(status));
    assert.match(result.error!.message, /interim status/);
    assert.equal(result.status, undefined);
  }
});
