// Runs examples/vercel/api/start.ts the way Vercel's edge runtime calls a
// function: a FetchEvent whose response is the handler's.
import handler from "../../examples/vercel/api/start.ts";

interface FetchEvent extends Event {
  request: Request;
  respondWith(response: Promise<Response>): void;
}

addEventListener("fetch", (event) => {
  const fetchEvent = event as FetchEvent;
  fetchEvent.respondWith(handler(fetchEvent.request));
});
