// A child process for tests/durable/dispatch_test.ts: an embedded outbox
// with every slot busy and the prefetch buffer full when a trigger wakes
// the dispatcher. A dispatcher that spins on microtasks starves this
// process's timers and sockets, so the parent bounds it by killing it.
// Prints "delivered <n>" and exits 0 once every job is delivered; exits 1
// (printing the stats) when its own bound passes first.
import { openOutbox } from "../src/durable/mod.ts";

const JOBS = 20;
const dir = await Deno.makeTempDir({ prefix: "outbox_busy_" });
let answered = 0;
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  async (request) => {
    await request.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    answered++;
    return new Response(null, { status: 200 });
  },
);
const url = `http://127.0.0.1:${server.addr.port}/slow`;
const outbox = await openOutbox({ dir, retry: { limit: 0 } });
for (let i = 0; i < JOBS; i++) await outbox.trigger(url, { body: `${i}` });
outbox.start({ concurrency: 2, pollInterval: 100 });
// Both slots busy, the buffer full: then one more trigger wakes it.
await new Promise((resolve) => setTimeout(resolve, 500));
await outbox.trigger(url, { body: "late" });
const deadline = Date.now() + 60_000;
let stats = await outbox.stats();
while (stats.delivered < JOBS + 1) {
  if (Date.now() > deadline) {
    console.log(`timeout ${JSON.stringify(stats)} answered ${answered}`);
    Deno.exit(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  stats = await outbox.stats();
}
await outbox.stop();
await server.shutdown();
await Deno.remove(dir, { recursive: true });
console.log(`delivered ${stats.delivered}`);
