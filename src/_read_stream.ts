// The one bounded stream reader, shared by the entry points (private; a
// leaf apart from its helpers): the receiving side's body reader (connection()
// and verifyTrigger(), the dashboard's forms) and the outbox's reader of the
// bodies it stores both read a stream here, bounded in size, in time, by a
// signal and by a memory budget shared with other reads.
import { concatBytes } from "./_bytes.ts";
import { MAX_TIMER_MS } from "./_options.ts";

/**
 * A bound on the bytes held in memory at once by many holders (the reads
 * under way, and whatever else counts against it). A holder takes bytes as
 * they arrive and gives them back when done.
 */
export class ByteBudget {
  #used = 0;

  /**
   * @param max The most bytes held at once.
   * @param lone Whether a holder that holds everything taken may go past
   *   `max`: one item larger than the whole bound is then taken when nothing
   *   else is held (the outbox's rule), instead of never.
   */
  constructor(readonly max: number, readonly lone = false) {}

  /** Bytes free now (0 while a lone holder is past `max`). */
  get left(): number {
    return Math.max(0, this.max - this.#used);
  }

  /** Takes `bytes` more for a holder that holds `holding` already; `false`
   * (nothing taken) when they do not fit. */
  take(bytes: number, holding = 0): boolean {
    if (bytes === 0) return true; // nothing to hold, even past `max`
    if (
      this.#used + bytes > this.max && !(this.lone && this.#used === holding)
    ) {
      return false;
    }
    this.#used += bytes;
    return true;
  }

  /** Gives `bytes` back. */
  give(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }
}

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
  /** Bytes to take from the budget at once (a declared length): the read
   * is `"busy"` before it starts when they do not fit. */
  declared?: number;
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
 * @throws {TypeError} When the stream is locked (nothing taken).
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
  const declared = limits.declared ?? -1;
  if (declared >= 0 && !hold(declared)) {
    end("busy");
    return { ok: false, end: "busy" };
  }
  const timer = timeout > 0
    ? setTimeout(() => end("timeout"), Math.min(timeout, MAX_TIMER_MS))
    : undefined;
  const onAbort = () => end("stopped");
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });
  const chunks: Uint8Array[] = [];
  let size = 0;
  let error: unknown;
  try {
    while (ended === undefined) {
      const { done, value } = await reader.read();
      if (ended !== undefined || done) break;
      size += value.byteLength;
      if (size > max) end("too large");
      else if (!hold(size)) end("busy");
      else chunks.push(value);
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
    chunks.length = 0;
    giveBack();
    return ended === "failed"
      ? { ok: false, end: ended, error }
      : { ok: false, end: ended };
  }
  // Shorter than declared: the difference goes back now.
  const need = weigh(size);
  if (budget !== undefined && held > need) {
    budget.give(held - need);
    held = need;
  }
  return { ok: true, bytes: concatBytes(chunks, size), release: giveBack };
}
