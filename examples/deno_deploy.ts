// Deno Deploy: apps run on the standard Deno runtime with --allow-all
// (https://docs.deno.com/deploy/reference/runtime), so `Deno.connect` works
// and `transport: "auto"` writes the request itself. (The "not to localhost"
// rule was Deploy Classic's, shut down on July 20, 2026.) Deploy has no `waitUntil`:
// an isolate may be stopped once it has been idle for a while after its last
// response, which can cut a `"sent"` trigger's background part short. Keep
// the trigger inside the request: either await `result.done` (the target's
// status line) before answering, or, cheaper, trigger a route that answers
// 202 first (`connection({ ack: true })` from ./hono) with `wait: "accepted"`.
//
// Deploy: `deno deploy` (deployctl is sunset with Deploy Classic:
// https://docs.deno.com/deploy/migration_guide/), with this file as the
// entrypoint and JOB_URL set in the app's environment variables. Deploy
// runs the entrypoint and waits for it to start an HTTP server; its docs do
// not say it serves a default export as `deno serve` does, so the entrypoint
// calls `Deno.serve` itself when run: `deno run -A examples/deno_deploy.ts`.
// There is no default export: `deno serve` would start a second server on
// top of this one (`import.meta.main` is true under it too). The named
// export is for tests.
import { trigger } from "../mod.ts";

export const app = {
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

if (import.meta.main) Deno.serve(app.fetch);
