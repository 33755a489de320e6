// Promise.withResolvers() where the runtime lacks it (private; a leaf).

/** A promise and what settles it. */
export interface Resolvers<T> {
  promise: Promise<T>;
  resolve(value: T | PromiseLike<T>): void;
  reject(reason?: unknown): void;
}

/**
 * `Promise.withResolvers()`, made by hand: Node 20 and Vercel's
 * edge-runtime lack it (a bundle of the outbox for Node 20 threw "is not a
 * function" on its first trigger).
 */
export function resolvers<T>(): Resolvers<T> {
  let resolve!: Resolvers<T>["resolve"];
  let reject!: Resolvers<T>["reject"];
  const promise = new Promise<T>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
}
