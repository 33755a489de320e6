// A bound on the bytes held in memory at once, shared by many holders
// (private; a leaf): the receiving side's body reads, the dashboard's forms,
// and the outbox's bodies being read or waiting to be stored.

/**
 * A bound on the bytes held in memory at once by many holders (the reads
 * under way, and whatever else counts against it). A holder takes bytes as
 * they arrive and gives them back when done.
 */
export class ByteBudget {
  #used = 0;

  /** The most bytes held at once. */
  readonly max: number;
  /** Whether a lone holder may go past `max`. */
  readonly lone: boolean;

  /**
   * @param max The most bytes held at once.
   * @param lone Whether a holder that holds everything taken may go past
   *   `max`: one item larger than the whole bound is then taken when nothing
   *   else is held (the outbox's rule), instead of never.
   */
  constructor(max: number, lone = false) {
    this.max = max;
    this.lone = lone;
  }

  /** Bytes free now (0 while a lone holder is past `max`). */
  get left(): number {
    return Math.max(0, this.max - this.#used);
  }

  /** Takes `bytes` more for a holder that holds `holding` already; `false`
   * (nothing taken) when they do not fit.
   *
   * @throws {RangeError} When `bytes` or `holding` is not a finite number
   *   at least 0 (a `NaN` taken would make the count `NaN` and every later
   *   take succeed: the bound gone for good). */
  take(bytes: number, holding = 0): boolean {
    count(bytes, "bytes");
    count(holding, "holding");
    if (bytes === 0) return true; // nothing to hold, even past `max`
    if (
      this.#used + bytes > this.max && !(this.lone && this.#used === holding)
    ) {
      return false;
    }
    this.#used += bytes;
    return true;
  }

  /** Gives `bytes` back.
   *
   * @throws {RangeError} When `bytes` is not a finite number at least 0. */
  give(bytes: number): void {
    count(bytes, "bytes");
    this.#used = Math.max(0, this.#used - bytes);
  }
}

/** Refuses what cannot be a count of bytes. */
function count(value: number, name: string): void {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(
      `ByteBudget: ${name} must be a finite number at least 0, received ${value}`,
    );
  }
}
