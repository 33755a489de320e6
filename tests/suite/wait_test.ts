// The bounds themselves: each one fails with a message naming what did not
// happen, and clears its timer when the wait succeeds (the sanitizers check).
import assert from "node:assert/strict";
import { Queue } from "../_servers.ts";
import { output, until, within } from "../_wait.ts";

Deno.test("Queue.take() rejects after its timeout, naming the queue, and still delivers later items", async () => {
  const queue = new Queue<number>("the test queue");
  await assert.rejects(
    queue.take(50),
    /^Error: Nothing arrived in the test queue within 50 ms$/,
  );
  const taken = queue.take(5_000);
  queue.push(1);
  assert.equal(await taken, 1, "a timed-out take does not swallow an item");
  queue.push(2);
  assert.equal(await queue.take(), 2);
  assert.equal(queue.size, 0);
});

Deno.test("within() passes a result through, or rejects saying what did not happen", async () => {
  assert.equal(await within(Promise.resolve(7), "seven"), 7);
  await assert.rejects(
    within(new Promise(() => {}), "the answer", 50),
    /^Error: the answer: not within 50 ms$/,
  );
  await assert.rejects(within(Promise.reject(new Error("own")), "x"), /own/);
});

Deno.test("until() waits for state, or rejects saying which never held", async () => {
  let n = 0;
  await until(() => ++n >= 3, "three checks", { interval: 1 });
  assert.equal(n, 3);
  await assert.rejects(
    until(() => false, "the impossible", { timeout: 30 }),
    /^Error: the impossible: still not true after 30 ms$/,
  );
});

Deno.test("output() kills a child that does not finish and names it", async () => {
  await assert.rejects(
    output(Deno.execPath(), {
      args: ["eval", "--no-config", "setTimeout(() => {}, 60_000)"],
      timeout: 1_000,
      what: "a sleeping child",
    }),
    /^Error: a sleeping child: killed after 1000 ms/,
  );
  const done = await output(Deno.execPath(), {
    args: ["eval", "--no-config", "console.log('hi')"],
  });
  assert.equal(new TextDecoder().decode(done.stdout).trim(), "hi");
});
