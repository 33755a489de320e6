// The database under pg-boss: embedded PGlite in a locked directory, or
// PostgreSQL. pg-boss and PGlite are loaded here, on open, so importing the
// module costs nothing until an outbox opens.
import { bounded as boundedWait } from "../_bounded.ts";
import type { ConstructorOptions, PgBoss } from "npm:pg-boss@12.38.0";
import { OutboxError } from "./errors.ts";
import { loadFailed } from "../_load.ts";
import { describe, redact, redactError, secretsOf } from "../_redact.ts";
import {
  findSchema,
  installedVersion,
  missingFromSchema,
  type Sql,
} from "./_pgboss_sql.ts";
import { OPEN, type OpenSettings } from "./_validate.ts";
import { nearest } from "./_nearest.ts";

/** pg-boss's supervise/monitor passes: expiry and lost heartbeats. */
const SUPERVISE_SECONDS = 2;
/** The version of pg-boss's schema that pg-boss 12.38 installs (its
 * package.json `pgboss.schema`); `create: false` opens only this one,
 * `create: true` an older one too (pg-boss migrates it), never a newer. */
export const SCHEMA_VERSION = 46;
/** Sets `statement_timeout` and `idle_in_transaction_session_timeout` for
 * the rest of the transaction to `$1` ms, each or the one in force when
 * that is tighter (a role's, a database's, the connection string's
 * `options`; `0` is none). The second ends a transaction whose client went
 * quiet between statements (a process frozen by its platform, a hung
 * event loop): the server rolls it back and closes the connection, where
 * its row locks held jobs from every other dispatcher until it came back.
 * `current_setting()` shows each with its unit ("300ms", "1min"), which
 * reads as an interval; no catalog view, no privilege needed. */
const SERVER_BOUNDS = `SELECT
  set_config('statement_timeout',
    (CASE WHEN t BETWEEN 1 AND $1::bigint THEN t ELSE $1::bigint END)::text,
    true),
  set_config('idle_in_transaction_session_timeout',
    (CASE WHEN i BETWEEN 1 AND $1::bigint THEN i ELSE $1::bigint END)::text,
    true)
  FROM (SELECT ceil(extract(epoch FROM
      current_setting('statement_timeout')::interval) * 1000)::bigint AS t,
    ceil(extract(epoch FROM current_setting(
      'idle_in_transaction_session_timeout')::interval) * 1000)::bigint AS i)
    AS s`;
/** A failure that is a bound passing (ours, node-postgres's, pg-boss's). */
const TIMED_OUT = /timeout|timed out/i;

/** Whether the database answered `error`: it carries a SQLSTATE (five
 * digits or capitals; no class starts with E, so not Node's `EPIPE`). A
 * statement PostgreSQL cancelled for its own `statement_timeout` (57014) or
 * `lock_timeout` (55P03) is such an answer: nothing it did was kept. */
export function answered(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[0-9A-DF-Z][0-9A-Z]{4}$/.test(code);
}

/** Whether `error` is a bound passing with no answer from the database. */
function unanswered(error: unknown, text = describe(error)): boolean {
  return TIMED_OUT.test(text) && !answered(error);
}

/** An open database with pg-boss started on it. */
export interface Engine {
  engine: "embedded" | "postgres";
  /** For messages: the directory, or the server without credentials. */
  where: string;
  boss: PgBoss;
  /** Runs `fn` in one transaction, bounded by `queryTimeout`. When the
   * bound passes before COMMIT is sent, the transaction rolls back and the
   * call rejects with `"TIMEOUT"`: nothing it wrote is kept. When it passes
   * (or the connection is lost) while COMMIT is under way, the outcome is
   * unknown: the `"TIMEOUT"` message says so, then `unknown` (what that
   * means for the caller). */
  transaction<T>(
    what: string,
    fn: (db: Sql) => Promise<T>,
    unknown: string,
  ): Promise<T>;
  /** Runs one operation (pg-boss calls, single statements), bounded by
   * `queryTimeout`; failures become {@linkcode OutboxError}s. */
  run<T>(what: string, fn: () => Promise<T>): Promise<T>;
  /** `error` as a typed, password-free {@linkcode OutboxError}. */
  fail(what: string, error: unknown): OutboxError;
  /** Stops pg-boss and closes the database and lock (bounded). */
  close(): Promise<void>;
}

/** Whether this runtime has Deno's file locks (`FsFile#tryLock`: Deno 2.7
 * and later; platforms' Deno lags: docs/platforms.md). Safe where `Deno` is not
 * declared at all (Node, Bun): no bare reference to it. */
export function hasDenoFileLocks(): boolean {
  const deno = (globalThis as {
    Deno?: { open?: unknown; FsFile?: { prototype?: { tryLock?: unknown } } };
  }).Deno;
  return typeof deno?.open === "function" &&
    typeof deno.FsFile?.prototype?.tryLock === "function";
}

export async function openEngine(
  settings: OpenSettings,
  onError: (error: unknown) => void,
): Promise<Engine> {
  const secrets = secretsOf(settings.connectionString);
  const postgres = settings.connectionString !== undefined;
  const where = postgres
    ? `PostgreSQL at ${describeServer(settings.connectionString!)}`
    : `the embedded database in ${JSON.stringify(settings.dir)}`;
  const timeout = settings.queryTimeout;
  if (!postgres && !hasDenoFileLocks()) {
    throw new TypeError(
      `${OPEN}the embedded engine needs Deno's file locks (Deno.FsFile#tryLock, Deno 2.7 or later); give connectionString to use PostgreSQL`,
    );
  }
  const fail = (what: string, error: unknown): OutboxError => {
    if (error instanceof OutboxError) return error;
    const cause = redactError(error, secrets);
    const text = redact(describe(error), secrets);
    return new OutboxError(
      unanswered(error, text) ? "TIMEOUT" : "DATABASE",
      `${what}: ${where} failed: ${text}`,
      { cause },
    );
  };

  let lock: { close(): void } | undefined;
  let pglite: { close(): Promise<void> } | undefined;
  let boss: PgBoss | undefined;
  // pg-boss's one value import, loaded lazily.
  const pgboss = await import("npm:pg-boss@12.38.0").catch((cause) => {
    throw loadFailed(OPEN, "npm:pg-boss@12.38.0", cause);
  });
  try {
    let config: ConstructorOptions;
    if (postgres) {
      config = {
        connectionString: settings.connectionString,
        connectionTimeoutMillis: settings.connectTimeout,
        application_name: "fire-trigger-outbox",
        // node-postgres's client-side bound on each statement: a server
        // that stops answering fails the statement and drops its
        // connection (so nothing buffered on it runs later).
        ...{ query_timeout: timeout },
      };
    } else {
      if (!settings.create) await mustExist(settings.dir);
      lock = await lockDirectory(settings.dir);
      const { PGlite } = await import("npm:@electric-sql/pglite@0.5.16");
      let created;
      try {
        created = await PGlite.create(`${settings.dir}/pgdata`);
      } catch (cause) {
        throw storageError(
          `${OPEN}the embedded database in ${
            JSON.stringify(settings.dir)
          } could not be opened`,
          cause,
        );
      }
      pglite = created;
      config = { db: pgboss.fromPglite(created), backend: "pglite" };
    }
    boss = new pgboss.PgBoss({
      ...config,
      schema: settings.schema,
      // create: false installs and migrates nothing: start() checks that
      // pg-boss's schema is there, at this version, and fails otherwise.
      migrate: settings.create,
      schedule: false,
      superviseIntervalSeconds: SUPERVISE_SECONDS,
      monitorIntervalSeconds: SUPERVISE_SECONDS,
    });
    boss.on("error", (error) => onError(fail("pg-boss", error)));
    // pg-boss's start() migrates an older schema (create: true) but opens a
    // newer one as it is, in either mode, and writes to it as it starts (its
    // instance row) and after (maintenance passes it queues): read the
    // version first, on the pool start() would open (it opens it only if
    // it is not open yet), and refuse a newer one before anything runs.
    const db = boss.getDb() as unknown as Sql & {
      _pgbdb?: boolean;
      opened?: boolean;
      open?(): Promise<void>;
    };
    const found = await bounded(timeout + settings.connectTimeout, async () => {
      if (db._pgbdb && !db.opened) await db.open!();
      return await installedVersion(db, settings.schema);
    });
    if (found !== null && found > SCHEMA_VERSION) {
      throw otherVersion(settings.schema, where, found);
    }
    try {
      await bounded(timeout + settings.connectTimeout, () => boss!.start());
    } catch (error) {
      // Without the schema, a NOT_FOUND naming it (not pg-boss's "not
      // installed"); at another version, a DATABASE naming both versions
      // (not pg-boss's "requires migrations", which a newer schema does
      // not); any other failure (a connection refused) as it is. A server
      // that did not answer is not asked again (a second wait).
      if (settings.create || unanswered(error)) throw error;
      throw await bounded(
        timeout,
        () => unusableSchema(boss!, settings.schema, where),
      ).catch(() => null) ?? error;
    }
    // A newer pg-boss that migrated the schema since it was read above.
    const version = await bounded(timeout, () => boss!.schemaVersion());
    if (version !== null && version > SCHEMA_VERSION) {
      throw otherVersion(settings.schema, where, version);
    }
    const missing = await bounded(
      timeout,
      () => missingFromSchema(boss!.getDb() as Sql, settings.schema),
    );
    if (missing.length > 0) {
      throw new OutboxError(
        "DATABASE",
        `${OPEN}pg-boss's schema in ${where} lacks ${
          missing.join(", ")
        }; this version of fire-trigger needs pg-boss 12.38's schema`,
      );
    }
  } catch (error) {
    await bounded(5_000, () => boss?.stop({ graceful: false, close: true }))
      .catch(() => {});
    await pglite?.close().catch(() => {});
    lock?.close();
    if (error instanceof OutboxError) throw error;
    throw fail(OPEN.slice(0, -2), error);
  }
  const started = boss;
  const db = pglite as
    | { transaction<T>(fn: (tx: PgliteTx) => Promise<T>): Promise<T> }
    | undefined;

  const run = <T>(what: string, fn: () => Promise<T>): Promise<T> =>
    bounded(timeout, fn).catch((error) => {
      throw fail(what, error);
    });

  const transaction = <T>(
    what: string,
    fn: (db: Sql) => Promise<T>,
    unknown: string,
  ): Promise<T> => {
    let expired = false;
    let committing = false;
    // Past the bound, `fn`'s next statement is refused, not sent: the
    // caller has its TIMEOUT, and the transaction is rolled back.
    const refusing = (send: Sql["executeSql"]): Sql => ({
      executeSql: (text, values) =>
        expired
          ? Promise.reject(new Error("timed out before the next statement"))
          : send(text, values),
    });
    const guarded = (async () => {
      if (db !== undefined) {
        return await db.transaction(async (tx) => {
          const result = await fn(
            refusing((text, values) => tx.query(text, values)),
          );
          if (expired) throw new Error("timed out before COMMIT");
          committing = true; // PGlite commits when this returns
          return result;
        });
      }
      // PostgreSQL: one pooled connection, BEGIN … COMMIT.
      const pg = started.getDb() as unknown as {
        beginTransaction(): Promise<{
          db: Sql;
          commit(): Promise<void>;
          rollback(): Promise<void>;
        }>;
      };
      const tx = await pg.beginTransaction();
      try {
        // The server's own bounds on each statement and on the wait for the
        // next: node-postgres's query_timeout only stops waiting, and a
        // statement it gave up on ran on (a redrive of 50,000 ids for
        // minutes, its rows locked); a dispatcher frozen between its fetch
        // and COMMIT kept the jobs it fetched locked, unseen by the others,
        // until it was thawed. Local to this transaction (PgBouncer's
        // transaction mode keeps it).
        await tx.db.executeSql(SERVER_BOUNDS, [
          String(Math.ceil(timeout)),
        ]);
        const result = await fn(
          refusing((text, values) => tx.db.executeSql(text, values)),
        );
        if (expired) throw new Error("timed out before COMMIT");
        committing = true;
        await tx.commit();
        return result;
      } catch (error) {
        await tx.rollback().catch(() => {});
        throw error;
      }
    })();
    return bounded(timeout, () => guarded, () => expired = true).catch(
      (error) => {
        // No answer to COMMIT (not PostgreSQL refusing it, which has a
        // SQLSTATE): it may have committed.
        if (
          committing && !(error instanceof OutboxError) && !answered(error)
        ) {
          throw new OutboxError(
            "TIMEOUT",
            `${what}: ${where} did not answer COMMIT (timeout or lost connection): outcome unknown, ${unknown}`,
            { cause: fail(what, error) },
          );
        }
        throw fail(what, error);
      },
    );
  };

  return {
    engine: postgres ? "postgres" : "embedded",
    where,
    boss: started,
    run,
    transaction,
    fail,
    async close() {
      try {
        await bounded(
          10_000,
          () => started.stop({ graceful: true, close: true, timeout: 5_000 }),
        ).catch((error) => {
          throw fail("Cannot stop outbox", error);
        });
      } finally {
        try {
          await pglite?.close();
        } finally {
          lock?.close();
        }
      }
    },
  };
}

interface PgliteTx {
  query(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: Array<Record<string, unknown>> }>;
}

/** `fn()`, or a rejection naming the bound once `ms` pass (`expire` runs
 * first, so a transaction can refuse to commit). */
function bounded<T>(
  ms: number,
  fn: () => Promise<T> | undefined,
  expire?: () => void,
): Promise<T> {
  return boundedWait(ms, fn as () => Promise<T>, () => {
    expire?.();
    return new Error(`no answer within ${ms} ms (timeout)`);
  });
}

/** `create: false`: `NOT_FOUND` when `schema` is not a pg-boss install,
 * naming it and the installs there are; `DATABASE` naming the versions when
 * it is one at a version other than {@linkcode SCHEMA_VERSION}; `null`
 * otherwise. */
async function unusableSchema(
  boss: PgBoss,
  schema: string,
  where: string,
): Promise<OutboxError | null> {
  const { exists, installed, installs } = await findSchema(
    boss.getDb() as Sql,
    schema,
  );
  if (installed) {
    const version = await boss.schemaVersion();
    if (version === null || version === SCHEMA_VERSION) return null;
    return otherVersion(schema, where, version);
  }
  const there = installs.length === 0
    ? "it holds no outbox schema"
    : `outbox schemas there: ${nearest(installs, schema).join(", ")}`;
  return new OutboxError(
    "NOT_FOUND",
    `${OPEN}${where} has no ${
      exists ? "outbox (pg-boss) in schema" : "schema"
    } ${JSON.stringify(schema)} (create: false installs nothing); ${there}`,
  );
}

/** `DATABASE` naming the version of pg-boss's schema found and the one
 * supported ({@linkcode SCHEMA_VERSION}). */
function otherVersion(
  schema: string,
  where: string,
  version: number,
): OutboxError {
  const found = `${OPEN}pg-boss's schema ${
    JSON.stringify(schema)
  } in ${where} is at version ${version}`;
  return new OutboxError(
    "DATABASE",
    version > SCHEMA_VERSION
      ? `${found}, newer than the version ${SCHEMA_VERSION} (pg-boss 12.38) this fire-trigger supports: a newer pg-boss migrated it; use a fire-trigger that supports it (pg-boss cannot migrate it back)`
      : `${found}, older than the version ${SCHEMA_VERSION} (pg-boss 12.38) this fire-trigger supports: it needs migrating, which create: false does not do; open it once with create: true to migrate it`,
  );
}

/** `create: false`, embedded: `NOT_FOUND` unless `dir` holds a database
 * (checked before the lock file or the directory is created). A database is
 * a `pgdata` directory with its `PG_VERSION`: an empty `pgdata` (a stray
 * mkdir, a first open cut short before initdb wrote anything) would
 * otherwise be initialised here. */
async function mustExist(dir: string): Promise<void> {
  try {
    await Deno.stat(`${dir}/pgdata/PG_VERSION`);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) {
      throw new OutboxError(
        "NOT_FOUND",
        `${OPEN}no embedded outbox in ${
          JSON.stringify(dir)
        } (no database in its pgdata directory; create: false creates none)`,
      );
    }
    throw storageError(
      `${OPEN}the directory ${JSON.stringify(dir)} cannot be read`,
      cause,
    );
  }
}

/** A directory that cannot be written: a typed, readable error. */
function storageError(message: string, cause: unknown): OutboxError {
  const text = describe(cause);
  const code = /EROFS|read-only|ENOSPC|no space|EACCES|EPERM|permission/i
      .test(text) ||
      cause instanceof Deno.errors.PermissionDenied
    ? "STORAGE"
    : "DATABASE";
  // Emscripten's ErrnoError is not an Error: print as "[object Object]".
  const error = cause instanceof Error ? cause : new Error(text, { cause });
  return new OutboxError(code, `${message}: ${text}`, { cause: error });
}

/** The lock files this process holds (real paths): a directory locked by
 * another outbox here is told apart from one another process has (a pid in
 * the file could be ours by chance, in another container). */
const heldLocks = new Set<string>();

/** Takes the embedded directory's lock file (an exclusive `flock`, which the
 * system drops when the process dies, even by `kill -9`). */
async function lockDirectory(dir: string): Promise<{ close(): void }> {
  let path: string;
  let file: Deno.FsFile;
  try {
    await Deno.mkdir(dir, { recursive: true });
    path = `${await Deno.realPath(dir)}/outbox.lock`;
    file = await Deno.open(path, { read: true, write: true, create: true });
  } catch (cause) {
    throw storageError(
      `${OPEN}the directory ${JSON.stringify(dir)} cannot be written`,
      cause,
    );
  }
  let locked = false;
  try {
    locked = await file.tryLock(true);
  } catch (cause) {
    file.close();
    throw new OutboxError(
      "LOCKED",
      `${OPEN}could not lock ${JSON.stringify(path)}: ${describe(cause)}`,
      { cause },
    );
  }
  if (!locked) {
    file.close();
    let holder = "another outbox in this process";
    if (!heldLocks.has(path)) {
      holder = "another process";
      try {
        const pid = (await Deno.readTextFile(path)).trim();
        if (/^\d+$/.test(pid)) holder += ` (pid ${pid})`;
      } catch {
        // The pid is only for the message.
      }
    }
    throw new OutboxError(
      "LOCKED",
      `${OPEN}the embedded database in ${
        JSON.stringify(dir)
      } is in use by ${holder}. PGlite allows one process per directory; give each process its own dir, or share PostgreSQL with connectionString`,
    );
  }
  // Held from the moment it is locked: another outbox here trying the same
  // directory while the pid is written is told it is this process.
  heldLocks.add(path);
  try {
    await file.truncate(0);
    await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  } catch (cause) {
    heldLocks.delete(path);
    file.close();
    throw storageError(
      `${OPEN}the directory ${JSON.stringify(dir)} cannot be written`,
      cause,
    );
  }
  let closed = false;
  return {
    close() {
      if (closed) return;
      closed = true;
      heldLocks.delete(path);
      file.close();
    },
  };
}

/** host:port/database, without user or password; never the input itself
 * when it does not parse. */
function describeServer(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    return `${url.hostname}:${url.port || "5432"}${url.pathname}`;
  } catch {
    return "the given connectionString (not a valid URL)";
  }
}
