// The fetch transport: for runtimes without raw sockets (edge platforms), or
// on request; it calls the caller's `fetch` when one is given. The platform
// serialises the request; the status is read from the response head and the
// body is never downloaded.
import { ownBody, type PreparedRequest } from "../trigger/_request.ts";
import { abortFailure, bodyBytes, failure } from "../trigger/_fail.ts";
import { TriggerError } from "../trigger/errors.ts";
import { createCaClient } from "./_runtime.ts";
import { networkCode } from "./_classify.ts";
import type { SendEvents } from "./_socket.ts";
import { asksToWait, retryAfterMs } from "./_retry_after.ts";

/**
 * Sends `req` with `fetch`. Calls `onSent` as soon as the request is handed
 * to the platform (fetch does not say when the last byte left) and
 * `onStatus` once the response head arrives, then cancels the body and
 * resolves with the status.
 * Rejects with a TriggerError.
 */
export async function sendOverFetch(
  req: PreparedRequest,
  signal: AbortSignal,
  events: SendEvents,
): Promise<number> {
  // Handed to a fetch after a wait (maybe the caller's own, which may keep
  // or transfer it): the caller's bytes are copied now.
  ownBody(req);
  let ca: ReturnType<typeof createCaClient>;
  try {
    ca = req.caCerts ? createCaClient(req.caCerts) : undefined;
  } catch (error) {
    // A PEM the runtime cannot load (Deno.createHttpClient throws): no
    // TLS connection can trust it.
    throw failure(
      "TLS",
      `caCerts could not be loaded (${
        error instanceof Error ? error.message : String(error)
      })`,
      req,
      error,
    );
  }
  // A caller's fetch may ignore init.signal: the abort (timeout) is raced
  // against it, as bodyBytes() does for a body kept as a Request.
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortFailure(signal, req));
  });
  aborted.catch(() => {});
  try {
    const body = await bodyBytes(req, signal);
    if (signal.aborted) throw abortFailure(signal, req);
    const init: RequestInit & { client?: unknown } = {
      method: req.method,
      // A copy: the list may be shared (frozen), and a fetch of the
      // caller's own may change what it is given.
      headers: req.headers.map(([name, value]) => [name, value]),
      // A fetch of the caller's own may keep or transfer it.
      body,
      signal,
      redirect: "manual",
    };
    if (ca) init.client = ca.client;
    const pending = Promise.resolve((req.fetch ?? fetch)(req.href, init));
    // A response that comes after the abort is never read: its body is
    // cancelled, so its connection does not outlive the trigger. (A caller's
    // fetch may resolve anything: whatever this throws is dropped.)
    pending.then((late: Partial<Response> | null | undefined) => {
      if (signal.aborted) return late?.body?.cancel?.();
    }).catch(() => {});
    events.onSent();
    if (signal.aborted) onAbort!();
    else signal.addEventListener("abort", onAbort!, { once: true });
    const response = await Promise.race([pending, aborted]);
    const status = (response as Response | null | undefined)?.status;
    // 0: an opaque redirect (redirect: "manual" where the platform hides it).
    if (!Number.isInteger(status) || status! < 0 || status! > 999) {
      throw failure(
        "NETWORK",
        `fetch resolved with no Response (status ${
          typeof status === "number" ? status : typeof status
        })`,
        req,
      );
    }
    // Response.error(): a network error a caller's fetch resolves with.
    if (status === 0 && response.type === "error") {
      throw failure("NETWORK", "fetch answered a network error", req);
    }
    // An interim answer (100 Continue, 103 Early Hints), which fetch is
    // not to expose but workerd's does: the server took the request, its
    // final status is not known. Not HTTP_STATUS, which says it refused.
    if (status! >= 100 && status! < 200) {
      Promise.resolve().then(() => response.body?.cancel()).catch(() => {});
      throw failure(
        "PROTOCOL",
        `fetch resolved with the interim status ${status}; the final status is not known`,
        req,
      );
    }
    events.onStatus(
      status!,
      asksToWait(status!) ? waitAsked(response) : undefined,
    );
    // Not awaited: a body that never ends must not hold the trigger.
    Promise.resolve().then(() => response.body?.cancel()).catch(() => {});
    return status!;
  } catch (error) {
    if (error instanceof TriggerError) throw error;
    if (signal.aborted) throw abortFailure(signal, req);
    // fetch says "fetch failed"; the reason is in its cause chain.
    let message = "";
    try {
      for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
        message += (message ? ": " : "") +
          (e instanceof Error ? e.message : String(e));
        e = (e as { cause?: unknown }).cause;
      }
    } catch {
      // A thrown value whose message, string form or cause throws.
      message += (message ? ": " : "") + "an error that cannot be shown";
    }
    const code = networkCode(message, req.url.hostname) ?? "NETWORK";
    throw failure(code, `Request failed (${message})`, req, error);
  } finally {
    signal.removeEventListener("abort", onAbort!);
    ca?.close();
  }
}

/** The wait a response's `Retry-After` asks for (ms); `undefined` without
 * one, or from a caller's fetch whose response has no usable headers. */
function waitAsked(response: Partial<Response>): number | undefined {
  try {
    return retryAfterMs(response.headers?.get("retry-after"));
  } catch {
    return undefined;
  }
}
