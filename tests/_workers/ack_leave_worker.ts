// A Cloudflare Worker with Hono and connection({ ack: true }) whose route
// records how each acknowledged request ended (GET /log: taken, then
// cleared), bundled and run in
// workerd by tests/platforms/workers_test.ts: a caller that leaves in the
// middle of the body.
import { Hono } from "npm:hono@^4.13.19";
import { connection, type ConnectionEnv } from "../../src/hono/mod.ts";

const log: string[] = [];
const app = new Hono<ConnectionEnv>();
app.onError((error, c) => {
  log.push(`onError ${error.message}`);
  return c.text("failed", 500);
});
app.get("/log", (c) => c.json(log.splice(0)));
app.post(
  "/job",
  async (c, next) => {
    await next();
    log.push(`${c.res.status} status ${c.var.connection.status}`);
  },
  connection({ ack: true }),
  (c) => {
    log.push("ran");
    return c.text("done");
  },
);

export default app;
