// The server of tests/hono/budget_test.ts, in its own process so its memory
// can be measured: verifyTrigger() with its defaults on Deno.serve. Prints
// {"port":N}; `GET /rss` answers the resident set size after a full GC.
// Run with --v8-flags=--expose-gc.
import { Hono } from "hono";
import { verifyTrigger } from "../src/hono/mod.ts";

const secret = Deno.args[0];
const gc = (globalThis as { gc?: () => void }).gc;
const app = new Hono();
app.post("/hook", verifyTrigger({ secret }), (c) => c.text("ran"));
app.get("/rss", (c) => {
  gc?.();
  return c.json({ rss: Deno.memoryUsage().rss });
});
const server = Deno.serve(
  {
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => console.log(JSON.stringify({ port })),
  },
  app.fetch,
);
Deno.addSignalListener("SIGTERM", () => server.shutdown());
