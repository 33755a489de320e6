// Supabase Edge Functions (Deno-based): `Deno.connect` exists, so the raw
// socket carries the trigger, and trigger() discovers
// `EdgeRuntime.waitUntil` and hands it the background part, so the function
// is not stopped before the target has read the request.
//
// Deploy: `supabase functions deploy start` with this file as
// supabase/functions/start/index.ts and JOB_URL set.
import { trigger } from "../../../../../mod.ts";

Deno.serve(async (request) => {
  const { month } = await request.json().catch(() => ({ month: "2026-11" }));
  const result = await trigger(
    Deno.env.get("JOB_URL") ?? "https://example.com/jobs/report",
    { json: { month } },
  );
  return Response.json({ started: result.ok, transport: result.transport });
});
