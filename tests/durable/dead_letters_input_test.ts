// outbox.deadLetters()'s input: bad options are a synchronous TypeError or
// RangeError naming the value, as for start() and stop(). A limit of 1e21
// passed Number.isInteger() and the query failed (DATABASE); null threw
// "Cannot read properties of null"; a string was taken for no options.
import assert from "node:assert/strict";
import type { Outbox } from "../../src/durable/mod.ts";
import { DATABASE_URL, freshOptions, openOutbox } from "./_seed.ts";

/** Calls deadLetters(); a promise it returns (rejecting, before the fix) is
 * kept from going unhandled, so that the assertion is what fails. */
function list(outbox: Outbox, options: unknown): void {
  outbox.deadLetters(options as { limit?: number }).catch(() => {});
}

for (const engine of ["embedded", "postgres"] as const) {
  Deno.test({
    name:
      `deadLetters() (${engine}) throws a RangeError at the call for a limit not a safe whole number above 0 (1e21 included), a TypeError for options not an object; Number.MAX_SAFE_INTEGER lists them`,
    ignore: engine === "postgres" && DATABASE_URL === undefined,
    async fn() {
      const { cleanup, ...options } = await freshOptions(engine);
      const outbox = await openOutbox(options);
      try {
        for (const limit of [1e21, 2 ** 53, 0, -1, 1.5, Number.NaN, Infinity]) {
          assert.throws(
            () => list(outbox, { limit }),
            (error: unknown) =>
              error instanceof RangeError &&
              error.message.startsWith(
                "Cannot list dead letters: limit must be a whole number",
              ) &&
              error.message.endsWith(`received ${limit}`),
            `limit ${limit}`,
          );
        }
        assert.throws(
          () => list(outbox, { limit: "5" }),
          RangeError,
        );
        for (const [given, shown] of [[null, "null"], ["x", '"x"']]) {
          assert.throws(
            () => list(outbox, given),
            (error: unknown) =>
              error instanceof TypeError &&
              error.message ===
                `Cannot list dead letters: options must be an object, received ${shown}`,
            `options ${shown}`,
          );
        }
        assert.deepEqual(
          await outbox.deadLetters({ limit: Number.MAX_SAFE_INTEGER }),
          [],
        );
        assert.deepEqual(await outbox.deadLetters(), []);
      } finally {
        await outbox.stop();
        await cleanup();
      }
    },
  });
}
