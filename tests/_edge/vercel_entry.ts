// Runs examples/vercel/api/start.ts the way Vercel's edge runtime calls a
// function: a FetchEvent whose response is the handler's.
import handler from "../../examples/vercel/api/start.ts";

interface FetchEvent extends Event {
  request: Request;
  respondWith(response: Promise<Response>): void;
}

addEventListener("fetch", (event) => {
  const fetchEvent = event as FetchEvent;
  // The deployment's JOB_URL: the test names its recorder in the query.
  const g = globalThis as { process?: { env: Record<string, string> } };
  const target = new URL(fetchEvent.request.url).searchParams.get("target");
  g.process ??= { env: {} };
  if (target !== null) g.process.env.JOB_URL = target;
  fetchEvent.respondWith(handler(fetchEvent.request));
});
