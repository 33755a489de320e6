// A dispatcher process for tests/durable/durable_test.ts: opens the outbox named by
// its JSON argument, starts delivering, prints "ready", and on SIGTERM stops
// gracefully and prints its stats as JSON. `kill -9` is the crash test.
// On a failed open it prints "error <code> <message>" and exits with 2.
import { openOutbox, OutboxError } from "../src/durable/mod.ts";

const { dir, connectionString, queue, concurrency } = JSON.parse(
  Deno.args[0],
) as {
  dir?: string;
  connectionString?: string;
  queue?: string;
  concurrency?: number;
};

let outbox;
try {
  outbox = await openOutbox({ dir, connectionString, queue });
} catch (error) {
  const code = error instanceof OutboxError ? error.code : "OTHER";
  console.log(`error ${code} ${(error as Error).message}`);
  Deno.exit(2);
}
const opened = outbox;
Deno.addSignalListener("SIGTERM", async () => {
  await opened.stop({ close: false });
  const stats = await opened.stats();
  await opened.stop();
  console.log(JSON.stringify(stats));
  Deno.exit(0);
});
opened.start({ concurrency: concurrency ?? 10, pollInterval: 100 });
console.log("ready");
