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

/** The tables, columns and job states these statements rely on (the
 * dispatcher's and the admin queries' together). */
export const RELIED_ON = {
  table: "job",
  columns: [
    "name",
    "id",
    "data",
    "state",
    "retry_count",
    "retry_limit",
    "retry_delay",
    "retry_backoff",
    "retry_delay_max",
    "expire_seconds",
    "start_after",
    "created_on",
    "started_on",
    "heartbeat_on",
    "completed_on",
    "output",
    "source_output",
    "source_retry_count",
    "source_id",
    "source_root_id",
    "keep_until",
  ],
  states: ["created", "retry", "active", "completed", "failed"],
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

/** Whether `schema` exists and holds pg-boss (its `version` table), and
 * the schemas that look like pg-boss installs (for a message naming the
 * nearest ones there are; at most 10,000). Parameters only: `schema` may be
 * a typo. */
export async function findSchema(
  db: Sql,
  schema: string,
): Promise<{ exists: boolean; installed: boolean; installs: string[] }> {
  const { rows: [found] } = await db.executeSql(
    `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS exists,
       to_regclass(quote_ident($1) || '.version') IS NOT NULL AS installed`,
    [schema],
  );
  const { rows: installs } = await db.executeSql(
    `SELECT table_schema::text AS name FROM information_schema.tables
     WHERE table_name IN ('version', 'queue', 'job')
     GROUP BY table_schema HAVING count(DISTINCT table_name) = 3
     ORDER BY 1 LIMIT 10000`,
  );
  return {
    exists: found?.exists === true,
    installed: found?.installed === true,
    installs: installs.map((row) => String(row.name)),
  };
}

/** The version in pg-boss's `version` table in `schema`, `null` when there
 * is none (nothing installed yet). Needs no started pg-boss: read before
 * `start()`, which writes to the schema it opens. */
export async function installedVersion(
  db: Sql,
  schema: string,
): Promise<number | null> {
  const { rows: [found] } = await db.executeSql(
    `SELECT to_regclass(quote_ident($1) || '.version') IS NOT NULL AS installed`,
    [schema],
  );
  if (found?.installed !== true) return null;
  // `schema` is checked (lower-case letters, digits, "_") at open.
  const { rows: [row] } = await db.executeSql(
    `SELECT version::int AS version FROM ${schema}.version`,
  );
  return row === undefined ? null : Number(row.version);
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
 * transaction dead-letters them). Fenced to the attempt that was fetched.
 * For the jobs whose stored form cannot say (a redriven dead letter, a row
 * stored before the form carried its retry limit). */
export async function withoutRetries(
  db: Sql,
  schema: string,
  queue: string,
  jobs: ReadonlyArray<{ id: string; retryCount: number }>,
): Promise<Set<string>> {
  const { rows } = await db.executeSql(
    `SELECT j.id::text AS id FROM ${schema}.job AS j
     JOIN unnest($2::uuid[], $3::int[]) AS f(id, retry_count)
       ON j.id = f.id AND j.retry_count = f.retry_count
     WHERE j.name = $1 AND j.state = 'active'
       AND j.retry_count >= j.retry_limit`,
    [queue, jobs.map((j) => j.id), jobs.map((j) => j.retryCount)],
  );
  return new Set(rows.map((row) => String(row.id)));
}

/**
 * Holds retries back until the wait their target asked for (`Retry-After`,
 * `ms` each) has passed, when pg-boss's own delay ends sooner: no later
 * than the job's longest delay (`retry_delay_max`, else `capSeconds`: a job
 * without backoff, or a row from before it was stored), so a server asking
 * for days does not park a trigger for them. In the transaction of
 * pg-boss's `fail()`, fenced to the retry that `fail()` made of this
 * attempt (its `retry_count` moves on only when the retry is fetched;
 * pg-boss's own clock, `job_now()`).
 */
export async function postponeRetries(
  db: Sql,
  schema: string,
  queue: string,
  jobs: ReadonlyArray<{ id: string; retryCount: number; ms: number }>,
  capSeconds: number,
): Promise<void> {
  await db.executeSql(
    `UPDATE ${schema}.job AS j
     SET start_after = greatest(j.start_after, ${schema}.job_now() +
       make_interval(secs =>
       least(f.ms, coalesce(j.retry_delay_max, $5::int) * 1000::bigint)
         / 1000.0))
     FROM unnest($2::uuid[], $3::int[], $4::bigint[]) AS f(id, retry_count, ms)
     WHERE j.id = f.id AND j.name = $1 AND j.state = 'retry'
       AND j.retry_count = f.retry_count`,
    [
      queue,
      jobs.map((j) => j.id),
      jobs.map((j) => j.retryCount),
      jobs.map((j) => Math.min(Math.ceil(j.ms), Number.MAX_SAFE_INTEGER)),
      capSeconds,
    ],
  );
}

/** A dead letter's row that pg-boss's `redrive()` moves back to the queue
 * named by `$4` (any, when `$4` is null): see {@linkcode deadLetterJobs}.
 * One text for the redrive and the command line's check of its ids. */
function routableTo(schema: string): string {
  return `($4::text IS NULL OR (source_name = $4
    AND coalesce(source_root_id, source_id) IS NOT NULL
    AND EXISTS (SELECT 1 FROM ${schema}.queue q WHERE q.name = $4)))`;
}

/** Dead letters waiting in `dead`, oldest first, locked for the rest of
 * the transaction (ones another transaction holds are skipped): those of
 * these triggers (by stored id) in one statement however many ids, or all
 * when `ids` is `null`; at most `limit` (`null`: no limit). Unknown ids
 * (and ones already redriven or discarded) match nothing, and an id given
 * twice matches once. Each with `root`, the first job of its chain, which
 * pg-boss's `redrive()` gives the job it re-creates (`source_root_id`).
 *
 * With `routableTo`, only the dead letters pg-boss's `redrive()` moves back
 * to that queue and whose new job can be found afterwards: from that queue
 * (`source_name`), which exists, with a chain (`root` not null). Others (a
 * row dead-lettered by an older pg-boss without them) are left where they
 * are, to be discarded; without this filter a batch of them would be
 * picked again on every call and move nothing. */
export async function deadLetterJobs(
  db: Sql,
  schema: string,
  dead: string,
  select: {
    ids: readonly string[] | null;
    limit: number | null;
    routableTo?: string;
  },
): Promise<Array<{ id: string; root: string | null }>> {
  const { rows } = await db.executeSql(
    `SELECT id::text AS id, coalesce(source_root_id, source_id)::text AS root
     FROM ${schema}.job AS j
     WHERE name = $1 AND state::text IN ('created', 'retry')
       AND ($2::text[] IS NULL OR
         coalesce(data->>'id', source_id::text) = ANY($2::text[]))
       AND ${routableTo(schema)}
     ORDER BY created_on, id LIMIT $3
     FOR UPDATE OF j SKIP LOCKED`,
    [dead, select.ids, select.limit, select.routableTo ?? null],
  );
  return rows.map((row) => ({
    id: String(row.id),
    root: row.root === null ? null : String(row.root),
  }));
}

/** Retry settings as pg-boss keeps them (whole seconds). */
export interface JobRetry {
  retryLimit: number;
  retryDelay: number;
  retryBackoff: boolean;
  /** With `retryBackoff` only. */
  retryDelayMax?: number;
}

/** A job waits at least this long past its whole retry schedule before
 * pg-boss may delete it undelivered (a dispatcher stopped for a while); so
 * does a dead letter in its queue, for an operator to redrive it: 365 days.
 * pg-boss's own default is 14 days, retries included. */
export const RETENTION_MARGIN_SECONDS = 365 * 86_400;
/** pg-boss keeps retention in a PostgreSQL `int`. */
export const MAX_RETENTION_SECONDS = 2 ** 31 - 1;

/** SQL for how long a job is kept, in seconds, as `retentionSeconds()`
 * (_enqueue.ts) computes it for a trigger: every attempt's lease
 * (`expire`) and every delay at their longest (pg-boss's backoff tops out
 * at `retry_delay_max`, or its delay × 2^16), and `margin` (a parameter)
 * more, at most what pg-boss's `int` holds. The arguments are SQL
 * expressions of the row's settings. */
function keptSeconds(
  s: {
    limit: string;
    expire: string;
    backoff: string;
    delay: string;
    max: string;
  },
  margin: string,
): string {
  return `least(2147483647,
         (${s.limit} + 1)::numeric * ${s.expire}
         + ${s.limit}::numeric * (CASE WHEN ${s.backoff}
             THEN coalesce(${s.max}, greatest(${s.delay}, 1)::numeric * 65536)
             ELSE ${s.delay} END)
         + ${margin})`;
}

/**
 * Gives up to `batch` rows an earlier release stored in `queue` and `dead`
 * (waiting or retrying jobs, dead letters) the retention the outbox gives
 * them now: pg-boss fixes `keep_until` when it writes a row (14 days by
 * default) and never moves it, so a queue's new retention reaches none of
 * them. A waiting job keeps its whole schedule and
 * {@linkcode RETENTION_MARGIN_SECONDS} from when it is due (as
 * {@linkcode restoreRetrySettings} counts it); a dead letter the margin from
 * when it was made. Only rows short of that, never shortened. The number
 * changed: fewer than `batch`, and none are left.
 */
export async function extendRetention(
  db: Sql,
  schema: string,
  queue: string,
  dead: string,
  batch: number,
): Promise<number> {
  const target = `CASE WHEN j.name = $2 THEN j.created_on + $3 * interval '1s'
       ELSE j.start_after + ${
    keptSeconds({
      limit: "j.retry_limit",
      expire: "j.expire_seconds",
      backoff: "j.retry_backoff",
      delay: "j.retry_delay",
      max: "j.retry_delay_max",
    }, "$3")
  } * interval '1s' END`;
  const { rows } = await db.executeSql(
    `WITH short AS (
       SELECT j.id, j.name, ${target} AS keep FROM ${schema}.job AS j
       WHERE (j.name = $1 OR j.name = $2) AND j.state < 'active'
         AND j.keep_until < ${target}
       LIMIT $4)
     , done AS (
       UPDATE ${schema}.job AS j SET keep_until = short.keep FROM short
       WHERE j.name = short.name AND j.id = short.id
       RETURNING 1)
     SELECT count(*)::int AS n FROM done`,
    [queue, dead, RETENTION_MARGIN_SECONDS, batch],
  );
  return Number(rows[0]?.n ?? 0);
}

/** A redriven job's lease in `restoreRetrySettings()`: its trigger's
 * timeout and the lease margin ($3), or what it has. */
const EXPIRE =
  `coalesce(ceil((j.data->>'timeout')::numeric / 1000)::int + $3, j.expire_seconds)`;

/** A redriven job's retry settings in `restoreRetrySettings()`: its
 * trigger's (stored in `data`), else the redriving outbox's ($4–$7). Every
 * SET expression reads the row as it was, so these read the stored form. */
const LIMIT = `coalesce((j.data->>'retryLimit')::int, $4)`;
const DELAY = `coalesce((j.data->>'retryDelay')::int, $5)`;
// A delay of 0 never backs off (pg-boss would start from 1 s): as jobRetry()
// stores it now, and for rows stored before it did.
const BACKOFF =
  `(coalesce((j.data->>'retryBackoff')::boolean, $6) AND ${DELAY} > 0)`;
const DELAY_MAX =
  `CASE WHEN ${BACKOFF} THEN coalesce((j.data->>'retryDelayMax')::int, $7) END`;

/** Gives the jobs pg-boss's `redrive()` just re-created in `queue` (in
 * this transaction: not yet seen by anyone, never attempted) from the
 * dead letters of these chains (`roots`) the retry settings and lease their
 * triggers were stored with (`data`: see `StoredRequest`), not the queue's.
 * A setting a row stored before the form carried it lacks is `fallback`'s
 * (the redriving outbox's own: pg-boss's queue default, no delay, would
 * retry faster than any trigger asked). Their stored form names the new
 * job (`data.job`) and carries the settings it now has, so the dispatcher
 * tells their last attempt without a query. The jobs changed. */
export async function restoreRetrySettings(
  db: Sql,
  schema: string,
  redriven: {
    queue: string;
    roots: readonly string[];
    leaseMarginSeconds: number;
    fallback: JobRetry;
  },
): Promise<number> {
  const { queue, roots, leaseMarginSeconds, fallback } = redriven;
  // One table, no join: a join of the job table to itself, planned on the
  // statistics from before a burst of dead letters (one row expected),
  // rescanned the queue for every row (2.35 s for 1,000 of 3,000).
  const { rows } = await db.executeSql(
    `UPDATE ${schema}.job AS j SET
       retry_limit = ${LIMIT},
       retry_delay = ${DELAY},
       retry_backoff = ${BACKOFF},
       retry_delay_max = ${DELAY_MAX},
       expire_seconds = ${EXPIRE},
       -- As jobRow() gives a trigger (retentionSeconds()): its whole
       -- schedule and a margin, not the queue's retention.
       keep_until = j.start_after + ${
      keptSeconds({
        limit: LIMIT,
        expire: EXPIRE,
        backoff: BACKOFF,
        delay: DELAY,
        max: DELAY_MAX,
      }, "$8")
    } * interval '1s',
       data = j.data || jsonb_strip_nulls(jsonb_build_object(
         'job', j.id::text, 'retryLimit', ${LIMIT},
         'retryDelay', ${DELAY}, 'retryBackoff', ${BACKOFF},
         'retryDelayMax', ${DELAY_MAX}))
     WHERE j.name = $1 AND j.source_root_id = ANY($2::uuid[])
       AND j.state = 'created' AND j.retry_count = 0 AND j.started_on IS NULL
     RETURNING j.id`,
    [
      queue,
      roots,
      leaseMarginSeconds,
      fallback.retryLimit,
      fallback.retryDelay,
      fallback.retryBackoff,
      fallback.retryDelayMax ?? null,
      RETENTION_MARGIN_SECONDS,
    ],
  );
  return rows.length;
}

/** Puts fetched jobs that were never attempted (or whose attempt a stop
 * aborted) back to waiting, without using up a retry; the ids released.
 * Fenced to the attempt that was fetched: a job that expired or that
 * another dispatcher took over is left alone. */
export async function releaseJobs(
  db: Sql,
  schema: string,
  queue: string,
  jobs: ReadonlyArray<{ id: string; retryCount: number }>,
): Promise<Set<string>> {
  const { rows } = await db.executeSql(
    `UPDATE ${schema}.job AS j
     SET state = 'created', started_on = NULL, heartbeat_on = NULL
     FROM unnest($2::uuid[], $3::int[]) AS f(id, retry_count)
     WHERE j.name = $1 AND j.id = f.id AND j.retry_count = f.retry_count
       AND j.state = 'active'
     RETURNING j.id::text AS id`,
    [queue, jobs.map((j) => j.id), jobs.map((j) => j.retryCount)],
  );
  return new Set(rows.map((row) => String(row.id)));
}

/** Job counts by queue and state for two queues, every state but completed
 * (the delivered rows pg-boss keeps for days, never counted). */
export async function countByState(
  db: Sql,
  schema: string,
  queues: [string, string],
): Promise<Array<{ name: string; state: string; count: number }>> {
  const { rows } = await db.executeSql(
    `SELECT name, state::text AS state, count(*)::int AS count
     FROM ${schema}.job
     WHERE (name = $1 OR name = $2) AND state <> 'completed'
     GROUP BY name, state`,
    queues,
  );
  return rows as Array<{ name: string; state: string; count: number }>;
}

// The dashboard's and the command line's reads (src/durable/_admin_queries.ts
// turns their rows into views). pg-boss 12 keeps one row per job (updated on
// each failure); dead letters are copies in `<queue>_dead`.

type Rows = Promise<Array<Record<string, unknown>>>;

/** The database's clock. */
export async function databaseNow(db: Sql): Promise<unknown> {
  const { rows } = await db.executeSql(`SELECT now() AS now`);
  return rows[0].now;
}

/** Waiting, active and delivered jobs of `queue`, and dead letters in
 * `dead`, counted by URL, queue and state, with the oldest `created_on`. */
export async function countByUrl(
  db: Sql,
  schema: string,
  queue: string,
  dead: string,
): Rows {
  const { rows } = await db.executeSql(
    `SELECT data->>'url' AS url, name, state::text AS state,
       count(*)::int AS count, min(created_on) AS oldest
     FROM ${schema}.job WHERE (name = $1 OR name = $2)
       AND state::text IN ('created', 'retry', 'active', 'completed')
     GROUP BY 1, 2, 3`,
    [queue, dead],
  );
  return rows;
}

/** Deliveries (at `completed_on`) and failed attempts (a retrying job at
 * the start of its latest attempt, a failed one at `completed_on`) per
 * minute of the last hour, as `ago` minutes before `minute` (the current
 * one, also in a row of kind "now"). */
export async function lastHourByMinute(
  db: Sql,
  schema: string,
  queue: string,
): Rows {
  const { rows } = await db.executeSql(
    `WITH now AS (SELECT date_trunc('minute', now()) AS m)
     SELECT floor(extract(epoch FROM ((SELECT m FROM now) - date_trunc('minute', t))) / 60)::int AS ago,
       kind, count(*)::int AS count, (SELECT m FROM now) AS minute
     FROM (
       SELECT completed_on AS t, 'delivered' AS kind FROM ${schema}.job
         WHERE name = $1 AND state = 'completed'
           AND completed_on >= date_trunc('minute', now()) - interval '59 minutes'
       UNION ALL
       SELECT started_on, 'failed' FROM ${schema}.job
         WHERE name = $1 AND state = 'retry'
           AND started_on >= date_trunc('minute', now()) - interval '59 minutes'
       UNION ALL
       SELECT completed_on, 'failed' FROM ${schema}.job
         WHERE name = $1 AND state = 'failed'
           AND completed_on >= date_trunc('minute', now()) - interval '59 minutes'
     ) AS e GROUP BY 1, 2
     UNION ALL SELECT -1, 'now', 0, (SELECT m FROM now)`,
    [queue],
  );
  return rows;
}

/** A row's stored form without its body (`data` as it is when it is no
 * object: another producer's JSON scalar, which `- 'body'` refuses). */
const WITHOUT_BODY =
  `CASE WHEN jsonb_typeof(data) = 'object' THEN data - 'body' ELSE data END`;

/** The first `chars` (a parameter) of a row's base64 body; null for a
 * body that is no string (another producer's job). */
const BODY_HEAD = (chars: string) =>
  `CASE WHEN jsonb_typeof(data->'body') = 'string'
    THEN left(data->>'body', ${chars}) END`;

/** A row's body size in bytes: its `bodySize`, or what its base64 body
 * decodes to (rows stored before `bodySize` was). */
const BODY_SIZE = `CASE WHEN jsonb_typeof(data->'bodySize') = 'number'
    THEN floor((data->>'bodySize')::numeric)::bigint
    WHEN jsonb_typeof(data->'body') = 'string'
    THEN octet_length(data->>'body') / 4 * 3 - CASE
      WHEN data->>'body' LIKE '%==' THEN 2
      WHEN data->>'body' LIKE '%=' THEN 1 ELSE 0 END
  END`;

/** One page of dead letters, oldest first, each row with the `total`.
 * `data` comes without its body. With `bodyChars`, of each stored body its
 * first `bodyChars` chars of base64 (`body_head`) and its size in bytes
 * (`body_size`: stored with it, or for rows stored before, worked out from
 * its length and padding); without (null), neither, and no body is read.
 * `trigger_id`: the stored id, or for a job no outbox stored (another
 * producer's), its job's. */
export async function deadLetterPage(
  db: Sql,
  schema: string,
  dead: string,
  limit: number,
  offset: number,
  bodyChars: number | null,
): Rows {
  const body = bodyChars === null
    ? "NULL AS body_head, NULL AS body_size"
    : `${BODY_HEAD("$4")} AS body_head, ${BODY_SIZE} AS body_size`;
  const { rows } = await db.executeSql(
    `SELECT id, coalesce(data->>'id', source_id::text) AS trigger_id,
       ${WITHOUT_BODY} AS data, ${body},
       source_output, source_retry_count, created_on,
       count(*) OVER ()::int AS total
     FROM ${schema}.job WHERE name = $1 AND state::text IN ('created', 'retry')
     ORDER BY created_on, id LIMIT $2 OFFSET $3`,
    bodyChars === null
      ? [dead, limit, offset]
      : [dead, limit, offset, bodyChars],
  );
  return rows;
}

/** How many dead letters wait in `dead`. */
export async function countDeadLetters(
  db: Sql,
  schema: string,
  dead: string,
): Promise<number> {
  const { rows } = await db.executeSql(
    `SELECT count(*)::int AS total FROM ${schema}.job
     WHERE name = $1 AND state::text IN ('created', 'retry')`,
    [dead],
  );
  return Number(rows[0].total);
}

/** Jobs waiting for a retry, the soonest first. */
export async function retryingJobs(
  db: Sql,
  schema: string,
  queue: string,
  limit: number,
): Rows {
  const { rows } = await db.executeSql(
    `SELECT ${WITHOUT_BODY} AS data, coalesce(data->>'id', id::text)
       AS trigger_id, retry_count, start_after, output
     FROM ${schema}.job
     WHERE name = $1 AND state = 'retry'
     ORDER BY start_after, id LIMIT $2`,
    [queue, limit],
  );
  return rows;
}

/**
 * The last `limit` rows of one trigger (by its stored id) in `queue` and
 * `dead`, oldest first, each with the `total` of its rows and whether any
 * of them is a waiting dead letter (`any_dead`) or a retrying job
 * (`any_retrying`): without their bodies but the first `bodyChars` of its
 * base64 (`body_head`) and its size (`body_size`). A trigger redriven many times, or an id reused by many,
 * has as many rows; each body may be 64 MiB.
 */
export async function rowsOfTrigger(
  db: Sql,
  schema: string,
  queue: string,
  dead: string,
  id: string,
  limit: number,
  bodyChars: number,
): Rows {
  const { rows } = await db.executeSql(
    `SELECT * FROM (
       SELECT id, name, ${WITHOUT_BODY} AS data,
         ${BODY_HEAD("$5")} AS body_head, ${BODY_SIZE} AS body_size,
         state::text AS state, retry_count, retry_limit, created_on,
         started_on, completed_on, start_after, output, source_output,
         source_retry_count, count(*) OVER ()::int AS total,
         bool_or(name = $2 AND state = 'created') OVER () AS any_dead,
         bool_or(name = $1 AND state = 'retry') OVER () AS any_retrying
       FROM ${schema}.job WHERE (name = $1 OR name = $2)
         AND coalesce(data->>'id',
           CASE WHEN name = $2 THEN source_id ELSE id END::text) = $3
       ORDER BY created_on DESC, id DESC LIMIT $4
     ) AS latest ORDER BY created_on, id`,
    [queue, dead, id, limit, bodyChars],
  );
  return rows;
}

/** Moves the next attempt of these retrying triggers (by stored id) to
 * now; the rows changed. */
export async function retryNow(
  db: Sql,
  schema: string,
  queue: string,
  ids: readonly string[],
): Rows {
  const { rows } = await db.executeSql(
    `UPDATE ${schema}.job SET start_after = now()
     WHERE name = $1 AND state = 'retry'
       AND coalesce(data->>'id', id::text) = ANY($2::text[])
       AND start_after > now()
     RETURNING id`,
    [queue, ids],
  );
  return rows;
}

/** Those of `ids` (trigger ids) that match no dead letter in `dead` (as
 * `deadLetterJobs()` matches them, with `routableTo` those it moves back to
 * that queue), or, with `retrying`, no job of `queue` waiting for a retry
 * (as `retryNow()` does). */
export async function unknownIds(
  db: Sql,
  schema: string,
  name: string,
  ids: readonly string[],
  select: { retrying: boolean; routableTo?: string },
): Promise<string[]> {
  const { rows } = await db.executeSql(
    `SELECT given FROM unnest($2::text[]) AS given
     WHERE NOT EXISTS (SELECT 1 FROM ${schema}.job AS j
       WHERE name = $1 AND (CASE WHEN $3::boolean
         THEN state = 'retry' AND coalesce(data->>'id', j.id::text) = given
           AND start_after > now()
         ELSE state::text IN ('created', 'retry')
           AND coalesce(data->>'id', source_id::text) = given
           AND ${routableTo(schema)} END))`,
    [name, ids, select.retrying, select.routableTo ?? null],
  );
  return rows.map((row) => String(row.given));
}

/** Outcomes in `queue`: completions and dead ends after `since`, failed
 * attempts (stamped at their start) after `retriesSince`, oldest first (by
 * `at`, to the millisecond, then `id`), after the outcome `after` when
 * given (for the next page). */
export async function outcomesSince(
  db: Sql,
  schema: string,
  queue: string,
  since: Date,
  retriesSince: Date,
  limit: number,
  after?: { at: Date; jobId: string },
): Rows {
  // `at` to the millisecond: what a JavaScript Date holds, so the key of a
  // page's last row, given back as `after`, is exact.
  const { rows } = await db.executeSql(
    `SELECT id, ${WITHOUT_BODY} AS data, state::text AS state, retry_count,
       output,
       date_trunc('milliseconds', coalesce(completed_on, started_on)) AS at
     FROM ${schema}.job
     WHERE name = $1 AND (
       (state IN ('completed', 'failed') AND completed_on > $2)
       OR (state = 'retry' AND started_on > $4))
       AND ($5::timestamptz IS NULL OR
         (date_trunc('milliseconds', coalesce(completed_on, started_on)), id)
           > ($5::timestamptz, $6::uuid))
     ORDER BY at, id LIMIT $3`,
    [
      queue,
      since.toISOString(),
      limit,
      retriesSince.toISOString(),
      after?.at.toISOString() ?? null,
      after?.jobId ?? null,
    ],
  );
  return rows;
}
