// Building TriggerErrors for a prepared request (private).
import { TriggerError, type TriggerErrorCode } from "./errors.ts";
import type { PreparedRequest } from "./_request.ts";
import { readStream, type StreamRead } from "../_read_stream.ts";

/** A TriggerError about `req`. */
export function failure(
  code: TriggerErrorCode,
  message: string,
  req: PreparedRequest,
  cause?: unknown,
  status?: number,
  retryAfter?: number,
): TriggerError {
  return new TriggerError(code, message, {
    cause,
    method: req.method,
    url: req.href,
    status,
    retryAfter,
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
 * stalled or endless stream does not outlast the trigger: aborting `signal`
 * (the trigger's timeout or the caller's signal) rejects at once and cancels
 * the stream, so nothing goes on reading it (before: `arrayBuffer()` was
 * abandoned, not stopped, and read on into memory; the caller's stream was
 * never cancelled). A chunk that is not a `Uint8Array` is `BODY` on every
 * runtime (Bun's `Request` took strings).
 */
export async function bodyBytes(
  req: PreparedRequest,
  signal: AbortSignal,
): Promise<Uint8Array<ArrayBuffer> | null> {
  if (!(req.body instanceof Request)) return req.body;
  const stream = req.body.body;
  if (stream === null) return new Uint8Array(0);
  let read: StreamRead;
  try {
    read = await readStream(stream, { max: Infinity, signal });
  } catch (error) {
    // A stream locked since the call (read again after a resend cannot
    // happen: the bytes are kept once read).
    throw failure("BODY", "Request body could not be read", req, error);
  }
  // A copy: a stream read in one chunk hands back the caller's own chunk,
  // which the caller may change while the bytes are kept for a resend.
  if (read.ok) return new Uint8Array(read.bytes);
  if (read.end === "stopped") throw abortFailure(signal, req);
  throw failure("BODY", "Request body could not be read", req, read.error);
}
