// Checks of the options of both middlewares: bad input is a synchronous
// TypeError or RangeError that names the option and the value.
import { MAX_TIMER_MS } from "../_options.ts";
import { show } from "../_show.ts";

/**
 * The largest `tolerance` of verifyTrigger(): half the largest safe integer,
 * so `remember` (at least twice it) can always be given.
 */
export const MAX_TOLERANCE = Math.floor(Number.MAX_SAFE_INTEGER / 2);

/**
 * Checks a byte-size option: a whole number >= 0, or `Infinity` (no limit).
 *
 * @throws {RangeError} When neither (a fraction such as `1.5` included).
 */
export function checkBytes(value: unknown, what: string): void {
  if (
    typeof value !== "number" || !(value >= 0) ||
    (value !== Infinity && !Number.isInteger(value))
  ) {
    throw new RangeError(
      `${what} must be a whole number of bytes >= 0 or Infinity (no limit), received ${
        show(value)
      }`,
    );
  }
}

/**
 * Checks a boolean option, or the argument of a method that takes one.
 *
 * @throws {TypeError} When not `true` or `false`.
 */
export function checkBoolean(value: unknown, what: string): void {
  if (typeof value !== "boolean") {
    throw new TypeError(`${what} must be a boolean, received ${show(value)}`);
  }
}

/**
 * Checks a reporter option.
 *
 * @throws {TypeError} When not a function.
 */
export function checkFunction(value: unknown, what: string): void {
  if (typeof value !== "function") {
    throw new TypeError(
      `${what} must be a function, received ${
        value === null ? "null" : typeof value
      }`,
    );
  }
}

/**
 * Checks a `bodyTimeout`: `0` (no limit) or from 1 000 ms, so a value left
 * in seconds (`30`) is refused rather than read as 30 ms.
 *
 * @throws {RangeError} When neither.
 */
export function checkBodyTimeout(value: unknown, what: string): void {
  if (value === 0) return;
  if (
    typeof value !== "number" || !Number.isFinite(value) || value < 1_000 ||
    value > MAX_TIMER_MS
  ) {
    throw new RangeError(
      `${what} must be 0 (no limit) or a number of milliseconds from 1000 to ${MAX_TIMER_MS}, received ${
        show(value)
      }`,
    );
  }
}

/**
 * Checks `maxBodySize` and `maxBufferedBytes` (already checked one by one)
 * together: a body the budget can never hold would be refused with `503`
 * and `Retry-After` forever.
 *
 * @throws {RangeError} When `maxBodySize > maxBufferedBytes`.
 */
export function checkBudget(
  maxBodySize: number,
  maxBufferedBytes: number,
  prefix: string,
): void {
  if (maxBodySize > maxBufferedBytes) {
    throw new RangeError(
      `${prefix}maxBodySize (${maxBodySize}) must not exceed maxBufferedBytes (${maxBufferedBytes}): such a body could never be read`,
    );
  }
}
