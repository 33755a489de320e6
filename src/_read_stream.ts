// The one bounded stream reader, shared by the entry points (private; a
// leaf apart from its helpers): the receiving side's body reader (connection()
// and verifyTrigger(), the dashboard's forms) and the outbox's reader of the
// bodies it stores both read a stream here, bounded in size, in time, by a
// signal and by a memory budget shared with other reads.
import { MAX_TIMER_MS } from "./_options.ts";
import type { ByteBudget } from "./_byte_budget.ts";

/** Why a stream was not read; it is cancelled in every case. */
export type StreamEnd =
  /** Over `max` bytes. */
  | "too large"
  /** The budget cannot hold it now. */
  | "busy"
  /** Not over within `timeout` ms. */
  | "timeout"
  /** `signal` aborted. */
  | "stopped"
  /** The stream failed (`error`: what it threw). */
  | "failed";

/** How {@linkcode readStream} is bounded. */
export interface StreamLimits {
  /** The most bytes. */
  max: number;
  /** Milliseconds for the whole stream; `0` or none: no limit. */
  timeout?: number;
  /** Ends the read when aborted. */
  signal?: AbortSignal;
  /** Where the bytes held are counted; none: not counted. */
  budget?: ByteBudget;
  /** What `bytes` bytes count for against the budget (their stored form's
   * size, say); the bytes themselves by default. Grows with `bytes`. */
  weigh?: (bytes: number) => number;
}

/** A stream read whole, or why not. */
export type StreamRead =
  | {
    ok: true;
    bytes: Uint8Array;
    /** Gives what the bytes hold of the budget back (once; later calls do
     * nothing). */
    release(): void;
  }
  | { ok: false; end: StreamEnd; error?: unknown };

const same = (bytes: number) => bytes;

/**
 * Reads `stream` whole within `limits`. On any end but success the stream is
 * cancelled and what was taken from the budget is given back; on success the
 * caller calls `release()` once it no longer holds the bytes.
 *
 * Rejects with a TypeError when the stream is locked (nothing taken).
 */
export async function readStream(
  stream: ReadableStream<Uint8Array>,
  limits: StreamLimits,
): Promise<StreamRead> {
  const { max, timeout = 0, signal, budget, weigh = same } = limits;
  const reader = stream.getReader();
  let ended: StreamEnd | undefined;
  const end = (why: StreamEnd) => {
    ended ??= why;
    reader.cancel().catch(() => {});
  };
  // Bytes counted against the budget so far (by `weigh`).
  let held = 0;
  const hold = (bytes: number): boolean => {
    const need = weigh(bytes);
    if (budget === undefined || need <= held) return true;
    if (!budget.take(need - held, held)) return false;
    held = need;
    return true;
  };
  const giveBack = () => {
    budget?.give(held);
    held = 0;
  };
  const timer = timeout > 0
    ? setTimeout(() => end("timeout"), Math.min(timeout, MAX_TIMER_MS))
    : undefined;
  const onAbort = () => end("stopped");
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });
  const bytes = new Accumulator();
  let error: unknown;
  try {
    while (ended === undefined) {
      const { done, value } = await reader.read();
      if (ended !== undefined || done) break;
      // A string or an ArrayBuffer has no byteLength to count (a string's
      // size would be NaN): refused before any arithmetic.
      if (!(value instanceof Uint8Array)) {
        error = new TypeError(
          `A stream chunk must be a Uint8Array, received ${chunkType(value)}`,
        );
        end("failed");
        break;
      }
      const size = bytes.size + value.byteLength;
      if (size > max) end("too large");
      else if (!hold(size)) end("busy");
      else bytes.add(value);
    }
  } catch (thrown) {
    if (ended === undefined) {
      error = thrown;
      end("failed");
    }
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
  if (ended !== undefined) {
    bytes.drop();
    giveBack();
    return ended === "failed"
      ? { ok: false, end: ended, error }
      : { ok: false, end: ended };
  }
  return { ok: true, bytes: bytes.take(), release: giveBack };
}

/** What a chunk that is not a Uint8Array is, for a message. */
function chunkType(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  return (value as object).constructor?.name ?? "an object";
}

// The first pack's size: packs double up to PACK_MAX.
const PACK_MIN = 1024;
const PACK_MAX = 65_536;

/**
 * A stream's chunks, held in at most twice their size plus one pack. A chunk
 * may be a view on a much larger buffer (Deno.serve hands a body sent a byte
 * per write as one-byte views on 64 KiB buffers each): keeping such views
 * would keep their buffers, thousands of times the bytes counted. So a chunk
 * that fills less than half its buffer is copied into a pack (1 KiB,
 * doubling, or the chunk's size; at most 64 KiB), and a chunk that fills
 * most of its own is kept as is: a body read in large chunks, the common
 * case, is copied once at the end as before, and one read in a single chunk
 * not at all.
 *
 * The bound, per read: every chunk kept fills at least half its buffer, and
 * a full pack is kept only when at least half full (else its bytes are
 * copied out exactly), so what is kept is at most 2 × the bytes counted;
 * plus the pack being filled (1 to 64 KiB, allocated whole); plus, briefly
 * while {@linkcode Accumulator.take} joins them, 1 × more (the joined copy,
 * before the chunks are let go).
 */
class Accumulator {
  #chunks: Uint8Array[] = [];
  #pack: Uint8Array | undefined;
  #packed = 0;
  size = 0;

  add(chunk: Uint8Array): void {
    this.size += chunk.byteLength;
    if (chunk.buffer.byteLength <= chunk.byteLength * 2) {
      this.#flush();
      this.#chunks.push(chunk);
      return;
    }
    let offset = 0;
    while (offset < chunk.byteLength) {
      if (this.#pack === undefined || this.#packed === this.#pack.byteLength) {
        const last = this.#pack?.byteLength ?? PACK_MIN / 2;
        this.#flush();
        const rest = chunk.byteLength - offset;
        this.#pack = new Uint8Array(
          Math.min(Math.max(last * 2, rest), PACK_MAX),
        );
      }
      const part = chunk.subarray(
        offset,
        offset + this.#pack.byteLength - this.#packed,
      );
      this.#pack.set(part, this.#packed);
      this.#packed += part.byteLength;
      offset += part.byteLength;
    }
  }

  /** The pack joins the chunks: as is when at least half full, else a copy
   * of its bytes. */
  #flush(): void {
    const pack = this.#pack;
    if (pack === undefined) return;
    const bytes = pack.subarray(0, this.#packed);
    this.#chunks.push(
      this.#packed * 2 >= pack.byteLength ? bytes : bytes.slice(),
    );
    this.#pack = undefined;
    this.#packed = 0;
  }

  /** The bytes in one array: the only chunk itself, or a copy of them all. */
  take(): Uint8Array {
    this.#flush();
    const chunks = this.#chunks;
    if (chunks.length === 1) return chunks[0];
    const bytes = new Uint8Array(this.size);
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return bytes;
  }

  /** Lets go of every byte held. */
  drop(): void {
    this.#chunks = [];
    this.#pack = undefined;
    this.#packed = 0;
    this.size = 0;
  }
}
