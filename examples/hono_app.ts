// A Hono app whose order route triggers a slow report job on the same server:
//   deno run --allow-net=127.0.0.1 examples/hono_app.ts
//
// `POST /orders` answers its user at once and triggers `POST /jobs/report`
// with `wait: "accepted"`: one round trip tells it the job was taken. The job
// route uses connection({ ack: true }): it reads the body, answers 202, then
// works in the background, checking its connection between steps, bounded by
// a time limit, with a shutdown function that runs once however it ends.
// On SIGINT/SIGTERM the app waits for background jobs before it shuts down.
import { Hono } from "hono";
import { trigger } from "../mod.ts";
import {
  connection,
  type ConnectionEnv,
  ConnectionStatus,
  drainBackground,
} from "../src/hono/mod.ts";

const STEPS = 5;
const STEP_MS = 300;

const app = new Hono<ConnectionEnv>();

app.post(
  "/jobs/report",
  connection({ ack: true, timeLimit: 10_000, maxBodySize: 64 * 1024 }),
  async (c) => {
    const conn = c.var.connection;
    const { orderId } = await c.req.json<{ orderId: number }>();
    const started = performance.now();
    conn.onShutdown((status) => {
      const how = status === ConnectionStatus.NORMAL
        ? "finished"
        : conn.timedOut
        ? "ran out of time"
        : "stopped";
      const ms = (performance.now() - started).toFixed(0);
      console.log(`job: report for order ${orderId} ${how} after ${ms} ms`);
    });
    for (let step = 1; step <= STEPS; step++) {
      if (conn.signal.aborted) return; // the time limit passed: stop here
      await new Promise((resolve) => setTimeout(resolve, STEP_MS));
      console.log(`job: order ${orderId}, step ${step}/${STEPS}`);
      if (step === 2) conn.setTimeLimit(10_000); // a slow step passed: restart the clock
    }
  },
);

app.post("/orders", async (c) => {
  const { orderId } = await c.req.json<{ orderId: number }>();
  const result = await trigger(new URL("/jobs/report", c.req.url).href, {
    wait: "accepted",
    json: { orderId },
    timeout: 5_000,
  });
  if (!result.ok) {
    return c.json({ orderId, report: "not started" }, 503);
  }
  return c.json({
    orderId,
    report: "started",
    in: `${result.elapsed.toFixed(1)} ms`,
  });
});

const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  app.fetch,
);

// Stop taking requests (those in flight get their answers), then wait for
// the background work: a request still being read when a drain began would
// get its 202 after, and its job would never run.
async function stop(): Promise<void> {
  await server.shutdown();
  await drainBackground({ timeout: 25_000 });
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => stop().then(() => Deno.exit(0)));
}

// Place one order, as a user would.
const response = await fetch(`http://127.0.0.1:${server.addr.port}/orders`, {
  method: "POST",
  body: JSON.stringify({ orderId: 42 }),
});
console.log("user:", await response.json());
await stop();
Deno.exit(0);
