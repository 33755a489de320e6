/**
 * `./dedup/postgres`: {@linkcode PostgresDedupStore}, a `DedupStore` for
 * `verifyTrigger()` (from `./hono`) over PostgreSQL, so several receiving
 * instances deduplicate together. Its own entry point: it loads `npm:pg`
 * only when it opens a pool, and nothing of the outbox.
 *
 * @example Usage
 * ```ts
 * import { PostgresDedupStore } from "./postgres.ts";
 * import { PGlite } from "npm:@electric-sql/pglite@0.5.16";
 * import assert from "node:assert/strict";
 *
 * const db = await PGlite.create();
 * const store = new PostgresDedupStore({ db });
 * assert.equal(await store.claim("msg_1", 60_000, "delivery-a"), "claimed");
 * await store.close();
 * await db.close();
 * ```
 *
 * @module
 */
import type { ClaimResult, DedupStore } from "./store.ts";
import { show } from "../_show.ts";
import { checkMs, checkOptions, refuseOnError } from "../_options.ts";
import { redactError, secretsOf } from "../_redact.ts";
import { loadFailed } from "../_load.ts";

export type { ClaimResult, DedupStore } from "./store.ts";

/** What the store needs of a database client: node-postgres's `Pool` and
 * `Client`, and PGlite, all have this `query()`. */
export interface Queryable {
  /** Runs one parameterised statement. */
  query(
    text: string,
    params?: unknown[],
  ): Promise<{ rows: Array<Record<string, unknown>> }>;
}

/** Options for {@linkcode PostgresDedupStore}: `connectionString` or `db`. */
export interface PostgresDedupStoreOptions {
  /** A PostgreSQL URL; the store opens a small pool (`close()` ends it). */
  connectionString?: string;
  /** A client of your own (a `pg` Pool, PGlite…); the store never closes it. */
  db?: Queryable;
  /**
   * The table, created on first use.
   *
   * @default {"trigger_webhook_ids"}
   */
  table?: string;
  /**
   * Milliseconds to wait for a new connection of the pool opened from
   * `connectionString` (node-postgres's `connectionTimeoutMillis`): a
   * database that does not answer fails the call (`verifyTrigger()` answers
   * `503` and reports it) instead of hanging. `0`: no limit.
   *
   * @default {5_000}
   */
  connectionTimeout?: number;
  /**
   * Milliseconds one statement may take, for the pool opened from
   * `connectionString`: the client gives up after it (node-postgres's
   * `query_timeout`, which also covers a server that stopped answering)
   * and the server cancels it (`statement_timeout`, a startup parameter;
   * behind a pooler that refuses it, such as PgBouncer in its default
   * configuration, the store connects without it and only the client's
   * bound holds). `0`: no limit.
   *
   * @default {5_000}
   */
  queryTimeout?: number;
  /**
   * Told about errors no caller awaits: an idle pooled connection's (a
   * database restart, a terminated backend; the pool replaces the
   * connection, only for the pool opened from `connectionString`) and the
   * background sweep of expired ids' (any `db`). A reporter that throws is
   * ignored. (Named as in `./hono`: a report, not Hono's `app.onError`.)
   *
   * @default {console.error}
   */
  reportError?: (error: unknown) => void;
}

/** The error with every form of the connection string's credentials
 * masked in its message, stack, string fields and causes (`pg` puts the
 * whole string in some messages, e.g. for an invalid URL): the outbox's
 * redaction, one place for both. */
function redact(error: unknown, connectionString: string | undefined): unknown {
  return redactError(error, secretsOf(connectionString));
}

const NAME = /^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$/;
/** The name of a table's index on `expires_at`: `<table>_expires_at`, or,
 * for a name too long for PostgreSQL's 63 bytes (cut, it could be the
 * table's own name, or another long name's index, and be skipped without
 * a word), its first 43 characters, 8 hex digits of a hash of the whole
 * (FNV-1a) and `_expires_at`. */
function indexName(table: string): string {
  const bare = table.split(".").pop()!.replaceAll('"', "");
  if (bare.length + "_expires_at".length <= 63) return `${bare}_expires_at`;
  let hash = 0x811c9dc5;
  for (let i = 0; i < bare.length; i++) {
    hash = Math.imul(hash ^ bare.charCodeAt(i), 0x01000193);
  }
  const hex = (hash >>> 0).toString(16).padStart(8, "0");
  return `${bare.slice(0, 43)}_${hex}_expires_at`;
}

/** Expired rows are swept at most this often, by the next call. */
const SWEEP_INTERVAL = 60_000;
/** Expired rows one sweep statement deletes, and the statements a sweep
 * runs at most: 1,000,000 rows a minute (16,000 ids a second kept). */
const SWEEP_BATCH = 10_000;
const SWEEP_BATCHES = 100;

interface Pool extends Queryable {
  end(): Promise<void>;
  on(event: "error", listener: (error: unknown) => void): unknown;
}

/**
 * A {@linkcode DedupStore} in a PostgreSQL table, for `verifyTrigger()`
 * (from `./hono`) on several instances behind one load balancer: a retried
 * delivery of a done `webhook-id` is answered 2xx without running the route,
 * and two concurrent deliveries of one id never both run. One row per id:
 * `expires_at` is a lease while the route runs, then how long the success is
 * remembered. `claim()` is one atomic `INSERT … ON CONFLICT DO UPDATE … WHERE
 * expired`.
 *
 * @example Usage
 * ```ts
 * import { PostgresDedupStore } from "./postgres.ts";
 * import { PGlite } from "npm:@electric-sql/pglite@0.5.16";
 * import assert from "node:assert/strict";
 *
 * const db = await PGlite.create(); // in memory here; or { connectionString }
 * const store = new PostgresDedupStore({ db });
 * assert.equal(await store.claim("msg_1", 60_000, "delivery-a"), "claimed");
 * assert.equal(await store.claim("msg_1", 60_000, "delivery-b"), "busy");
 * await store.release("msg_1", "delivery-a"); // the route failed: runnable again
 * assert.equal(await store.claim("msg_1", 60_000, "delivery-c"), "claimed");
 * await store.complete("msg_1", 600_000);
 * assert.equal(await store.claim("msg_1", 60_000, "delivery-d"), "done");
 * await store.close();
 * await db.close();
 * ```
 */
export class PostgresDedupStore implements DedupStore {
  #db?: Queryable;
  #pool?: OpenPool;
  #connectionString?: string;
  #table: string;
  /** The table checked (and made) through `db`. */
  #ready?: { db: Queryable; done: Promise<void> };
  #swept = -Infinity;
  #reportError: (error: unknown) => void;
  #connectionTimeout: number;
  #queryTimeout: number;
  /** Whether new connections ask the server for `statement_timeout` (a
   * startup parameter): until a pooler refuses it. */
  #serverTimeout = true;
  /** Calls of `close()`: a call under way when one came is not retried. */
  #closes = 0;

  /**
   * Creates the store; the table is made on first use.
   *
   * @param options `connectionString` or `db`, and the table name.
   * @throws {TypeError} When `options` is not an object, when neither or
   * both of `connectionString` and `db` are given, for a `connectionString`
   * that is not a non-empty string, a `db` without `query()`, a bad table or
   * `reportError`, or for `onError` (now `reportError`).
   * @throws {RangeError} For a bad `connectionTimeout` or `queryTimeout`.
   */
  constructor(options: PostgresDedupStoreOptions) {
    checkOptions(options, "Cannot create PostgresDedupStore: ");
    refuseOnError(options, "Cannot create PostgresDedupStore: ");
    const {
      connectionString,
      db,
      table = "trigger_webhook_ids",
      connectionTimeout = 5_000,
      queryTimeout = 5_000,
      reportError = (error: unknown) =>
        console.error("PostgresDedupStore: a background query failed", error),
    } = options;
    if (typeof reportError !== "function") {
      throw new TypeError(
        `Cannot create PostgresDedupStore: reportError must be a function, received ${
          show(reportError)
        }`,
      );
    }
    if ((connectionString === undefined) === (db === undefined)) {
      throw new TypeError(
        "Cannot create PostgresDedupStore: give connectionString or db, not both",
      );
    }
    if (
      connectionString !== undefined &&
      (typeof connectionString !== "string" || connectionString === "")
    ) {
      // libpq's defaults for "" (a local socket, the user's name): never
      // what was meant. A string here is empty: nothing secret to show.
      throw new TypeError(
        `Cannot create PostgresDedupStore: connectionString must be a non-empty string, received ${
          show(connectionString)
        }`,
      );
    }
    if (db !== undefined && typeof db?.query !== "function") {
      throw new TypeError(
        `Cannot create PostgresDedupStore: db must have a query() method, received ${
          show(db)
        }`,
      );
    }
    if (typeof table !== "string" || !NAME.test(table)) {
      throw new TypeError(
        `Cannot create PostgresDedupStore: table must be a lower-case SQL name (schema.table allowed), received ${
          show(table)
        }`,
      );
    }
    for (
      const [name, value] of [
        ["connectionTimeout", connectionTimeout],
        ["queryTimeout", queryTimeout],
      ] as const
    ) {
      checkMs(value, `Cannot create PostgresDedupStore: ${name}`);
    }
    this.#connectionTimeout = connectionTimeout;
    this.#queryTimeout = queryTimeout;
    this.#db = db;
    this.#connectionString = connectionString;
    // Quoted: a lower-case name means the same, and a reserved word
    // (`user`, `order`) works.
    this.#table = table.split(".").map((part) => `"${part}"`).join(".");
    this.#reportError = reportError;
  }

  async #query(
    text: string,
    params: unknown[] = [],
  ): Promise<Array<Record<string, unknown>>> {
    try {
      return await this.#run(text, params);
    } catch (error) {
      throw redact(error, this.#connectionString);
    }
  }

  async #run(
    text: string,
    params: unknown[],
  ): Promise<Array<Record<string, unknown>>> {
    if (this.#db !== undefined) {
      return await this.#runOn(this.#db, text, params);
    }
    const closes = this.#closes;
    for (let attempt = 0;; attempt++) {
      const current = this.#pool ??= this.#openPool(this.#serverTimeout);
      current.calls++;
      try {
        return await this.#runOn(await current.pool, text, params);
      } catch (error) {
        // A pooler (PgBouncer by default) refused the connection
        // for its statement_timeout startup parameter: nothing reached the
        // database. Reconnected without it (one switch, however many calls
        // failed at once), and the call goes once more on the new pool;
        // the client-side query_timeout still bounds each statement. Not
        // after a close() meanwhile: this call does not open a pool again.
        if (
          attempt > 0 || this.#closes !== closes ||
          !refusesStatementTimeout(error)
        ) {
          throw error;
        }
        if (this.#pool === current) {
          if (!current.serverTimeout) throw error;
          this.#serverTimeout = false;
          this.#pool = undefined;
          current.retired = true;
        }
      } finally {
        current.calls--;
        // The old pool ends once its last call is over: ended earlier, it
        // would leave the calls queued for one of its connections waiting.
        if (current.retired && current.calls === 0) {
          current.pool.then((pool) => pool.end()).catch(() => {});
        }
      }
    }
  }

  async #runOn(
    db: Queryable,
    text: string,
    params: unknown[],
  ): Promise<Array<Record<string, unknown>>> {
    // Per connection pool: one the store switched away from may have been
    // preparing when it failed.
    if (this.#ready?.db !== db) {
      const ready = {
        db,
        done: this.#prepare(db).then(() => {}, (error) => {
          if (this.#ready === ready) this.#ready = undefined;
          // Two instances creating it at once: one wins, the other sees a
          // duplicate key, type or relation (23505, 42710, 42P07); the
          // table is there either way (the next call looks again).
          const code = (error as { code?: string })?.code;
          if (code !== "23505" && code !== "42710" && code !== "42P07") {
            throw error;
          }
        }),
      };
      this.#ready = ready;
    }
    await this.#ready.done;
    return (await db.query(text, params)).rows;
  }

  /** Creates what the table lacks, and only that: a role that may only
   * read and write the table an administrator made works, and no instance
   * takes the ALTER TABLE lock (which queues behind every reader of the
   * table, and every claim behind it) when nothing is missing. */
  async #prepare(db: Queryable): Promise<void> {
    const table = this.#table;
    const [found] = (await db.query(
      `SELECT to_regclass($1) IS NOT NULL AS has_table,
         EXISTS (SELECT 1 FROM pg_attribute
           WHERE attrelid = to_regclass($1) AND attname = 'token'
             AND NOT attisdropped) AS has_token,
         EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a
           ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
           WHERE i.indrelid = to_regclass($1)
             AND a.attname = 'expires_at') AS has_index`,
      [table],
    )).rows;
    if (!found.has_table) {
      await db.query(
        `CREATE TABLE IF NOT EXISTS ${table} (
           id text PRIMARY KEY,
           done boolean NOT NULL,
           expires_at timestamptz NOT NULL,
           token text)`,
      );
    } else if (!found.has_token) {
      // A table made by an earlier version has no token column.
      await db.query(
        `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS token text`,
      );
    }
    if (!found.has_index) {
      // The sweep deletes by expiry: without an index, a full scan. Only an
      // owner may make one: a role that may only read and write the table
      // is told (reportError) and goes on, its sweeps slower.
      try {
        await db.query(
          `CREATE INDEX IF NOT EXISTS "${
            indexName(table)
          }" ON ${table} (expires_at)`,
        );
      } catch (error) {
        if ((error as { code?: string })?.code !== "42501") throw error;
        this.#report(error);
      }
    }
  }

  #openPool(serverTimeout: boolean): OpenPool {
    return {
      pool: this.#open(serverTimeout),
      serverTimeout,
      calls: 0,
      retired: false,
    };
  }

  async #open(serverTimeout: boolean): Promise<Pool> {
    const { default: pg } = await import("npm:pg@8.23.1").catch((cause) => {
      throw loadFailed("PostgresDedupStore: ", "npm:pg@8.23.1", cause);
    });
    const pool = new (pg as unknown as {
      Pool: new (config: object) => Pool;
    }).Pool({
      connectionString: this.#connectionString,
      max: 4,
      connectionTimeoutMillis: this.#connectionTimeout,
      // Client side: also ends a wait on a server that stopped answering.
      query_timeout: this.#queryTimeout || undefined,
      statement_timeout: serverTimeout && this.#queryTimeout || undefined,
    });
    // Without a listener, an idle connection's error (the server restarted
    // or ended the backend) is an uncaught error that ends the process.
    pool.on("error", (error) => this.#report(error));
    return pool;
  }

  /**
   * Atomically takes `id` for one delivery, unless a live row exists.
   *
   * @param id The key (see `DedupStore.claim()`): the verifying secret's
   *   scope and the `webhook-id`.
   * @param ttlMs How long the claim holds without `complete()`/`release()`.
   * @param token The claim's owner, for `release()`.
   * @returns `"claimed"`, `"done"` or `"busy"`.
   * @throws {RangeError} When `ttlMs` is not a number of milliseconds from 0
   *   to `Number.MAX_SAFE_INTEGER` (thrown, as `MemoryDedupStore` does; a
   *   database failure rejects).
   */
  claim(id: string, ttlMs: number, token: string): Promise<ClaimResult> {
    checkMs(ttlMs, "Cannot claim: ttl", 0, Number.MAX_SAFE_INTEGER);
    return this.#claimAndSweep(id, ttlMs, token);
  }

  async #claimAndSweep(
    id: string,
    ttlMs: number,
    token: string,
  ): Promise<ClaimResult> {
    const result = await this.#claim(id, ttlMs, token);
    if (performance.now() - this.#swept > SWEEP_INTERVAL) {
      this.#swept = performance.now();
      // After the claim, not before it: a slow or failed sweep never delays
      // or fails a claim, and it takes the connection the claim gave back.
      this.#sweep().catch((error) => this.#report(error));
    }
    return result;
  }

  /** Deletes expired rows in batches, each its own statement within
   * `queryTimeout`: one DELETE of them all, past some millions of rows,
   * timed out and rolled back every minute and never caught up. At most
   * {@linkcode SWEEP_BATCHES} batches a sweep; the rest at the next. */
  async #sweep(): Promise<void> {
    for (let batch = 0; batch < SWEEP_BATCHES; batch++) {
      const [{ n }] = await this.#query(
        // Expiry checked again on the row deleted: one a claim took back
        // meanwhile is left, whatever the server's TID scan rechecks.
        `WITH gone AS (DELETE FROM ${this.#table}
           WHERE expires_at <= now() AND ctid IN (
           SELECT ctid FROM ${this.#table} WHERE expires_at <= now()
           LIMIT ${SWEEP_BATCH}) RETURNING 1)
         SELECT count(*)::int AS n FROM gone`,
      );
      if (Number(n) < SWEEP_BATCH) return;
    }
  }

  /** Tells `reportError` (redacted); one that throws takes nothing down. */
  #report(error: unknown): void {
    try {
      this.#reportError(redact(error, this.#connectionString));
    } catch {
      // Nobody awaits a background error: ignored, not uncaught.
    }
  }

  async #claim(id: string, ttlMs: number, token: string): Promise<ClaimResult> {
    for (let tries = 0; tries < 5; tries++) {
      const claimed = await this.#query(
        `INSERT INTO ${this.#table} AS t (id, done, expires_at, token)
         VALUES ($1, false, now() + $2::float8 * interval '1 millisecond', $3)
         ON CONFLICT (id) DO UPDATE
           SET done = false, expires_at = EXCLUDED.expires_at,
               token = EXCLUDED.token
           WHERE t.expires_at <= now()
         RETURNING id`,
        [id, ttlMs, token],
      );
      if (claimed.length > 0) return "claimed";
      const [row] = await this.#query(
        `SELECT done FROM ${this.#table} WHERE id = $1`,
        [id],
      );
      // Released between the two statements: try to take it again.
      if (row !== undefined) return row.done ? "done" : "busy";
    }
    return "busy";
  }

  /**
   * Marks an id as done, remembered for `ttlMs`: inserted when its row was
   * swept meanwhile, overwriting a claim another delivery took since.
   *
   * @param id The id.
   * @param ttlMs How long to remember it.
   * @throws {RangeError} When `ttlMs` is not a number of milliseconds from 0
   *   to `Number.MAX_SAFE_INTEGER` (thrown, as `MemoryDedupStore` does; a
   *   database failure rejects).
   */
  complete(id: string, ttlMs: number): Promise<void> {
    checkMs(ttlMs, "Cannot complete: ttl", 0, Number.MAX_SAFE_INTEGER);
    return this.#complete(id, ttlMs);
  }

  async #complete(id: string, ttlMs: number): Promise<void> {
    await this.#query(
      `INSERT INTO ${this.#table} AS t (id, done, expires_at, token)
       VALUES ($1, true, now() + $2::float8 * interval '1 millisecond', NULL)
       ON CONFLICT (id) DO UPDATE
         SET done = true, expires_at = EXCLUDED.expires_at, token = NULL`,
      [id, ttlMs],
    );
  }

  /**
   * Drops a claim whose route did not succeed, so a retry can run: only
   * while the row is still the claim of `token`.
   *
   * @param id The id.
   * @param token The token given to `claim()`.
   */
  async release(id: string, token: string): Promise<void> {
    await this.#query(
      `DELETE FROM ${this.#table} WHERE id = $1 AND NOT done AND token = $2`,
      [id, token],
    );
  }

  /** Ends the pool the store opened from `connectionString` (a `db` of
   * yours is left open). */
  async close(): Promise<void> {
    const current = this.#pool;
    this.#pool = undefined;
    this.#closes++;
    if (current) await (await current.pool).end();
  }
}

/** A pool the store opened, and what it knows of it. */
interface OpenPool {
  pool: Promise<Pool>;
  /** Its connections ask for `statement_timeout`. */
  serverTimeout: boolean;
  /** Calls under way on it. */
  calls: number;
  /** Replaced: ended when its last call is over. */
  retired: boolean;
}

/** Whether `error` is a pooler refusing the `statement_timeout` startup
 * parameter: PgBouncer's "unsupported startup parameter: statement_timeout"
 * (SQLSTATE 08P01; Neon's pooled endpoint is a PgBouncer). */
function refusesStatementTimeout(error: unknown): boolean {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === "string" &&
    /startup parameter/i.test(message) && message.includes("statement_timeout");
}
