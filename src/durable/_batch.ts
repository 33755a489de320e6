// Group commit: calls that arrive while a batch is being written wait and go
// together in the next one, so many callers share one round trip (and one
// fsync). Each caller's promise settles with its own batch.
import type { ByteBudget } from "../_byte_budget.ts";
import { type Resolvers, resolvers } from "../_resolvers.ts";

/** A write's result for one item that failed on its own (the others in
 * its batch succeeded). */
export class Rejected {
  readonly error: unknown;
  constructor(error: unknown) {
    this.error = error;
  }
}

interface Entry<T, R> {
  item: T;
  /** Its size by the batch weight's measure (0 without one). */
  weight: number;
  added: number;
  resolve(value: R): void;
  reject(error: unknown): void;
}

/** Bounds on the queue of items waiting for a batch. */
export interface QueueBounds {
  /** The most items waiting; `add()` beyond it rejects with `full()`. */
  limit: number;
  /** An item still waiting this many ms after `add()` rejects with
   * `expired()`, unwritten. */
  deadline: number;
  full(): Error;
  expired(): Error;
  /** A write failed so that the items still waiting would fail the same
   * way (the database stopped answering): they reject at once with
   * `abandoned(error)`. `undefined`: not such a failure. */
  abandoned(error: unknown): Error | undefined;
}

/** A bound on one batch's total size, by a measure of each item. */
export interface BatchWeight<T> {
  /** An item's size (say, the bytes it adds to the statement). */
  of(item: T): number;
  /** The most a batch may hold; an item larger on its own goes alone. */
  max: number;
  /** With queue bounds: where the waiting items' sizes are counted
   * together (with whatever else the budget counts); `add()` of an item it
   * cannot hold rejects with `full()`. */
  waiting?: ByteBudget;
}

export class Batcher<T, R = void> {
  #pending: Entry<T, R>[] = [];
  #running = 0;
  #write: (items: T[]) => Promise<Array<R | Rejected>>;
  #max: number;
  #parallel: number;
  #bounds?: QueueBounds;
  #weight?: BatchWeight<T>;
  #idle?: Resolvers<void>;

  /**
   * @param write Writes one batch; resolves with one result per item (a
   *   {@linkcode Rejected} rejects that item alone).
   * @param max The most items in one batch.
   * @param parallel Batches in flight at once.
   * @param bounds Limits on the waiting queue; none when absent.
   * @param weight A bound on a batch's total size; none when absent.
   */
  constructor(
    write: (items: T[]) => Promise<Array<R | Rejected>>,
    max: number,
    parallel = 1,
    bounds?: QueueBounds,
    weight?: BatchWeight<T>,
  ) {
    this.#write = write;
    this.#max = max;
    this.#parallel = parallel;
    this.#bounds = bounds;
    this.#weight = weight;
  }

  /** Queues `item`; resolves once the batch that holds it is written. */
  add(item: T): Promise<R> {
    const weight = this.#weight?.of(item) ?? 0;
    const waiting = this.#bounds ? this.#weight?.waiting : undefined;
    if (
      this.#bounds && (this.#pending.length >= this.#bounds.limit ||
        waiting !== undefined && !waiting.take(weight))
    ) {
      return Promise.reject(this.#bounds.full());
    }
    const { promise, resolve, reject } = resolvers<R>();
    // The monotonic clock: a wall clock set forward expired items that had
    // waited no time at all (set back, kept them past the deadline).
    this.#pending.push({
      item,
      weight,
      added: performance.now(),
      resolve,
      reject,
    });
    // A microtask's wait gathers the callers of one synchronous burst.
    if (this.#pending.length === 1 && this.#running < this.#parallel) {
      queueMicrotask(() => this.#next());
    }
    return promise;
  }

  /** Resolves when nothing is queued or being written. */
  idle(): Promise<void> {
    if (this.#running === 0 && this.#pending.length === 0) {
      return Promise.resolve();
    }
    this.#idle ??= resolvers<void>();
    return this.#idle.promise;
  }

  /** How many of the waiting items the next batch takes: at most `max`,
   * and within the weight bound (at least one). */
  #take(): number {
    const count = Math.min(this.#max, this.#pending.length);
    if (this.#weight === undefined) return count;
    let total = 0;
    for (let i = 0; i < count; i++) {
      total += this.#pending[i].weight;
      if (i > 0 && total > this.#weight.max) return i;
    }
    return count;
  }

  /** `entries` no longer wait: their weight is taken off; returns them. */
  #left(entries: Entry<T, R>[]): Entry<T, R>[] {
    const waiting = this.#bounds ? this.#weight?.waiting : undefined;
    for (const entry of entries) waiting?.give(entry.weight);
    return entries;
  }

  #next(): void {
    if (this.#bounds && this.#pending.length > 0) {
      // Waited past the deadline: rejected before anything is written.
      const stale = performance.now() - this.#bounds.deadline;
      if (this.#pending[0].added < stale) {
        const expired = this.#pending.filter((entry) => entry.added < stale);
        this.#pending = this.#pending.filter((entry) => entry.added >= stale);
        this.#left(expired);
        for (const entry of expired) entry.reject(this.#bounds.expired());
      }
    }
    if (this.#running >= this.#parallel || this.#pending.length === 0) {
      if (this.#running === 0 && this.#pending.length === 0) {
        this.#idle?.resolve();
        this.#idle = undefined;
      }
      return;
    }
    const batch = this.#left(this.#pending.splice(0, this.#take()));
    this.#running++;
    this.#write(batch.map((entry) => entry.item)).then(
      (results) =>
        batch.forEach((entry, i) => {
          const result = results[i];
          if (result instanceof Rejected) entry.reject(result.error);
          else entry.resolve(result);
        }),
      (error) => {
        batch.forEach((entry) => entry.reject(error));
        const abandoned = this.#bounds?.abandoned(error);
        if (abandoned !== undefined) {
          const waiting = this.#left(this.#pending.splice(0));
          for (const entry of waiting) entry.reject(abandoned);
        }
      },
    ).finally(() => {
      this.#running--;
      this.#next();
    });
    // More waiting than one batch holds: start another if allowed.
    if (this.#pending.length > 0) this.#next();
  }
}
