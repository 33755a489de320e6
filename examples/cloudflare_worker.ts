// Cloudflare Workers: hand the background part to `ctx.waitUntil`, or the
// runtime cancels it once the response is sent (in workerd a trigger started
// after the response without it was delivered 0 of 5 times; see
// tests/workers_test.ts). `transport: "auto"` uses `connect()` from
// cloudflare:sockets on Workers; `transport: "fetch"` uses fetch.
//
// Deploy: `npx wrangler deploy` with examples/wrangler.toml.
import { trigger } from "../mod.ts";

interface Env {
  JOB_URL: string;
}
interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
}

export default {
  async fetch(
    request: Request,
    env: Env,
    ctx: ExecutionContext,
  ): Promise<Response> {
    const { searchParams } = new URL(request.url);
    const result = await trigger(env.JOB_URL, {
      json: { month: searchParams.get("month") ?? "2026-11" },
      waitUntil: (promise) => ctx.waitUntil(promise),
    });
    return Response.json({ started: result.ok, transport: result.transport });
  },
};
