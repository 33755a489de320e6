import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  connection,
  type ConnectionEnv,
  ConnectionStatus,
  type DedupStore,
  drainBackground,
  MemoryDedupStore,
  verifyTrigger,
  type VerifyTriggerEnv,
} from "../../src/hono/mod.ts";
import { createSecret, signPayload, trigger } from "../../mod.ts";
import { oneByteChanges, storeKey, VECTOR } from "../_vector.ts";
import { until, within } from "../_wait.ts";

const now = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let counter = 0;
const newId = () => `msg_test_${++counter}_${crypto.randomUUID().slice(0, 8)}`;

/** Standard Webhooks headers for `body`, signed with `secret`. */
async function signed(
  secret: string,
  body: string,
  options: { id?: string; timestamp?: number } = {},
): Promise<Record<string, string>> {
  const id = options.id ?? newId();
  const timestamp = options.timestamp ?? now();
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": await signPayload(secret, { id, timestamp, body }),
  };
}

Deno.test("verifyTrigger() lets the specification's example in; one changed byte is a 401", async () => {
  // The example is from 2021: widen the tolerance to reach it.
  const tolerance = (now() - Number(VECTOR.timestamp) + 600) * 1000;
  const store = new MemoryDedupStore();
  const app = new Hono();
  app.post(
    "/hook",
    verifyTrigger({ secret: VECTOR.secret, tolerance, store }),
    async (c) => c.json(await c.req.json()),
  );
  const send = (
    fields: Partial<Record<keyof typeof VECTOR, string>>,
  ) => {
    const v = { ...VECTOR, timestamp: String(VECTOR.timestamp), ...fields };
    return app.request("/hook", {
      method: "POST",
      body: v.body,
      headers: {
        "webhook-id": v.id,
        "webhook-timestamp": v.timestamp,
        "webhook-signature": v.signature,
      },
    });
  };
  let rejected = 0;
  for (const body of oneByteChanges(VECTOR.body)) {
    const response = await send({ body });
    assert.equal(response.status, 401, body);
    assert.equal(await response.text(), "Invalid signature\n");
    rejected++;
  }
  for (const id of oneByteChanges(VECTOR.id)) {
    const response = await send({ id });
    assert.equal(response.status, 401, id);
    await response.body?.cancel();
    rejected++;
  }
  for (const timestamp of oneByteChanges(String(VECTOR.timestamp))) {
    const response = await send({ timestamp });
    assert.equal(response.status, 401, timestamp);
    await response.body?.cancel();
    rejected++;
  }
  for (const signature of oneByteChanges(VECTOR.signature)) {
    const response = await send({ signature });
    assert.equal(response.status, 401, signature);
    await response.body?.cancel();
    rejected++;
  }
  for (const secret of oneByteChanges(VECTOR.secret).slice(6)) {
    let app2: Hono;
    try {
      app2 = new Hono().post(
        "/hook",
        verifyTrigger({ secret, tolerance }),
        (c) => c.text("ran"),
      );
    } catch (error) {
      assert.ok(error instanceof TypeError); // no longer base64
      continue;
    }
    const response = await app2.request("/hook", {
      method: "POST",
      body: VECTOR.body,
      headers: {
        "webhook-id": VECTOR.id,
        "webhook-timestamp": String(VECTOR.timestamp),
        "webhook-signature": VECTOR.signature,
      },
    });
    assert.equal(response.status, 401, secret);
    await response.body?.cancel();
    rejected++;
  }
  assert.ok(rejected > 120);
  assert.equal(store.size, 0, "nothing rejected reached the store");

  const response = await send({});
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { test: 2432232314 });
});

Deno.test("verifyTrigger() answers 401 with a short reason for each bad signature", async () => {
  const secret = createSecret();
  const app = new Hono();
  let runs = 0;
  app.post("/hook", verifyTrigger({ secret }), (c) => {
    runs++;
    return c.text("ran");
  });
  const body = '{"a":1}';
  const good = await signed(secret, body);
  const cases: Array<[string, Record<string, string>, string]> = [
    ["no headers", {}, "Missing webhook-id header"],
    [
      "no timestamp",
      { ...good, "webhook-timestamp": "" },
      "Malformed webhook-timestamp header",
    ],
    [
      "no signature",
      { "webhook-id": good["webhook-id"], "webhook-timestamp": "1" },
      "Missing webhook-signature header",
    ],
    [
      "id with a dot",
      { ...good, "webhook-id": "a.1" },
      "Malformed webhook-id header",
    ],
    [
      "id too long",
      { ...good, "webhook-id": "x".repeat(257) },
      "Malformed webhook-id header",
    ],
    [
      "timestamp not digits",
      { ...good, "webhook-timestamp": "1e9" },
      "Malformed webhook-timestamp header",
    ],
    [
      "timestamp negative",
      { ...good, "webhook-timestamp": "-5" },
      "Malformed webhook-timestamp header",
    ],
    [
      "timestamp too long",
      { ...good, "webhook-timestamp": "9".repeat(40) },
      "Malformed webhook-timestamp header",
    ],
    // 10 s past the tolerance, not 1: the check runs a moment after these
    // are made, and "too new" by 1 s passed when a second began between.
    [
      "too old",
      await signed(secret, body, { timestamp: now() - 310 }),
      "Message timestamp too old",
    ],
    [
      "too new",
      await signed(secret, body, { timestamp: now() + 310 }),
      "Message timestamp too new",
    ],
    [
      "no comma",
      { ...good, "webhook-signature": "v1" },
      "No v1 signature in webhook-signature header",
    ],
    [
      "bad base64",
      { ...good, "webhook-signature": "v1,!!!!" },
      "No v1 signature in webhook-signature header",
    ],
    [
      "short signature",
      { ...good, "webhook-signature": "v1,AAAA" },
      "No v1 signature in webhook-signature header",
    ],
    [
      "many entries, none matching",
      {
        ...good,
        "webhook-signature": Array.from(
          { length: 200 },
          (_, i) => `v1,${btoa(String.fromCharCode(i % 256).repeat(32))}`,
        ).join(" "),
      },
      "Invalid signature",
    ],
    [
      "only other versions",
      { ...good, "webhook-signature": "v1a,abc v2,xyz" },
      "No v1 signature in webhook-signature header",
    ],
    [
      "wrong secret",
      await signed(createSecret(), body),
      "Invalid signature",
    ],
    [
      "signature of another id",
      { ...good, "webhook-id": "msg_other" },
      "Invalid signature",
    ],
  ];
  for (const [name, headers, reason] of cases) {
    const response = await app.request("/hook", {
      method: "POST",
      body,
      headers,
    });
    assert.equal(response.status, 401, name);
    assert.equal(await response.text(), reason + "\n", name);
  }
  assert.equal(runs, 0);
  // Within the tolerance either way is fine.
  for (const timestamp of [now() - 290, now() + 290]) {
    const response = await app.request("/hook", {
      method: "POST",
      body,
      headers: await signed(secret, body, { timestamp }),
    });
    assert.equal(response.status, 200);
    await response.body?.cancel();
  }
  assert.equal(runs, 2);
});

Deno.test("verifyTrigger() accepts several secrets for a rotation and refuses bad options", async () => {
  const [oldSecret, newSecret] = [createSecret(), createSecret()];
  const app = new Hono();
  app.post(
    "/hook",
    verifyTrigger({ secret: [newSecret, oldSecret] }),
    (c) => c.text("ran"),
  );
  for (const secret of [oldSecret, newSecret]) {
    const response = await app.request("/hook", {
      method: "POST",
      body: "x",
      headers: await signed(secret, "x"),
    });
    assert.equal(response.status, 200);
    await response.body?.cancel();
  }
  // A sender in the middle of a rotation sends both signatures.
  const both = await signed(newSecret, "y");
  const id = both["webhook-id"];
  const timestamp = Number(both["webhook-timestamp"]);
  both["webhook-signature"] = `${await signPayload(createSecret(), {
    id,
    timestamp,
    body: "y",
  })} ${both["webhook-signature"]}`;
  const response = await app.request("/hook", {
    method: "POST",
    body: "y",
    headers: both,
  });
  assert.equal(response.status, 200);
  await response.body?.cancel();

  const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const bad: Array<[unknown, ErrorConstructor | RangeErrorConstructor]> = [
    [{}, TypeError],
    [{ secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }, TypeError],
    [{ secret: [] }, TypeError],
    [{ secret, secrets: [secret] }, TypeError],
    [{ secrets: [secret] }, TypeError],
    [{ secret, tolerance: 0 }, RangeError],
    [{ secret, tolerance: NaN }, RangeError],
    [{ secret, tolerance: 60_000, remember: 100_000 }, RangeError],
    [{ secret, tolerance: 300 }, RangeError], // seconds by mistake
    [{ secret, lease: 0 }, RangeError],
    [{ secret, maxBodySize: -1 }, RangeError],
    [{ secret, maxBodySize: 1.5 }, RangeError],
    [{ secret, maxBufferedBytes: 2_000_000.5 }, RangeError],
    [{ secret, bodyTimeout: -1 }, RangeError],
    [{ secret, bodyTimeout: 30 }, RangeError], // seconds by mistake
    [{ secret, bodyTimeout: 999 }, RangeError],
    [{ secret, store: {} }, TypeError],
    [{ secret, reportError: "log" }, TypeError],
  ];
  for (const [options, type] of bad) {
    assert.throws(
      // deno-lint-ignore no-explicit-any
      () => verifyTrigger(options as any),
      (error: Error) => {
        assert.ok(error instanceof type, `${error}`);
        assert.match(error.message, /^Cannot create verifyTrigger\(\)/);
        assert.ok(!error.message.includes("MfKQ9r8GKYqrTwjUPD8"));
        return true;
      },
    );
  }
});

Deno.test("option checks name the option at fault: tolerance, bodyTimeout, maxBodySize vs maxBufferedBytes, options", async () => {
  const secret = createSecret();
  const cases: Array<[() => unknown, ErrorConstructor, RegExp]> = [
    // A huge tolerance is refused as itself, not through remember's minimum.
    [
      () => verifyTrigger({ secret, tolerance: Number.MAX_SAFE_INTEGER }),
      RangeError,
      /tolerance must be a number of milliseconds from 1000 to 4503599627370495, received 9007199254740991/,
    ],
    [
      () => verifyTrigger({ secret, bodyTimeout: 30 }),
      RangeError,
      /bodyTimeout must be 0 \(no limit\) or a number of milliseconds from 1000 to 2147483647, received 30/,
    ],
    [
      () =>
        verifyTrigger({
          secret,
          maxBodySize: 2_000_000,
          maxBufferedBytes: 1_000_000,
        }),
      RangeError,
      /maxBodySize \(2000000\) must not exceed maxBufferedBytes \(1000000\)/,
    ],
    [
      () => verifyTrigger({ secret, maxBufferedBytes: 0 }),
      RangeError,
      /maxBodySize \(1048576\) must not exceed maxBufferedBytes \(0\)/,
    ],
    [
      () => connection(null as unknown as object),
      TypeError,
      /^Cannot create connection\(\) middleware: options must be an object, received null$/,
    ],
    [
      () => verifyTrigger(null as unknown as { secret: string }),
      TypeError,
      /options must be an object with a secret, received null/,
    ],
    // 0.1's name for reportError: ignored, an upgraded app's reports went
    // to console.error without a word.
    [
      () => verifyTrigger({ secret, onError() {} } as { secret: string }),
      TypeError,
      /^Cannot create verifyTrigger\(\) middleware: onError is now reportError/,
    ],
    [
      () => connection({ onError() {} } as object),
      TypeError,
      /^Cannot create connection\(\) middleware: onError is now reportError/,
    ],
  ];
  for (const [make, type, message] of cases) {
    assert.throws(make, (error: Error) => {
      assert.ok(error instanceof type, `${error}`);
      assert.match(error.message, message);
      return true;
    });
  }
  // Allowed: no limit, and a budget that holds exactly one largest body.
  verifyTrigger({
    secret,
    bodyTimeout: 0,
    maxBodySize: 10,
    maxBufferedBytes: 10,
  });
  verifyTrigger({ secret, tolerance: 4503599627370495 });
  // No body at all: a budget of 0 with a maxBodySize of 0 is consistent.
  const app = new Hono();
  app.post(
    "/hook",
    verifyTrigger({ secret, maxBodySize: 0, maxBufferedBytes: 0 }),
    (c) => c.text("ran"),
  );
  const empty = await app.request("/hook", {
    method: "POST",
    headers: await signed(secret, ""),
  });
  assert.equal(empty.status, 200);
  assert.equal(await empty.text(), "ran");
  const some = await app.request("/hook", {
    method: "POST",
    body: "x",
    headers: await signed(secret, "x"),
  });
  assert.equal(some.status, 413);
  await some.body?.cancel();
});

Deno.test("verifyTrigger() leaves the body readable for the route, every way", async () => {
  const secret = createSecret();
  const app = new Hono<VerifyTriggerEnv>();
  const seen: unknown[] = [];
  app.use("/hook/*", verifyTrigger({ secret }));
  app.post("/hook/json", async (c) => c.json(await c.req.json()));
  app.post("/hook/text", async (c) => c.text(await c.req.text()));
  app.post("/hook/raw", async (c) => c.text(await c.req.raw.text()));
  app.post("/hook/form", async (c) => c.json(await c.req.parseBody()));
  app.post("/hook/bytes", async (c) => {
    seen.push(c.var.trigger);
    return c.body(new Uint8Array(await c.req.arrayBuffer()));
  });
  const json = JSON.stringify({ é: "ü", n: [1, 2] });
  for (const path of ["json", "text", "raw"]) {
    const response = await app.request(`/hook/${path}`, {
      method: "POST",
      body: json,
      headers: { ...await signed(secret, json) },
    });
    assert.equal(response.status, 200, path);
    const text = await response.text();
    assert.equal(path === "json" ? text : text, json, path);
  }
  const form = "a=1&b=x+y";
  const formResponse = await app.request("/hook/form", {
    method: "POST",
    body: form,
    headers: {
      ...await signed(secret, form),
      "content-type": "application/x-www-form-urlencoded",
    },
  });
  assert.deepEqual(await formResponse.json(), { a: "1", b: "x y" });
  // Binary bodies are verified as bytes, not as text.
  const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
  const id = newId();
  const timestamp = now();
  const bytes = await app.request("/hook/bytes", {
    method: "POST",
    body: binary,
    headers: {
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": await signPayload(secret, {
        id,
        timestamp,
        body: binary,
      }),
    },
  });
  assert.equal(bytes.status, 200);
  assert.deepEqual(new Uint8Array(await bytes.arrayBuffer()), binary);
  assert.deepEqual(seen, [{ id, timestamp }]);

  // An earlier middleware that read the body through Hono: its cache is used.
  const app2 = new Hono();
  app2.use(async (c, next) => {
    await c.req.text();
    await next();
  });
  app2.post(
    "/h",
    verifyTrigger({ secret }),
    async (c) => c.text(await c.req.text()),
  );
  const again = await app2.request("/h", {
    method: "POST",
    body: json,
    headers: await signed(secret, json),
  });
  assert.equal(again.status, 200);
  assert.equal(await again.text(), json);

  // One that kept the body only parsed (`formData()`; Hono 4.7's
  // `parseBody()` and `json()` too): its bytes are gone, and
  // a signature over them cannot be checked. Not a 401 (the sender is not
  // at fault): a TypeError naming the order to fix.
  const formText = "a=1&b=x%20y";
  const errors: Error[] = [];
  const app3 = new Hono();
  app3.onError((error, c) => {
    errors.push(error);
    return c.text("misconfigured", 500);
  });
  app3.use(async (c, next) => {
    await c.req.formData();
    await next();
  });
  app3.post("/h", verifyTrigger({ secret }), (c) => c.text("ran"));
  const parsed = await app3.request("/h", {
    method: "POST",
    body: formText,
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      ...await signed(secret, formText),
    },
  });
  assert.equal(parsed.status, 500);
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof TypeError);
  assert.match(
    errors[0].message,
    /^verifyTrigger\(\): an earlier middleware read the body as formData, which does not keep its bytes as sent: put that middleware after verifyTrigger\(\)$/,
  );
});

Deno.test("verifyTrigger()'s copy of the request reads request.signal only when the route does, and it is the caller's signal then", async () => {
  // Reading request.signal makes Deno.serve (2.9) warn about its legacy
  // abort: the middleware itself must not read it.
  const secret = createSecret();
  let reads = 0;
  class Watched extends Request {
    override get signal(): AbortSignal {
      reads++;
      return super.signal;
    }
  }
  const app = new Hono<VerifyTriggerEnv>();
  app.post("/quiet", verifyTrigger({ secret }), async (c) => {
    return c.text(await c.req.text());
  });
  let routeSignal: AbortSignal | undefined;
  app.post("/listens", verifyTrigger({ secret }), async (c) => {
    routeSignal = c.req.raw.signal;
    return c.text(await c.req.text());
  });
  let cloneSignal: AbortSignal | undefined;
  app.post("/clones", verifyTrigger({ secret }), async (c) => {
    const copy = c.req.raw.clone();
    cloneSignal = copy.signal;
    return c.text(await copy.text());
  });
  const body = JSON.stringify({ n: 1 });
  const caller = new AbortController();
  const send = async (path: string) =>
    await app.fetch(
      new Watched(`http://hook.test${path}`, {
        method: "POST",
        body,
        headers: await signed(secret, body),
        signal: caller.signal,
      }),
    );
  const quiet = await send("/quiet");
  assert.equal(quiet.status, 200);
  assert.equal(await quiet.text(), body);
  assert.equal(reads, 0, "request.signal was read for a route that does not");

  const listens = await send("/listens");
  assert.equal(listens.status, 200);
  assert.equal(await listens.text(), body);
  assert.equal(reads, 1, "the route's read reaches the request's signal");
  assert.equal(routeSignal?.aborted, false);
  caller.abort(new Error("caller left"));
  assert.equal(routeSignal?.aborted, true, "the caller's abort reaches it");

  // A clone of the copy follows the caller too (its own platform signal
  // would never abort).
  const late = new AbortController();
  const cloned = await app.fetch(
    new Request("http://hook.test/clones", {
      method: "POST",
      body,
      headers: await signed(secret, body),
      signal: late.signal,
    }),
  );
  assert.equal(await cloned.text(), body);
  assert.equal(cloneSignal?.aborted, false);
  late.abort(new Error("caller left"));
  assert.equal(cloneSignal?.aborted, true, "a clone's signal follows it");
});

Deno.test("verifyTrigger() runs an id once: done after a 2xx, runnable again after a 5xx or a throw", async () => {
  const secret = createSecret();
  const store = new MemoryDedupStore();
  const app = new Hono();
  const outcomes: string[] = [];
  let runs = 0;
  app.post("/hook", verifyTrigger({ secret, store }), (c) => {
    runs++;
    const next = outcomes.shift();
    if (next === "throw") throw new Error("route failed");
    if (next === "500") return c.text("failed", 500);
    if (next === "400") return c.text("bad", 400);
    return c.text("ran");
  });
  const body = "job";
  const headers = await signed(secret, body);
  const send = () => app.request("/hook", { method: "POST", body, headers });

  outcomes.push("500", "throw", "400", "ok");
  assert.equal((await send()).status, 500);
  assert.equal((await send()).status, 500); // the throw, through Hono's onError
  assert.equal((await send()).status, 400);
  const ok = await send();
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), "ran");
  assert.equal(runs, 4);
  for (let i = 0; i < 3; i++) {
    const duplicate = await send();
    assert.equal(duplicate.status, 200);
    assert.equal(duplicate.headers.get("x-trigger-duplicate"), "done");
    assert.match(await duplicate.text(), /^Duplicate/);
  }
  assert.equal(runs, 4);
  // Re-signed with a fresh timestamp (an outbox's retry): still a duplicate.
  const resigned = await signed(secret, body, {
    id: headers["webhook-id"],
    timestamp: now() + 5,
  });
  const retry = await app.request("/hook", {
    method: "POST",
    body,
    headers: resigned,
  });
  assert.equal(retry.headers.get("x-trigger-duplicate"), "done");
  assert.equal(runs, 4);
  assert.equal(store.size, 1);

  // A custom onError answering 200 to a throw does not count as success.
  const app2 = new Hono();
  app2.onError((_error, c) => c.text("handled", 200));
  let thrown = 0;
  app2.post("/hook", verifyTrigger({ secret }), () => {
    thrown++;
    throw new Error("boom");
  });
  const h2 = await signed(secret, body);
  for (let i = 0; i < 2; i++) {
    const response = await app2.request("/hook", {
      method: "POST",
      body,
      headers: h2,
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-trigger-duplicate"), null);
    await response.body?.cancel();
  }
  assert.equal(thrown, 2);
});

Deno.test("verifyTrigger() never runs two deliveries of one id at once: the second gets 429", async () => {
  const secret = createSecret();
  const app = new Hono();
  let running = 0;
  let maxRunning = 0;
  let runs = 0;
  const gate = Promise.withResolvers<void>();
  app.post("/hook", verifyTrigger({ secret }), async (c) => {
    runs++;
    running++;
    maxRunning = Math.max(maxRunning, running);
    await gate.promise;
    running--;
    return c.text("ran");
  });
  const body = "x";
  const headers = await signed(secret, body);
  const send = () => app.request("/hook", { method: "POST", body, headers });
  const first = send();
  await until(() => running === 1, "the first delivery to enter the route");
  const concurrent = await Promise.all([send(), send(), send()]);
  for (const response of concurrent) {
    assert.equal(response.status, 429);
    assert.equal(response.headers.get("x-trigger-duplicate"), "running");
    assert.equal(response.headers.get("retry-after"), "5");
    await response.body?.cancel();
  }
  gate.resolve();
  assert.equal((await first).status, 200);
  const after = await send();
  assert.equal(after.status, 200);
  assert.equal(after.headers.get("x-trigger-duplicate"), "done");
  assert.equal(runs, 1);
  assert.equal(maxRunning, 1);
});

Deno.test("verifyTrigger() keeps the id claimed while a route connection() ended early still runs: retries get 429", async (t) => {
  const secret = createSecret();
  const cases = [
    { name: "time limit (503)", options: { timeLimit: 100 }, abort: false },
    { name: "caller gone (499)", options: {}, abort: true },
  ];
  for (const { name, options, abort } of cases) {
    await t.step(name, async () => {
      const app = new Hono<ConnectionEnv & VerifyTriggerEnv>();
      let running = 0;
      let maxRunning = 0;
      let runs = 0;
      let ended = 0;
      app.post(
        "/hook",
        verifyTrigger({ secret }),
        connection(options),
        async (c) => {
          runs++;
          running++;
          maxRunning = Math.max(maxRunning, running);
          await sleep(500); // ignores the signal
          running--;
          ended++;
          return c.text("ran");
        },
      );
      const body = "x";
      const headers = await signed(secret, body);
      const send = (signal?: AbortSignal) =>
        app.request("/hook", { method: "POST", body, headers, signal });
      const stop = new AbortController();
      const first = send(abort ? stop.signal : undefined);
      await until(() => running === 1, "the first delivery to run");
      stop.abort();
      const firstResponse = await first;
      assert.equal(firstResponse.status, abort ? 499 : 503);
      await firstResponse.body?.cancel();
      assert.equal(ended, 0, "the route still runs");
      const retry = await send();
      assert.equal(retry.status, 429, "a retry while the first still runs");
      assert.equal(retry.headers.get("x-trigger-duplicate"), "running");
      await retry.body?.cancel();
      assert.equal(await drainBackground(), true);
      assert.equal(ended, 1);
      // The first run ended without success: the id is runnable again.
      const again = send();
      await until(() => running === 1, "the retry to run");
      stop.abort();
      await (await again).body?.cancel();
      assert.equal(await drainBackground(), true);
      assert.equal(runs, 2);
      assert.equal(maxRunning, 1, "two runs of one id at once");
    });
  }
});

Deno.test("verifyTrigger() before connection({ ack: true }): bad signatures never get a 202, the ack marks the id done", async () => {
  const secret = createSecret();
  const app = new Hono();
  const done: string[] = [];
  let fail = true;
  app.post(
    "/jobs",
    verifyTrigger({ secret }),
    connection({ ack: true, maxBodySize: 1000 }),
    async (c) => {
      const { n } = await c.req.json();
      if (fail) {
        fail = false;
        throw new Error("background failure after the ack");
      }
      done.push(n);
    },
  );
  const errors: unknown[] = [];
  const realError = console.error;
  console.error = (...args: unknown[]) => void errors.push(args);
  try {
    const body = JSON.stringify({ n: "one" });
    const headers = await signed(secret, body);
    const bad = [
      {},
      { ...headers, "webhook-signature": "v1,AAAA" },
      await signed(createSecret(), body),
      await signed(secret, body, { timestamp: now() - 1000 }),
    ];
    for (const h of bad) {
      const response = await app.request("/jobs", {
        method: "POST",
        body,
        headers: h,
      });
      assert.equal(response.status, 401);
      await response.body?.cancel();
    }
    const send = () => app.request("/jobs", { method: "POST", body, headers });
    const firstResponse = await send();
    assert.equal(
      firstResponse.status,
      202,
      `${await firstResponse.text()} ${Deno.inspect(errors)}`,
    );
    await drainBackground();
    // The background run failed, but the id was done at the ack.
    const duplicate = await send();
    assert.equal(duplicate.status, 200);
    assert.equal(duplicate.headers.get("x-trigger-duplicate"), "done");
    await duplicate.body?.cancel();
    // Reported by Hono's default onError and by connection().
    assert.ok(
      errors.some((args) =>
        String((args as unknown[])[0]).startsWith("connection():")
      ),
    );

    const body2 = JSON.stringify({ n: "two" });
    assert.equal(
      (await app.request("/jobs", {
        method: "POST",
        body: body2,
        headers: await signed(secret, body2),
      })).status,
      202,
    );
    await drainBackground();
    assert.deepEqual(done, ["two"]);

    // connection()'s maxBodySize still applies behind verifyTrigger().
    const big = JSON.stringify({ n: "x".repeat(2000) });
    const tooBig = await app.request("/jobs", {
      method: "POST",
      body: big,
      headers: await signed(secret, big),
    });
    assert.equal(tooBig.status, 413);
    await tooBig.body?.cancel();
  } finally {
    console.error = realError;
  }
});

Deno.test("verifyTrigger() bounds the store's calls by storeTimeout: a claim that hangs is a 503 (released should it succeed later), a complete() that hangs holds no answer back", async () => {
  const secret = createSecret();
  const reported: Error[] = [];
  const released: string[] = [];
  const claimedWith: string[] = [];
  let late: ((result: "claimed") => void) | undefined;
  const slowClaim: DedupStore = {
    claim: (_id, _ttl, token) => (
      claimedWith.push(token), new Promise((resolve) => late = resolve)
    ),
    complete: () => Promise.resolve(),
    release: (
      id,
      token,
    ) => (released.push(`${id} ${token}`), Promise.resolve()),
  };
  let runs = 0;
  const app = new Hono();
  app.post(
    "/hook",
    verifyTrigger({
      secret,
      store: slowClaim,
      storeTimeout: 200,
      reportError: (error) => void reported.push(error as Error),
    }),
    (c) => (runs++, c.text("ran")),
  );
  const headers = await signed(secret, "x");
  const response = await within(
    Promise.resolve(
      app.request("/hook", { method: "POST", body: "x", headers }),
    ),
    "an answer while store.claim() hangs",
    10_000,
  );
  assert.equal(response.status, 503);
  await response.body?.cancel();
  assert.equal(runs, 0);
  await until(() => reported.length === 1, "the timeout reported");
  assert.match(
    reported[0].message,
    /store\.claim\(\) did not answer within 200 ms/,
  );
  // The claim succeeds after all: nothing runs under it, it is let go.
  late!("claimed");
  await until(() => released.length === 1, "the late claim released");
  assert.equal(
    released[0],
    `${await storeKey(secret, headers["webhook-id"])} ${claimedWith[0]}`,
    "released with the token it claimed with",
  );

  // A claim that never answers holds no shutdown: drainBackground() does
  // not wait for it.
  const never: DedupStore = {
    claim: () => new Promise(() => {}),
    complete: () => Promise.resolve(),
    release: () => Promise.resolve(),
  };
  const app3 = new Hono();
  app3.post(
    "/hook",
    verifyTrigger({
      secret,
      store: never,
      storeTimeout: 50,
      lease: 1_000,
      reportError: () => {},
    }),
    (c) => c.text("ran"),
  );
  const third = await within(
    Promise.resolve(app3.request("/hook", {
      method: "POST",
      body: "z",
      headers: await signed(secret, "z"),
    })),
    "an answer while store.claim() never answers",
    10_000,
  );
  assert.equal(third.status, 503);
  await third.body?.cancel();
  assert.equal(
    await drainBackground({ timeout: 5_000 }),
    true,
    "no background work held by a claim that never answers",
  );

  // complete() hangs: the route's answer goes out after storeTimeout.
  const hangingComplete: DedupStore = {
    claim: () => Promise.resolve("claimed"),
    complete: () => new Promise(() => {}),
    release: () => Promise.resolve(),
  };
  const app2 = new Hono();
  app2.post(
    "/hook",
    verifyTrigger({
      secret,
      store: hangingComplete,
      storeTimeout: 200,
      reportError: (error) => void reported.push(error as Error),
    }),
    (c) => c.text("ran"),
  );
  const second = await within(
    Promise.resolve(app2.request("/hook", {
      method: "POST",
      body: "y",
      headers: await signed(secret, "y"),
    })),
    "the route's answer while store.complete() hangs",
    10_000,
  );
  assert.equal(second.status, 200);
  assert.equal(await second.text(), "ran");
  assert.match(
    reported[1].message,
    /store\.complete\(\) did not answer within 200 ms/,
  );
  assert.throws(
    () => verifyTrigger({ secret, storeTimeout: 0 }),
    /storeTimeout must be a number of milliseconds from 1 to 2147483647, received 0/,
  );
});

Deno.test("verifyTrigger() answers 503 when the store fails, and reports it", async () => {
  const secret = createSecret();
  const reported: unknown[] = [];
  const failing: DedupStore = {
    claim: () => Promise.reject(new Error("db down")),
    complete: () => Promise.resolve(),
    release: () => Promise.resolve(),
  };
  const app = new Hono();
  let runs = 0;
  app.post(
    "/hook",
    verifyTrigger({
      secret,
      store: failing,
      reportError: (error) => void reported.push(error),
    }),
    (c) => (runs++, c.text("ran")),
  );
  const response = await app.request("/hook", {
    method: "POST",
    body: "x",
    headers: await signed(secret, "x"),
  });
  assert.equal(response.status, 503);
  await response.body?.cancel();
  assert.equal(runs, 0);
  assert.equal((reported[0] as Error).message, "db down");

  // complete() failing: the route's answer stands, the failure is reported.
  const halfFailing: DedupStore = {
    claim: () => Promise.resolve("claimed"),
    complete: () => Promise.reject(new Error("write lost")),
    release: () => Promise.resolve(),
  };
  const app2 = new Hono();
  app2.post(
    "/hook",
    verifyTrigger({
      secret,
      store: halfFailing,
      reportError: (error) => void reported.push(error),
    }),
    (c) => c.text("ran"),
  );
  const ok = await app2.request("/hook", {
    method: "POST",
    body: "x",
    headers: await signed(secret, "x"),
  });
  assert.equal(await ok.text(), "ran");
  assert.equal((reported[1] as Error).message, "write lost");
});

Deno.test("MemoryDedupStore stays bounded: expiry, eviction of done ids, running claims kept", async () => {
  const store = new MemoryDedupStore({ maxEntries: 3 });
  assert.equal(await store.claim("a", 60_000, "t"), "claimed");
  assert.equal(await store.claim("b", 60_000, "t"), "claimed");
  assert.equal(await store.claim("c", 60_000, "t"), "claimed");
  // Full of running claims: a new id must wait.
  assert.equal(await store.claim("d", 60_000, "t"), "busy");
  await store.complete("b", 60_000);
  assert.equal(await store.claim("d", 60_000, "t"), "claimed"); // "b" forgotten
  assert.equal(store.size, 3);
  assert.equal(await store.claim("a", 60_000, "t"), "busy");
  await store.release("a", "t");
  await store.release("zzz", "t"); // unknown: nothing happens
  assert.equal(store.size, 2);
  // Expiry.
  assert.equal(await store.claim("e", 20, "t"), "claimed");
  await store.complete("e", 20);
  assert.equal(await store.claim("e", 60_000, "t"), "done");
  await sleep(40);
  assert.equal(await store.claim("e", 60_000, "t"), "claimed");
  // release() never drops a done id.
  await store.complete("e", 60_000);
  await store.release("e", "t");
  assert.equal(await store.claim("e", 60_000, "t"), "done");
  assert.throws(() => new MemoryDedupStore({ maxEntries: 0 }), RangeError);

  const big = new MemoryDedupStore({ maxEntries: 1000 });
  for (let i = 0; i < 20_000; i++) {
    const id = `id-${i}`;
    assert.equal(await big.claim(id, 60_000, "t"), "claimed");
    await big.complete(id, 60_000);
    assert.ok(big.size <= 1000);
  }
  assert.equal(big.size, 1000);
});

Deno.test("hostile input into verifyTrigger(): 20,000 malformed requests, no crash, no store growth", async () => {
  const secret = createSecret();
  const store = new MemoryDedupStore({ maxEntries: 500 });
  const app = new Hono();
  let runs = 0;
  app.post("/hook", verifyTrigger({ secret, store }), (c) => {
    runs++;
    return c.text("ran");
  });
  const statuses = new Map<string, number>();
  const good = await signed(secret, "body");
  let seed = 12345;
  const random = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const junk = () => {
    const length = Math.floor(random() * 64);
    let text = "";
    for (let i = 0; i < length; i++) {
      text += String.fromCharCode(0x20 + Math.floor(random() * 0x5f));
    }
    return text;
  };
  const heapBefore = Deno.memoryUsage().heapUsed;
  const started = performance.now();
  for (let i = 0; i < 20_000; i++) {
    const headers: Record<string, string> = { ...good };
    const kind = i % 5;
    if (kind === 0) headers["webhook-signature"] = junk();
    if (kind === 1) headers["webhook-timestamp"] = junk();
    if (kind === 2) headers["webhook-id"] = junk() + "." + junk();
    if (kind === 3) {
      headers["webhook-signature"] = "v1," +
        btoa(
          String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))),
        );
      headers["webhook-id"] = `msg_${i}`;
    }
    if (kind === 4) {
      delete headers[
        ["webhook-id", "webhook-timestamp", "webhook-signature"][i % 3]
      ];
    }
    const response = await app.request("/hook", {
      method: "POST",
      body: "body",
      headers,
    });
    const key = `${response.status} ${(await response.text()).trim()}`;
    statuses.set(key, (statuses.get(key) ?? 0) + 1);
  }
  const elapsed = performance.now() - started;
  assert.equal(runs, 0);
  assert.equal(store.size, 0);
  for (const key of statuses.keys()) assert.match(key, /^401 /);
  const growth = Deno.memoryUsage().heapUsed - heapBefore;
  console.log(
    `20,000 malformed requests in ${elapsed.toFixed(0)} ms, heap +${
      (growth / 1e6).toFixed(1)
    } MB, answers:`,
    Object.fromEntries(statuses),
  );
  // 20,000 validly signed distinct ids: the store stays at its bound.
  for (let i = 0; i < 2_000; i++) {
    const response = await app.request("/hook", {
      method: "POST",
      body: "b",
      headers: await signed(secret, "b"),
    });
    assert.equal(response.status, 200);
    await response.body?.cancel();
  }
  assert.equal(store.size, 500);
});

// ---------------------------------------------------------------------------
// Over real sockets: Deno.serve.
// ---------------------------------------------------------------------------

function serve(
  app: {
    // deno-lint-ignore no-explicit-any
    fetch: (request: Request, ...rest: any[]) => Response | Promise<Response>;
  },
) {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    app.fetch,
  );
  return { port: server.addr.port, server };
}

/** Writes a request head, then its body one byte every `every` ms; returns the status line's code. */
async function slowBody(
  port: number,
  head: string,
  body: Uint8Array,
  every: number,
): Promise<{ status: number; elapsed: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const started = performance.now();
  let answer = "";
  const reading = (async () => {
    const buffer = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) return;
      answer += new TextDecoder().decode(buffer.subarray(0, n));
      if (answer.includes("\r\n")) return;
    }
  })();
  await conn.write(new TextEncoder().encode(head));
  for (const byte of body) {
    if (answer.includes("\r\n")) break;
    try {
      await conn.write(new Uint8Array([byte]));
    } catch {
      break;
    }
    await sleep(every);
  }
  await reading;
  const elapsed = performance.now() - started;
  conn.close();
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0),
    elapsed,
  };
}

Deno.test("hostile bodies on Deno.serve: oversized → 413, slow-loris → 408 / TIMEOUT, all bounded", async () => {
  const secret = createSecret();
  const app = new Hono();
  const statuses: number[] = [];
  let runs = 0;
  app.post(
    "/verified",
    verifyTrigger({ secret, maxBodySize: 10_000, bodyTimeout: 1_000 }),
    (c) => (runs++, c.text("ran")),
  );
  app.post(
    "/ack",
    connection({ ack: true, maxBodySize: 10_000, timeLimit: 500 }),
    (c) => {
      runs++;
      return c.text("ran");
    },
  );
  const { port, server } = serve(app);
  const base = `http://127.0.0.1:${port}`;
  try {
    // Oversized, declared: refused before reading.
    const big = "x".repeat(20_000);
    for (const path of ["/verified", "/ack"]) {
      const response = await fetch(base + path, {
        method: "POST",
        body: big,
        headers: await signed(secret, big),
      });
      assert.equal(response.status, 413, path);
      assert.match(await response.text(), /exceeds 10000 bytes/);
    }
    // Oversized, chunked (no Content-Length): counted while reading.
    for (const path of ["/verified", "/ack"]) {
      const stream = new Blob([big]).stream();
      const response = await fetch(base + path, {
        method: "POST",
        body: stream,
        headers: await signed(secret, big),
      });
      assert.equal(response.status, 413, path);
      await response.body?.cancel();
    }
    // Slow-loris: 1 byte every 100 ms of a 100-byte body.
    const body = new Uint8Array(100).fill(0x61);
    const headers = await signed(secret, "a".repeat(100));
    const head = (path: string) =>
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n` +
      Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("") +
      "\r\n";
    const verified = await slowBody(port, head("/verified"), body, 100);
    assert.equal(verified.status, 408);
    // The whole body would take 10 s: cut at 1 s, within a wide margin.
    assert.ok(verified.elapsed < 5_000, `${verified.elapsed} ms`);
    const ack = await slowBody(port, head("/ack"), body, 100);
    // connection()'s time limit covers the body read: 503, status TIMEOUT.
    assert.equal(ack.status, 503);
    assert.ok(ack.elapsed < 5_000, `${ack.elapsed} ms`);
    statuses.push(verified.status, ack.status);
    assert.equal(runs, 0);
  } finally {
    await server.shutdown();
  }
  console.log("slow-loris answers:", statuses);
});

Deno.test("connection({ ack: true }) bounds the body read: a stalled body gets 408, a spent budget 503 + Retry-After", async () => {
  const app = new Hono();
  let arrived = 0;
  let runs = 0;
  app.use("/ack", async (_c, next) => {
    arrived++;
    await next();
  });
  app.post(
    "/ack",
    connection({
      ack: true,
      maxBodySize: 100,
      bodyTimeout: 1_000,
      maxBufferedBytes: 150,
    }),
    (c) => (runs++, c.text("ran")),
  );
  const { port, server } = serve(app);
  try {
    // 100 declared bytes, 90 at once, then 1 byte every 300 ms: holds 90
    // and more of the 150 bytes (the budget counts bytes as they arrive, not
    // the declared length) until the body timeout ends it.
    const head =
      "POST /ack HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" +
      "a".repeat(90);
    const stalled = slowBody(port, head, new Uint8Array(10).fill(0x61), 300);
    await until(() => arrived === 1, "the stalled request to arrive");
    // Until its first 90 bytes are read and counted, 100 more still fit
    // (202, and the route runs); then they are refused. Probed, not slept
    // on: a loaded machine may take longer than any fixed delay.
    let early = 0;
    let busy!: Response;
    await until(
      async () => {
        busy = await fetch(`http://127.0.0.1:${port}/ack`, {
          method: "POST",
          body: "b".repeat(100),
        });
        if (busy.status === 503) return true;
        assert.equal(busy.status, 202);
        await busy.body?.cancel();
        early++;
        return false;
      },
      "a 100-byte body refused with 503 while the stalled one holds 90",
      { timeout: 10_000, interval: 20 },
    );
    assert.equal(busy.headers.get("retry-after"), "5");
    await busy.body?.cancel();
    const small = await fetch(`http://127.0.0.1:${port}/ack`, {
      method: "POST",
      body: "s".repeat(40), // fits beside the stalled one
    });
    assert.equal(small.status, 202);
    await small.body?.cancel();
    const { status, elapsed } = await stalled;
    assert.equal(status, 408);
    assert.ok(elapsed < 5_000, `${elapsed} ms`);
    // The stalled body's bytes are back: a full-size body fits again.
    const after = await fetch(`http://127.0.0.1:${port}/ack`, {
      method: "POST",
      body: "a".repeat(100),
    });
    assert.equal(after.status, 202);
    await after.body?.cancel();
    assert.equal(await drainBackground(), true);
    assert.equal(runs, 2 + early);
  } finally {
    await server.shutdown();
  }
  assert.throws(
    () => connection({ ack: true, bodyTimeout: 10 }),
    /bodyTimeout must be 0 \(no limit\) or a number of milliseconds from 1000/,
  );
  assert.throws(
    () => connection({ maxBodySize: 200, maxBufferedBytes: 100 }),
    /maxBodySize \(200\) must not exceed maxBufferedBytes \(100\)/,
  );
});

Deno.test("connection({ ack: true }) ends a body trickling past its time limit with status TIMEOUT", async () => {
  const app = new Hono<ConnectionEnv>();
  const statuses: number[] = [];
  let runs = 0;
  app.post(
    "/ack",
    async (c, next) => {
      await next();
      statuses.push(c.var.connection.status);
    },
    connection({ ack: true, timeLimit: 300 }),
    (c) => (runs++, c.text("ran")),
  );
  const { port, server } = serve(app);
  try {
    const result = await slowBody(
      port,
      "POST /ack HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n",
      new Uint8Array(50).fill(0x61),
      50,
    );
    assert.equal(result.status, 503);
    assert.ok(result.elapsed < 1_500, `${result.elapsed} ms`);
  } finally {
    await server.shutdown();
  }
  assert.deepEqual(statuses, [ConnectionStatus.TIMEOUT]);
  assert.equal(runs, 0);
});

Deno.test("trigger() with sign reaches verifyTrigger() on Deno.serve, once per id, on both transports", async () => {
  const secret = createSecret();
  const app = new Hono<VerifyTriggerEnv>();
  const ran: string[] = [];
  app.post(
    "/jobs",
    verifyTrigger({ secret }),
    connection({ ack: true }),
    async (c) => {
      const { n } = await c.req.json();
      ran.push(`${c.var.trigger.id}:${n}`);
    },
  );
  const { port, server } = serve(app);
  try {
    for (const transport of ["socket", "fetch"] as const) {
      const id = newId();
      for (let attempt = 0; attempt < 3; attempt++) {
        const result = await trigger(`http://127.0.0.1:${port}/jobs`, {
          json: { n: attempt },
          sign: { secret, id },
          transport,
          wait: "accepted",
        });
        assert.equal(result.ok, true, result.error?.message);
        assert.equal(result.status, attempt === 0 ? 202 : 200);
      }
      // A wrong secret: refused, ok: false with the status.
      const wrong = await trigger(`http://127.0.0.1:${port}/jobs`, {
        json: {},
        sign: { secret: createSecret() },
        transport,
        wait: "accepted",
      });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.error?.code, "HTTP_STATUS");
    }
    await drainBackground();
    assert.equal(ran.length, 2);
    assert.ok(ran.every((entry) => entry.endsWith(":0")));
  } finally {
    await server.shutdown();
  }
});

Deno.test("connection({ ack: true }) answers 202 even when the route throws at once", async () => {
  const app = new Hono();
  const reported: unknown[] = [];
  app.post(
    "/sync",
    connection({
      ack: true,
      reportError: (error) => void reported.push(error),
    }),
    () => {
      throw new Error("at once");
    },
  );
  const realError = console.error;
  console.error = () => {}; // Hono's default onError logs the throw too
  try {
    const response = await app.request("/sync", { method: "POST", body: "x" });
    assert.equal(response.status, 202);
    assert.equal(await drainBackground(), true);
  } finally {
    console.error = realError;
  }
  assert.equal((reported[0] as Error).message, "at once");
});

Deno.test("verifyTrigger() in front of connection({ ack: true }): the early 202 carries none of the background route's headers, however slow the store", async () => {
  const secret = createSecret();
  const memory = new MemoryDedupStore();
  const store = {
    claim: memory.claim.bind(memory),
    release: memory.release.bind(memory),
    // Slower than the route: it has written its own answer by then.
    complete: async (id: string, ttl: number) => {
      await new Promise((r) => setTimeout(r, 50));
      return memory.complete(id, ttl);
    },
  };
  const app = new Hono();
  app.post(
    "/job",
    verifyTrigger({ secret, store }),
    connection({ ack: true }),
    (c) => {
      c.header("set-cookie", "session=route-secret");
      c.header("x-route", "leaked");
      return c.json({ background: true });
    },
  );
  const body = "{}";
  const id = "msg_ack_headers";
  const timestamp = Math.floor(Date.now() / 1000);
  const response = await app.request("/job", {
    method: "POST",
    body,
    headers: {
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": await signPayload(secret, { id, timestamp, body }),
    },
  });
  assert.equal(response.status, 202);
  assert.equal(response.headers.get("set-cookie"), null);
  assert.equal(response.headers.get("x-route"), null);
  assert.equal(await drainBackground(), true);
});
