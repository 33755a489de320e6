// What a caller's callback returns (private; a leaf: any module can take it
// without pulling in another product's code).

/**
 * Drops the rejection of what a caller's callback returned (an async
 * `onEvent` or `waitUntil`): its failure is the caller's own bug and must
 * never surface as an unhandled rejection that ends the process.
 */
export function dropRejection(returned: unknown): void {
  if (typeof (returned as PromiseLike<unknown> | null)?.then === "function") {
    Promise.resolve(returned).catch(() => {});
  }
}
