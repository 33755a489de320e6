// Checks of the options of both middlewares: bad input is a synchronous
// TypeError or RangeError that names the option and the value.

/** The longest time a timer can wait: 2^31 - 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * Checks a duration option; the RangeError names it and the value.
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
        typeof value === "string" ? JSON.stringify(value) : String(value)
      }`,
    );
  }
}

/**
 * Checks a byte-size option.
 *
 * @throws {RangeError} When not a number >= 0 (`Infinity` allowed).
 */
export function checkBytes(value: unknown, what: string): void {
  if (typeof value !== "number" || !(value >= 0)) {
    throw new RangeError(
      `${what} must be a number of bytes >= 0, received ${
        typeof value === "string" ? JSON.stringify(value) : String(value)
      }`,
    );
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
