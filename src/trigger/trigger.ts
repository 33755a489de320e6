import type { TriggerOptions, TriggerOutcome, TriggerResult } from "./types.ts";
import { TriggerError } from "./errors.ts";
import { ownBody, PREFIX, prepare, type PreparedRequest } from "./_request.ts";
import { bodyBytes, failure } from "./_fail.ts";
import { importKey, sign } from "../signature/_sign.ts";
import { discoverWaitUntil } from "../transport/_runtime.ts";
import { dropRejection } from "../_callback.ts";
import { startDeadline } from "../transport/_deadline.ts";
import { type SendEvents, sendOverSocket } from "../transport/_socket.ts";
import { sendOverFetch } from "../transport/_fetch.ts";
import { sendOverSocketOrFetch } from "../transport/_fallback.ts";
import { triggerEnded, triggerStarted } from "./drain.ts";
import { startTelemetry } from "./_telemetry.ts";
import { listen, unlisten } from "./_signal.ts";

/**
 * Fires an HTTP request and moves on, without losing it.
 *
 * By default (`wait: "sent"`) the promise resolves as soon as the whole
 * request is written; the connection then stays open in the background until
 * the status line arrives, so the server never sees an early disconnect and
 * reads the body intact. `wait: "accepted"` resolves with the status instead.
 * Where raw sockets exist and are usable (`Deno.connect` on Deno, Deno Deploy
 * and Supabase; `node:net` on Node and Bun) the request is written raw over a
 * socket; on Cloudflare Workers, Vercel Edge and Netlify edge functions
 * `fetch` carries it (or the `fetch` option), kept alive with `waitUntil`. {@linkcode drainTriggers} waits for every background part
 * still running, for shutdown.
 *
 * Bad input throws at once; network failures never reject: they resolve with
 * `ok: false` and a {@linkcode TriggerError} in `error`.
 *
 * @param url The target, an `http:` or `https:` URL.
 * @param options Method, headers, body, wait mode, timeout and transport.
 * @returns The result; `result.done` settles when the background part is over.
 * @throws {TypeError} For bad input (URL, scheme, method, header, cookie,
 *   body, other option values), naming the value. Nothing is connected then.
 * @throws {RangeError} For a `timeout` that is not a number of ms from 1 to
 *   2^31 − 1, or a `maxConnections` that is not a whole number above 0 —
 *   a value of the wrong type included (`timeout: "30000"` is a RangeError,
 *   not a TypeError).
 *
 * @example Usage
 * ```ts
 * import { trigger } from "./trigger.ts";
 * import assert from "node:assert/strict";
 *
 * const received = Promise.withResolvers<string>();
 * const server = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   async (request) => {
 *     received.resolve(await request.text());
 *     return new Response("ok");
 *   },
 * );
 * const url = `http://127.0.0.1:${server.addr.port}/jobs/report`;
 *
 * const result = await trigger(url, { form: { id: 7, title: "a & b" } });
 * assert.equal(result.ok, true);
 * assert.equal(result.transport, "socket");
 * assert.equal(await received.promise, "id=7&title=a+%26+b");
 *
 * await result.done; // the background part: closed after the status line
 * await server.shutdown();
 * ```
 *
 * @example Waiting for the status line
 * ```ts
 * import { trigger } from "./trigger.ts";
 * import assert from "node:assert/strict";
 *
 * const server = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   () => new Response(null, { status: 503, headers: { "retry-after": "5" } }),
 * );
 * const url = `http://127.0.0.1:${server.addr.port}/`;
 *
 * const result = await trigger(url, { wait: "accepted", json: { a: 1 } });
 * assert.equal(result.ok, false);
 * assert.equal(result.status, 503);
 * assert.equal(result.error?.code, "HTTP_STATUS");
 * assert.equal(result.error?.retryAfter, 5_000); // "come back in 5 s"
 * await server.shutdown();
 * ```
 *
 * @example A fetch of your own (a Workers service binding, a logger)
 * ```ts
 * import { trigger } from "./trigger.ts";
 * import assert from "node:assert/strict";
 *
 * const seen: string[] = [];
 * const result = await trigger("https://app.example/jobs/report", {
 *   json: { month: "2026-11" },
 *   wait: "accepted",
 *   fetch: async (url, init) => {
 *     seen.push(`${init.method} ${url} ${init.body ? "with body" : ""}`);
 *     return new Response(null, { status: 202 });
 *   },
 * });
 * assert.equal(result.transport, "fetch");
 * assert.equal(result.status, 202);
 * assert.deepEqual(seen, ["POST https://app.example/jobs/report with body"]);
 * ```
 *
 * @example Bad input throws, network failures resolve
 * ```ts
 * import { trigger } from "./trigger.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => trigger("ftp://example.test/"), TypeError);
 * assert.throws(
 *   () => trigger("http://example.test/", { headers: { "x-a": "1\r\nx-b: 2" } }),
 *   TypeError,
 * );
 *
 * const result = await trigger("http://127.0.0.1:1/", { timeout: 5_000 });
 * assert.equal(result.ok, false);
 * assert.equal(result.error?.code, "CONNECT");
 * ```
 */
export function trigger(
  url: string | URL,
  options?: TriggerOptions,
): Promise<TriggerResult> {
  return run(prepare(url, options));
}

/**
 * Adds the Standard Webhooks headers to `req`, reading a body kept as a
 * Request into bytes first (the transports then send those bytes). Rejects
 * with a TriggerError: BODY when the body cannot be read, SIGN otherwise.
 */
async function signRequest(
  req: PreparedRequest,
  signal: AbortSignal,
  unsigned: PreparedRequest["headers"],
): Promise<void> {
  const { key, id } = req.sign!;
  try {
    ownBody(req); // signed and sent after waits: the caller's bytes copied now
    const body = await bodyBytes(req, signal);
    req.body = body;
    const timestamp = req.sign!.timestamp ?? Math.floor(Date.now() / 1000);
    const signature = await sign(await importKey(key, "sign"), {
      id,
      timestamp,
      body: body ?? new Uint8Array(0),
    });
    req.headers = [
      ...unsigned,
      ["webhook-id", id],
      ["webhook-timestamp", String(timestamp)],
      ["webhook-signature", signature],
    ];
  } catch (error) {
    if (error instanceof TriggerError) throw error;
    throw failure("SIGN", "Request could not be signed", req, error);
  }
}

/** The outcome of a final status: 2xx is success, anything else HTTP_STATUS
 * (with the wait a 429 or 503 asked for). */
function statusOutcome(
  status: number,
  req: PreparedRequest,
  retryAfter?: number,
): TriggerOutcome {
  if (status >= 200 && status < 300) return { ok: true, status };
  return {
    ok: false,
    status,
    error: failure(
      "HTTP_STATUS",
      `Server answered ${status}`,
      req,
      undefined,
      status,
      retryAfter,
    ),
  };
}

function run(req: PreparedRequest): Promise<TriggerResult> {
  const start = performance.now();
  const controller = new AbortController();
  const { signal } = controller;
  /** The whole request is written (an answer may be on its way). */
  let sent = false;
  /** The wait the final status asked for (its `Retry-After`), if any. */
  let retryAfter: number | undefined;
  const events: SendEvents = {
    start,
    onSent() {
      sent = true;
      if (req.wait === "sent") answer({ ok: true });
    },
    onStatus(status, wait) {
      retryAfter = wait;
      if (req.wait === "accepted") {
        answer(statusOutcome(status, req, retryAfter));
      }
    },
  };
  // The transport's own reaction (closing the connection) is called here,
  // not added as an "abort" listener: a listener costs ~2 µs per trigger.
  const abort = (reason: unknown) => {
    controller.abort(reason);
    events.cancel?.();
  };
  // The caller's signal first: one that throws here is bad input, thrown
  // before anything (a span, a timer) is started.
  const external = req.signal;
  // Told later, within the signal's event dispatch, where a `reason` getter
  // that throws would be uncaught (and end the process): what it threw is
  // the reason then.
  const onAbort = () => {
    let reason: unknown;
    try {
      reason = external!.reason;
    } catch (error) {
      reason = error;
    }
    abort(reason);
  };
  try {
    if (external?.aborted) abort(external.reason);
    else if (external !== undefined) listen(external, onAbort);
  } catch (error) {
    throw new TypeError(
      `${PREFIX}signal cannot be listened to: its addEventListener or reason threw`,
      { cause: error },
    );
  }
  // Undefined unless an OpenTelemetry API is registered.
  const telemetry = startTelemetry(req);

  // No Promise.withResolvers: Node 20 and Vercel's edge-runtime lack it.
  let resolve!: (result: TriggerResult) => void;
  const promise = new Promise<TriggerResult>((r) => resolve = r);
  let answered = false;
  // The clock, and the promises only the transport's events settle, are
  // made once the transport has started, so the write goes out sooner
  // (docs/performance.md, ninth pass): no transport tells an event before
  // its first await (its write, on a reused connection). One that did
  // would find them made at that event.
  let settle!: (outcome: TriggerOutcome) => void;
  let outcome: Promise<TriggerOutcome> | undefined;
  let over!: () => void;
  let done: Promise<void> | undefined;
  const ends = () => {
    if (outcome !== undefined) return;
    outcome = new Promise<TriggerOutcome>((r) => settle = r);
    // Its own promise, not `outcome.then()`: one reaction less before a
    // caller awaiting it resumes.
    done = new Promise<void>((r) => over = r);
  };
  let stopClock: (() => void) | undefined;
  triggerStarted();
  const answer = (result: TriggerOutcome) => {
    if (answered) return;
    answered = true;
    const elapsed = performance.now() - start;
    telemetry?.resumed(result, elapsed);
    ends();
    resolve({
      ...result,
      transport: req.transport,
      elapsed,
      done: done!,
      outcome: outcome!,
    });
  };
  if (telemetry) {
    events.onResend = () => telemetry.resend();
    events.onQueue = (waiting) => telemetry.queue(waiting);
  }

  const send = req.fallback
    ? sendOverSocketOrFetch
    : req.transport === "socket"
    ? sendOverSocket
    : sendOverFetch;
  // Signing is async (WebCrypto): only signed triggers pay for the await.
  const unsigned = req.headers;
  // Its timestamp is the time it is sent: signed again after a wait for a
  // connection (a receiver refuses one older than its tolerance).
  if (req.sign !== undefined && req.sign.timestamp === undefined) {
    events.onTurn = () => signRequest(req, signal, unsigned);
  }
  const go = () =>
    req.sign
      ? signRequest(req, signal, unsigned).then(() => send(req, signal, events))
      : send(req, signal, events);
  let finished = false;
  const finish = (result: TriggerOutcome) => {
    if (finished) return;
    finished = true;
    try {
      stopClock?.();
      if (external !== undefined) unlisten(external, onAbort);
    } catch {
      // A caller's signal that throws here cannot stop the bookkeeping.
    }
    try {
      answer(result); // makes `outcome` and `done` if not yet made
      settle(result);
      over();
    } finally {
      triggerEnded();
      telemetry?.end(result);
    }
  };
  const ended = (status: number | undefined) => {
    if (finished) return; // told by onEnd already: no second outcome built
    finish(
      status === undefined
        ? {
          ok: false,
          error: failure(
            "CLOSED",
            "Connection closed without a status line",
            req,
          ),
        }
        : statusOutcome(status, req, retryAfter),
    );
  };
  // The socket transport ends a trigger as soon as its connection is back
  // in the pool, before its promise settles: the caller awaiting `done`
  // resumes a few microtasks sooner (and may reuse the connection at once).
  events.onEnd = ended;
  // One reaction, not a chain: each link is a promise and a microtask.
  (telemetry ? telemetry.within(go) : go()).then(
    ended,
    (error: TriggerError) => finish({ ok: false, error }),
  );
  ends();
  // From `start`: the time the transport took so far counts.
  if (!finished) {
    stopClock = startDeadline(
      req.timeout,
      () => {
        const expire = () => {
          if (finished) return;
          abort(
            new DOMException(
              `Trigger timed out after ${req.timeout} ms`,
              "TimeoutError",
            ),
          );
        };
        // Written: one more turn of the event loop first. Thawed after a
        // freeze (a platform between invocations, `docker pause`), a
        // process runs its overdue timers before it reads what arrived
        // meanwhile, and an answer already in the socket was called a
        // timeout. Not written (waiting for a connection, say): at once,
        // so it is not written now.
        if (sent) setTimeout(expire, 0);
        else expire();
      },
      start,
    );
  }
  // Bytes of the caller's that no transport copied into its request at
  // once are copied before the call returns. (Whatever needed them and
  // could not copy them has failed with BODY already.)
  try {
    ownBody(req);
  } catch {
    // Told by the transport, if it needed them.
  }

  try {
    // Inside the try: Vercel's context.get() runs here.
    const waitUntil = req.waitUntil ?? discoverWaitUntil();
    dropRejection(waitUntil?.(done!));
  } catch {
    // A platform that refuses (e.g. after its response) cannot be helped
    // here; the trigger itself goes on.
  }
  return promise;
}
