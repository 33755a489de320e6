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
  if ((reason as { name?: unknown })?.name === "TimeoutError") {
    return failure("TIMEOUT", "Request timed out", req, reason);
  }
  return failure("ABORTED", "Request aborted", req, reason);
}

/** Reads a body kept as a Request (Blob, FormData, stream) into bytes. */
export async function bodyBytes(
  req: PreparedRequest,
): Promise<Uint8Array<ArrayBuffer> | null> {
  if (!(req.body instanceof Request)) return req.body;
  try {
    return new Uint8Array(await req.body.arrayBuffer());
  } catch (error) {
    throw failure("BODY", "Request body could not be read", req, error);
  }
}
