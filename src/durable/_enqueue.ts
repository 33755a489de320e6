// Storing triggers: the job's stored form, and the group-committed insert
// (concurrent outbox.trigger() calls share one multi-row INSERT in one
// transaction; each resolves only once that transaction has committed).
import { toBase64 } from "../signature/_sign.ts";
import type { PreparedRequest } from "../trigger/_request.ts";
import { answered, type Engine } from "./_engine.ts";
import { Batcher, Rejected } from "./_batch.ts";
import { OutboxError } from "./errors.ts";
import { ByteBudget } from "../_byte_budget.ts";
import { headSize, type Retry, TRIGGER } from "./_validate.ts";
import {
  type JobRetry,
  MAX_RETENTION_SECONDS,
  RETENTION_MARGIN_SECONDS,
} from "./_pgboss_sql.ts";

/** The form a trigger is stored in (the job's data). */
export interface StoredRequest {
  /** The trigger's id and `webhook-id`: the first job's id unless the
   * caller gave one (`sign.id` or a `webhook-id` header). */
  id: string;
  /** A trigger's own signing secret. */
  secret?: string;
  method: string;
  url: string;
  headers: Array<[string, string]>;
  /** The body bytes, base64. */
  body: string | null;
  /** The body's size in bytes (rows stored before it have none): lists
   * show it without reading the body. */
  bodySize?: number;
  timeout: number;
  transport?: "socket" | "fetch";
  caCerts?: string[];
  /** The caller's trace context (`traceparent`, …), when OTel is on. */
  trace?: Record<string, string>;
  /** The job id it was stored under, when not `id` (the caller gave the
   * trigger's id, or it was redriven), and the retry limit it was stored
   * with: the dispatcher tells a last attempt from them without a query
   * (`lastAttempt()`). */
  job?: string;
  retryLimit?: number;
  /** The other retry settings it was stored with, as pg-boss keeps them
   * (whole seconds): `redrive()` gives the redriven job these (pg-boss
   * would give it its queue's), with `retryLimit`. */
  retryDelay?: number;
  retryBackoff?: boolean;
  /** With `retryBackoff` only. */
  retryDelayMax?: number;
}

/** A dispatcher that stops touching its jobs loses them after this long. */
export const HEARTBEAT_SECONDS = 10;
/** The lease beyond the HTTP timeout (a backstop; heartbeats come first). */
export const LEASE_MARGIN_SECONDS = 60;
/** Not part of the API: `openOutbox({ [LEASE_MARGIN]: seconds })` gives an
 * outbox another lease margin, so a test can show what happens when a lease
 * runs out without waiting a minute for it. Module-private (not
 * `Symbol.for()`: no key in the global registry reaches it). */
export const LEASE_MARGIN: unique symbol = Symbol(
  "fire-trigger.outbox.leaseMargin",
);
/** The range of {@linkcode LEASE_MARGIN}, whole seconds. */
export const LEASE_MARGIN_RANGE = { min: 2, max: 3_600 } as const;
/** The most rows in one INSERT. */
const MAX_BATCH = 500;
/** The most body text (base64 characters) in one INSERT, beyond its first
 * row: pg-boss sends a batch's rows as one JSON text, and a batch too large
 * to store within `queryTimeout` fails every row in it with an unknown
 * outcome (288 bodies of 1 MiB in one batch did, on PostgreSQL on
 * loopback). 8 MiB holds 500 rows of bodies up to 12 KiB. */
const MAX_BATCH_BODY = 8_388_608;
/** The most triggers waiting for an INSERT (20 batches); more reject with
 * `"OVERLOADED"` at once. */
export const MAX_PENDING = 20 * MAX_BATCH;
/** The most body text (base64) waiting for an INSERT or being read (a
 * stream body counts at its stored size as it comes), all triggers together
 * (8 batches at their largest); more reject with `"OVERLOADED"` (a trigger
 * that comes when no other body is held is always taken). */
export const MAX_PENDING_BODY = 8 * MAX_BATCH_BODY;

/** Where the body text waiting to be stored, or being read, is counted. */
export function pendingBodies(): ByteBudget {
  return new ByteBudget(MAX_PENDING_BODY, true);
}

/** The error of a trigger refused because too many wait to be stored. */
export function overloaded(where: string): OutboxError {
  return new OutboxError(
    "OVERLOADED",
    `${TRIGGER}not stored: ${MAX_PENDING} triggers, or ${MAX_PENDING_BODY} bytes of their bodies, are already waiting for ${where} or being read`,
  );
}

/** One row for pg-boss's `insert()`. */
export interface JobRow {
  id: string;
  data: StoredRequest;
  retryLimit: number;
  retryDelay: number;
  retryBackoff: boolean;
  retryDelayMax?: number;
  expireInSeconds: number;
  heartbeatSeconds: number;
  retentionSeconds: number;
  /** An interval after the database's `now()`: `"<n> milliseconds"`. */
  startAfter?: string;
}

/**
 * How long pg-boss keeps a job in its queue (`retentionSeconds`), counted
 * from when it was first due: pg-boss deletes a job still waiting (created
 * or retry) after that, retries included, and `fail()` does not move it.
 * Its whole retry schedule (each attempt's lease and each delay, at their
 * longest) and {@linkcode RETENTION_MARGIN_SECONDS} more.
 */
export function retentionSeconds(
  settings: JobRetry,
  expireInSeconds: number,
): number {
  const delay = settings.retryBackoff
    ? settings.retryDelayMax ?? Math.max(settings.retryDelay, 1) * 2 ** 16
    : settings.retryDelay;
  const schedule = (settings.retryLimit + 1) * expireInSeconds +
    settings.retryLimit * delay;
  return Math.min(MAX_RETENTION_SECONDS, schedule + RETENTION_MARGIN_SECONDS);
}

/** Retry settings as pg-boss keeps them: whole seconds, rounded up (never
 * retry sooner than asked); the longest delay with backoff only. A delay of
 * 0 doubled stays 0: stored without backoff (pg-boss's backoff starts from
 * 1 s at least: 1, 2, 4 s… where none was asked). */
export function jobRetry(retry: Retry): JobRetry {
  const backoff = retry.backoff && retry.delay > 0;
  return {
    retryLimit: retry.limit,
    retryDelay: Math.ceil(retry.delay / 1000),
    retryBackoff: backoff,
    ...(backoff ? { retryDelayMax: Math.ceil(retry.maxDelay / 1000) } : {}),
  };
}

export function jobRow(
  jobId: string,
  data: StoredRequest,
  retry: Retry,
  delay: number | undefined,
  leaseMargin: number = LEASE_MARGIN_SECONDS,
): JobRow {
  const settings = jobRetry(retry);
  const expireInSeconds = Math.ceil(data.timeout / 1000) + leaseMargin;
  return {
    id: jobId,
    data: {
      ...data,
      ...(data.id === jobId ? {} : { job: jobId }),
      ...settings,
    },
    ...settings,
    expireInSeconds,
    heartbeatSeconds: HEARTBEAT_SECONDS,
    retentionSeconds: retentionSeconds(settings, expireInSeconds),
    // An interval the database adds to its own clock (pg-boss's insert:
    // `job_now() + interval`): this process's clock may be set wrong (an
    // hour behind, a `delay` of a minute was due at once).
    // Whole milliseconds, rounded up: a fraction small enough prints as
    // "1e-7", no interval PostgreSQL reads.
    ...(delay ? { startAfter: `${Math.ceil(delay)} milliseconds` } : {}),
  };
}

export function storedRequest(
  id: string,
  req: PreparedRequest,
  body: Uint8Array | null,
  options: {
    transport?: string;
    secret?: string;
    trace?: Record<string, string>;
  },
): StoredRequest {
  const stored: StoredRequest = {
    id,
    method: req.method,
    url: req.href,
    // A copy: a request's headers may be a shared, frozen list.
    headers: req.headers.map(([name, value]) => [name, value]),
    body: body === null ? null : toBase64(body),
    timeout: req.timeout,
  };
  if (body !== null) stored.bodySize = body.length;
  if (options.transport !== undefined && options.transport !== "auto") {
    stored.transport = req.transport;
  }
  if (req.caCerts !== undefined) stored.caCerts = req.caCerts;
  if (options.secret !== undefined) stored.secret = options.secret;
  if (options.trace !== undefined) stored.trace = options.trace;
  return stored;
}

/** Inserts rows in batches, one transaction per batch. A batch that fails
 * for its data (not a timeout or a lost connection) is retried row by row,
 * so only the bad row's caller rejects. A trigger's wait is checked against
 * `queryTimeout` when the batch before it ends, so it can wait up to about
 * twice that; at most {@linkcode MAX_PENDING} wait, holding at most
 * {@linkcode MAX_PENDING_BODY} of body text together with the bodies being
 * read (`bodies`, shared with the outbox's reads). */
export function groupCommit(
  engine: Engine,
  queue: string,
  queryTimeout: number,
  bodies: ByteBudget = pendingBodies(),
): Batcher<JobRow> {
  const insert = (rows: JobRow[]) =>
    engine.transaction(
      "Cannot trigger request",
      (db) => engine.boss.insert(queue, rows, { db }),
      "the write may have been stored; retry with the same id (sign.id) to avoid a duplicate",
    );
  return new Batcher<JobRow>(
    async (rows) => {
      try {
        await insert(rows);
        return rows.map(() => undefined);
      } catch (error) {
        if (rows.length === 1 || !rowsFault(error)) throw error;
      }
      const results: Array<undefined | Rejected> = [];
      let broken: unknown;
      for (const row of rows) {
        if (broken !== undefined) {
          results.push(new Rejected(broken));
          continue;
        }
        try {
          await insert([row]);
          results.push(undefined);
        } catch (error) {
          results.push(new Rejected(error));
          if (!rowsFault(error)) broken = error;
        }
      }
      return results;
    },
    MAX_BATCH,
    1,
    {
      limit: MAX_PENDING,
      deadline: queryTimeout,
      full: () => overloaded(engine.where),
      expired: () =>
        new OutboxError(
          "TIMEOUT",
          `${TRIGGER}not stored: waited ${queryTimeout} ms (queryTimeout) for ${engine.where} to take it`,
        ),
      abandoned: (error) =>
        error instanceof OutboxError && error.code === "TIMEOUT"
          ? new OutboxError(
            "TIMEOUT",
            `${TRIGGER}not stored: ${engine.where} did not answer the insert before it`,
            { cause: error },
          )
          : undefined,
    },
    {
      // The head too: up to MAX_HEAD_BYTES each, stored as text.
      of: (row) =>
        (row.data.body?.length ?? 0) +
        headSize(row.data.method, row.data.url, row.data.headers),
      max: MAX_BATCH_BODY,
      waiting: bodies,
    },
  );
}

/** SQLSTATE classes of failures that are not the rows' fault: connection
 * exception, the transaction's state (25P03: ended idle in it),
 * insufficient resources, operator intervention, system error. */
const NOT_THE_ROWS = /^(08|25|53|57|58)/;

/** Whether a failed insert may have failed for one row's data: PostgreSQL
 * answered with an error, not a timeout or a lost connection. */
function rowsFault(error: unknown): boolean {
  if (!(error instanceof OutboxError) || error.code !== "DATABASE") {
    return false;
  }
  const cause = error.cause as { code?: string } | undefined;
  return answered(cause) && !NOT_THE_ROWS.test(cause!.code!);
}
