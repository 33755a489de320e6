// PostgresDedupStore checks its input as MemoryDedupStore does: a bad
// connectionString or options is a TypeError from the constructor, a bad ttl
// a RangeError thrown by claim() and complete() before any statement. None of
// it needs a database: the store is given a `db` that records its statements.
import assert from "node:assert/strict";
import { MemoryDedupStore } from "../../src/hono/mod.ts";
import {
  PostgresDedupStore,
  type PostgresDedupStoreOptions,
  type Queryable,
} from "../../src/dedup/postgres.ts";

/** A `db` that answers nothing and records the statements it was given. */
function recorder(): Queryable & { statements: string[] } {
  const statements: string[] = [];
  return {
    statements,
    query(text: string) {
      statements.push(text);
      return Promise.reject(new Error("no database in this test"));
    },
  };
}

/** Runs `call`: what it threw at once, or `undefined` (its promise, should
 * it return one, is let fail quietly). */
function thrownBy(call: () => unknown): unknown {
  try {
    (call() as Promise<unknown> | undefined)?.catch?.(() => {});
  } catch (error) {
    return error;
  }
  return undefined;
}

Deno.test("PostgresDedupStore refuses a connectionString that is not a non-empty string, naming it", () => {
  for (
    const [value, shown] of [
      [5, "5"],
      ["", '""'],
      [{ host: "db" }, "Object"],
      [null, "null"],
    ] as const
  ) {
    assert.throws(
      () =>
        new PostgresDedupStore(
          { connectionString: value } as unknown as PostgresDedupStoreOptions,
        ),
      (error: Error) => {
        assert.ok(error instanceof TypeError, String(error));
        assert.equal(
          error.message,
          `Cannot create PostgresDedupStore: connectionString must be a non-empty string, received ${shown}`,
        );
        return true;
      },
    );
  }
});

Deno.test("PostgresDedupStore refuses options that are not an object, as MemoryDedupStore does", () => {
  for (const options of [undefined, null, "postgres://u@127.0.0.1/db", 5]) {
    const error = thrownBy(() =>
      new PostgresDedupStore(options as unknown as PostgresDedupStoreOptions)
    );
    assert.ok(error instanceof TypeError, String(error));
    assert.match(
      error.message,
      /^Cannot create PostgresDedupStore: options must be an object, received /,
    );
  }
  assert.throws(
    () => new MemoryDedupStore(null as unknown as undefined),
    /^TypeError: Cannot create MemoryDedupStore: options must be an object/,
  );
});

Deno.test("PostgresDedupStore claim() and complete() throw the RangeError MemoryDedupStore throws for a bad ttl, before any statement", async () => {
  const db = recorder();
  const store = new PostgresDedupStore({ db, reportError: () => {} });
  const memory = new MemoryDedupStore();
  for (const ttl of [NaN, Infinity, -Infinity, -5, -0.5, 2 ** 53, "60000"]) {
    const calls = [
      [
        "claim",
        (s: MemoryDedupStore | PostgresDedupStore) =>
          s.claim("msg_ttl", ttl as number, "t"),
      ],
      [
        "complete",
        (s: MemoryDedupStore | PostgresDedupStore) =>
          s.complete("msg_ttl", ttl as number),
      ],
    ] as const;
    for (const [name, call] of calls) {
      const expected = thrownBy(() => call(memory));
      assert.ok(expected instanceof RangeError, `memory ${name} ${ttl}`);
      const error = thrownBy(() => call(store));
      assert.ok(
        error instanceof RangeError,
        `${name}(ttl ${String(ttl)}): ${String(error)}`,
      );
      assert.equal(error.message, expected.message);
    }
  }
  assert.deepEqual(db.statements, [], "no statement for a bad ttl");

  // A good ttl reaches the database (here: a rejection, never a throw).
  await assert.rejects(
    store.claim("msg_ttl", 0, "t"),
    /no database in this test/,
  );
  await assert.rejects(
    store.complete("msg_ttl", Number.MAX_SAFE_INTEGER),
    /no database in this test/,
  );
  assert.ok(db.statements.length > 0);
  await store.close();
});
