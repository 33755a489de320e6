// Building TriggerErrors for a prepared request (private).
import { TriggerError, type TriggerErrorCode } from "./errors.ts";
import type { PreparedRequest } from "./_request.ts";

/** A TriggerError about `req`. */
export function failure(
  code: TriggerErrorCode,
  message: string,
  req: PreparedRequest,
  cause?: unknown,
  status?: number,
): TriggerError {
  return new TriggerError(code, message, {
    cause,
    method: req.method,
    url: req.href,
    status,
  });
}

/** The error for an aborted trigger: TIMEOUT for a `TimeoutError` reason. */
export function abortFailure(
  signal: AbortSignal,
  req: PreparedRequest,
): TriggerError {
  const reason = signal.reason;
  let name: unknown;
  try {
    name = (reason as { name?: unknown })?.name;
  } catch {
    // A caller's reason whose name throws: an abort all the same.
  }
  if (name === "TimeoutError") {
    return failure("TIMEOUT", "Request timed out", req, reason);
  }
  return failure("ABORTED", "Request aborted", req, reason);
}

/**
 * Reads a body kept as a Request (Blob, FormData, stream) into bytes. A
 * stalled stream does not outlast the trigger: aborting `signal` (the
 * trigger's timeout or the caller's signal) rejects at once.
 */
export async function bodyBytes(
  req: PreparedRequest,
  signal: AbortSignal,
): Promise<Uint8Array<ArrayBuffer> | null> {
  if (!(req.body instanceof Request)) return req.body;
  let reading: Promise<ArrayBuffer>;
  try {
    reading = req.body.arrayBuffer();
  } catch (error) {
    // Bun throws at the call for a stream's bad chunk (a number, an object).
    throw failure("BODY", "Request body could not be read", req, error);
  }
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortFailure(signal, req));
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return new Uint8Array(await Promise.race([reading, aborted]));
  } catch (error) {
    if (error instanceof TriggerError) throw error;
    throw failure("BODY", "Request body could not be read", req, error);
  } finally {
    signal.removeEventListener("abort", onAbort!);
    reading.catch(() => {}); // abandoned after an abort: never unhandled
    aborted.catch(() => {});
  }
}
