// Bundled for `node --expose-gc` by tests/hono/ack_node_heap_test.ts: a Hono
// app on @hono/node-server whose acknowledged route listens on its
// connection's signal with a listener holding the connection (what a route
// naturally writes), driven by fetch from the same process. Prints the heap
// after full GCs once 500 requests were served and again after 2,000 more.
// deno-lint-ignore no-import-prefix
import { serve } from "npm:@hono/node-server@^2.1.9";
import { Hono } from "hono";
import {
  connection,
  type ConnectionEnv,
  drainBackground,
} from "../../src/hono/mod.ts";

declare const process: {
  memoryUsage(): { heapUsed: number };
  exit(code?: number): never;
};
declare const gc: () => void;

const app = new Hono<ConnectionEnv>();
let stopped = 0;
app.post("/job", connection({ ack: true }), (c) => {
  const conn = c.var.connection;
  conn.signal.addEventListener("abort", () => void (stopped += conn.status));
  return c.body(null, 204);
});

const server = serve(
  { fetch: app.fetch, hostname: "127.0.0.1", port: 0 },
  async (info) => {
    const url = `http://127.0.0.1:${info.port}/job`;
    const send = async (count: number) => {
      let sent = 0;
      await Promise.all(Array.from({ length: 16 }, async () => {
        while (sent++ < count) {
          const response = await fetch(url, { method: "POST", body: "x" });
          await response.arrayBuffer();
        }
      }));
      await drainBackground({ timeout: 10_000 });
    };
    const heap = async () => {
      for (let i = 0; i < 3; i++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return process.memoryUsage().heapUsed;
    };
    await send(500);
    const before = await heap();
    await send(2_000);
    const after = await heap();
    console.log(JSON.stringify({ before, after, stopped }));
    server.close(() => process.exit(0));
  },
);
