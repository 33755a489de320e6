// connection({ ack: true }) on Node (@hono/node-server): an acknowledged
// request is let go once its work ends. The copy of the request it made
// took connection()'s signal in its constructor; Node keeps such a Request
// registered with that signal until the Request is collected, and a route's
// abort listener holding its connection (so its Context) closed the loop:
// every request stayed, about 24 KB each (found by hunt I). A bound on the
// heap's growth over 2,000 requests, far from both: 48 MB kept with the
// leak, about 1 MB without it.
import assert from "node:assert/strict";
import { bundle } from "../_bundle.ts";
import { runOk, withTempFile } from "../_node/_runtimes.ts";

Deno.test("connection({ ack: true }) on Node: 2,000 acknowledged requests whose route listens on its signal are let go", async () => {
  const code = await bundle("./_node/ack_heap_entry.ts", "node");
  const ran = await withTempFile(
    code,
    (path) => runOk("node", ["--expose-gc", path], 120_000),
  );
  const { before, after } = JSON.parse(ran.stdout.trim().split("\n").pop()!);
  const grown = (after - before) / 1e6;
  assert.ok(grown < 20, `the heap grew ${grown.toFixed(1)} MB`);
});
