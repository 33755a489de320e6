// A durable trigger: stored before the call returns, delivered at least once.
//
//   deno run -A examples/durable.ts                       embedded (PGlite)
//   DATABASE_URL=postgres://… deno run -A examples/durable.ts   PostgreSQL
//
// A local "report" route fails its first delivery with a 503; the outbox
// retries it with the same webhook-id and a fresh signature, and the route,
// behind verifyTrigger(), runs once. Kill the process between "stored" and
// "delivered" and run it again: the job is still there and goes out.
import { Hono } from "hono";
import { verifyTrigger, type VerifyTriggerEnv } from "../src/hono/mod.ts";
import { createSecret } from "../mod.ts";
import { openOutbox } from "../src/durable/mod.ts";

const secret = createSecret();
let attempts = 0;
const app = new Hono<VerifyTriggerEnv>();
app.use("/jobs/*", verifyTrigger({ secret }));
app.post("/jobs/report", async (c) => {
  attempts++;
  if (attempts === 1) return c.text("not yet", 503);
  const { report } = await c.req.json();
  console.log(`route: building report ${report} (${c.get("trigger").id})`);
  return c.text("ok");
});
// A fixed port, so a job stored by an earlier run still finds the route.
const port = Number(Deno.env.get("PORT") ?? 8765);
const server = Deno.serve(
  { hostname: "127.0.0.1", port, onListen() {} },
  app.fetch,
);

const connectionString = Deno.env.get("DATABASE_URL");
const outbox = await openOutbox({
  ...(connectionString ? { connectionString } : { dir: "./.trigger-outbox" }),
  sign: { secret }, // not stored with the jobs: each attempt is signed afresh
  onEvent(event) {
    if (event.type === "error") console.error(event.error);
    else {console.log(
        `outbox: ${event.type}, attempt ${event.attempt}, ${
          event.status ?? event.error?.code
        }`,
      );}
  },
});
const delivered = Promise.withResolvers<void>();
const { id } = await outbox.trigger(
  `http://127.0.0.1:${port}/jobs/report`,
  { json: { report: 7 }, retry: { limit: 3, delay: 1_000 } },
);
console.log(`stored ${id} (${outbox.engine})`);

outbox.start({ concurrency: 4 });
const timer = setInterval(async () => {
  const stats = await outbox.stats();
  if (stats.queued === 0 && stats.active === 0) delivered.resolve();
}, 200);
await delivered.promise;
clearInterval(timer);
console.log(`delivered after ${attempts} attempts`, await outbox.stats());

await outbox.stop();
await server.shutdown();
