// Every statement the outbox runs on pg-boss's own tables, in one place.
// pg-boss's public API covers the rest; these reach past it, so they depend
// on its schema (checked at open and by tests/durable/pgboss_schema_test.ts).

/** Something that runs one statement: pg-boss's `Db`, a transaction. */
export interface Sql {
  executeSql(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: Array<Record<string, unknown>> }>;
}

/** The tables, columns and job states these statements rely on. */
export const RELIED_ON = {
  table: "job",
  columns: ["name", "id", "state", "retry_count", "retry_limit"],
  states: ["created", "retry", "active"],
} as const;

/** Names of what {@linkcode RELIED_ON} lists that the schema lacks; empty
 * when pg-boss's schema still has everything. */
export async function missingFromSchema(
  db: Sql,
  schema: string,
): Promise<string[]> {
  const { rows: columns } = await db.executeSql(
    `SELECT column_name::text AS name FROM information_schema.columns
     WHERE table_schema = $1 AND table_name = $2`,
    [schema, RELIED_ON.table],
  );
  const { rows: states } = await db.executeSql(
    `SELECT e.enumlabel::text AS name FROM pg_enum e
     JOIN pg_type t ON t.oid = e.enumtypid
     JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE n.nspname = $1 AND t.typname = 'job_state'`,
    [schema],
  );
  const haveColumns = new Set(columns.map((row) => row.name));
  const haveStates = new Set(states.map((row) => row.name));
  return [
    ...RELIED_ON.columns.filter((c) => !haveColumns.has(c)).map((c) =>
      `column ${schema}.${RELIED_ON.table}.${c}`
    ),
    ...RELIED_ON.states.filter((s) => !haveStates.has(s)).map((s) =>
      `job state "${s}"`
    ),
  ];
}

/** Leaves active jobs no retries, so pg-boss's `fail()` (in the same
 * transaction) dead-letters them. Fenced to the attempt that was fetched:
 * a job another dispatcher took over is left alone. */
export function exhaustRetries(
  db: Sql,
  schema: string,
  queue: string,
  jobs: ReadonlyArray<{ id: string; retryCount: number }>,
): Promise<unknown> {
  return db.executeSql(
    `UPDATE ${schema}.job AS j SET retry_limit = j.retry_count
     FROM unnest($2::uuid[], $3::int[]) AS f(id, retry_count)
     WHERE j.name = $1 AND j.id = f.id AND j.retry_count = f.retry_count
       AND j.state = 'active'`,
    [queue, jobs.map((j) => j.id), jobs.map((j) => j.retryCount)],
  );
}

/** Which of these active jobs have no retries left (a `fail()` in the same
 * transaction dead-letters them). */
export async function withoutRetries(
  db: Sql,
  schema: string,
  queue: string,
  ids: readonly string[],
): Promise<Set<string>> {
  const { rows } = await db.executeSql(
    `SELECT id::text AS id FROM ${schema}.job
     WHERE name = $1 AND id = ANY($2::uuid[]) AND retry_count >= retry_limit`,
    [queue, ids],
  );
  return new Set(rows.map((row) => String(row.id)));
}

/** Job counts by queue and state for two queues. */
export async function countByState(
  db: Sql,
  schema: string,
  queues: [string, string],
): Promise<Array<{ name: string; state: string; count: number }>> {
  const { rows } = await db.executeSql(
    `SELECT name, state::text AS state, count(*)::int AS count
     FROM ${schema}.job WHERE name = $1 OR name = $2
     GROUP BY name, state`,
    queues,
  );
  return rows as Array<{ name: string; state: string; count: number }>;
}
