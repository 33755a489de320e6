// A Cloudflare Worker driving trigger(), bundled and run in workerd by
// tests/platforms/workers_test.ts. Query: target, transport, wait, mode,
// size, timeout.
import { type Transport, trigger, type WaitMode } from "../../mod.ts";

interface Ctx {
  waitUntil(promise: Promise<unknown>): void;
}
interface Env {
  /** This Worker, through a service binding. */
  SELF?: { fetch(input: string, init?: RequestInit): Promise<Response> };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export default {
  async fetch(request: Request, env: Env, ctx: Ctx): Promise<Response> {
    const url = new URL(request.url);
    const params = url.searchParams;
    const target = params.get("target")!;
    const mode = params.get("mode") ?? "now";
    const keep = params.get("keep") ?? "explicit";
    const json = params.has("keep")
      ? { from: "worker", mode, keep }
      : { from: "worker", mode };
    if (url.pathname === "/globals") {
      // What the compatibility flags left: workers_test.ts checks they took.
      const g = globalThis as {
        navigator?: unknown;
        process?: { versions?: { node?: unknown } };
      };
      return Response.json({
        navigator: typeof g.navigator,
        node: typeof g.process?.versions?.node,
      });
    }
    if (url.pathname === "/job") {
      // The self-triggered route: hands the body on to the test's target.
      const body = await request.text();
      await fetch(target, { method: "POST", body });
      return new Response(null, { status: 202 });
    }
    if (mode === "self") {
      const result = await trigger(new URL(`/job?${params}`, url), {
        wait: "accepted",
        json,
        fetch: (input, init) => env.SELF!.fetch(input, init),
      });
      return Response.json({
        ok: result.ok,
        transport: result.transport,
        status: result.status ?? null,
      });
    }
    if (mode === "late-without-waitUntil") {
      // Started after the response, nobody keeps it alive: workerd drops it.
      sleep(50).then(() => trigger(target, { transport: "fetch", json }));
      return new Response("answered");
    }
    if (mode === "late-with-waitUntil") {
      ctx.waitUntil(
        sleep(50).then(() => trigger(target, { transport: "fetch", json }))
          .then((result) => result.done),
      );
      return new Response("answered");
    }
    // "explicit" passes ctx.waitUntil, "discovered" passes nothing (found in
    // cloudflare:workers), "unkept" passes one that keeps nothing alive.
    // `size`: a text body of that many bytes instead of the JSON.
    const size = params.get("size");
    const timeout = params.get("timeout");
    const result = await trigger(target, {
      transport: (params.get("transport") ?? "auto") as Transport,
      wait: (params.get("wait") ?? "sent") as WaitMode,
      ...(size === null ? { json } : { body: "x".repeat(Number(size)) }),
      ...(timeout === null ? {} : { timeout: Number(timeout) }),
      waitUntil: keep === "explicit"
        ? ctx.waitUntil.bind(ctx)
        : keep === "unkept"
        ? () => {}
        : undefined,
    });
    return Response.json({
      ok: result.ok,
      transport: result.transport,
      status: result.status ?? null,
      code: result.error?.code ?? null,
    });
  },
};
