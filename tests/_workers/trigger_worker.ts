// A Cloudflare Worker driving trigger(), bundled and run in workerd by
// tests/workers_test.ts. Query: target, transport, wait, mode.
import { type Transport, trigger, type WaitMode } from "../../mod.ts";

interface Ctx {
  waitUntil(promise: Promise<unknown>): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export default {
  async fetch(request: Request, _env: unknown, ctx: Ctx): Promise<Response> {
    const params = new URL(request.url).searchParams;
    const target = params.get("target")!;
    const mode = params.get("mode") ?? "now";
    const json = { from: "worker", mode };
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
    const result = await trigger(target, {
      transport: (params.get("transport") ?? "auto") as Transport,
      wait: (params.get("wait") ?? "sent") as WaitMode,
      json,
      waitUntil: ctx.waitUntil.bind(ctx),
    });
    return Response.json({
      ok: result.ok,
      transport: result.transport,
      status: result.status ?? null,
      code: result.error?.code ?? null,
    });
  },
};
