// A Cloudflare Worker with Hono: `POST /orders` triggers this same Worker's
// `POST /jobs/report` and answers its user; the job route answers 202 at once
// and works in the background (`connection({ ack: true })` hands that work
// to `c.executionCtx.waitUntil`).
//
// The self-trigger goes through the service binding SELF (wrangler.jsonc),
// Cloudflare's way for a Worker to call a Worker: a socket to the Worker's
// own hostname fails ("TCP Loop detected",
// https://developers.cloudflare.com/workers/runtime-apis/tcp-sockets/), and
// a fetch to a Worker on the same zone is error 1042 (or goes to the origin)
// (https://developers.cloudflare.com/workers/observability/errors/). A
// Worker may call itself through SELF at most 16 times deep (error 1019).
// Tested in workerd: tests/platforms/workers_test.ts; built with Wrangler:
// tests/platforms/deploy_build_test.ts.
//
// Deploy: `npm install && npx wrangler deploy` in this folder.
import { Hono } from "hono";
import { connection, type ConnectionEnv } from "../../../src/hono/mod.ts";
import { trigger } from "../../../mod.ts";

/** A service binding (`Fetcher` in @cloudflare/workers-types). */
interface Service {
  fetch(input: string, init?: RequestInit): Promise<Response>;
}
type Env = ConnectionEnv & { Bindings: { SELF: Service } };
const app = new Hono<Env>();

app.post("/orders", async (c) => {
  const result = await trigger(new URL("/jobs/report", c.req.url), {
    wait: "accepted", // the job route acknowledges first: one round trip
    json: await c.req.json(),
    fetch: (url, init) => c.env.SELF.fetch(url, init),
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
