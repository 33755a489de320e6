// A Vercel Node.js-runtime function (Fluid compute), bundled by
// tests/platforms/node_bun_test.ts and run by @vercel/node's own dev server,
// which installs the request context the way the platform does.
// GET /api/start?target=URL&mode=M triggers the target and answers at once.
// mode "discover": no waitUntil passed, trigger() finds the context's;
// "package": @vercel/functions' waitUntil passed explicitly;
// "noop": a waitUntil that keeps nothing (the control).
// deno-lint-ignore no-import-prefix
import { waitUntil } from "npm:@vercel/functions@3.9.9";
import { trigger } from "../../mod.ts";

/** The web-standard handler Vercel's Node runtime calls for GET. */
export async function GET(request: Request): Promise<Response> {
  const params = new URL(request.url).searchParams;
  const mode = params.get("mode");
  const result = await trigger(params.get("target")!, {
    json: { mode },
    ...(mode === "package" ? { waitUntil } : {}),
    ...(mode === "noop" ? { waitUntil: () => {} } : {}),
  });
  return Response.json({ ok: result.ok, transport: result.transport });
}
