// Cloudflare Workers with Hono: the triggered route answers 202 at once and
// works in the background; `connection({ ack: true })` hands that work to
// `c.executionCtx.waitUntil`, so Workers keeps it alive (tested in workerd:
// tests/workers_test.ts). The trigger side passes `waitUntil` the same way.
//
// Deploy: set `main = "cloudflare_hono.ts"` in examples/wrangler.toml.
import { Hono } from "npm:hono@^4.13.19";
import { connection, type ConnectionEnv } from "../src/hono/mod.ts";
import { trigger } from "../mod.ts";

type Env = ConnectionEnv & { Bindings: { JOB_URL: string } };
const app = new Hono<Env>();

app.post("/orders", async (c) => {
  const result = await trigger(c.env.JOB_URL, {
    wait: "accepted", // the job route acknowledges first: one round trip
    json: await c.req.json(),
    waitUntil: (promise) => c.executionCtx.waitUntil(promise),
  });
  return c.json({ started: result.ok }, result.ok ? 201 : 502);
});

app.post(
  "/jobs/report",
  connection({ ack: true, timeLimit: 25_000 }),
  async (c) => {
    const order = await c.req.json();
    const conn = c.var.connection;
    conn.onShutdown((status) =>
      console.log("report", order.id, "status", status)
    );
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // the work
    if (conn.signal.aborted) return c.body(null);
    console.log("report", order.id, "done");
    return c.body(null, 204);
  },
);

export default app;
