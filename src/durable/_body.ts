// A trigger's body as the outbox stores it: bounded by `maxBodySize`. A
// size known at the call (bytes, a Blob) is checked there; a stream or
// FormData is read by the shared bounded reader (src/_read_stream.ts),
// counted against the body text waiting to be stored as it comes.
import type { PreparedRequest } from "../trigger/_request.ts";
import { OutboxError } from "./errors.ts";
import { describe } from "../_redact.ts";
import { TRIGGER } from "./_validate.ts";
import type { ByteBudget } from "../_byte_budget.ts";
import { readStream } from "../_read_stream.ts";

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
  /** The bound on body text waiting to be stored, which a body counts
   * against as it is read (at its stored size, base64): then
   * `"OVERLOADED"`. */
  budget: ByteBudget;
  /** The `"OVERLOADED"` error. */
  overloaded(): OutboxError;
}

/** A body read, and how to let go of what it holds of the budget. */
export interface BodyRead {
  body: Uint8Array | null;
  /** Gives the body's share of the budget back (once); the stored row
   * takes it again when it waits for its insert. */
  release(): void;
}

/** The size of `bytes` bytes stored base64. */
const base64Size = (bytes: number): number => Math.ceil(bytes / 3) * 4;

const released = () => {};

/** The body's bytes, read at most `max` of them and counted against
 * `budget` as they come: past `max` the read stops (the stream is
 * cancelled) and it rejects with `"TOO_LARGE"`, past the budget with
 * `"OVERLOADED"`; a stream that fails rejects with `"BODY"`; one still not
 * over after `timeout` ms with `"TIMEOUT"`, and one being read when the
 * outbox closes with `"CLOSED"` (cancelled in every case). */
export async function readBody(
  body: PreparedRequest["body"],
  bounds: ReadBounds,
): Promise<BodyRead> {
  if (body === null || body instanceof Uint8Array) {
    return { body, release: released };
  }
  const stream = body.body;
  if (stream === null) return { body: new Uint8Array(0), release: released };
  const { max, timeout, closing, budget } = bounds;
  const read = await readStream(stream, {
    max,
    timeout,
    signal: closing,
    budget,
    weigh: base64Size,
  });
  if (read.ok) return { body: read.bytes, release: read.release };
  switch (read.end) {
    case "too large":
      throw new OutboxError(
        "TOO_LARGE",
        `${TRIGGER}not stored: the body is larger than maxBodySize (${max} bytes)`,
      );
    case "busy":
      throw bounds.overloaded();
    case "timeout":
      throw new OutboxError(
        "TIMEOUT",
        `${TRIGGER}not stored: the body was not read within ${timeout} ms (queryTimeout)`,
      );
    case "stopped":
      throw new OutboxError(
        "CLOSED",
        `${TRIGGER}not stored: the outbox closed while the body was read`,
      );
    default:
      throw new OutboxError(
        "BODY",
        `${TRIGGER}not stored: the body could not be read: ${
          describe(read.error)
        }`,
        { cause: read.error },
      );
  }
}
