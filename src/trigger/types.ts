import type { TriggerError } from "./errors.ts";

/** A function that keeps a promise alive on an edge platform (`ctx.waitUntil`). */
export type WaitUntil = (promise: Promise<unknown>) => void;

/**
 * When `trigger()` resolves.
 *
 * - `"sent"`: as soon as the whole request is written. The connection stays
 *   open in the background (see `result.done`) until the status line arrives,
 *   the server closes, or `timeout` passes, so the server never sees an early
 *   disconnect.
 * - `"accepted"`: when the status line arrives; a status outside 200–299 is a
 *   failure with code `"HTTP_STATUS"`. A `429` or `503` is told once its
 *   head is read, with the wait its `Retry-After` asks for
 *   (`error.retryAfter`); at the server's close, once it outgrows 64 KiB or
 *   at the `timeout` if that head never ends.
 */
export type WaitMode = "sent" | "accepted";

/**
 * How the request travels.
 *
 * - `"socket"`: raw HTTP/1.1 over `Deno.connect` / `Deno.connectTls`,
 *   `node:net` / `node:tls` on Node and Bun, or `connect()` from
 *   `cloudflare:sockets` on Workers, where Cloudflare blocks
 *   sockets to Cloudflare IP ranges (every site behind its proxy), back to
 *   the Worker itself ("TCP Loop detected"), to localhost and private
 *   networks, and to port 25 (a `CONNECT` error, no fallback to `fetch`):
 *   https://developers.cloudflare.com/workers/runtime-apis/tcp-sockets/
 * - `"fetch"`: the `fetch` option (default: the platform's `fetch`), kept
 *   alive with `waitUntil`.
 * - `"auto"`: the socket on Deno, Deno Deploy, Supabase, Node and Bun; fetch on
 *   Workers, Netlify and runtimes without raw sockets, and wherever a `fetch`
 *   option is given.
 */
export type Transport = "auto" | "socket" | "fetch";

/** A request body `trigger()` accepts in its `body` option. */
export type TriggerBody =
  | string
  | Uint8Array
  | ArrayBuffer
  | Blob
  | URLSearchParams
  | FormData
  | ReadableStream<Uint8Array>;

/**
 * How {@linkcode trigger} signs a request, the Standard Webhooks way: it adds
 * `webhook-id`, `webhook-timestamp` (unix seconds, taken when sending) and
 * `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of
 * `{id}.{timestamp}.{body}`).
 */
export interface SignOptions {
  /** The shared secret, `whsec_<base64>` of 24 to 64 bytes (see
   * `createSecret()`). Never shown in an error message. */
  secret: string;
  /** The `webhook-id`: 1 to 256 visible ASCII characters other than `.`.
   * Give one to resend the same message (a durable outbox's retries), so
   * the receiver can deduplicate.
   * @default a new `msg_<32 hex digits>` per call */
  id?: string;
  /** The `webhook-timestamp` in unix seconds.
   * @default the clock when the request is sent */
  timestamp?: number;
}

/** Options for {@linkcode trigger}. */
export interface TriggerOptions {
  /**
   * The HTTP method. DELETE, GET, HEAD, OPTIONS, POST and PUT are upper-cased
   * (as fetch does); any other method is sent as given (`"patch"` stays
   * `"patch"`). CONNECT, TRACE and TRACK, in any case, are refused with a
   * TypeError (as fetch refuses them).
   * @default "GET", or "POST" when a body is given
   */
  method?: string;
  /** Request headers. `Host`, `Content-Length`, `Transfer-Encoding`,
   * `Connection` and similar framing headers are set by `trigger()` and
   * refused here.
   * @default {undefined} (no headers of the caller's) */
  headers?: HeadersInit;
  /** Fields sent as an `application/x-www-form-urlencoded` body.
   * @default {undefined} (no body) */
  form?: Record<string, string | number | boolean> | URLSearchParams;
  /** A JSON value sent as an `application/json` body.
   * @default {undefined} (no body) */
  json?: unknown;
  /** A raw body; its `Content-Type` is the one `fetch` would give it.
   * Bytes (a `Uint8Array` or an `ArrayBuffer`) are copied at the
   * call, as `fetch` copies them: changing the array afterwards changes
   * nothing sent. A detached buffer is a TypeError. A `ReadableStream` is
   * read whole before sending (kept for a resend); its chunks must be
   * `Uint8Array`s (else `BODY`), and at the trigger's `timeout` or its
   * `signal`'s abort the stream is cancelled.
   * @default {undefined} (no body) */
  body?: TriggerBody;
  /** Cookies sent as one `Cookie` header; values are percent-encoded.
   * @default {undefined} (no `Cookie` header) */
  cookies?: Record<string, string>;
  /** When to resolve.
   * @default "sent" */
  wait?: WaitMode;
  /** Milliseconds for the whole trigger, background wait included.
   * @default 30_000 */
  timeout?: number;
  /** Aborts the trigger, its background part included.
   * @default {undefined} (only `timeout` ends it early) */
  signal?: AbortSignal;
  /** How the request travels: `"auto"` uses a raw socket on Deno, Node and
   * Bun, `fetch` on Workers, Netlify, Vercel Edge and wherever a `fetch`
   * option is given. Where the runtime's fetch would go through a proxy the
   * environment names (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, less what
   * `NO_PROXY` exempts; on Node only under `NODE_USE_ENV_PROXY=1`), `"auto"`
   * takes fetch too; `"socket"` always connects straight to the target.
   * @default "auto" */
  transport?: Transport;
  /** The function the fetch transport calls, with the URL and a
   * `RequestInit`: on Workers, a service binding
   * (`env.SELF.fetch.bind(env.SELF)`) to trigger your own Worker. Given one,
   * `"auto"` picks the fetch transport on every runtime.
   * @default globalThis.fetch */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /** Keeps the background part alive on edge platforms; when absent the
   * platform's own is discovered (Workers' `waitUntil` from
   * `cloudflare:workers`, Supabase's `EdgeRuntime.waitUntil`, Netlify's
   * `Netlify.context.waitUntil`, Vercel's request context).
   * @default discovered */
  waitUntil?: WaitUntil;
  /** Keep the raw connection for later triggers to the same origin when the
   * server allows it (HTTP/1.1 keep-alive). Ignored by the fetch transport,
   * which pools by itself, and on Workers.
   * @default true */
  reuse?: boolean;
  /** When a reused connection ends before any byte of the answer (the
   * server closed it while idle, as the request went out), send the same
   * bytes once more on a fresh connection, whatever the method; a signed
   * trigger keeps its `webhook-id` and signature, so a receiver can
   * deduplicate. A `408` that ends a reused connection (the server's idle
   * timeout, sent as the request went out: it read nothing) counts as no
   * answer. A duplicate is possible when a server processed a request and
   * then closed without any answer byte, or answered it `408` with
   * `Connection: close` (Apache adds it to every 408). `false` gives
   * at-most-once instead: such a trigger ends `CLOSED`, possibly unreceived,
   * or with that `408` (`HTTP_STATUS`); with `wait: "sent"` only in
   * `result.outcome`.
   * Raw-socket transport only: over the fetch transport, the platform's
   * `fetch` decides (Node's and Bun's do not send a `POST` again; a
   * `"sent"` trigger there resolves `ok` though it may never arrive: see
   * docs/delivery.md).
   * @default true */
  resend?: boolean;
  /** The most connections open at once to one origin (scheme, host, port),
   * counted across all triggers in this process; a trigger beyond waits in
   * a queue for one, within its `timeout` and `signal`. Idle connections
   * that triggers with a larger cap left in the pool give it no room beyond
   * its cap; once queued, it takes the first connection given back.
   * Raw-socket transport only, and not on Workers (where a socket belongs
   * to its request).
   * @default 128 */
  maxConnections?: number;
  /** Extra root certificates (PEM) for https targets with a private CA.
   * One the runtime cannot load fails the trigger with `TLS`.
   * @default {undefined} (the runtime's own roots) */
  caCerts?: string[];
  /** Signs the request (Standard Webhooks headers) with a shared secret;
   * the receiver checks it with `verifyTrigger()` from `./hono`.
   * @default {undefined} (not signed) */
  sign?: SignOptions;
}

/** What is known of a trigger once it is over: see `result.outcome`. */
export interface TriggerOutcome {
  /** Whether the server answered 2xx (or, before the answer, the request
   * was sent in `"sent"` mode). */
  ok: boolean;
  /** The final status code, when one arrived. */
  status?: number;
  /** Why the trigger failed, when `ok` is false. */
  error?: TriggerError;
}

/** What {@linkcode trigger} resolves with. It never rejects. */
export interface TriggerResult {
  /** Whether the request was delivered as far as `wait` asks. */
  ok: boolean;
  /** The transport that carried the request. */
  transport: "socket" | "fetch";
  /** The status code, when the status line was read before resolving. */
  status?: number;
  /** Milliseconds from the call until the promise resolved. */
  elapsed: number;
  /** Why the trigger failed, when `ok` is false. */
  error?: TriggerError;
  /** Settles when the background part is over: the connection is closed or
   * back in the pool. In `"sent"` mode that is after the answer; in
   * `"accepted"` mode, after the rest of a response whose connection is kept
   * was read (up to 1 MB or `timeout`), else at once. Never rejects. */
  done: Promise<void>;
  /** Settles with what was finally learned once the background part is
   * over — in `"sent"` mode, the status that arrived after the caller moved
   * on, or why none did. Exactly one per trigger: after a `resend`, the
   * second attempt's. Over the socket, a final status line decides it in
   * either mode: what follows the line (a head cut off or too long) only
   * keeps the connection from being reused. `CLOSED`, `TIMEOUT` or `ABORTED`
   * after the write leave receipt unknown. Never rejects. */
  outcome: Promise<TriggerOutcome>;
}
