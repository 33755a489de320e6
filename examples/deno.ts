// Deno (`Deno.serve`): a route that starts a slow job on this same server and
// answers at once. Run: deno run --allow-net=127.0.0.1 examples/deno.ts
//
// On Deno the raw socket carries the trigger, nothing needs `waitUntil`: the
// process keeps running and the background part (`result.done`) closes the
// connection once the job's route has answered.
import { trigger } from "../mod.ts";

const server = Deno.serve({ hostname: "127.0.0.1", port: 0 }, async (req) => {
  const url = new URL(req.url);
  if (url.pathname === "/jobs/report") {
    const { month } = await req.json();
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // the work
    console.log(`report for ${month} done`);
    return new Response(null, { status: 204 });
  }
  const result = await trigger(new URL("/jobs/report", url), {
    json: { month: url.searchParams.get("month") ?? "2026-11" },
  });
  return Response.json({ started: result.ok, waited_ms: result.elapsed });
});

if (import.meta.main) {
  const response = await fetch(`http://127.0.0.1:${server.addr.port}/`);
  console.log(await response.json());
  await new Promise((resolve) => setTimeout(resolve, 1_200));
  await server.shutdown();
}
