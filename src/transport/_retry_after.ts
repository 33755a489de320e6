// A response's Retry-After (RFC 9110 §10.2.3), shared by both transports.

/** The statuses whose Retry-After is read: 429 (RFC 6585 §4) and 503
 * (RFC 9110 §15.6.4), a server asking to be tried again later. */
export function asksToWait(status: number): boolean {
  return status === 429 || status === 503;
}

const MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec";
const DAY = "Mon|Tue|Wed|Thu|Fri|Sat|Sun";
const TIME = "(\\d{2}):(\\d{2}):(\\d{2})";
/** IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`. */
const IMF_FIXDATE = new RegExp(
  `^(?:${DAY}), (\\d{2}) (${MONTHS}) (\\d{4}) ${TIME} GMT$`,
);
/** rfc850-date (obsolete): `Sunday, 06-Nov-94 08:49:37 GMT`. */
const RFC850_DATE = new RegExp(
  `^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d{2})-(${MONTHS})-(\\d{2}) ${TIME} GMT$`,
);
/** asctime-date (obsolete): `Sun Nov  6 08:49:37 1994`, in UTC. */
const ASCTIME_DATE = new RegExp(
  `^(?:${DAY}) (${MONTHS}) ([ \\d]\\d) ${TIME} (\\d{4})$`,
);

/**
 * The wait a `Retry-After` value asks for, in milliseconds: delay-seconds
 * (digits; at most `Number.MAX_SAFE_INTEGER` ms), or an HTTP-date in one of
 * its three forms, in UTC as RFC 9110 §5.6.7 says, less `now` (0 once it
 * has passed). `undefined` for anything else: a list (two fields, or a
 * value with a comma after a date), a sign, a fraction, an exponent, a date
 * with trailing text, another zone or a day that does not exist. A value
 * the server did not write as the RFC says is not guessed at (`Date.parse`
 * read asctime dates as local time and "GMT junk" as June).
 */
export function retryAfterMs(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    return Math.min(Number(text) * 1000, Number.MAX_SAFE_INTEGER);
  }
  let at: number | undefined;
  let match = IMF_FIXDATE.exec(text);
  if (match) {
    const [, day, month, year, h, m, s] = match;
    at = utc(Number(year), month, Number(day), h, m, s);
  } else if ((match = RFC850_DATE.exec(text))) {
    const [, day, month, yy, h, m, s] = match;
    // A two-digit year more than 50 years ahead is the latest past year
    // with those digits (RFC 9110 §5.6.7); within 50 years ahead, the next
    // century's (00 read in 2099 is 2100).
    const thisYear = new Date(now).getUTCFullYear();
    let year = thisYear - (thisYear % 100) + Number(yy);
    if (year > thisYear + 50) year -= 100;
    else if (year <= thisYear - 50) year += 100;
    at = utc(year, month, Number(day), h, m, s);
  } else if ((match = ASCTIME_DATE.exec(text))) {
    const [, month, day, h, m, s, year] = match;
    at = utc(Number(year), month, Number(day.trim()), h, m, s);
  }
  return at === undefined ? undefined : Math.max(0, at - now);
}

/** The UTC time of a date's parts; `undefined` for one that does not
 * exist (31 February, 25:00). A leap second (:60) is the second before. */
function utc(
  year: number,
  monthName: string,
  day: number,
  hours: string,
  minutes: string,
  seconds: string,
): number | undefined {
  const month = MONTHS.split("|").indexOf(monthName);
  const [h, m, s] = [Number(hours), Number(minutes), Number(seconds)];
  if (h > 23 || m > 59 || s > 60) return undefined;
  const at = Date.UTC(year, month, day, h, m, Math.min(s, 59));
  return new Date(at).getUTCDate() === day ? at : undefined;
}
