// Input checks for the outbox's entry points: bad input is a synchronous
// TypeError or RangeError whose message names the value.
import { PREFIX as TRIGGER, prepare } from "../trigger/_request.ts";
import { show } from "../_show.ts";
import { checkMs, checkOptions, DEFAULT_MAX_BODY_SIZE } from "../_options.ts";
import type { OutboxOptions, RetrySettings } from "./types.ts";

export const OPEN = "Cannot open outbox: ";
export { TRIGGER };
const NAME = /^[a-z_][a-z0-9_]{0,40}$/;
/** The largest `maxBodySize` accepted: 64 MiB. A body is stored base64 in
 * the job's JSON (4/3 of its size) and a group commit sends its rows as one
 * JSON text; larger bodies belong in object storage, with their URL in the
 * trigger. */
export const MAX_BODY_SIZE_LIMIT = 67_108_864;

/** Retry settings with every field present, delays in milliseconds. */
export type Retry = Required<RetrySettings>;

export const DEFAULT_RETRY: Retry = {
  limit: 5,
  delay: 2_000,
  backoff: true,
  maxDelay: 300_000,
};

/** What {@linkcode checkOpenOptions} hands the engine and the outbox. */
export interface OpenSettings {
  queue: string;
  schema: string;
  /** `false`: open only what exists (`"NOT_FOUND"` otherwise). */
  create: boolean;
  retry: Retry;
  secret?: string;
  onEvent?: (event: never) => void;
  connectionString?: string;
  dir: string;
  connectTimeout: number;
  queryTimeout: number;
  maxBodySize: number;
}

/** Checks a duration in milliseconds: a number from `min` to a timer's
 * range. Returns `fallback` when absent. */
export function duration(
  prefix: string,
  name: string,
  value: unknown,
  fallback: number,
  min = 0,
): number {
  if (value === undefined) return fallback;
  checkMs(value, `${prefix}${name}`, min);
  return value as number;
}

export function checkOpenOptions(options: OutboxOptions): OpenSettings {
  checkOptions(options, OPEN);
  const queue = options.queue ?? "trigger_outbox";
  const schema = options.schema ?? "pgboss";
  for (const [what, value] of [["queue", queue], ["schema", schema]]) {
    if (typeof value !== "string" || !NAME.test(value)) {
      throw new TypeError(
        `${OPEN}${what} must be lower-case letters, digits and "_" (at most 41), received ${
          show(value)
        }`,
      );
    }
  }
  const create = options.create ?? true;
  if (typeof create !== "boolean") {
    throw new TypeError(
      `${OPEN}create must be a boolean, received ${show(create)}`,
    );
  }
  const retry = retrySettings(options.retry, DEFAULT_RETRY, OPEN);
  if (options.sign !== undefined) {
    try {
      prepare("http://outbox.invalid/", { sign: options.sign });
    } catch (error) {
      throw new TypeError((error as Error).message.replace(TRIGGER, OPEN));
    }
  }
  const onEvent = options.onEvent;
  if (onEvent !== undefined && typeof onEvent !== "function") {
    throw new TypeError(
      `${OPEN}onEvent must be a function, received ${show(onEvent)}`,
    );
  }
  const { connectionString } = options;
  if (
    connectionString !== undefined &&
    (typeof connectionString !== "string" || connectionString === "")
  ) {
    throw new TypeError(
      `${OPEN}connectionString must be a non-empty string, received ${
        // A string here is empty: nothing secret to show.
        show(connectionString)}`,
    );
  }
  const maxBodySize = options.maxBodySize ?? DEFAULT_MAX_BODY_SIZE;
  if (
    !Number.isInteger(maxBodySize) || maxBodySize < 0 ||
    maxBodySize > MAX_BODY_SIZE_LIMIT
  ) {
    throw new RangeError(
      `${OPEN}maxBodySize must be a whole number of bytes from 0 to ${MAX_BODY_SIZE_LIMIT}, received ${
        show(maxBodySize)
      }`,
    );
  }
  const dir = options.dir ?? "./.trigger-outbox";
  if (typeof dir !== "string" || dir === "") {
    throw new TypeError(
      `${OPEN}dir must be a non-empty string, received ${show(dir)}`,
    );
  }
  return {
    queue,
    schema,
    create,
    retry,
    secret: options.sign?.secret,
    onEvent,
    connectionString,
    dir,
    connectTimeout: duration(
      OPEN,
      "connectTimeout",
      options.connectTimeout,
      10_000,
      1,
    ),
    queryTimeout: duration(
      OPEN,
      "queryTimeout",
      options.queryTimeout,
      10_000,
      1,
    ),
    maxBodySize,
  };
}

/** The longest retry delay pg-boss accepts here: one day. */
const MAX_RETRY_DELAY = 86_400_000;

export function retrySettings(
  given: unknown,
  base: Retry,
  prefix: string,
): Retry {
  if (given === undefined) return base;
  if (typeof given !== "object" || given === null) {
    throw new TypeError(
      `${prefix}retry must be an object, received ${show(given)}`,
    );
  }
  for (const key of ["delaySeconds", "maxDelaySeconds"]) {
    if (key in given) {
      throw new TypeError(
        `${prefix}retry.${key} is gone: give retry.${
          key === "delaySeconds" ? "delay" : "maxDelay"
        } in milliseconds`,
      );
    }
  }
  const own = given as RetrySettings;
  // A key given as undefined takes the default, as everywhere else
  // (`retry: { limit: config.limit }` with none configured).
  const retry: Retry = { ...base };
  for (const key of ["limit", "delay", "maxDelay", "backoff"] as const) {
    if (own[key] !== undefined) {
      (retry as Record<string, unknown>)[key] = own[key];
    }
  }
  if (
    !Number.isInteger(retry.limit) || retry.limit < 0 || retry.limit > 86_400
  ) {
    throw new RangeError(
      `${prefix}retry.limit must be a whole number from 0 to 86400, received ${
        show(retry.limit)
      }`,
    );
  }
  for (const key of ["delay", "maxDelay"] as const) {
    const value = retry[key];
    if (
      typeof value !== "number" || !(value >= 0) || value > MAX_RETRY_DELAY
    ) {
      throw new RangeError(
        `${prefix}retry.${key} must be a number of milliseconds from 0 to ${MAX_RETRY_DELAY}, received ${
          show(value)
        }`,
      );
    }
  }
  if (typeof retry.backoff !== "boolean") {
    throw new TypeError(
      `${prefix}retry.backoff must be a boolean, received ${
        show(retry.backoff)
      }`,
    );
  }
  // With backoff, pg-boss waits no longer than maxDelay, the first retry
  // included: a longer delay would be cut short without a word. (In whole
  // seconds, as stored.)
  if (
    retry.backoff && Math.ceil(retry.delay / 1000) >
      Math.ceil(retry.maxDelay / 1000)
  ) {
    const earlier = base === DEFAULT_RETRY ? "the default" : "the outbox's";
    throw new RangeError(
      `${prefix}retry.delay (${retry.delay} ms${
        own.delay === undefined ? `, ${earlier}` : ""
      }) is longer than retry.maxDelay (${retry.maxDelay} ms${
        own.maxDelay === undefined ? `, ${earlier}` : ""
      }): with backoff no retry waits longer than maxDelay; raise maxDelay`,
    );
  }
  return retry;
}

/** The most bytes of a request's method, URL and headers the outbox stores
 * (what its target would read as the request's head): 64 KiB, above what
 * servers take (nginx 8 KiB a line, Node 16 KiB in all; larger heads get
 * 431), and bounded before a row joins a group commit, where an unbounded
 * one failed every caller's insert. */
export const MAX_HEAD_BYTES = 65_536;

/** The UTF-16 units of a request's method, URL and headers, each header
 * with its ": " and CR LF (a bound on the head's bytes for the ASCII and
 * Latin-1 a head holds). */
export function headSize(
  method: string,
  url: string,
  headers: ReadonlyArray<readonly [string, string]>,
): number {
  let size = method.length + url.length + 12;
  for (const [name, value] of headers) size += name.length + value.length + 4;
  return size;
}

/** A RangeError when a request's head is over {@linkcode MAX_HEAD_BYTES}. */
export function checkHeadSize(
  prefix: string,
  method: string,
  url: string,
  headers: ReadonlyArray<readonly [string, string]>,
): void {
  const size = headSize(method, url, headers);
  if (size > MAX_HEAD_BYTES) {
    throw new RangeError(
      `${prefix}the request's URL and headers take ${size} bytes; at most ${MAX_HEAD_BYTES} are stored (servers answer larger heads 431)`,
    );
  }
}

/** Whether `text` can be a stored id: PostgreSQL's text holds no NUL (a
 * query with one fails: the dashboard answered 500 for `/jobs/%00`) and a
 * driver sends an unpaired surrogate as U+FFFD (it could match another id).
 * An id that cannot be stored matches no row. */
export function matchable(text: string): boolean {
  return !text.includes("\0") && text.isWellFormed();
}

/** Throws a TypeError naming the first string PostgreSQL's JSON cannot
 * store: one with a NUL character (`\u0000`) or an unpaired surrogate.
 * Checked before a row joins a group commit, where one bad row would fail
 * every caller's insert. */
export function checkStorable(
  prefix: string,
  fields: Record<string, unknown>,
): void {
  const visit = (name: string, value: unknown): void => {
    if (typeof value === "string") {
      if (value.includes("\0") || !value.isWellFormed()) {
        throw new TypeError(
          `${prefix}${name} contains ${
            value.includes("\0") ? "a NUL character" : "an unpaired surrogate"
          }, which PostgreSQL's JSON cannot store${
            // Never echo a secret or a header value (it may be a token).
            /secret|headers/.test(name)
              ? ""
              : `, received ${
                show(value.length > 60 ? `${value.slice(0, 60)}…` : value)
              }`}`,
        );
      }
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => visit(`${name}[${i}]`, item));
    }
  };
  for (const [name, value] of Object.entries(fields)) visit(name, value);
}
