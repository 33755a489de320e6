// A slow job, triggered without waiting for it:
// `deno run --allow-net=127.0.0.1 examples/demo.ts`. (`deno task demo` runs
// it too, but Deno's task runner first fetches the test suite's pinned
// dependencies: docs/testing.md.)
//
// A local target reads the request body and then works for about 2 s.
// `trigger()` returns as soon as the request is written; the job still gets
// its body intact, because the connection stays open in the background until
// the target answers. `result.done` settles then: await it before shutting
// down, so nothing is cut off.
import { trigger } from "../mod.ts";

const JOB_MS = 2_000;

const job = Promise.withResolvers<{ body: string; took: number }>();
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  async (request) => {
    const started = performance.now();
    const body = await request.text();
    await new Promise((resolve) => setTimeout(resolve, JOB_MS)); // the work
    job.resolve({ body, took: performance.now() - started });
    return new Response(null, { status: 202 });
  },
);

const sent = { report: "monthly", id: 7, note: "a & b = ü" };
const url = `http://127.0.0.1:${server.addr.port}/jobs/report`;
const result = await trigger(url, { json: sent });
if (!result.ok) {
  console.error(`trigger failed: ${result.error?.message}`);
  await server.shutdown();
  Deno.exit(1);
}
console.log(`caller waited ${result.elapsed.toFixed(1)} ms`);

const { body, took } = await job.promise;
const intact = JSON.stringify(sent) === body;
console.log(`job took      ${took.toFixed(0)} ms`);
console.log(`job body      ${intact ? "intact" : "DAMAGED"}: ${body}`);

// The background part: the connection closes once the target has answered.
await result.done;
await server.shutdown();
if (!intact) Deno.exit(1);
