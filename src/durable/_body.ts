// A trigger's body as the outbox stores it: bounded by `maxBodySize`. A
// size known at the call (bytes, a Blob) is checked there; a stream or
// FormData is read chunk by chunk and given up on past the bound.
import type { PreparedRequest } from "../trigger/_request.ts";
import { OutboxError } from "./errors.ts";
import { describe } from "../_redact.ts";
import { TRIGGER } from "./_validate.ts";
import { concatBytes } from "../_bytes.ts";

/** The body's size when it is known without reading it: bytes, or a Blob
 * (the Request holding it reads the same bytes). `undefined` for a
 * ReadableStream or FormData. */
export function knownSize(
  body: PreparedRequest["body"],
  given: unknown,
): number | undefined {
  if (body === null) return 0;
  if (body instanceof Uint8Array) return body.byteLength;
  return given instanceof Blob ? given.size : undefined;
}

/** Throws a RangeError naming the size when a body known at the call is
 * larger than `max`. */
export function checkBodySize(size: number | undefined, max: number): void {
  if (size !== undefined && size > max) {
    throw new RangeError(
      `${TRIGGER}body must be at most ${max} bytes (maxBodySize), received ${size} bytes`,
    );
  }
}

/** Cancels the caller's body stream of a trigger that will not be stored
 * (refused at the call, or the outbox closed): whatever feeds it (a file, a
 * socket) is let go. */
export function dropBody(body: PreparedRequest["body"]): void {
  if (body instanceof Request && !body.bodyUsed) {
    body.body?.cancel().catch(() => {});
  }
}

/** How a body read ends early. */
export interface ReadBounds {
  /** The most bytes. */
  max: number;
  /** Milliseconds for the whole body (`queryTimeout`): then `"TIMEOUT"`,
   * not stored. */
  timeout: number;
  /** Aborted when the outbox closes: then `"CLOSED"`. */
  closing: AbortSignal;
}

/** The body's bytes, read at most `max` of them: past that the read stops
 * (the stream is cancelled) and it rejects with `"TOO_LARGE"`; a stream
 * that fails rejects with `"BODY"`; one still not over after `timeout` ms
 * with `"TIMEOUT"`, and one being read when the outbox closes with
 * `"CLOSED"` (cancelled in both cases). */
export async function readBody(
  body: PreparedRequest["body"],
  { max, timeout, closing }: ReadBounds,
): Promise<Uint8Array | null> {
  if (body === null || body instanceof Uint8Array) return body;
  const stream = body.body;
  if (stream === null) return new Uint8Array(0);
  const reader = stream.getReader();
  let ended: OutboxError | undefined;
  const end = (error: OutboxError) => {
    ended ??= error;
    reader.cancel().catch(() => {});
  };
  const timer = setTimeout(
    () =>
      end(
        new OutboxError(
          "TIMEOUT",
          `${TRIGGER}not stored: the body was not read within ${timeout} ms (queryTimeout)`,
        ),
      ),
    timeout,
  );
  const onClose = () =>
    end(
      new OutboxError(
        "CLOSED",
        `${TRIGGER}not stored: the outbox closed while the body was read`,
      ),
    );
  if (closing.aborted) onClose();
  else closing.addEventListener("abort", onClose, { once: true });
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (ended !== undefined) throw ended;
      if (done) break;
      size += value.byteLength;
      if (size > max) {
        reader.cancel().catch(() => {});
        throw new OutboxError(
          "TOO_LARGE",
          `${TRIGGER}not stored: the body is larger than maxBodySize (${max} bytes)`,
        );
      }
      chunks.push(value);
    }
  } catch (error) {
    if (ended !== undefined) throw ended;
    if (error instanceof OutboxError) throw error;
    throw new OutboxError(
      "BODY",
      `${TRIGGER}not stored: the body could not be read: ${describe(error)}`,
      { cause: error },
    );
  } finally {
    clearTimeout(timer);
    closing.removeEventListener("abort", onClose);
  }
  return concatBytes(chunks, size);
}
