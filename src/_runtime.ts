// Runtime differences, in one place: raw sockets, private CAs for fetch, and
// the platform's waitUntil. Feature tests only, never user-agent sniffing.
import type { WaitUntil } from "./types.ts";

type DenoNamespace = typeof Deno;

/** The `Deno` namespace when running on Deno (or Deno-based edge platforms). */
export function denoRuntime(): DenoNamespace | undefined {
  const deno = (globalThis as { Deno?: DenoNamespace }).Deno;
  return typeof deno?.connect === "function" ? deno : undefined;
}

/** Whether raw TCP/TLS sockets are available. */
export function hasRawSockets(): boolean {
  return denoRuntime() !== undefined;
}

/** A fetch client trusting extra CAs, where the runtime can make one. */
export function createCaClient(
  caCerts: string[],
): { client: Deno.HttpClient; close(): void } | undefined {
  const deno = (globalThis as { Deno?: DenoNamespace }).Deno;
  if (typeof deno?.createHttpClient !== "function") return undefined;
  const client = deno.createHttpClient({ caCerts });
  return { client, close: () => client.close() };
}

/** Whether {@linkcode createCaClient} can work here. */
export function canUseCaCertsWithFetch(): boolean {
  const deno = (globalThis as { Deno?: DenoNamespace }).Deno;
  return typeof deno?.createHttpClient === "function";
}

const VERCEL_CONTEXT = Symbol.for("@vercel/request-context");

/**
 * The platform's `waitUntil`, or undefined: Supabase's
 * `EdgeRuntime.waitUntil`, then Vercel's request context.
 */
export function discoverWaitUntil(): WaitUntil | undefined {
  const g = globalThis as Record<string | symbol, unknown>;
  const edge = g.EdgeRuntime as { waitUntil?: unknown } | undefined;
  if (typeof edge?.waitUntil === "function") {
    return (promise) => (edge.waitUntil as WaitUntil).call(edge, promise);
  }
  const vercel = g[VERCEL_CONTEXT] as
    | { get?: () => { waitUntil?: unknown } | undefined }
    | undefined;
  if (typeof vercel?.get === "function") {
    const context = vercel.get();
    if (typeof context?.waitUntil === "function") {
      return (promise) =>
        (context.waitUntil as WaitUntil).call(context, promise);
    }
  }
  return undefined;
}
