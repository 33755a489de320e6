// The outbox's administration: dead letters (list, redrive, discard) and
// counts by state. Public names (stats, deadLetters, redrive, discard) are
// what dashboards build on: keep them stable.
import type { Engine } from "./_engine.ts";
import type { StoredRequest } from "./_enqueue.ts";
import { countByState, deadLetterJobIds, type Sql } from "./_pgboss_sql.ts";
import type { DeadLetter, DeliveryError, OutboxStats } from "./types.ts";

export interface Queues {
  queue: string;
  dead: string;
  schema: string;
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
    const output = (job.sourceOutput ?? {}) as Partial<DeliveryError>;
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

/** The dead-letter jobs' own ids for trigger ids: one statement. */
function deadIds(
  engine: Engine,
  { dead, schema }: Queues,
  ids: string[],
): Promise<string[]> {
  return engine.run(
    "Cannot find dead letters",
    () => deadLetterJobIds(engine.boss.getDb() as Sql, schema, dead, ids),
  );
}

export async function redrive(
  engine: Engine,
  queues: Queues,
  ids: string[] | undefined,
): Promise<number> {
  const what = "Cannot redrive dead letters";
  if (ids === undefined) {
    let moved = 0;
    for (;;) {
      const count = await engine.run(
        what,
        () => engine.boss.redrive(queues.dead, { limit: 1000 }),
      );
      moved += count;
      if (count < 1000) return moved;
    }
  }
  if (ids.length === 0) return 0;
  const found = await deadIds(engine, queues, ids);
  if (found.length === 0) return 0;
  return await engine.run(
    what,
    () => engine.boss.redrive(queues.dead, { ids: found, limit: found.length }),
  );
}

export async function discard(
  engine: Engine,
  queues: Queues,
  ids: string[],
): Promise<number> {
  if (ids.length === 0) return 0;
  const found = await deadIds(engine, queues, ids);
  if (found.length === 0) return 0;
  const response = await engine.run(
    "Cannot discard dead letters",
    () => engine.boss.deleteJob(queues.dead, found),
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
