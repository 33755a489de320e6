// A response's Retry-After (RFC 9110 §10.2.3), shared by both transports.

/** The statuses whose Retry-After is read: 429 (RFC 6585 §4) and 503
 * (RFC 9110 §15.6.4), a server asking to be tried again later. */
export function asksToWait(status: number): boolean {
  return status === 429 || status === 503;
}

/**
 * The wait a `Retry-After` value asks for, in milliseconds: delay-seconds
 * (digits), or an HTTP-date less `now` (0 once it has passed). `undefined`
 * for anything else (a list, a negative or fractional number, a date that
 * does not parse): a value the server did not write as RFC 9110 says is not
 * guessed at.
 */
export function retryAfterMs(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d{1,12}$/.test(text)) return Number(text) * 1000;
  // IMF-fixdate and the two obsolete forms start with a day name; a bare
  // number of another shape is not a date.
  if (!/^[A-Za-z]{3,9},? /.test(text)) return undefined;
  const at = Date.parse(text);
  if (!Number.isFinite(at)) return undefined;
  return Math.max(0, at - now);
}
