// Vercel Edge Functions (legacy: Vercel now recommends its Node.js runtime):
// nothing to pass. Vercel puts its request context on
// `globalThis[Symbol.for("@vercel/request-context")]`; trigger() finds its
// `waitUntil` there and hands it the background part (tested in Vercel's
// edge-runtime: tests/platforms/edge_platforms_test.ts). The transport is
// fetch.
//
// Deploy: a Vercel project whose Root Directory is examples/vercel (the
// library lives outside it): `vercel build && vercel deploy --prebuilt`, with
// JOB_URL set. tsconfig.json's `rewriteRelativeImportExtensions` turns the
// `.ts` imports into the `.js` files `vercel build` emits
// (tests/platforms/deploy_build_test.ts).
import { trigger } from "../../../mod.ts";

export const config = { runtime: "edge" };

export default async function handler(request: Request): Promise<Response> {
  const { searchParams } = new URL(request.url);
  // The target is the deployment's own setting, never the visitor's: a
  // target from the query would let anyone make this function POST anywhere.
  const env = (globalThis as { process?: { env: Record<string, string> } })
    .process?.env;
  const target = env?.JOB_URL ?? "https://example.com/jobs/report";
  const result = await trigger(target, {
    json: { month: searchParams.get("month") ?? "2026-11" },
  });
  return Response.json({ started: result.ok, transport: result.transport });
}
