// A trigger's body as the outbox stores it: bounded by `maxBodySize`. A
// size known at the call (bytes, a Blob) is checked there; a stream or
// FormData is read chunk by chunk and given up on past the bound.
import type { PreparedRequest } from "../trigger/_request.ts";
import { OutboxError } from "./errors.ts";
import { describe } from "./_redact.ts";
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

/** The body's bytes, read at most `max` of them: past that the read stops
 * (the stream is cancelled) and it rejects with `"TOO_LARGE"`; a stream
 * that fails rejects with `"BODY"`. */
export async function readBody(
  body: PreparedRequest["body"],
  max: number,
): Promise<Uint8Array | null> {
  if (body === null || body instanceof Uint8Array) return body;
  const stream = body.body;
  if (stream === null) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
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
    if (error instanceof OutboxError) throw error;
    throw new OutboxError(
      "BODY",
      `${TRIGGER}not stored: the body could not be read: ${describe(error)}`,
      { cause: error },
    );
  }
  return concatBytes(chunks, size);
}
