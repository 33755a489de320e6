// Run by dispatch_memory_test.ts with --v8-flags=--expose-gc: an embedded
// outbox delivering `fast` jobs (a target answering 204) while 8 deliveries
// hang (a target that never answers, their timeout far off). Prints the
// heap after a full GC once 3,000 were delivered and again once `fast`
// were, as one JSON line.
import { openOutbox } from "../../src/durable/mod.ts";

const FAST = Number(Deno.args[0] ?? 23_000);
const WARM = 3_000;
const HUNG = 8;
const gc = (globalThis as { gc?: () => void }).gc!;
const heap = () => {
  gc();
  gc();
  return Deno.memoryUsage().heapUsed;
};

const dir = await Deno.makeTempDir({ prefix: "outbox_heap_" });
let delivered = 0;
let reached: (() => void) | undefined;
let goal = Infinity;
const outbox = await openOutbox({
  dir,
  onEvent(event) {
    if (event.type === "delivered" && ++delivered >= goal) reached?.();
  },
});
const fast = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  () => new Response(null, { status: 204 }),
);
const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const held: Deno.Conn[] = [];
const accepting = (async () => {
  for await (const conn of silent) held.push(conn);
})();
const until = (count: number) =>
  new Promise<void>((resolve) => {
    goal = count;
    reached = resolve;
    if (delivered >= count) resolve();
  });
try {
  const hung = `http://127.0.0.1:${(silent.addr as Deno.NetAddr).port}/hang`;
  for (let i = 0; i < HUNG; i++) {
    await outbox.trigger(hung, { timeout: 600_000 });
  }
  const url = `http://127.0.0.1:${fast.addr.port}/fast`;
  for (let i = 0; i < FAST; i += 500) {
    await Promise.all(
      Array.from(
        { length: Math.min(500, FAST - i) },
        () => outbox.trigger(url),
      ),
    );
  }
  outbox.start({ concurrency: 32, pollInterval: 50 });
  await until(WARM);
  const before = heap();
  await until(FAST);
  const after = heap();
  console.log(JSON.stringify({ before, after, delivered, hung: held.length }));
} finally {
  await outbox.stop({ timeout: 100 });
  for (const conn of held) conn.close();
  silent.close();
  await accepting.catch(() => {});
  await fast.shutdown();
  await Deno.remove(dir, { recursive: true });
}
