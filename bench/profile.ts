// A loop to profile: 20,000 sequential `trigger()` calls with reuse, in
// `wait: "sent"` then `"accepted"` mode, GET and a 1 KB POST, against a
// plain Deno.serve target answering 202 in another process. Run it under the
// V8 CPU profiler and summarise the profile by self time:
//
//   deno run --allow-all --cpu-prof --cpu-prof-dir=.tmp/prof bench/profile.ts [sent|accepted] [get|post]
//   deno run --allow-read bench/cpuprofile_top.ts .tmp/prof/<file>.cpuprofile
//
// Not part of `deno task bench`.
import { closeIdleConnections, trigger } from "../mod.ts";
import { spawnDeno } from "./_spawn.ts";

const WAIT = (Deno.args[0] ?? "sent") as "sent" | "accepted";
const POST = (Deno.args[1] ?? "get") === "post";
const COUNT = 20_000;

const child = await spawnDeno([
  "eval",
  `Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: ({ port }) => console.log(port) },
    async (request) => { await request.arrayBuffer(); return new Response(null, { status: 202 }); });`,
]);
const url = `http://127.0.0.1:${Number(child.line)}/profile`;
const form = POST ? { id: "7", text: "x".repeat(1_000) } : undefined;

const start = performance.now();
for (let i = 0; i < COUNT; i++) {
  const result = await trigger(url, { wait: WAIT, form });
  if (!result.ok) throw result.error;
  await result.done;
}
const ms = performance.now() - start;
console.log(
  `${COUNT} triggers, wait: "${WAIT}", ${POST ? "POST 1 KB" : "GET"}, reuse: ${
    (ms * 1_000 / COUNT).toFixed(1)
  } µs each (caller wait + background part)`,
);
await closeIdleConnections();
child.process.kill();
await child.process.status;
