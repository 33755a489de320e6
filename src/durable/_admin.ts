// The outbox's administration: dead letters (list, redrive, discard) and
// counts by state. Public names (stats, deadLetters, redrive, discard) are
// what dashboards build on: keep them stable.
import type { Engine } from "./_engine.ts";
import {
  jobRetry,
  LEASE_MARGIN_SECONDS,
  type StoredRequest,
} from "./_enqueue.ts";
import { OutboxError } from "./errors.ts";
import { matchable, type Retry } from "./_validate.ts";
import {
  countByState,
  deadLetterJobs,
  deadLetterPage,
  restoreRetrySettings,
  type Sql,
} from "./_pgboss_sql.ts";
import type { DeadLetter, DeliveryError, OutboxStats } from "./types.ts";

export interface Queues {
  queue: string;
  dead: string;
  schema: string;
}

/** A job's stored failure, with pg-boss's own (expiry, a lost heartbeat:
 * `{ value: { message } }`) given the code `EXPIRED`. */
export function storedFailure(value: unknown): Record<string, unknown> | null {
  if (typeof value !== "object" || value === null) return null;
  const source = value as Record<string, unknown>;
  if (
    source.code === undefined && typeof source.value === "object" &&
    source.value !== null
  ) {
    return { code: "EXPIRED", ...source.value as Record<string, unknown> };
  }
  return source;
}

/** A timestamp column as a Date (PGlite and pg give Dates; a string is
 * parsed); null for none. */
export function date(value: unknown): Date | null {
  if (value === null || value === undefined) return null;
  return value instanceof Date ? value : new Date(String(value));
}

export async function deadLetters(
  engine: Engine,
  { dead, schema }: Queues,
  limit: number,
): Promise<DeadLetter[]> {
  // Without their bodies (pg-boss's findJobs() read every one whole: 903
  // MiB for 14 dead letters of 32 MiB, a reviewer measured).
  const rows = await engine.run(
    "Cannot list dead letters",
    () =>
      deadLetterPage(engine.boss.getDb() as Sql, schema, dead, limit, 0, null),
  );
  return rows.map((row) => {
    const output = (storedFailure(row.source_output) ?? {}) as Partial<
      DeliveryError
    >;
    // A job no outbox stored (another producer's, dead-lettered INVALID)
    // has no stored request: its job's id, as its event said.
    const data = (typeof row.data === "object" ? row.data : null) as
      | Partial<StoredRequest>
      | null;
    return {
      id: String(row.trigger_id),
      method: String(data?.method ?? ""),
      url: String(data?.url ?? ""),
      attempts: Number(row.source_retry_count ?? 0) + 1,
      error: {
        code: String(output.code ?? "UNKNOWN"),
        message: String(output.message ?? ""),
        ...(typeof output.status === "number" ? { status: output.status } : {}),
      },
      deadAt: date(row.created_on)!,
    };
  });
}

/** How many dead letters one redrive without ids moves at a time, and how
 * many ids one redrive or discard by id takes at a time (each batch one
 * transaction, so each within `queryTimeout`). */
export const REDRIVE_BATCH = 1_000;

/** The dead letters of these triggers (by stored id; all when `ids` is
 * undefined, at most `limit`), locked for the rest of the transaction `db`
 * runs in: one statement however many ids. With `routableTo`, only those
 * pg-boss's `redrive()` moves back to that queue. */
function deadLettersOf(
  db: Sql,
  { dead, schema }: Queues,
  select: { ids?: string[]; limit: number | null; routableTo?: string },
): Promise<Array<{ id: string; root: string | null }>> {
  const ids = select.ids?.filter(matchable);
  if (ids?.length === 0) return Promise.resolve([]);
  return deadLetterJobs(db, schema, dead, { ...select, ids: ids ?? null });
}

/** From how many dead letters a batch redrives them without nested loops. */
const NO_NESTED_LOOPS = 100;

/** What a batch whose COMMIT got no answer means. */
const UNKNOWN_BATCH =
  "this batch may have been applied (not counted in done); call again: nothing is moved or deleted twice";

/** One batch: the dead letters it found and how many it moved or deleted. */
type Step = (
  select: { ids?: string[]; limit: number | null },
) => Promise<{ found: number; count: number }>;

/** Runs `step` batch by batch, a turn of the event loop between them
 * (PGlite runs in this thread: a redrive of 20,000 held it 3 s). By id:
 * the distinct ids, `batch` at a time. Without: `batch` dead letters at a
 * time until one finds fewer or moves none. Before each batch, `closing()`
 * (an error to stop with). A batch that fails rejects with its error,
 * `done` saying how many the batches before it did. */
async function inBatches(
  verb: string,
  ids: string[] | undefined,
  batch: number,
  step: Step,
  closing: () => OutboxError | undefined,
): Promise<number> {
  const asked = ids === undefined
    ? undefined
    : [...new Set(ids.filter(matchable))];
  let done = 0;
  for (let start = 0;; start += batch) {
    if (asked !== undefined && start >= asked.length) return done;
    let result;
    try {
      if (start > 0) await new Promise((resolve) => setTimeout(resolve, 0));
      // Closing (before a batch): CLOSED, not pg-boss's "not opened".
      const closed = closing();
      if (closed !== undefined) throw closed;
      result = await step(
        asked === undefined
          ? { limit: batch }
          : { ids: asked.slice(start, start + batch), limit: null },
      );
    } catch (error) {
      throw partway(error, verb, done);
    }
    done += result.count;
    if (asked === undefined && (result.found < batch || result.count === 0)) {
      return done;
    }
  }
}

/** A batch's failure with `done`, the count its batches before committed;
 * the message says it when there were any. */
function partway(error: unknown, verb: string, done: number): unknown {
  if (!(error instanceof OutboxError)) return error;
  const before = done === 0
    ? ""
    : ` (${done} ${verb} by the batches before it: those stay ${verb}; call again for the rest)`;
  return new OutboxError(error.code, `${error.message}${before}`, {
    cause: error.cause,
    done,
  });
}

/** Moves dead letters back to the queue: pg-boss's `redrive()`, then the
 * jobs it re-created get the retry settings and lease their triggers were
 * stored with (pg-boss gives them its queue's; what a row stored before the
 * form carried it lacks: `fallback`'s, the redriving outbox's), in one
 * transaction per batch of `batch`, so no dispatcher fetches one before.
 * Only dead letters pg-boss moves back to this queue are taken (see
 * `deadLetterJobs()`); a batch whose re-created jobs did not all get their
 * settings is rolled back (`"DATABASE"`; `done` and the message say how
 * many earlier batches moved: those stay moved). */
export function redrive(
  engine: Engine,
  queues: Queues,
  options: {
    ids?: string[];
    fallback: Retry;
    /** Whole seconds. @default {LEASE_MARGIN_SECONDS} */
    leaseMargin?: number;
    /** @default {REDRIVE_BATCH} */
    batch?: number;
    /** The error to stop with between batches (the outbox is closing). */
    closing?: () => OutboxError | undefined;
  },
): Promise<number> {
  const { leaseMargin = LEASE_MARGIN_SECONDS } = options;
  const what = "Cannot redrive dead letters";
  const step: Step = (select) =>
    engine.transaction(what, async (db) => {
      const found = await deadLettersOf(db, queues, {
        ...select,
        routableTo: queues.queue,
      });
      if (found.length === 0) return { found: 0, count: 0 };
      // pg-boss's redrive statement joins the job table to itself. Planned
      // on statistics from before a burst of dead letters (one row
      // expected: autoanalyze waits for a tenth of a table pg-boss shares
      // among all queues to change), nested loops made it quadratic: 9–15 s
      // a batch over 50,000 dead letters, TIMEOUT; with hash joins 0.1 s.
      // (Small batches are left to the planner: a full scan of a big dead
      // letter queue would cost more than a few index lookups.)
      if (found.length >= NO_NESTED_LOOPS) {
        await db.executeSql("SET LOCAL enable_nestloop = off");
      }
      const count = await engine.boss.redrive(queues.dead, {
        ids: found.map((letter) => letter.id),
        limit: found.length,
        db,
      });
      const restored = await restoreRetrySettings(db, queues.schema, {
        queue: queues.queue,
        roots: found.map((letter) => letter.root!),
        leaseMarginSeconds: leaseMargin,
        fallback: jobRetry(options.fallback),
      });
      // More than moved is a waiting job of the same chain, given the same
      // settings; fewer, a re-created job left with the queue's.
      if (restored < count) {
        throw new OutboxError(
          "DATABASE",
          `${what}: pg-boss re-created ${count} jobs in ${engine.where} but ${restored} could be given their stored retry settings; this batch was rolled back (pg-boss's redrive() changed?)`,
        );
      }
      return { found: found.length, count };
    }, UNKNOWN_BATCH);
  return inBatches(
    "redriven",
    options.ids,
    options.batch ?? REDRIVE_BATCH,
    step,
    options.closing ?? (() => undefined),
  );
}

/** Deletes the dead letters of these triggers, `batch` ids per
 * transaction (a failure's `done`: how many the batches before deleted). */
export function discard(
  engine: Engine,
  queues: Queues,
  ids: string[],
  { batch = REDRIVE_BATCH, closing = () => undefined }: {
    /** @default {REDRIVE_BATCH} */
    batch?: number;
    /** The error to stop with between batches (the outbox is closing). */
    closing?: () => OutboxError | undefined;
  } = {},
): Promise<number> {
  const step: Step = (select) =>
    engine.transaction("Cannot discard dead letters", async (db) => {
      const found = await deadLettersOf(db, queues, select);
      if (found.length === 0) return { found: 0, count: 0 };
      const response = await engine.boss.deleteJob(
        queues.dead,
        found.map((letter) => letter.id),
        { db: db as unknown as NonNullable<DeleteOptions>["db"] },
      );
      // What was deleted (a concurrent redrive or discard may have taken
      // some).
      const affected = (response as { affected?: number }).affected;
      return { found: found.length, count: affected ?? found.length };
    }, UNKNOWN_BATCH);
  return inBatches("discarded", ids, batch, step, closing);
}

/** pg-boss's options for `deleteJob()`. */
type DeleteOptions = Parameters<Engine["boss"]["deleteJob"]>[2];

export async function stats(
  engine: Engine,
  { queue, dead, schema }: Queues,
  process: Omit<OutboxStats, "queued" | "active" | "dead">,
): Promise<OutboxStats> {
  const rows = await engine.run(
    "Cannot count jobs",
    () => countByState(engine.boss.getDb() as Sql, schema, [queue, dead]),
  );
  const result: OutboxStats = { queued: 0, active: 0, dead: 0, ...process };
  for (const { name, state, count } of rows) {
    if (name === dead) {
      if (state === "created" || state === "retry") result.dead += count;
    } else if (state === "created" || state === "retry") {
      result.queued += count;
    } else if (state === "active") result.active += count;
  }
  return result;
}
