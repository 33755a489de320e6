// Netlify Edge Functions (Deno-based): pass `context.waitUntil`; there is no
// global to discover. `Deno.connect` exists there, so the raw socket carries
// the trigger and its background part goes to `waitUntil`.
//
// Deploy: as netlify/edge-functions/start.ts, with JOB_URL set.
import { trigger } from "../mod.ts";

interface Context {
  waitUntil(promise: Promise<unknown>): void;
}

export default async function start(
  request: Request,
  context: Context,
): Promise<Response> {
  const { searchParams } = new URL(request.url);
  const result = await trigger(
    Deno.env.get("JOB_URL") ?? "https://example.com/jobs/report",
    {
      json: { month: searchParams.get("month") ?? "2026-11" },
      waitUntil: (promise) => context.waitUntil(promise),
    },
  );
  return Response.json({ started: result.ok, transport: result.transport });
}

export const config = { path: "/start" };
