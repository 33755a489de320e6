// The outbox's public types: options, events, dead letters, stats and the
// Outbox interface itself. Durations are milliseconds everywhere.
import type { TriggerOptions } from "../trigger/types.ts";

/** How a failed delivery is retried. pg-boss stores the delays in whole
 * seconds: a delay that is not a multiple of 1,000 ms is rounded up. */
export interface RetrySettings {
  /** Retries after the first attempt before the job is dead-lettered: a
   * whole number from 0 to 86,400.
   * @default {5} (six attempts in all) */
  limit?: number;
  /** Milliseconds before the first retry, from 0 to 86,400,000 (one day);
   * stored in whole seconds, rounded up. With `backoff`, at most
   * `maxDelay` (a RangeError otherwise); 0 retries at once every time,
   * unless a `429` or `503` asked to wait (`Retry-After`): never sooner than
   * that.
   * @default {2_000} */
  delay?: number;
  /** Double the delay on each retry, with jitter.
   * @default {true} */
  backoff?: boolean;
  /** The longest delay between two attempts with `backoff`, in
   * milliseconds, from 0 to 86,400,000 (one day), and with `backoff` not
   * below `delay`; stored in whole seconds, rounded up. Also the longest a
   * `429`'s or `503`'s `Retry-After` holds a retry back (without `backoff`,
   * 300 s whatever this is).
   * @default {300_000} */
  maxDelay?: number;
}

/** Options for {@linkcode openOutbox}. */
export interface OutboxOptions {
  /** PostgreSQL to use instead of the embedded engine, e.g.
   * `postgres://user:password@db.example:5432/app`. Shared by every process
   * that opens it. The password never appears in an error message.
   * @default {undefined} (the embedded engine, in `dir`) */
  connectionString?: string;
  /** The embedded engine's directory (ignored with `connectionString`).
   * One process at a time.
   * @default {"./.trigger-outbox"} */
  dir?: string;
  /** The queue name; several outboxes can share one database under
   * different names. Dead letters go to `<queue>_dead`.
   * @default {"trigger_outbox"} */
  queue?: string;
  /** The PostgreSQL schema pg-boss installs into.
   * @default {"pgboss"} */
  schema?: string;
  /** Install pg-boss's schema and create the queue when they are missing.
   * `false` opens only an outbox that exists: a missing embedded directory,
   * schema or queue (a mistyped name) rejects with an
   * {@linkcode OutboxError} `"NOT_FOUND"` naming it, and nothing is created
   * or migrated. For tools that only read or repair an outbox (the command
   * line uses it).
   * @default {true} */
  create?: boolean;
  /** Retry settings for triggers that give none.
   * @default {{ limit: 5, delay: 2_000, backoff: true, maxDelay: 300_000 }}
   */
  retry?: RetrySettings;
  /** Called for each delivery outcome and for database errors. Errors it
   * throws (or that a promise it returns rejects with) are ignored. Without
   * it, database errors go to `console.error`.
   * @default {undefined} (database errors to `console.error`) */
  onEvent?: (event: OutboxEvent) => void;
  /** Milliseconds to wait for a PostgreSQL connection.
   * @default {10_000} */
  connectTimeout?: number;
  /** Milliseconds one database operation (storing triggers, fetching or
   * settling jobs, an admin call) may take before it fails with an
   * {@linkcode OutboxError} `"TIMEOUT"`. A trigger that times out before
   * its transaction commits is not stored.
   * @default {10_000} */
  queryTimeout?: number;
  /** The largest request body in bytes `outbox.trigger()` stores; a
   * larger one is refused and nothing is stored (a `RangeError` at the call
   * when its size is known then, an {@linkcode OutboxError} `"TOO_LARGE"`
   * when it is known only once read: a `ReadableStream` or `FormData`
   * body). At most 64 MiB (67,108,864): bodies are stored base64 in the
   * job's JSON; larger ones belong in object storage, with their URL in
   * the trigger.
   * @default {1_048_576} */
  maxBodySize?: number;
  /** Signs every delivery (Standard Webhooks headers) with this secret,
   * re-signed with a fresh timestamp on each attempt. It is not stored with
   * the jobs, so it can be rotated; a trigger's own `sign` wins.
   * @default {undefined} (deliveries not signed) */
  sign?: { secret: string };
}

/** What {@linkcode Outbox.trigger} accepts: `trigger()`'s options plus when
 * and how often to try. `signal`, `waitUntil` and `fetch` belong to a live
 * call and are refused; `wait` is ignored (delivery always waits for the
 * status), and so are `reuse`, `resend` and `maxConnections` once checked
 * as `trigger()` checks them (a bad value throws as there; each attempt
 * uses the dispatching process's defaults; the cap per origin is the larger
 * of 128 and the sum of `start()`'s `concurrency` over the outboxes running
 * in the process). What is stored is what the options
 * held at the call: changing the object afterwards changes nothing stored
 * (a stream body is read after the call, as it arrives).
 * A `sign` option is stored with the job, secret included (prefer the
 * outbox's `sign`, which is not); its `id` becomes the trigger's id; a
 * `timestamp` is refused (TypeError): each attempt is signed afresh. Without
 * any `sign`, `webhook-timestamp` and `webhook-signature` headers of the
 * caller's go out as given, and a `webhook-id` header becomes the trigger's
 * id: it must be 1 to 256 visible ASCII characters other than `.` (what a
 * signer signs), else a TypeError; with the outbox's `sign`, they (and
 * `webhook-id`) are refused. The URL and headers together are bounded
 * (64 KiB, a RangeError). */
export interface OutboxTriggerOptions extends TriggerOptions {
  /** Milliseconds to wait before the first attempt, from 0 to 2^31 − 1,
   * counted on the database's clock from when the trigger is stored (whole
   * milliseconds, rounded up).
   * @default {0} */
  delay?: number;
  /** Retry settings for this trigger, over the outbox's.
   * @default the outbox's `retry` */
  retry?: RetrySettings;
}

/** Options for {@linkcode Outbox.start}. */
export interface DispatchOptions {
  /** Deliveries in flight at once in this process.
   * @default {10} */
  concurrency?: number;
  /** Milliseconds between polls when the queue is empty. A trigger made
   * through this outbox wakes its dispatcher at once.
   * @default {500} */
  pollInterval?: number;
}

/** Options for {@linkcode Outbox.stop}. */
export interface StopOptions {
  /** Milliseconds to let in-flight deliveries finish before aborting them
   * (an aborted delivery goes back to waiting without using up a retry).
   * Without it, each finishes or hits its own `timeout`.
   * @default {undefined} (no limit of the stop's own) */
  timeout?: number;
  /** Close the database too; `false` only stops delivering, and `start()`
   * may be called again.
   * @default {true} */
  close?: boolean;
}

/** The outcome of one delivery attempt, or a database error. */
export type OutboxEvent =
  | {
    /** `"delivered"`: a 2xx arrived, the job is complete. `"retry"`: the
     * attempt failed and the job will be tried again. `"dead"`: the job was
     * moved to the dead letters. */
    type: "delivered" | "retry" | "dead";
    /** The trigger's id, also its `webhook-id`. */
    id: string;
    /** The request's method. */
    method: string;
    /** The request's URL. */
    url: string;
    /** 1 for the first attempt. */
    attempt: number;
    /** The status code, when one arrived. */
    status?: number;
    /** Why the attempt failed. */
    error?: DeliveryError;
    /** Milliseconds the attempt took. */
    elapsed: number;
  }
  | {
    /** A database or dispatcher error; the dispatcher keeps going. */
    type: "error";
    /** The error, an {@linkcode OutboxError} for database failures. */
    error: unknown;
  };

/** Why a delivery attempt failed, as stored with the job. */
export interface DeliveryError {
  /** A `TriggerError` code (`"HTTP_STATUS"`, `"CONNECT"`, `"TIMEOUT"`…),
   * or one of the outbox's own: `"INVALID"`, the stored request no longer
   * passes `trigger()`'s checks (e.g. `caCerts` on a runtime that cannot
   * use them) and is dead-lettered at once, without an attempt; `"EXPIRED"`,
   * pg-boss itself failed the job, e.g. its lease expired with no outcome
   * recorded. */
  code: string;
  /** The error's message, naming the request. */
  message: string;
  /** The status the target answered, for `"HTTP_STATUS"`. */
  status?: number;
}

/** A job that ran out of attempts or met a status that retrying cannot fix. */
export interface DeadLetter {
  /** The trigger's id, also its `webhook-id`. */
  id: string;
  /** The request's method. */
  method: string;
  /** The request's URL. */
  url: string;
  /** Attempts made before it was dead-lettered. */
  attempts: number;
  /** The last attempt's error. */
  error: DeliveryError;
  /** When it was dead-lettered. */
  deadAt: Date;
}

/** Counts from the database, and this process's delivery counters. */
export interface OutboxStats {
  /** Waiting for a first attempt or a retry (delayed ones included). */
  queued: number;
  /** Taken by some dispatcher: being delivered, or fetched and waiting for
   * one of its `concurrency` places (a dispatcher fetches ahead). */
  active: number;
  /** Dead letters not yet re-driven or discarded. */
  dead: number;
  /** Delivered by this process since it opened the outbox. */
  delivered: number;
  /** Failed attempts this process scheduled for a retry. */
  retried: number;
  /** Jobs this process dead-lettered. */
  deadLettered: number;
  /** Jobs this process's dispatcher holds now: being delivered, fetched
   * ahead and waiting for a place, or with an outcome being stored. At
   * most `concurrency` are being delivered. */
  inFlight: number;
}

/** A durable outbox: see {@linkcode openOutbox}. */
export interface Outbox {
  /** `"embedded"` (PGlite) or `"postgres"`. */
  readonly engine: "embedded" | "postgres";
  /**
   * Persists a trigger for delivery. Resolves once its row is committed
   * (concurrent calls share one transaction: group commit).
   *
   * @param url The target, an `http:` or `https:` URL.
   * @param options `trigger()`'s options, plus `delay` and `retry`.
   * @returns The trigger's id, which every delivery sends as `webhook-id`.
   * @throws {TypeError} Synchronously, for the input `trigger()` refuses
   *   (same message), and for `signal`, `waitUntil` or `fetch`. Nothing is
   *   stored.
   * @throws {RangeError} For a bad `timeout`, `delay` or retry setting,
   *   for a body over `maxBodySize` whose size is known at the call
   *   (bytes, a string, `json`, `form`, a Blob), naming its size, and for a
   *   URL and headers over 64 KiB together.
   * @throws {TypeError} For a string PostgreSQL's JSON cannot store (a NUL
   *   character or an unpaired surrogate, e.g. in `caCerts`).
   * @throws {OutboxError} Asynchronously: `"DATABASE"` when the row could
   *   not be stored; `"TIMEOUT"` when the database did not answer (the
   *   outcome is unknown unless the message says "not stored": retry with
   *   the same `sign.id` to avoid a duplicate), also for a stream body not
   *   read within `queryTimeout` ("not stored"); `"OVERLOADED"` when 10,000
   *   triggers, or 64 MiB of their stored (base64) bodies, already wait to be stored
   *   (stream bodies being read count too, as they arrive: the stream is cancelled);
   *   `"TOO_LARGE"` when a `ReadableStream` or `FormData` body turns out
   *   larger than `maxBodySize` (reading stops there), `"BODY"` when such a
   *   body fails to read; `"CLOSED"` after `stop()`, or when the outbox
   *   closes while a stream body is read.
   */
  trigger(
    url: string | URL,
    options?: OutboxTriggerOptions,
  ): Promise<{ id: string }>;
  /** Starts delivering in this process; does nothing if already started.
   * @param options Concurrency and polling.
   * @throws {TypeError} When `options` is not an object.
   * @throws {RangeError} For a bad `concurrency` or `pollInterval`.
   * @throws {OutboxError} `"CLOSED"` once the outbox is closed. */
  start(options?: DispatchOptions): void;
  /** Stops delivering (in-flight deliveries finish first; jobs fetched but
   * not sent go back to waiting), then closes. A call while a stop is under
   * way waits for it first.
   * @param options A time limit for in-flight deliveries; `close: false`.
   * @throws {TypeError} When `options` is not an object or `close` not a
   *   boolean.
   * @throws {RangeError} For a `timeout` not a number of milliseconds from
   *   0 to 2^31 − 1. */
  stop(options?: StopOptions): Promise<void>;
  /** Lists dead letters, oldest first.
   * @param options At most `limit` (default 100).
   * @throws {TypeError} When `options` is not an object.
   * @throws {RangeError} For a `limit` not a whole number from 1 to
   *   `Number.MAX_SAFE_INTEGER`.
   * @throws {OutboxError} Asynchronously: `"CLOSED"` after `stop()`,
   *   `"DATABASE"` or `"TIMEOUT"` when the database failed or did not
   *   answer. */
  deadLetters(options?: { limit?: number }): Promise<DeadLetter[]>;
  /** Moves dead letters back to the queue for new attempts, with their
   * `webhook-id` and the retry settings they were stored with unchanged.
   * Works in batches of 1,000 (dead letters, or ids given), one
   * transaction each: a failure rejects with `done` saying how many the
   * batches before it moved (they stay moved; call again for the rest).
   * @param ids Which ones; all when omitted.
   * @returns How many were moved.
   * @throws {TypeError} When `ids` is given and not an array of strings.
   * @throws {OutboxError} Asynchronously: `"CLOSED"` after `stop()`,
   *   `"DATABASE"` or `"TIMEOUT"` (with `done`) when a batch failed. */
  redrive(ids?: string[]): Promise<number>;
  /** Deletes dead letters for good, 1,000 ids per transaction (a failure's
   * `done`: how many the batches before it deleted).
   * @param ids Which ones.
   * @returns How many were deleted.
   * @throws {TypeError} When `ids` is not an array of strings.
   * @throws {OutboxError} Asynchronously: `"CLOSED"` after `stop()`,
   *   `"DATABASE"` or `"TIMEOUT"` (with `done`) when a batch failed. */
  discard(ids: string[]): Promise<number>;
  /** Counts jobs by state. @returns Database counts and process counters. */
  stats(): Promise<OutboxStats>;
  /** `await using outbox = await openOutbox()` stops it at scope exit. */
  [Symbol.asyncDispose](): Promise<void>;
}
