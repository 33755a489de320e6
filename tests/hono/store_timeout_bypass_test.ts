// verifyTrigger() leaves only MemoryDedupStore's own methods untimed (they
// answer at once): one replaced on an instance (wrapped, instrumented) or
// overridden by a subclass may hang, and storeTimeout bounds it like any
// store's.
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  type ClaimResult,
  MemoryDedupStore,
  verifyTrigger,
} from "../../src/hono/mod.ts";
import { createSecret, signPayload } from "../../mod.ts";
import { until, within } from "../_wait.ts";

let counter = 0;

/** Sends one signed delivery through verifyTrigger() in front of `store`;
 * the answer, what was reported and how often the route ran. */
async function deliver(store: MemoryDedupStore) {
  const secret = createSecret();
  const reported: Error[] = [];
  let runs = 0;
  const app = new Hono();
  app.post(
    "/hook",
    verifyTrigger({
      secret,
      store,
      storeTimeout: 200,
      reportError: (error) => void reported.push(error as Error),
    }),
    (c) => (runs++, c.text("ran")),
  );
  const id = `msg_bypass_${++counter}`;
  const timestamp = Math.floor(Date.now() / 1000);
  const response = await within(
    Promise.resolve(app.request("/hook", {
      method: "POST",
      body: "x",
      headers: {
        "webhook-id": id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": await signPayload(secret, {
          id,
          timestamp,
          body: "x",
        }),
      },
    })),
    "an answer while a store call never answers",
    10_000,
  );
  return { response, reported, runs: () => runs };
}

Deno.test("verifyTrigger() bounds a MemoryDedupStore whose claim() was replaced on the instance: a claim that never answers is a 503", async () => {
  const store = new MemoryDedupStore();
  store.claim = () => new Promise<ClaimResult>(() => {});
  const { response, reported, runs } = await deliver(store);
  assert.equal(response.status, 503);
  await response.body?.cancel();
  assert.equal(runs(), 0);
  await until(() => reported.length === 1, "the timeout reported");
  assert.match(
    reported[0].message,
    /store\.claim\(\) did not answer within 200 ms/,
  );
});

Deno.test("verifyTrigger() bounds a MemoryDedupStore subclass that overrides claim(): a claim that never answers is a 503", async () => {
  class Instrumented extends MemoryDedupStore {
    override claim(): Promise<ClaimResult> {
      return new Promise(() => {});
    }
  }
  const { response, reported, runs } = await deliver(new Instrumented());
  assert.equal(response.status, 503);
  await response.body?.cancel();
  assert.equal(runs(), 0);
  await until(() => reported.length === 1, "the timeout reported");
  assert.match(
    reported[0].message,
    /store\.claim\(\) did not answer within 200 ms/,
  );
});

Deno.test("verifyTrigger() bounds a MemoryDedupStore whose complete() was replaced: the route's answer goes out after storeTimeout", async () => {
  const store = new MemoryDedupStore();
  store.complete = () => new Promise<void>(() => {});
  const { response, reported, runs } = await deliver(store);
  assert.equal(response.status, 200);
  assert.equal(await response.text(), "ran");
  assert.equal(runs(), 1);
  assert.match(
    reported[0]?.message ?? "",
    /store\.complete\(\) did not answer within 200 ms/,
  );
});

Deno.test("verifyTrigger() still serves through a plain MemoryDedupStore and a subclass that keeps its methods", async () => {
  class Plain extends MemoryDedupStore {}
  for (const store of [new MemoryDedupStore(), new Plain()]) {
    const { response, reported, runs } = await deliver(store);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "ran");
    assert.equal(runs(), 1);
    assert.deepEqual(reported, []);
  }
});
