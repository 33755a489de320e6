// drainBackground() given a signal that cannot be listened to (its
// addEventListener throws) while work is running: a synchronous TypeError
// naming the signal, as drainTriggers() throws. It returned a promise that
// rejected with the signal's own error.
import assert from "node:assert/strict";
import { Hono } from "hono";
import { connection, drainBackground } from "../../src/hono/mod.ts";
import { within } from "../_wait.ts";

Deno.test("drainBackground() throws a TypeError at the call, naming the signal, when the signal's addEventListener throws while work is waited for", async () => {
  const gate = Promise.withResolvers<void>();
  const app = new Hono();
  app.post("/jobs", connection({ ack: true }), async () => {
    await gate.promise;
  });
  const refused = new Error("listener refused");
  const signal = {
    aborted: false,
    addEventListener() {
      throw refused;
    },
    removeEventListener() {},
  } as unknown as AbortSignal;
  try {
    assert.equal((await app.request("/jobs", { method: "POST" })).status, 202);
    assert.throws(
      () => {
        // Before the fix a rejecting promise came back: kept from going
        // unhandled, so that this assertion is what fails.
        drainBackground({ signal, timeout: 60_000 }).catch(() => {});
      },
      (error: unknown) =>
        error instanceof TypeError &&
        error.message ===
          "Cannot drain background work: signal cannot be listened to: its addEventListener threw" &&
        error.cause === refused,
    );
  } finally {
    gate.resolve();
    assert.equal(await within(drainBackground(), "the drain"), true);
  }
});
