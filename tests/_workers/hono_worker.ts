// A Cloudflare Worker with Hono and connection({ ack: true }), bundled and
// run in workerd by tests/platforms/workers_test.ts. The background work reports to
// the test's recorder after the 202 went out.
import { Hono } from "npm:hono@^4.13.19";
import { connection, type ConnectionEnv } from "../../src/hono/mod.ts";
import { trigger } from "../../mod.ts";

const app = new Hono<ConnectionEnv>();
app.post("/jobs", connection({ ack: true }), async (c) => {
  const { report, id } = await c.req.json();
  await new Promise((r) => setTimeout(r, 300));
  const result = await trigger(report, {
    json: { id, status: c.var.connection.status },
    wait: "accepted",
  });
  return c.text(result.ok ? "reported" : "failed");
});

export default app;
