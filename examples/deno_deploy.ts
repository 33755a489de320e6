// Deno Deploy: raw `Deno.connect` works there (not to localhost), so
// `transport: "auto"` writes the request itself. Deploy has no `waitUntil`:
// an isolate may be stopped once it has been idle for a while after its last
// response, which can cut a `"sent"` trigger's background part short. Keep
// the trigger inside the request: either await `result.done` (the target's
// status line) before answering, or, cheaper, trigger a route that answers
// 202 first (`connection({ ack: true })` from ./hono) with `wait: "accepted"`.
//
// Deploy: `deployctl deploy examples/deno_deploy.ts` with JOB_URL set.
import { trigger } from "../mod.ts";

export default {
  async fetch(request: Request): Promise<Response> {
    const { searchParams } = new URL(request.url);
    const jobUrl = Deno.env.get("JOB_URL") ?? "https://example.com/jobs/report";
    const result = await trigger(jobUrl, {
      wait: "accepted", // one round trip against an early-acknowledging route
      json: { month: searchParams.get("month") ?? "2026-11" },
      timeout: 10_000,
    });
    return Response.json({
      started: result.ok,
      status: result.status ?? null,
      error: result.error?.code ?? null,
    });
  },
};
