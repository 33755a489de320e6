// Options checked alike by every entry point: options objects, durations in
// milliseconds and abort signals (private; a leaf: any module can take it
// without pulling in another product's code).
import { show } from "./_show.ts";

/** The longest a timer waits: 2^31 − 1 ms (about 24.8 days); beyond,
 * `setTimeout` fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The default `maxBodySize` everywhere a body is held in memory: the
 * receiving side's middlewares and the outbox (and what the outbox's fetches
 * are sized by when none is given): 1 MiB. */
export const DEFAULT_MAX_BODY_SIZE = 1_048_576;

/**
 * Checks an options argument: an object. The TypeError names it, with its
 * entry point's prefix (`prefix`, e.g. "Cannot drain triggers: "), and what
 * was given instead.
 *
 * @throws {TypeError} When not an object (`null` included).
 */
export function checkOptions(options: unknown, prefix: string): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `${prefix}options must be an object, received ${show(options)}`,
    );
  }
}

/**
 * Refuses `onError`, the old name of `reportError` (0.1): ignored, it left
 * an upgraded app reporting to `console.error` without a word.
 *
 * @throws {TypeError} When `options` has an `onError`.
 */
export function refuseOnError(options: object, prefix: string): void {
  if ("onError" in options) {
    throw new TypeError(
      `${prefix}onError is now reportError (it only reports; Hono's app.onError makes error answers)`,
    );
  }
}

/**
 * Checks a duration option: a number of milliseconds from `min` to `max`.
 * The RangeError names the option (`what`, with its entry point's prefix)
 * and the value.
 *
 * @throws {RangeError} When not a finite number from `min` to `max`.
 */
export function checkMs(
  value: unknown,
  what: string,
  min = 0,
  max = MAX_TIMER_MS,
): void {
  if (
    typeof value !== "number" || !Number.isFinite(value) || value < min ||
    value > max
  ) {
    throw new RangeError(
      `${what} must be a number of milliseconds from ${min} to ${max}, received ${
        show(value)
      }`,
    );
  }
}

/**
 * Checks a `signal` option: an AbortSignal, or anything that behaves as one
 * (another realm's, a polyfill's). The TypeError names the option and what
 * was given instead.
 *
 * @throws {TypeError} When not one.
 */
export function checkSignal(
  value: unknown,
  what: string,
): asserts value is AbortSignal {
  const signal = value as Partial<AbortSignal> | null;
  if (
    typeof signal !== "object" || signal === null ||
    typeof signal.addEventListener !== "function" ||
    typeof signal.removeEventListener !== "function" ||
    typeof signal.aborted !== "boolean"
  ) {
    throw new TypeError(
      `${what} must be an AbortSignal, received ${show(value)}`,
    );
  }
}
