// An outbox engine whose pg-boss calls the test answers itself: for tests
// that drive the Dispatcher directly (the order of its own steps, a clock
// moved by hand), with no database.
import type { Engine } from "../../src/durable/_engine.ts";

/** The pg-boss calls the Dispatcher makes, as a test answers them. */
export interface FakeBoss {
  fetch(queue: string, options: { batchSize: number }): Promise<unknown[]>;
  complete(queue: string, claims: { id: string }[]): Promise<unknown>;
  fail(): Promise<unknown>;
  touch(queue: string, claims: { id: string }[]): Promise<unknown>;
  getDb(): {
    executeSql(sql: string, params: unknown[]): Promise<{ rows: unknown[] }>;
  };
}

/** An embedded-looking engine around `boss`: run() and transaction() call
 * straight through, failures pass as they are. */
export function fakeEngine(boss: FakeBoss): Engine {
  return {
    engine: "embedded",
    where: "a fake engine",
    boss,
    run: (_what: string, fn: () => Promise<unknown>) => fn(),
    transaction: (_what: string, fn: (db: unknown) => Promise<unknown>) =>
      fn(boss.getDb()),
    fail: (_what: string, error: unknown) => error,
    close: () => Promise.resolve(),
  } as unknown as Engine;
}
