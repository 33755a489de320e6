// Node (and Bun) with Hono and @hono/node-server: a route that starts a slow
// job on this same server and answers at once, and the shutdown recipe.
// Run: deno bundle --platform node -o server.mjs examples/node_server.ts
//      node server.mjs        (or: bun server.mjs)
//
// On Node and Bun the raw socket (node:net) carries the trigger. On SIGINT or
// SIGTERM the server stops taking requests, drainTriggers() waits for the
// triggers still in their background part, then the process exits.
// deno-lint-ignore no-import-prefix
import { serve } from "npm:@hono/node-server@^2.1.9";
import { Hono } from "hono";
import process from "node:process";
import { drainTriggers, trigger } from "../mod.ts";

const app = new Hono();

app.post("/jobs/report", async (c) => {
  const { month } = await c.req.json();
  await new Promise((resolve) => setTimeout(resolve, 1_000)); // the work
  console.log(`report for ${month} done`);
  return c.body(null, 204);
});

app.get("/", async (c) => {
  const result = await trigger(new URL("/jobs/report", c.req.url), {
    json: { month: c.req.query("month") ?? "2026-11" },
  });
  return c.json({ started: result.ok, transport: result.transport });
});

const server = serve(
  { fetch: app.fetch, hostname: "127.0.0.1", port: 3000 },
  (info) => console.log(`listening on http://127.0.0.1:${info.port}/`),
);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, async () => {
    server.close(); // stop taking requests
    const drained = await drainTriggers({ timeout: 8_000 });
    console.log(drained ? "all triggers done" : "some triggers cut short");
    process.exit(0);
  });
}
