// The edge platforms that are not workerd: Vercel's edge-runtime and Node run
// for real (as child processes); Supabase, Netlify and Deno Deploy, whose
// runtimes cannot run here, through their examples with a faithful global or
// context on Deno, which is what those platforms are built on.
import assert from "node:assert/strict";
import { trigger } from "../../mod.ts";
import { bundle } from "../_bundle.ts";
import { denoRecorder } from "../_servers.ts";
import { npmModules, runOk, withTempFile } from "../_node/_runtimes.ts";
import netlify from "../../examples/netlify/netlify/edge-functions/start.ts";
import { app as deploy } from "../../examples/deno_deploy.ts";

const decoder = new TextDecoder();
const EDGE_RUNTIME = "edge-runtime@4.0.1";

async function node(args: string[]): Promise<string> {
  return (await runOk("node", args, 60_000)).stdout.trim();
}

Deno.test("Vercel edge-runtime: the example discovers the request context's waitUntil and the hit arrives", async () => {
  const modules = await npmModules(EDGE_RUNTIME);
  const recorder = denoRecorder({ delay: 300 });
  try {
    const code = await bundle("./_edge/vercel_entry.ts");
    const target = `${recorder.origin}/vercel?month=2026-11`;
    const out = await withTempFile(code, (path) =>
      node([
        new URL("../_edge/run_edge_runtime.cjs", import.meta.url).pathname,
        modules,
        path,
        `http://edge.test/api/start?target=${encodeURIComponent(target)}`,
      ]));
    const { status, body, handed } = JSON.parse(out);
    assert.equal(status, 200);
    assert.deepEqual(JSON.parse(body), { started: true, transport: "fetch" });
    assert.equal(handed, 1, "the background part went to Vercel's waitUntil");
    const seen = await recorder.seen.take();
    assert.deepEqual(JSON.parse(decoder.decode(seen.body)), {
      month: "2026-11",
    });
  } finally {
    await recorder.close();
  }
});

Deno.test("Node: the bundled module uses the raw socket (node:net) and delivers", async () => {
  const recorder = denoRecorder();
  try {
    const code = await bundle("./_edge/node_entry.ts");
    const out = await withTempFile(
      code,
      (path) => node([path, `${recorder.origin}/node`]),
    );
    assert.deepEqual(JSON.parse(out), {
      sent: { ok: true, transport: "socket" },
      accepted: { ok: true, status: 202 },
    });
    const bodies = [
      decoder.decode((await recorder.seen.take()).body),
      decoder.decode((await recorder.seen.take()).body),
    ].sort();
    assert.deepEqual(bodies, ["from=node&wait=accepted", '{"from":"node"}']);
  } finally {
    await recorder.close();
  }
});

Deno.test("Supabase (simulated EdgeRuntime): auto picks the raw socket and hands the background part to the discovered waitUntil", async () => {
  const recorder = denoRecorder({ delay: 200 });
  const g = globalThis as Record<string, unknown>;
  const kept: Promise<unknown>[] = [];
  // Supabase's runtime exposes EdgeRuntime.waitUntil as a global.
  g.EdgeRuntime = {
    waitUntil: (promise: Promise<unknown>) => kept.push(promise),
  };
  try {
    const result = await trigger(`${recorder.origin}/supabase`, {
      json: { a: 1 },
    });
    assert.equal(result.transport, "socket");
    assert.deepEqual(kept, [result.done]);
    const seen = await recorder.seen.take();
    assert.deepEqual(JSON.parse(decoder.decode(seen.body)), { a: 1 });
    await Promise.all(kept);
  } finally {
    delete g.EdgeRuntime;
    await recorder.close();
  }
});

Deno.test("Netlify (simulated Netlify global, context.waitUntil): the example picks fetch and its background part goes to the context", async () => {
  const recorder = denoRecorder({ delay: 200 });
  const kept: Promise<unknown>[] = [];
  const g = globalThis as Record<string, unknown>;
  // Netlify's edge runtime has a `Netlify` global with `Netlify.env`.
  g.Netlify = {
    env: {
      get: (name: string) =>
        name === "JOB_URL" ? `${recorder.origin}/netlify` : undefined,
    },
  };
  try {
    const response = await netlify(
      new Request("http://site.test/start?month=2026-10"),
      { waitUntil: (promise: Promise<unknown>) => kept.push(promise) },
    );
    assert.deepEqual(await response.json(), {
      started: true,
      transport: "fetch",
    });
    assert.equal(kept.length, 1);
    const seen = await recorder.seen.take();
    assert.deepEqual(JSON.parse(decoder.decode(seen.body)), {
      month: "2026-10",
    });
    await Promise.all(kept);
  } finally {
    delete g.Netlify;
    await recorder.close();
  }
});

Deno.test("Netlify (simulated): a trigger given no waitUntil hands its background part to Netlify.context.waitUntil, the request's context", async () => {
  const recorder = denoRecorder({ delay: 200 });
  const kept: Promise<unknown>[] = [];
  const g = globalThis as Record<string, unknown>;
  g.Netlify = {
    env: { get: () => undefined },
    context: { waitUntil: (promise: Promise<unknown>) => kept.push(promise) },
  };
  try {
    const result = await trigger(`${recorder.origin}/netlify-global`, {
      json: { n: 1 },
    });
    assert.equal(result.ok, true, result.error?.message);
    assert.equal(result.transport, "fetch");
    assert.equal(kept.length, 1);
    await recorder.seen.take();
    await Promise.all(kept);
  } finally {
    delete g.Netlify;
    await recorder.close();
  }
});

Deno.test("Deno Deploy example: waits for the acknowledging route's status within the request", async () => {
  const recorder = denoRecorder();
  Deno.env.set("JOB_URL", `${recorder.origin}/deploy`);
  try {
    const response = await deploy.fetch(
      new Request("http://app.test/?month=2026-09"),
    );
    assert.deepEqual(await response.json(), {
      started: true,
      status: 202,
      error: null,
    });
    const seen = await recorder.seen.take();
    assert.deepEqual(JSON.parse(decoder.decode(seen.body)), {
      month: "2026-09",
    });
  } finally {
    Deno.env.delete("JOB_URL");
    await recorder.close();
  }
});
