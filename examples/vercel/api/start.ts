// Vercel Edge Functions: nothing to pass. Vercel puts its request context on
// `globalThis[Symbol.for("@vercel/request-context")]`; trigger() finds its
// `waitUntil` there and hands it the background part (tested in Vercel's
// edge-runtime: tests/edge_runtime_test.ts). The transport is fetch.
//
// Deploy: as `api/start.ts` in a Vercel project, with JOB_URL set.
import { trigger } from "../../../mod.ts";

export const config = { runtime: "edge" };

const env = (globalThis as { process?: { env: Record<string, string> } })
  .process?.env ?? {};

export default async function handler(request: Request): Promise<Response> {
  const { searchParams } = new URL(request.url);
  const target = searchParams.get("target") ?? env.JOB_URL ??
    "https://example.com/jobs/report";
  const result = await trigger(target, {
    json: { month: searchParams.get("month") ?? "2026-11" },
  });
  return Response.json({ started: result.ok, transport: result.transport });
}
