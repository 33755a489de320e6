// A Cloudflare Worker that starts a job elsewhere and answers at once.
//
// On Workers, `fetch` carries the trigger: Cloudflare's TCP sockets cannot
// reach Cloudflare IP ranges (every site behind its proxy) nor the Worker
// itself (https://developers.cloudflare.com/workers/runtime-apis/tcp-sockets/).
// The background part goes to `ctx.waitUntil`, or the runtime cancels it once
// the response is sent; left out, trigger() finds `waitUntil` in
// `cloudflare:workers` by itself (tests/platforms/workers_test.ts).
//
// Deploy: `npm install && npx wrangler deploy` in this folder; set JOB_URL in
// wrangler.jsonc.
import { trigger } from "../../../mod.ts";

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
