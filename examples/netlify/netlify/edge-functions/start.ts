// A Netlify edge function that starts a job and answers at once.
//
// Netlify's edge runtime is Deno-based, but its docs do not list
// `Deno.connect` (https://docs.netlify.com/edge-functions/api/), so trigger()
// sees the `Netlify` global and picks `fetch`. It finds the request's
// `waitUntil` on `Netlify.context` too; passing `context.waitUntil` says so
// here (Netlify's published type declares it: `@netlify/edge-functions@3.0.8`
// re-exports `Context` from `@netlify/types@2.8.0`:
// `waitUntil: (promise: Promise<unknown>) => void`).
//
// Deploy: this folder (examples/netlify) is the site, its route is in
// netlify.toml: `netlify deploy`, with JOB_URL set in the site's environment
// variables. Bundled with Netlify's edge bundler by
// tests/platforms/deploy_build_test.ts.
import { trigger } from "../../../../mod.ts";

/** Netlify's runtime global (https://docs.netlify.com/edge-functions/api/). */
declare const Netlify: { env: { get(name: string): string | undefined } };

/** The part of Netlify's `Context` used here (`@netlify/types@2.8.0`). */
interface Context {
  waitUntil(promise: Promise<unknown>): void;
}

export default async function start(
  request: Request,
  context: Context,
): Promise<Response> {
  const { searchParams } = new URL(request.url);
  const result = await trigger(
    Netlify.env.get("JOB_URL") ?? "https://example.com/jobs/report",
    {
      json: { month: searchParams.get("month") ?? "2026-11" },
      waitUntil: (promise) => context.waitUntil(promise),
    },
  );
  return Response.json({ started: result.ok, transport: result.transport });
}
