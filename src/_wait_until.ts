// The platform's `waitUntil` where a global reaches it (private; a leaf: the
// transport and the receiving side take it without each other's code).
// Workers' comes from cloudflare:workers (the transport) or the context
// Hono is given (the receiving side).

/** Hands a promise to the platform, which keeps the invocation alive until
 * it settles. */
export type GlobalWaitUntil = (promise: Promise<unknown>) => void;

const VERCEL_CONTEXT = Symbol.for("@vercel/request-context");

/**
 * Supabase's `EdgeRuntime.waitUntil`, Netlify's `Netlify.context.waitUntil`
 * (the request's context; null outside a request), then Vercel's request
 * context (`@vercel/functions`' `waitUntil` reads the same), or undefined.
 * Read when called: within the request it is for.
 */
export function globalWaitUntil(): GlobalWaitUntil | undefined {
  const g = globalThis as Record<string | symbol, unknown>;
  const edge = g.EdgeRuntime as { waitUntil?: unknown } | undefined;
  if (typeof edge?.waitUntil === "function") {
    return (promise) => (edge.waitUntil as GlobalWaitUntil).call(edge, promise);
  }
  const netlify = g.Netlify as
    | { context?: { waitUntil?: unknown } | null }
    | undefined;
  const context = netlify?.context;
  if (typeof context?.waitUntil === "function") {
    return (promise) =>
      (context.waitUntil as GlobalWaitUntil).call(context, promise);
  }
  const vercel = g[VERCEL_CONTEXT] as
    | { get?: () => { waitUntil?: unknown } | undefined }
    | undefined;
  if (typeof vercel?.get === "function") {
    const request = vercel.get();
    if (typeof request?.waitUntil === "function") {
      return (promise) =>
        (request.waitUntil as GlobalWaitUntil).call(request, promise);
    }
  }
  return undefined;
}
