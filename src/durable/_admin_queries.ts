// What the dashboard and the command line read and change beyond the
// outbox's public API: per-origin counts, one trigger's rows, the last hour,
// retry-now, and a feed of outcomes for `tail`. The statements themselves
// are in ./_pgboss_sql.ts with the outbox's other reads of pg-boss's tables
// (checked at open and by tests/durable/pgboss_schema_test.ts); here their
// rows become views without secrets.
import { originOf, redactHeaders, redactText, redactUrl } from "../_redact.ts";
import * as sql from "./_pgboss_sql.ts";
import { date, storedFailure } from "./_admin.ts";
import { fromBase64 } from "../signature/_sign.ts";
import { matchable } from "./_validate.ts";

/** The symbol under which an opened outbox hands out its database. */
export const ADMIN: unique symbol = Symbol.for("fire-trigger.outbox.admin");

/** What an opened outbox gives the admin queries. */
export interface AdminHandle {
  /** Runs statements on the outbox's database (each bounded by the
   * outbox's `queryTimeout`). */
  db: sql.Sql;
  /** The pg-boss schema, validated by openOutbox(). */
  schema: string;
  /** The queue name and its dead letter queue. */
  queue: string;
  dead: string;
  /** Wakes this process's dispatcher, if it runs. */
  wake(): void;
}

/** An outbox that carries an {@linkcode AdminHandle}. */
export interface Administered {
  [ADMIN](): AdminHandle;
}

/** Counts for one target origin. */
export interface OriginCounts {
  origin: string;
  /** Waiting for a first attempt (delayed ones included). */
  queued: number;
  active: number;
  /** Failed at least once, waiting for the next attempt. */
  retrying: number;
  /** Delivered and still kept by pg-boss (7 days by default). */
  delivered: number;
  /** Dead letters not yet redriven or discarded. */
  dead: number;
  /** When the oldest waiting job (queued or retrying) was stored. */
  oldestQueued: Date | null;
}

/** Why an attempt failed, or the status of a delivery. */
export interface Outcome {
  code?: string;
  message?: string;
  status?: number;
}

/** One minute of the last hour. */
export interface Minute {
  start: Date;
  delivered: number;
  failed: number;
}

/** A stored trigger as an operator may see it: no secrets. */
export interface JobView {
  /** The trigger's id, also its `webhook-id`. */
  id: string;
  method: string;
  /** Without credentials. */
  url: string;
  origin: string;
  /** Secret values replaced. */
  headers: Array<[string, string]>;
  /** The body as text, cut to `bodyLimit` characters. */
  body: string | null;
  /** The body's size in bytes. */
  bodySize: number;
  bodyTruncated: boolean;
  bodyBinary: boolean;
  /** Whether the trigger carries its own signing secret (never shown). */
  ownSecret: boolean;
  timeout: number;
}

/** A trigger's history: what it holds, its last rows, and what waits. */
export interface History {
  /** What the last row holds. */
  job: JobView;
  /** The last {@linkcode HISTORY_ROWS} rows, oldest first. */
  rows: JobRow[];
  /** How many rows it has in all. */
  total: number;
  /** Whether any of its rows (shown or not) is a dead letter a redrive or
   * discard takes, or a job waiting for a retry. */
  waiting: { dead: boolean; retrying: boolean };
}

/** One pg-boss row of a trigger: the job, its dead letter, a redriven copy. */
export interface JobRow {
  jobId: string;
  /** `"queue"` or `"dead"` (the dead letter queue). */
  queue: "queue" | "dead";
  state: string;
  /** Attempts made by this row (for a dead letter: by the job it came from). */
  attempts: number;
  retryLimit: number;
  createdOn: Date;
  startedOn: Date | null;
  completedOn: Date | null;
  /** The next attempt, for a retrying or delayed job. */
  nextAttempt: Date | null;
  /** The last attempt's error, or the delivered status. */
  outcome: Outcome | null;
}

/** A dead letter with its stored request. */
export interface DeadView extends JobView {
  jobId: string;
  attempts: number;
  error: Outcome;
  deadAt: Date;
}

/** A waiting job that failed before. */
export interface RetryingView {
  id: string;
  method: string;
  url: string;
  attempts: number;
  nextAttempt: Date;
  error: Outcome;
}

/** A delivery outcome, for `tail`. */
export interface TailEvent {
  at: Date;
  type: "delivered" | "retry" | "dead";
  id: string;
  jobId: string;
  method: string;
  url: string;
  attempt: number;
  outcome: Outcome | null;
}

/** Queries over one opened outbox. */
export interface Admin {
  engine: string;
  queue: string;
  origins(): Promise<OriginCounts[]>;
  lastHour(): Promise<Minute[]>;
  deadLetters(
    options?: { limit?: number; offset?: number; bodyLimit?: number },
  ): Promise<{ total: number; letters: DeadView[] }>;
  retrying(options?: { limit?: number }): Promise<RetryingView[]>;
  /** A trigger's last {@linkcode HISTORY_ROWS} rows (of `total`), and
   * what the last one holds. */
  history(
    id: string,
    options?: { bodyLimit?: number },
  ): Promise<History | null>;
  retryNow(ids: string[]): Promise<number>;
  /** Those of `ids` no dead letter has (`"dead"`: what `discard` takes),
   * no dead letter a redrive moves back (`"redrivable"`: what `redrive`
   * takes), or no job waiting for a retry (`"retrying"`: what `retryNow`
   * takes). */
  unknownIds(
    ids: string[],
    among: "dead" | "redrivable" | "retrying",
  ): Promise<string[]>;
  /** Outcomes after `since`; failed attempts (stamped at their start) after
   * `retriesSince` (default `since`); oldest first (by `at`, then `jobId`),
   * at most `limit` (default 1,000), after the outcome `after` when given:
   * the last of the previous page. */
  events(
    since: Date,
    options?: { limit?: number; retriesSince?: Date; after?: TailEvent },
  ): Promise<TailEvent[]>;
  now(): Promise<Date>;
}

/**
 * The admin queries for an outbox made by `openOutbox()`.
 *
 * @throws {TypeError} For anything else.
 */
export function adminOf(outbox: object): Admin {
  const get = (outbox as Partial<Administered>)?.[ADMIN];
  if (typeof get !== "function") {
    throw new TypeError(
      "Cannot read outbox: it must be one that openOutbox() returned",
    );
  }
  const handle = get.call(outbox);
  const engine = (outbox as { engine?: string }).engine ?? "unknown";
  return new Queries(handle, engine);
}

const DEFAULT_BODY_LIMIT = 2_000;

class Queries implements Admin {
  readonly engine: string;
  readonly queue: string;
  #h: AdminHandle;

  constructor(handle: AdminHandle, engine: string) {
    this.#h = handle;
    this.engine = engine;
    this.queue = handle.queue;
  }

  async now(): Promise<Date> {
    return date(await sql.databaseNow(this.#h.db))!;
  }

  async origins(): Promise<OriginCounts[]> {
    const { db, schema, queue, dead } = this.#h;
    const rows = await sql.countByUrl(db, schema, queue, dead);
    const by = new Map<string, OriginCounts>();
    for (const row of rows) {
      const origin = originOf(String(row.url));
      let counts = by.get(origin);
      if (counts === undefined) {
        counts = {
          origin,
          queued: 0,
          active: 0,
          retrying: 0,
          delivered: 0,
          dead: 0,
          oldestQueued: null,
        };
        by.set(origin, counts);
      }
      const count = Number(row.count);
      if (row.name === this.#h.dead) {
        if (row.state === "created" || row.state === "retry") {
          counts.dead += count;
        }
        continue;
      }
      if (row.state === "created") counts.queued += count;
      else if (row.state === "retry") counts.retrying += count;
      else if (row.state === "active") counts.active += count;
      else if (row.state === "completed") counts.delivered += count;
      if (row.state === "created" || row.state === "retry") {
        const oldest = date(row.oldest);
        if (
          oldest !== null &&
          (counts.oldestQueued === null || oldest < counts.oldestQueued)
        ) counts.oldestQueued = oldest;
      }
    }
    return [...by.values()].sort((a, b) => a.origin.localeCompare(b.origin));
  }

  async lastHour(): Promise<Minute[]> {
    const { db, schema, queue } = this.#h;
    const rows = await sql.lastHourByMinute(db, schema, queue);
    const current = date(rows.find((r) => r.kind === "now")!.minute)!;
    const minutes: Minute[] = [];
    for (let ago = 59; ago >= 0; ago--) {
      minutes.push({
        start: new Date(current.getTime() - ago * 60_000),
        delivered: 0,
        failed: 0,
      });
    }
    for (const row of rows) {
      const ago = Number(row.ago);
      if (row.kind === "now" || ago < 0 || ago > 59) continue;
      const minute = minutes[59 - ago];
      if (row.kind === "delivered") minute.delivered += Number(row.count);
      else minute.failed += Number(row.count);
    }
    return minutes;
  }

  async deadLetters(
    options: { limit?: number; offset?: number; bodyLimit?: number } = {},
  ): Promise<{ total: number; letters: DeadView[] }> {
    const { db, schema, dead } = this.#h;
    const offset = options.offset ?? 0;
    const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
    const rows = await sql.deadLetterPage(
      db,
      schema,
      dead,
      options.limit ?? 100,
      offset,
      headChars(bodyLimit),
    );
    const total = rows.length === 0 && offset > 0
      ? await sql.countDeadLetters(db, schema, dead)
      : Number(rows[0]?.total ?? 0);
    return {
      total,
      letters: rows.map((row) => ({
        ...view(row.data, bodyLimit),
        ...bodyFromHead(row, bodyLimit),
        id: String(row.trigger_id),
        jobId: String(row.id),
        attempts: Number(row.source_retry_count ?? 0) + 1,
        error: outcome(row.source_output) ?? {},
        deadAt: date(row.created_on)!,
      })),
    };
  }

  async retrying(options: { limit?: number } = {}): Promise<RetryingView[]> {
    const { db, schema, queue } = this.#h;
    const rows = await sql.retryingJobs(db, schema, queue, options.limit ?? 50);
    return rows.map((row) => {
      const data = (row.data ?? {}) as Record<string, unknown>;
      return {
        id: String(row.trigger_id),
        method: String(data.method),
        url: redactUrl(String(data.url)),
        attempts: Number(row.retry_count) + 1,
        nextAttempt: date(row.start_after)!,
        error: outcome(row.output) ?? {},
      };
    });
  }

  async history(
    id: string,
    options: { bodyLimit?: number } = {},
  ): Promise<History | null> {
    if (!matchable(id)) return null;
    const { db, schema, queue, dead } = this.#h;
    const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
    const rows = await sql.rowsOfTrigger(
      db,
      schema,
      queue,
      dead,
      id,
      HISTORY_ROWS,
      headChars(bodyLimit),
    );
    if (rows.length === 0) return null;
    const last = rows[rows.length - 1];
    return {
      total: Number(last.total),
      waiting: {
        dead: last.any_dead === true,
        retrying: last.any_retrying === true,
      },
      // The id it was found by: a job another producer stored has no id of
      // ours in its data.
      job: {
        ...view(last.data, bodyLimit),
        ...bodyFromHead(last, bodyLimit),
        id,
      },
      rows: rows.map((row) => {
        const dead = row.name === this.#h.dead;
        const state = String(row.state);
        const started = date(row.started_on);
        return {
          jobId: String(row.id),
          queue: dead ? "dead" : "queue",
          state,
          attempts: dead
            ? Number(row.source_retry_count ?? 0) + 1
            : state === "created" && started === null
            ? 0
            : Number(row.retry_count) + 1,
          retryLimit: Number(row.retry_limit),
          createdOn: date(row.created_on)!,
          startedOn: started,
          completedOn: date(row.completed_on),
          nextAttempt: !dead && (state === "retry" || state === "created")
            ? date(row.start_after)
            : null,
          outcome: outcome(dead ? row.source_output : row.output),
        };
      }),
    };
  }

  async retryNow(ids: string[]): Promise<number> {
    const asked = ids.filter(matchable);
    if (asked.length === 0) return 0;
    const { db, schema, queue } = this.#h;
    const rows = await sql.retryNow(db, schema, queue, asked);
    if (rows.length > 0) this.#h.wake();
    return rows.length;
  }

  async unknownIds(
    ids: string[],
    among: "dead" | "redrivable" | "retrying",
  ): Promise<string[]> {
    const asked = ids.filter(matchable);
    const unknown = new Set(ids.filter((id) => !matchable(id)));
    if (asked.length > 0) {
      const { db, schema, queue, dead } = this.#h;
      const retrying = among === "retrying";
      for (
        const id of await sql.unknownIds(
          db,
          schema,
          retrying ? queue : dead,
          asked,
          {
            retrying,
            routableTo: among === "redrivable" ? queue : undefined,
          },
        )
      ) unknown.add(id);
    }
    return ids.filter((id) => unknown.has(id));
  }

  async events(
    since: Date,
    options: { limit?: number; retriesSince?: Date; after?: TailEvent } = {},
  ): Promise<TailEvent[]> {
    const { limit = 1000, retriesSince = since, after } = options;
    const { db, schema, queue } = this.#h;
    const rows = await sql.outcomesSince(
      db,
      schema,
      queue,
      since,
      retriesSince,
      limit,
      after,
    );
    return rows.map((row) => {
      const data = (row.data ?? {}) as Record<string, unknown>;
      return {
        at: date(row.at)!,
        type: row.state === "completed"
          ? "delivered"
          : row.state === "retry"
          ? "retry"
          : "dead",
        id: String(data.id),
        jobId: String(row.id),
        method: String(data.method),
        url: redactUrl(String(data.url)),
        attempt: Number(row.retry_count) + 1,
        outcome: outcome(row.output),
      };
    });
  }
}

/** A stored error or status, as shown: messages without credentials. */
function outcome(value: unknown): Outcome | null {
  const source = storedFailure(value);
  if (source === null) return null;
  const result: Outcome = {};
  if (typeof source.code === "string") result.code = source.code;
  if (typeof source.message === "string") {
    result.message = redactText(source.message);
  }
  if (typeof source.status === "number") result.status = source.status;
  return Object.keys(result).length === 0 ? null : result;
}

/** A stored body's bytes, or null for a string that is no base64 (another
 * producer's job): shown as binary, not a failed page. */
function bodyBytes(base64: string): Uint8Array | null {
  try {
    return fromBase64(base64);
  } catch {
    return null;
  }
}

/** The most rows of one trigger {@linkcode Admin.history} reads: the last
 * ones (a trigger redriven without end, an id reused by many). */
export const HISTORY_ROWS = 100;

/** The base64 chars that hold the first `bodyLimit` chars of a UTF-8
 * body, and one more (4 bytes a char at most): a whole number of groups,
 * at most what PostgreSQL's `left()` takes (an `int`). */
function headChars(bodyLimit: number): number {
  return Math.min(Math.ceil((4 * (bodyLimit + 1)) / 3) * 4, 2 ** 31 - 4);
}

/**
 * What {@linkcode view} shows of a body, from the first chars of its
 * base64 (`body_head`) and its size (`body_size`): a list never reads
 * whole bodies (14 dead letters of 64 MiB took 19 s and 1.6 GB to list).
 * A body cut before its end is decoded as far as it goes: one whose
 * invalid UTF-8 comes after that shows as text, truncated.
 */
function bodyFromHead(
  row: Record<string, unknown>,
  bodyLimit: number,
): Pick<JobView, "body" | "bodySize" | "bodyTruncated" | "bodyBinary"> {
  const head = row.body_head;
  if (typeof head !== "string") {
    return { body: null, bodySize: 0, bodyTruncated: false, bodyBinary: false };
  }
  const bodySize = Number(row.body_size);
  const bytes = bodyBytes(head);
  if (bytes === null) {
    return { body: null, bodySize, bodyTruncated: false, bodyBinary: true };
  }
  const cut = bytes.length < bodySize;
  let body: string;
  try {
    body = new TextDecoder("utf-8", { fatal: true }).decode(bytes, {
      stream: cut,
    });
  } catch {
    return { body: null, bodySize, bodyTruncated: false, bodyBinary: true };
  }
  if (body.length > bodyLimit) {
    return {
      body: body.slice(0, bodyLimit),
      bodySize,
      bodyTruncated: true,
      bodyBinary: false,
    };
  }
  return { body, bodySize, bodyTruncated: cut, bodyBinary: false };
}

function view(data: unknown, bodyLimit = DEFAULT_BODY_LIMIT): JobView {
  const stored = (data ?? {}) as Record<string, unknown>;
  const url = String(stored.url ?? "");
  let body: string | null = null;
  let bodySize = 0;
  let bodyTruncated = false;
  let bodyBinary = false;
  const bytes = typeof stored.body === "string"
    ? bodyBytes(stored.body)
    : undefined;
  if (bytes === null) {
    bodyBinary = true;
  } else if (bytes !== undefined) {
    bodySize = bytes.length;
    try {
      body = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      if (body.length > bodyLimit) {
        body = body.slice(0, bodyLimit);
        bodyTruncated = true;
      }
    } catch {
      body = null;
      bodyBinary = true;
    }
  }
  const headers = Array.isArray(stored.headers)
    ? (stored.headers as Array<[string, string]>).filter((h) =>
      Array.isArray(h) && h.length === 2
    ).map(([name, value]) => [String(name), String(value)] as [string, string])
    : [];
  return {
    id: String(stored.id),
    method: String(stored.method ?? "POST"),
    url: redactUrl(url),
    origin: originOf(url),
    headers: redactHeaders(headers),
    body,
    bodySize,
    bodyTruncated,
    bodyBinary,
    ownSecret: typeof stored.secret === "string",
    timeout: Number(stored.timeout ?? 0),
  };
}
