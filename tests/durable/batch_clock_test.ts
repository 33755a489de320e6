// The outbox's insert queue bounds how long a trigger waits to be stored
// (`queryTimeout`) on the monotonic clock: a wall clock set forward an hour
// while triggers waited expired them all, unwritten, though they had
// waited no time at all (hunt AI).
import assert from "node:assert/strict";
import { Batcher } from "../../src/durable/_batch.ts";

Deno.test("the insert queue's deadline runs on the monotonic clock: a wall clock set forward an hour expires no waiting item", async () => {
  const realNow = Date.now;
  let release!: () => void;
  const first = new Promise<void>((resolve) => release = resolve);
  let writes = 0;
  const written: number[] = [];
  const batcher = new Batcher<number>(
    async (items) => {
      if (writes++ === 0) await first;
      written.push(...items);
      return items.map(() => undefined);
    },
    100,
    1,
    {
      limit: 1_000,
      deadline: 10_000,
      full: () => new Error("full"),
      expired: () => new Error("expired"),
      abandoned: () => undefined,
    },
  );
  try {
    const one = batcher.add(1);
    // Waits behind the first write, under way.
    await new Promise((resolve) => setTimeout(resolve, 10));
    const waiting = [batcher.add(2), batcher.add(3)];
    Date.now = () => realNow() + 3_600_000;
    release();
    await one;
    const settled = await Promise.allSettled(waiting);
    assert.deepEqual(
      settled.map((s) => s.status),
      ["fulfilled", "fulfilled"],
      String(settled.map((s) => s.status === "rejected" ? s.reason : "ok")),
    );
    assert.deepEqual(written, [1, 2, 3]);
  } finally {
    Date.now = realNow;
    release();
  }
});
