// A Supabase Edge Function that starts a job and answers at once.
//
// Supabase allows outbound TCP except to ports 25 and 587
// (https://supabase.com/docs/guides/functions/limits), so `Deno.connect`
// carries the trigger; trigger() discovers `EdgeRuntime.waitUntil`
// (https://supabase.com/docs/guides/functions/background-tasks) and hands it
// the background part, so the function is not stopped before the target has
// answered. Run as written by tests/platforms/supabase_test.ts.
//
// Deploy: from examples/supabase, `supabase functions deploy start`, with
// JOB_URL set as a secret (`supabase secrets set JOB_URL=...`).
import { trigger } from "../../../../../mod.ts";

Deno.serve(async (request) => {
  const { month } = await request.json().catch(() => ({ month: "2026-11" }));
  const result = await trigger(
    Deno.env.get("JOB_URL") ?? "https://example.com/jobs/report",
    { json: { month } },
  );
  return Response.json({ started: result.ok, transport: result.transport });
});
