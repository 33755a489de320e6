// verifyTrigger({ store }) names what is wrong with a store: a class-based
// store keeps its methods on the prototype, so "own properties" say nothing.
import assert from "node:assert/strict";
import { verifyTrigger } from "../../src/hono/mod.ts";
import { MemoryDedupStore } from "../../src/dedup/memory.ts";

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

Deno.test("verifyTrigger() names the missing store method, for class-based stores too", () => {
  class HalfStore {
    claim() {
      return Promise.resolve("claimed" as const);
    }
    complete() {
      return Promise.resolve();
    }
  }
  assert.throws(
    // @ts-expect-error: release() is missing
    () => verifyTrigger({ secret, store: new HalfStore() }),
    {
      name: "TypeError",
      message: /store\.release must be a function, received undefined/,
    },
  );
  assert.throws(
    // @ts-expect-error: not a store
    () => verifyTrigger({ secret, store: null }),
    { name: "TypeError", message: /store must be a DedupStore, received null/ },
  );
  // A real class-based store passes.
  verifyTrigger({ secret, store: new MemoryDedupStore() });
});
