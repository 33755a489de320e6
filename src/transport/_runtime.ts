// Runtime differences, in one place: raw sockets, private CAs for fetch, and
// the platform's waitUntil. Feature tests wherever the platform allows one.
import type { WaitUntil } from "../trigger/types.ts";
import type { Connector } from "./_conn.ts";
import { globalWaitUntil } from "../_wait_until.ts";
import { readEnv } from "../_env.ts";
import { connectDeno } from "./_conn_deno.ts";
import { connectWorkers } from "./_conn_workers.ts";
import {
  connectNode,
  nodeSocketsLoad,
  nodeSocketsState,
} from "./_conn_node.ts";

/** What this module looks at of the `Deno` global, declared here (not
 * `typeof Deno`): the sources then type-check where Deno's types are absent
 * (tsc for a Node or Workers app that holds a copy). */
interface DenoNamespace {
  connect?: unknown;
  createHttpClient?(options: { caCerts: string[] }): DenoHttpClient;
}

/** A `Deno.HttpClient`, as used here (`fetch`'s `client` option). */
interface DenoHttpClient {
  close(): void;
}

/** The `Deno` namespace when running on Deno (or Deno-based edge platforms). */
export function denoRuntime(): DenoNamespace | undefined {
  const deno = (globalThis as { Deno?: DenoNamespace }).Deno;
  return typeof deno?.connect === "function" ? deno : undefined;
}

/** Whether this is Cloudflare Workers: decided once, the globals stay put. */
let workers: boolean | undefined;

/**
 * Whether this is Cloudflare Workers. The socket API there is a module
 * (`cloudflare:sockets`) that cannot be probed synchronously, so this uses
 * the runtime's documented identity, `navigator.userAgent`, and, for a Worker
 * without `navigator` (the `no_global_navigator` flag), workerd's own
 * `WebSocketPair` global, which Deno, Node, Bun and Vercel's edge-runtime do
 * not have. Without the second check, a Worker with `nodejs_compat` (whose
 * `process` reports a Node version) would pass for Node.
 */
function isWorkers(): boolean {
  return workers ??= detectWorkers();
}

function detectWorkers(): boolean {
  const g = globalThis as {
    navigator?: { userAgent?: unknown };
    WebSocketPair?: unknown;
  };
  if (g.navigator?.userAgent === "Cloudflare-Workers") return true;
  // Only without `navigator` (Node 21+ and Bun have one): a polyfilled
  // WebSocketPair elsewhere does not make a runtime Workers.
  return g.navigator === undefined && typeof g.WebSocketPair === "function" &&
    denoRuntime() === undefined;
}

interface NodeProcess {
  versions?: { node?: unknown; bun?: unknown };
  execArgv?: unknown;
  on?: (event: string, listener: () => void) => unknown;
  stderr?: { write?: (text: string) => unknown };
}

/**
 * The `process` of Node or Bun (Bun reports a Node version too), where
 * node:net can be loaded. Not on Deno (its `process` is checked as Deno),
 * Workers (nodejs_compat has a `process`) or Vercel's edge-runtime (no
 * `versions.node`).
 */
function nodeProcess(): NodeProcess | undefined {
  if (denoRuntime() || isWorkers()) return undefined;
  const process = (globalThis as { process?: NodeProcess }).process;
  return typeof process?.versions?.node === "string" ? process : undefined;
}

/**
 * Whether this is a Netlify edge function: Deno with Netlify's `Netlify`
 * global (`Netlify.env`), where Netlify does not document `Deno.connect`.
 * (Netlify's Node functions have the global too, but not Deno.)
 */
function isNetlifyEdge(): boolean {
  const netlify = (globalThis as { Netlify?: { env?: { get?: unknown } } })
    .Netlify;
  return typeof netlify?.env?.get === "function" && denoRuntime() !== undefined;
}

/** How to open raw TCP/TLS sockets here, or undefined where there are none. */
export function rawConnector(): Connector | undefined {
  if (denoRuntime()) return connectDeno;
  if (isWorkers()) return connectWorkers;
  if (nodeProcess()) return connectNode;
  return undefined;
}

/**
 * Whether `transport: "auto"` picks the raw socket here. Not on Workers,
 * whose sockets cannot reach Cloudflare IP ranges or the Worker itself
 * (https://developers.cloudflare.com/workers/runtime-apis/tcp-sockets/), and
 * not on Netlify, whose edge functions do not document `Deno.connect`.
 */
export function autoPicksSocket(): boolean {
  if (isWorkers() || isNetlifyEdge()) return false;
  // Where node:net cannot be loaded (a bundle that hides it), fetch.
  if (nodeProcess()) return nodeSocketsState() !== "failed";
  return rawConnector() !== undefined;
}

/** Whose rules for proxy variables this runtime's fetch follows. */
export type ProxyReader = "deno" | "bun" | "node";

/**
 * Whether this runtime's own fetch sends requests through the proxies the
 * environment names (HTTP_PROXY and the rest), and by whose rules: Deno's
 * and Bun's always, Node's under `NODE_USE_ENV_PROXY=1` (not `true`) or
 * `--use-env-proxy` (https://nodejs.org/api/cli.html#node_use_env_proxy1).
 * Workers and the edge runtimes have no such environment.
 */
export function fetchProxyReader(): ProxyReader | undefined {
  if (denoRuntime()) return "deno";
  const process = nodeProcess();
  if (process === undefined) return undefined;
  if (typeof process.versions?.bun === "string") return "bun";
  const on = readEnv("NODE_USE_ENV_PROXY") === "1" ||
    (Array.isArray(process.execArgv) &&
      process.execArgv.includes("--use-env-proxy")) ||
    // Flags in NODE_OPTIONS are not in execArgv.
    (readEnv("NODE_OPTIONS") ?? "").split(/\s+/).includes("--use-env-proxy");
  return on ? "node" : undefined;
}

/**
 * Whether node:net is still loading (the first triggers on a Node without
 * process.getBuiltinModule): `auto` then picks the socket provisionally.
 */
export function rawSocketsLoading(): boolean {
  return nodeProcess() !== undefined && nodeSocketsState() === "loading";
}

/** Resolves whether raw sockets can be used, once node:net has loaded. */
export function rawSocketsLoad(): Promise<boolean> {
  return nodeProcess() === undefined
    ? Promise.resolve(rawConnector() !== undefined)
    : nodeSocketsLoad();
}

/**
 * Whether raw connections may be kept for later requests. Not on Workers: an
 * I/O object there belongs to the request that opened it.
 */
export function rawSocketsCanBeReused(): boolean {
  return denoRuntime() !== undefined || nodeProcess() !== undefined;
}

/** Whether raw sockets here can trust extra CAs (`caCerts`). */
export function rawSocketsTrustCaCerts(): boolean {
  return denoRuntime() !== undefined || nodeProcess() !== undefined;
}

/** A fetch client trusting extra CAs, where the runtime can make one. */
export function createCaClient(
  caCerts: string[],
): { client: DenoHttpClient; close(): void } | undefined {
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

// Non-literal, like cloudflare:sockets: no other runtime or bundler resolves it.
const WORKERS_MODULE = ["cloudflare", "workers"].join(":");
/** `waitUntil` from cloudflare:workers: undefined until loaded, null if none. */
let workersWaitUntil: WaitUntil | null | undefined;
let workersLoading: Promise<WaitUntil | null> | undefined;

function loadWorkersWaitUntil(): Promise<WaitUntil | null> {
  workersLoading ??= import(
    /* webpackIgnore: true */ /* @vite-ignore */ WORKERS_MODULE
  ).then(
    (module: { waitUntil?: unknown }) =>
      workersWaitUntil = typeof module.waitUntil === "function"
        ? module.waitUntil as WaitUntil
        : null,
    () => workersWaitUntil = null,
  );
  return workersLoading;
}

/**
 * Workers' `waitUntil` from cloudflare:workers (exported since August 2025:
 * https://developers.cloudflare.com/changelog/2025-08-08-add-waituntil-cloudflare-workers/).
 * The module loads asynchronously, so the first call hands the promise over
 * once it is loaded; later calls hand it over at once.
 */
function discoverWorkersWaitUntil(): WaitUntil | undefined {
  if (workersWaitUntil === null) return undefined;
  if (workersWaitUntil) return workersWaitUntil;
  return (promise) => {
    loadWorkersWaitUntil().then((waitUntil) => waitUntil?.(promise))
      .catch(() => {}); // outside a request: nothing can be kept alive
  };
}

/**
 * The platform's `waitUntil`, or undefined: Workers' from
 * cloudflare:workers, else Supabase's `EdgeRuntime.waitUntil`, Netlify's
 * `Netlify.context.waitUntil`, Vercel's request context.
 */
export function discoverWaitUntil(): WaitUntil | undefined {
  if (isWorkers()) return discoverWorkersWaitUntil();
  return globalWaitUntil();
}
