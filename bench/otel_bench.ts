// What OpenTelemetry costs per trigger. Run it twice, OTel off and on:
//
//   deno bench --allow-all bench/otel_bench.ts
//   OTEL_DENO=true OTEL_EXPORTER_OTLP_PROTOCOL=http/json \
//     OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:<a collector> \
//     deno bench --allow-all bench/otel_bench.ts
//
// Bench names say which mode ran. The target is a Deno.serve process of its
// own (started with OTel off, so only the caller's cost differs). Groups:
// - "hooks": the telemetry work alone (start, resume, end) on a prepared
//   request, against prepare() alone: no I/O, so the difference is the cost.
// - "round trip": a whole trigger (socket, keep-alive, wait "accepted",
//   background part awaited) and the caller's wait in "sent" mode.
// OTEL_BENCH_MOD=<path or URL of another mod.ts> benches that module's
// trigger() instead (e.g. the code before telemetry existed), so the cost of
// the OTel-off check can be compared with no check at all.
import { closeIdleConnections, trigger as ownTrigger } from "../mod.ts";
import { prepare } from "../src/trigger/_request.ts";
import { startTelemetry } from "../src/trigger/_telemetry.ts";
import { otel } from "../src/telemetry/_otel.ts";
import { spawnDeno } from "./_spawn.ts";

const mode = otel() === undefined ? "OTel off" : "OTel on";
const other = Deno.env.get("OTEL_BENCH_MOD");
const trigger: typeof ownTrigger = other === undefined
  ? ownTrigger
  : (await import(other)).trigger;
const label = other === undefined ? mode : `${mode}, ${other}`;

const TARGET = `
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => console.log(port) },
  async (request) => {
    if (new URL(request.url).pathname === "/shutdown") {
      queueMicrotask(() => server.shutdown());
    }
    await request.arrayBuffer();
    return new Response(null, { status: 202 });
  },
);
`;

async function startTarget(): Promise<
  { url: string; process: Deno.ChildProcess }
> {
  const child = await spawnDeno(["eval", TARGET], { OTEL_DENO: "false" });
  return { url: `http://127.0.0.1:${Number(child.line)}/job`, ...child };
}

const target = await startTarget();
const URL_ = target.url;

const HOOKS = { group: "hooks", warmup: 2_000, n: 20_000 };

Deno.bench(`prepare() alone (${label})`, { ...HOOKS, baseline: true }, () => {
  prepare(URL_, { json: { id: 7 } });
});

Deno.bench(`prepare() + telemetry hooks (${label})`, HOOKS, () => {
  const req = prepare(URL_, { json: { id: 7 } });
  const telemetry = startTelemetry(req);
  telemetry?.within(() => 0);
  telemetry?.resumed({ ok: true }, 0.1);
  telemetry?.end({ ok: true, status: 202 });
});

Deno.bench(`the OTel-off check alone (${label})`, { group: "check" }, () => {
  otel();
});

Deno.bench(`round trip, socket, "accepted" (${label})`, {
  group: "round trip",
  warmup: 200,
  n: 2_000,
}, async () => {
  const result = await trigger(URL_, { wait: "accepted", json: { id: 7 } });
  if (result.status !== 202) throw new Error(`status ${result.status}`);
  await result.done;
});

Deno.bench(`caller's wait, socket, "sent" (${label})`, {
  group: "round trip",
  warmup: 200,
  n: 2_000,
}, async (b) => {
  b.start();
  const result = await trigger(URL_, { json: { id: 7 } });
  b.end();
  if (!result.ok) throw new Error(result.error?.message);
  await result.done;
});

// Stops the target once every bench ran (deno bench has no after-all hook).
globalThis.addEventListener("unload", () => {
  closeIdleConnections();
  target.process.kill();
});
