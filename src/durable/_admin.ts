// The outbox's administration: dead letters (list, redrive, discard) and
// counts by state. Public names (stats, deadLetters, redrive, discard) are
// what dashboards build on: keep them stable.
import type { Engine } from "./_engine.ts";
import { LEASE_MARGIN_SECONDS, type StoredRequest } from "./_enqueue.ts";
import {
  countByState,
  deadLetterJobs,
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

export async function deadLetters(
  engine: Engine,
  { dead }: Queues,
  limit: number,
): Promise<DeadLetter[]> {
  const jobs = await engine.run(
    "Cannot list dead letters",
    () => engine.boss.findJobs<StoredRequest>(dead, { queued: true, limit }),
  );
  return jobs.map((job) => {
    const output = (storedFailure(job.sourceOutput) ?? {}) as Partial<
      DeliveryError
    >;
    return {
      id: job.data.id,
      method: job.data.method,
      url: job.data.url,
      attempts: (job.sourceRetryCount ?? 0) + 1,
      error: {
        code: String(output.code ?? "UNKNOWN"),
        message: String(output.message ?? ""),
        ...(typeof output.status === "number" ? { status: output.status } : {}),
      },
      deadAt: job.createdOn,
    };
  });
}

/** How many dead letters one redrive without ids moves at a time (each
 * batch one transaction). */
const REDRIVE_BATCH = 1_000;

/** The dead letters of these triggers (by stored id; all when `ids` is
 * undefined, at most `limit`), locked for the rest of the transaction `db`
 * runs in: one statement however many ids. */
function deadLettersOf(
  db: Sql,
  { dead, schema }: Queues,
  ids: string[] | undefined,
  limit: number | null,
): Promise<Array<{ id: string; root: string }>> {
  if (ids?.length === 0) return Promise.resolve([]);
  return deadLetterJobs(db, schema, dead, ids ?? null, limit);
}

/** Moves dead letters back to the queue: pg-boss's `redrive()`, then the
 * jobs it re-created get the retry settings and lease their triggers were
 * stored with (pg-boss gives them its queue's), in one transaction per
 * batch, so no dispatcher fetches one before. */
export async function redrive(
  engine: Engine,
  queues: Queues,
  ids: string[] | undefined,
  leaseMargin: number = LEASE_MARGIN_SECONDS,
): Promise<number> {
  const limit = ids === undefined ? REDRIVE_BATCH : null;
  let moved = 0;
  for (;;) {
    const { found, count } = await engine.transaction(
      "Cannot redrive dead letters",
      async (db) => {
        const found = await deadLettersOf(db, queues, ids, limit);
        if (found.length === 0) return { found, count: 0 };
        const count = await engine.boss.redrive(queues.dead, {
          ids: found.map((letter) => letter.id),
          limit: found.length,
          db,
        });
        await restoreRetrySettings(
          db,
          queues.schema,
          queues.queue,
          found.map((letter) => letter.root),
          leaseMargin,
        );
        return { found, count };
      },
    );
    moved += count;
    if (limit === null || found.length < limit) return moved;
  }
}

export async function discard(
  engine: Engine,
  queues: Queues,
  ids: string[],
): Promise<number> {
  const found = await engine.run(
    "Cannot find dead letters",
    () => deadLettersOf(engine.boss.getDb() as Sql, queues, ids, null),
  );
  if (found.length === 0) return 0;
  const response = await engine.run(
    "Cannot discard dead letters",
    () => engine.boss.deleteJob(queues.dead, found.map((letter) => letter.id)),
  );
  // What was deleted (a concurrent redrive or discard may have taken some).
  return (response as { affected?: number }).affected ?? found.length;
}

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
