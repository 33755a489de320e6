// Group commit: calls that arrive while a batch is being written wait and go
// together in the next one, so many callers share one round trip (and one
// fsync). Each caller's promise settles with its own batch.

interface Entry<T, R> {
  item: T;
  resolve(value: R): void;
  reject(error: unknown): void;
}

export class Batcher<T, R = void> {
  #pending: Entry<T, R>[] = [];
  #running = 0;
  #write: (items: T[]) => Promise<R[]>;
  #max: number;
  #parallel: number;
  #idle?: PromiseWithResolvers<void>;

  /**
   * @param write Writes one batch; resolves with one result per item.
   * @param max The most items in one batch.
   * @param parallel Batches in flight at once.
   */
  constructor(
    write: (items: T[]) => Promise<R[]>,
    max: number,
    parallel = 1,
  ) {
    this.#write = write;
    this.#max = max;
    this.#parallel = parallel;
  }

  /** Queues `item`; resolves once the batch that holds it is written. */
  add(item: T): Promise<R> {
    const { promise, resolve, reject } = Promise.withResolvers<R>();
    this.#pending.push({ item, resolve, reject });
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
    this.#idle ??= Promise.withResolvers<void>();
    return this.#idle.promise;
  }

  #next(): void {
    if (this.#running >= this.#parallel || this.#pending.length === 0) {
      if (this.#running === 0 && this.#pending.length === 0) {
        this.#idle?.resolve();
        this.#idle = undefined;
      }
      return;
    }
    const batch = this.#pending.splice(0, this.#max);
    this.#running++;
    this.#write(batch.map((entry) => entry.item)).then(
      (results) => batch.forEach((entry, i) => entry.resolve(results[i])),
      (error) => batch.forEach((entry) => entry.reject(error)),
    ).finally(() => {
      this.#running--;
      this.#next();
    });
    // More waiting than one batch holds: start another if allowed.
    if (this.#pending.length > 0) this.#next();
  }
}
