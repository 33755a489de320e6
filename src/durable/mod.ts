/**
 * Durable triggers: an outbox that persists each trigger before it returns
 * and delivers it at least once, with retries, backoff and dead letters.
 *
 * The outbox is [pg-boss](https://github.com/timgit/pg-boss) (a PostgreSQL
 * job queue) on one of two engines, through one code path:
 *
 * - embedded (default): PGlite, PostgreSQL compiled to WASM, in-process, in a
 *   directory (`./.trigger-outbox`). One process per directory: a lock file
 *   makes a second process fail with a clear error instead of losing rows.
 * - PostgreSQL (`connectionString`): shared by any number of processes and
 *   machines; each job goes to one dispatcher at a time.
 *
 * Delivery is at-least-once: a job is retried until a 2xx status line
 * arrives, and every delivery of one job carries the same `webhook-id`
 * header, so the receiver can drop duplicates.
 *
 * This entry point is separate from `mod.ts`: only code that imports
 * `./durable` loads pg-boss (and PGlite, only for the embedded engine).
 *
 * @example Usage
 * ```ts
 * import { openOutbox } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const received = Promise.withResolvers<string>();
 * const server = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   async (request) => {
 *     received.resolve(`${request.headers.get("webhook-id")} ${await request.text()}`);
 *     return new Response(null, { status: 202 });
 *   },
 * );
 * const dir = await Deno.makeTempDir();
 *
 * const outbox = await openOutbox({ dir }); // embedded; `{ connectionString }` for PostgreSQL
 * const { id } = await outbox.trigger(
 *   `http://127.0.0.1:${server.addr.port}/jobs/report`,
 *   { json: { report: 7 } },
 * ); // persisted: survives a crash from here on
 * outbox.start({ concurrency: 4 });
 *
 * assert.equal(await received.promise, `${id} {"report":7}`);
 * await outbox.stop(); // finishes in-flight deliveries, then closes
 * await server.shutdown();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
import { PgBoss } from "npm:pg-boss@12.38.0";
import type { ConstructorOptions, Job } from "npm:pg-boss@12.38.0";
import { trigger } from "../trigger/trigger.ts";
import { prepare, show } from "../trigger/_request.ts";
import type { TriggerOptions, TriggerResult } from "../trigger/types.ts";
import { ADMIN, type AdminHandle } from "./_admin_queries.ts";

export * from "../dedup/postgres.ts";
export type * from "../trigger/types.ts";
export * from "../trigger/errors.ts";
export type { ClaimResult, DedupStore } from "../hono/verify.ts";

/** How a failed delivery is retried. Whole seconds, as pg-boss stores them. */
export interface RetrySettings {
  /** Retries after the first attempt before the job is dead-lettered.
   * Default `5` (six attempts in all). */
  limit?: number;
  /** Seconds before the first retry. Default `2`. */
  delaySeconds?: number;
  /** Double the delay on each retry, with jitter. Default `true`. */
  backoff?: boolean;
  /** The longest delay between two attempts, in seconds, with `backoff`.
   * Default `300`. */
  maxDelaySeconds?: number;
}

/** Options for {@linkcode openOutbox}. */
export interface OutboxOptions {
  /** PostgreSQL to use instead of the embedded engine, e.g.
   * `postgres://user:password@db.example:5432/app`. Shared by every process
   * that opens it. */
  connectionString?: string;
  /** The embedded engine's directory (ignored with `connectionString`).
   * Default `"./.trigger-outbox"`. One process at a time. */
  dir?: string;
  /** The queue name; several outboxes can share one database under
   * different names. Dead letters go to `<queue>_dead`. Default
   * `"trigger_outbox"`. */
  queue?: string;
  /** The PostgreSQL schema pg-boss installs into. Default `"pgboss"`. */
  schema?: string;
  /** Retry settings for triggers that give none. */
  retry?: RetrySettings;
  /** Called for each delivery outcome and for database errors. Errors it
   * throws are ignored. Without it, database errors go to `console.error`. */
  onEvent?: (event: OutboxEvent) => void;
  /** Milliseconds to wait for a PostgreSQL connection. Default `10_000`. */
  connectTimeout?: number;
  /** Signs every delivery (Standard Webhooks headers) with this secret,
   * re-signed with a fresh timestamp on each attempt. It is not stored with
   * the jobs, so it can be rotated; a trigger's own `sign` wins. */
  sign?: { secret: string };
}

/** What {@linkcode Outbox.trigger} accepts: `trigger()`'s options plus when
 * and how often to try. `signal` and `waitUntil` belong to a live call and
 * are refused; `wait` is ignored (delivery always waits for the status).
 * A `sign` option is stored with the job, secret included (prefer the
 * outbox's `sign`, which is not); its `id` becomes the trigger's id, and its
 * `timestamp` is ignored: each attempt is signed afresh. */
export interface OutboxTriggerOptions extends TriggerOptions {
  /** Milliseconds to wait before the first attempt. Default `0`. */
  delay?: number;
  /** Retry settings for this trigger, over the outbox's. */
  retry?: RetrySettings;
}

/** Options for {@linkcode Outbox.start}. */
export interface DispatchOptions {
  /** Deliveries in flight at once in this process. Default `10`. */
  concurrency?: number;
  /** Milliseconds between polls when the queue is empty. A trigger made
   * through this outbox wakes its dispatcher at once. Default `500`. */
  pollInterval?: number;
}

/** Options for {@linkcode Outbox.stop}. */
export interface StopOptions {
  /** Milliseconds to let in-flight deliveries finish before aborting them
   * (an aborted delivery counts as a failed attempt and is retried).
   * Default: each finishes or hits its own `timeout`. */
  timeout?: number;
  /** Close the database too. Default `true`; `false` only stops delivering,
   * and `start()` may be called again. */
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
    method: string;
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
    type: "error";
    /** A database or dispatcher error; the dispatcher keeps going. */
    error: unknown;
  };

/** Why a delivery attempt failed, as stored with the job. */
export interface DeliveryError {
  /** A `TriggerError` code: `"HTTP_STATUS"`, `"CONNECT"`, `"TIMEOUT"`… */
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
  /** Being delivered by some dispatcher. */
  active: number;
  /** Dead letters not yet re-driven or discarded. */
  dead: number;
  /** Delivered by this process since it opened the outbox. */
  delivered: number;
  /** Failed attempts this process scheduled for a retry. */
  retried: number;
  /** Jobs this process dead-lettered. */
  deadLettered: number;
  /** Deliveries in flight in this process now. */
  inFlight: number;
}

/** A durable outbox: see {@linkcode openOutbox}. */
export interface Outbox {
  /** `"embedded"` (PGlite) or `"postgres"`. */
  readonly engine: "embedded" | "postgres";
  /**
   * Persists a trigger for delivery. Resolves once it is stored.
   *
   * @param url The target, an `http:` or `https:` URL.
   * @param options `trigger()`'s options, plus `delay` and `retry`.
   * @returns The trigger's id, which every delivery sends as `webhook-id`.
   * @throws {TypeError} Synchronously, for the input `trigger()` refuses
   *   (same message), and for `signal` or `waitUntil`. Nothing is stored.
   * @throws {RangeError} For a bad `timeout`, `delay` or retry setting.
   */
  trigger(
    url: string | URL,
    options?: OutboxTriggerOptions,
  ): Promise<{ id: string }>;
  /** Starts delivering in this process; does nothing if already started.
   * @param options Concurrency and polling. */
  start(options?: DispatchOptions): void;
  /** Stops delivering (in-flight deliveries finish first), then closes.
   * @param options A time limit for in-flight deliveries; `close: false`. */
  stop(options?: StopOptions): Promise<void>;
  /** Lists dead letters, oldest first.
   * @param options At most `limit` (default 100). */
  deadLetters(options?: { limit?: number }): Promise<DeadLetter[]>;
  /** Moves dead letters back to the queue for new attempts, with their
   * `webhook-id` unchanged. @param ids Which ones; all when omitted.
   * @returns How many were moved. */
  redrive(ids?: string[]): Promise<number>;
  /** Deletes dead letters for good. @param ids Which ones.
   * @returns How many were deleted. */
  discard(ids: string[]): Promise<number>;
  /** Counts jobs by state. @returns Database counts and process counters. */
  stats(): Promise<OutboxStats>;
  /** `await using outbox = await openOutbox()` stops it at scope exit. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Why {@linkcode openOutbox} failed:
 * - `"LOCKED"`: another process (or another outbox in this one) has the
 *   embedded directory open.
 * - `"DATABASE"`: the database could not be opened or reached. */
export type OutboxErrorCode = "LOCKED" | "DATABASE";

/**
 * The error {@linkcode openOutbox} rejects with when it cannot open the
 * outbox; the original error is `cause`.
 *
 * @example Usage
 * ```ts
 * import { OutboxError } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new OutboxError("LOCKED", "Cannot open outbox: in use");
 * assert.equal(error.name, "OutboxError");
 * assert.equal(error.code, "LOCKED");
 * ```
 */
export class OutboxError extends Error {
  /** What kind of failure this is. */
  readonly code: OutboxErrorCode;
  /**
   * Creates an outbox error.
   *
   * @param code What kind of failure this is.
   * @param message A sentence naming the directory or database.
   * @param options The original error as `cause`.
   */
  constructor(
    code: OutboxErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "OutboxError";
    this.code = code;
  }
}

/** The form a trigger is stored in (the job's data). */
interface StoredRequest {
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
  timeout: number;
  transport?: "socket" | "fetch";
  caCerts?: string[];
}

const PREFIX = "Cannot trigger request: ";
const DEFAULT_DIR = "./.trigger-outbox";
const DEFAULT_QUEUE = "trigger_outbox";
const DEFAULT_RETRY: Required<RetrySettings> = {
  limit: 5,
  delaySeconds: 2,
  backoff: true,
  maxDelaySeconds: 300,
};
/** A dispatcher that stops touching its jobs loses them after this long. */
const HEARTBEAT_SECONDS = 10;
/** How often a dispatcher touches its in-flight jobs. */
const TOUCH_INTERVAL = 3_000;
/** pg-boss's supervise/monitor passes: expiry and lost heartbeats. */
const SUPERVISE_SECONDS = 2;
/** The lease beyond the HTTP timeout (a backstop; heartbeats come first). */
const LEASE_MARGIN_SECONDS = 60;
const NAME = /^[a-z_][a-z0-9_]{0,40}$/;
const RETRYABLE_STATUS = new Set([408, 429]);

/**
 * Opens a durable outbox: embedded (PGlite in `dir`) by default, PostgreSQL
 * with `connectionString`. Installs or migrates pg-boss's schema when needed.
 *
 * Delivery is at-least-once. A 2xx status line completes a job; connection
 * failures, timeouts, 5xx, 408 and 429 are retried with exponential backoff
 * up to `retry.limit`, then dead-lettered with the last error and the
 * attempt count; any other status is dead-lettered at once. Every attempt
 * carries the same `webhook-id` (the trigger's id).
 *
 * Crash safety: a dispatcher touches its in-flight jobs every 3 s; one that
 * dies (`kill -9`) stops touching them, and any live dispatcher (or the same
 * one restarted) puts them back for a retry 10–12 s later, then delivers
 * them after the retry delay.
 *
 * @param options Engine, queue, default retry settings, events.
 * @returns The open outbox; `start()` it to deliver in this process.
 * @throws {OutboxError} `"LOCKED"` when the embedded directory is in use,
 *   `"DATABASE"` when the database cannot be opened or reached.
 * @throws {TypeError} For bad options, naming the value.
 *
 * @example Usage
 * ```ts
 * import { openOutbox } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const outbox = await openOutbox({ dir, retry: { limit: 0 } });
 *
 * // Bad input throws before anything is stored, like trigger():
 * assert.throws(() => outbox.trigger("ftp://example.test/"), TypeError);
 *
 * // A 404 is not retried: it goes to the dead letters at once.
 * const server = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   () => new Response(null, { status: 404 }),
 * );
 * const { id } = await outbox.trigger(`http://127.0.0.1:${server.addr.port}/gone`);
 * outbox.start();
 * while ((await outbox.stats()).dead === 0) {
 *   await new Promise((r) => setTimeout(r, 100));
 * }
 * const [letter] = await outbox.deadLetters();
 * assert.equal(letter.id, id);
 * assert.equal(letter.error.status, 404);
 * assert.equal(letter.attempts, 1);
 *
 * await outbox.stop();
 * await server.shutdown();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function openOutbox(options: OutboxOptions = {}): Promise<Outbox> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot open outbox: options must be an object, received ${
        show(options)
      }`,
    );
  }
  const queue = options.queue ?? DEFAULT_QUEUE;
  const schema = options.schema ?? "pgboss";
  for (const [what, value] of [["queue", queue], ["schema", schema]]) {
    if (typeof value !== "string" || !NAME.test(value)) {
      throw new TypeError(
        `Cannot open outbox: ${what} must be lower-case letters, digits and "_" (at most 41), received ${
          show(value)
        }`,
      );
    }
  }
  const retry = retrySettings(
    options.retry,
    DEFAULT_RETRY,
    "Cannot open outbox: ",
  );
  const secret = options.sign?.secret;
  if (options.sign !== undefined) {
    try {
      prepare("http://outbox.invalid/", { sign: options.sign });
    } catch (error) {
      throw new TypeError(
        (error as Error).message.replace(PREFIX, "Cannot open outbox: "),
      );
    }
  }
  const onEvent = options.onEvent;
  if (onEvent !== undefined && typeof onEvent !== "function") {
    throw new TypeError(
      `Cannot open outbox: onEvent must be a function, received ${
        show(onEvent)
      }`,
    );
  }
  const opened = await openEngine(options);
  const boss = new PgBoss({
    ...opened.config,
    schema,
    schedule: false,
    superviseIntervalSeconds: SUPERVISE_SECONDS,
    monitorIntervalSeconds: SUPERVISE_SECONDS,
  });
  const emit = (event: OutboxEvent) => {
    if (onEvent === undefined) {
      if (event.type === "error") {
        console.error("fire-trigger outbox:", event.error);
      }
      return;
    }
    try {
      onEvent(event);
    } catch {
      // The dispatcher must not die of a listener's bug.
    }
  };
  boss.on("error", (error) => emit({ type: "error", error }));
  const dead = `${queue}_dead`;
  try {
    await boss.start();
    await boss.createQueue(dead, {});
    await boss.createQueue(queue, {
      deadLetter: dead,
      heartbeatSeconds: HEARTBEAT_SECONDS,
    });
  } catch (cause) {
    await boss.stop({ graceful: false, close: true }).catch(() => {});
    await opened.close();
    throw new OutboxError(
      "DATABASE",
      `Cannot open outbox: ${opened.where} failed: ${
        (cause as Error)?.message ?? cause
      }`,
      { cause },
    );
  }
  return new PgOutbox(boss, opened, {
    queue,
    dead,
    schema,
    retry,
    emit,
    secret,
  });
}

interface Engine {
  engine: "embedded" | "postgres";
  /** For messages: the directory, or the server without credentials. */
  where: string;
  config: ConstructorOptions;
  close(): Promise<void>;
}

async function openEngine(options: OutboxOptions): Promise<Engine> {
  const { connectionString } = options;
  if (connectionString !== undefined) {
    if (typeof connectionString !== "string" || connectionString === "") {
      throw new TypeError(
        `Cannot open outbox: connectionString must be a non-empty string, received ${
          show(connectionString)
        }`,
      );
    }
    const connectTimeout = options.connectTimeout ?? 10_000;
    if (typeof connectTimeout !== "number" || !(connectTimeout > 0)) {
      throw new RangeError(
        `Cannot open outbox: connectTimeout must be a positive number of milliseconds, received ${
          show(connectTimeout)
        }`,
      );
    }
    return {
      engine: "postgres",
      where: `PostgreSQL at ${describeServer(connectionString)}`,
      config: {
        connectionString,
        connectionTimeoutMillis: connectTimeout,
        application_name: "fire-trigger-outbox",
      },
      close: () => Promise.resolve(),
    };
  }
  const dir = options.dir ?? DEFAULT_DIR;
  if (typeof dir !== "string" || dir === "") {
    throw new TypeError(
      `Cannot open outbox: dir must be a non-empty string, received ${
        show(dir)
      }`,
    );
  }
  const lock = await lockDirectory(dir);
  try {
    const { PGlite } = await import("npm:@electric-sql/pglite@0.5.16");
    const { fromPglite } = await import("npm:pg-boss@12.38.0");
    let pglite;
    try {
      pglite = await PGlite.create(`${dir}/pgdata`);
    } catch (cause) {
      throw new OutboxError(
        "DATABASE",
        `Cannot open outbox: the embedded database in ${
          JSON.stringify(dir)
        } could not be opened: ${(cause as Error)?.message ?? cause}`,
        { cause },
      );
    }
    const db = pglite;
    return {
      engine: "embedded",
      where: `the embedded database in ${JSON.stringify(dir)}`,
      config: { db: fromPglite(db), backend: "pglite" },
      close: async () => {
        try {
          await db.close();
        } finally {
          lock.close();
        }
      },
    };
  } catch (error) {
    lock.close();
    throw error;
  }
}

/** Takes the embedded directory's lock file (an exclusive `flock`, which the
 * system drops when the process dies, even by `kill -9`). */
async function lockDirectory(dir: string): Promise<Deno.FsFile> {
  if (typeof Deno?.open !== "function") {
    throw new TypeError(
      "Cannot open outbox: the embedded engine needs Deno's file locks; give connectionString to use PostgreSQL",
    );
  }
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/outbox.lock`;
  const file = await Deno.open(path, {
    read: true,
    write: true,
    create: true,
  });
  let locked = false;
  try {
    locked = await file.tryLock(true);
  } catch (cause) {
    file.close();
    throw new OutboxError(
      "LOCKED",
      `Cannot open outbox: could not lock ${JSON.stringify(path)}: ${
        (cause as Error)?.message ?? cause
      }`,
      { cause },
    );
  }
  if (!locked) {
    file.close();
    let holder = "";
    try {
      const pid = (await Deno.readTextFile(path)).trim();
      if (/^\d+$/.test(pid)) holder = ` (pid ${pid})`;
    } catch {
      // The pid is only for the message.
    }
    throw new OutboxError(
      "LOCKED",
      `Cannot open outbox: the embedded database in ${
        JSON.stringify(dir)
      } is in use by another process${holder}. PGlite allows one process per directory; give each process its own dir, or share PostgreSQL with connectionString`,
    );
  }
  await file.truncate(0);
  await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  return file;
}

function describeServer(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    return `${url.hostname}:${url.port || "5432"}${url.pathname}`;
  } catch {
    return "the given connectionString";
  }
}

function retrySettings(
  given: unknown,
  base: Required<RetrySettings>,
  prefix: string,
): Required<RetrySettings> {
  if (given === undefined) return base;
  if (typeof given !== "object" || given === null) {
    throw new TypeError(
      `${prefix}retry must be an object, received ${show(given)}`,
    );
  }
  const retry = { ...base, ...given as RetrySettings };
  for (const key of ["limit", "delaySeconds", "maxDelaySeconds"] as const) {
    const value = retry[key];
    if (!Number.isInteger(value) || value < 0 || value > 86_400) {
      throw new RangeError(
        `${prefix}retry.${key} must be a whole number from 0 to 86400, received ${
          show(value)
        }`,
      );
    }
  }
  if (typeof retry.backoff !== "boolean") {
    throw new TypeError(
      `${prefix}retry.backoff must be a boolean, received ${
        show(retry.backoff)
      }`,
    );
  }
  return retry;
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** What to do with a job after one attempt. */
function verdict(result: TriggerResult): "done" | "retry" | "dead" {
  if (result.ok) return "done";
  const status = result.error?.status ?? result.status;
  if (result.error?.code !== "HTTP_STATUS" || status === undefined) {
    return "retry";
  }
  return status >= 500 || RETRYABLE_STATUS.has(status) ? "retry" : "dead";
}

function sleep(ms: number, wake: AbortSignal): Promise<void> {
  // Woken already (a trigger stored while this dispatcher was fetching): an
  // abort listener added now would never fire.
  if (wake.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      wake.removeEventListener("abort", done);
      resolve();
    }
    wake.addEventListener("abort", done, { once: true });
  });
}

class PgOutbox implements Outbox {
  readonly engine: "embedded" | "postgres";
  #boss: PgBoss;
  #opened: Engine;
  #queue: string;
  #dead: string;
  #schema: string;
  #retry: Required<RetrySettings>;
  #emit: (event: OutboxEvent) => void;
  #secret?: string;
  #closed = false;
  #closing?: Promise<void>;
  // Dispatcher state.
  #running = false;
  #loop?: Promise<void>;
  #wake = new AbortController();
  #abort = new AbortController();
  #inFlight = new Map<string, Job<StoredRequest>>();
  #touchTimer?: ReturnType<typeof setInterval>;
  #counters = { delivered: 0, retried: 0, deadLettered: 0 };

  constructor(boss: PgBoss, opened: Engine, settings: {
    queue: string;
    dead: string;
    schema: string;
    retry: Required<RetrySettings>;
    emit: (event: OutboxEvent) => void;
    secret?: string;
  }) {
    this.#boss = boss;
    this.#opened = opened;
    this.engine = opened.engine;
    this.#queue = settings.queue;
    this.#dead = settings.dead;
    this.#schema = settings.schema;
    this.#retry = settings.retry;
    this.#emit = settings.emit;
    this.#secret = settings.secret;
  }

  trigger(
    url: string | URL,
    options: OutboxTriggerOptions = {},
  ): Promise<{ id: string }> {
    if (typeof options !== "object" || options === null) {
      // prepare() names it.
      prepare(url, options);
    }
    const { delay, retry: givenRetry, ...init } = options;
    for (const key of ["signal", "waitUntil"] as const) {
      if (init[key] !== undefined) {
        throw new TypeError(
          `${PREFIX}${key} cannot be stored; the outbox delivers later, on its own`,
        );
      }
    }
    const req = prepare(url, { ...init, wait: "accepted" });
    if (
      delay !== undefined &&
      (typeof delay !== "number" || !(delay >= 0) || delay > 2 ** 31 - 1)
    ) {
      throw new RangeError(
        `${PREFIX}delay must be a number of milliseconds from 0 to ${
          2 ** 31 - 1
        }, received ${show(delay)}`,
      );
    }
    const retry = retrySettings(givenRetry, this.#retry, PREFIX);
    if (this.#closed) {
      return Promise.reject(
        new Error("Cannot trigger request: the outbox is closed"),
      );
    }
    const jobId = crypto.randomUUID();
    const given = req.headers.find(([name]) =>
      name.toLowerCase() === "webhook-id"
    );
    if (given !== undefined && this.#secret !== undefined) {
      throw new TypeError(
        `${PREFIX}header "webhook-id" is set by the outbox's sign option and cannot be given`,
      );
    }
    const id = init.sign?.id !== undefined && req.sign !== undefined
      ? req.sign.id
      : given?.[1] ?? jobId;
    return (async () => {
      const body = req.body === null
        ? null
        : req.body instanceof Uint8Array
        ? req.body
        : new Uint8Array(await req.body.arrayBuffer());
      const stored: StoredRequest = {
        id,
        method: req.method,
        url: req.href,
        headers: req.headers,
        body: body === null ? null : toBase64(body),
        timeout: req.timeout,
      };
      if (init.transport !== undefined && init.transport !== "auto") {
        stored.transport = req.transport;
      }
      if (req.caCerts !== undefined) stored.caCerts = req.caCerts;
      if (init.sign !== undefined) stored.secret = init.sign.secret;
      await this.#boss.send(this.#queue, stored, {
        id: jobId,
        retryLimit: retry.limit,
        retryDelay: retry.delaySeconds,
        retryBackoff: retry.backoff,
        ...(retry.backoff ? { retryDelayMax: retry.maxDelaySeconds } : {}),
        expireInSeconds: Math.ceil(req.timeout / 1000) + LEASE_MARGIN_SECONDS,
        heartbeatSeconds: HEARTBEAT_SECONDS,
        startAfter: delay ? new Date(Date.now() + delay) : undefined,
      });
      if (!delay) this.#wake.abort();
      return { id };
    })();
  }

  start(options: DispatchOptions = {}): void {
    if (this.#closed) throw new Error("Cannot start outbox: it is closed");
    if (this.#running) return;
    const concurrency = options.concurrency ?? 10;
    const pollInterval = options.pollInterval ?? 500;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(
        `Cannot start outbox: concurrency must be a whole number above 0, received ${
          show(concurrency)
        }`,
      );
    }
    if (typeof pollInterval !== "number" || !(pollInterval > 0)) {
      throw new RangeError(
        `Cannot start outbox: pollInterval must be a positive number of milliseconds, received ${
          show(pollInterval)
        }`,
      );
    }
    this.#running = true;
    this.#abort = new AbortController();
    this.#touchTimer = setInterval(() => this.#touch(), TOUCH_INTERVAL);
    this.#loop = this.#dispatch(concurrency, pollInterval);
  }

  async #dispatch(concurrency: number, pollInterval: number): Promise<void> {
    const deliveries = new Set<Promise<void>>();
    while (this.#running) {
      const free = concurrency - this.#inFlight.size;
      if (free === 0) {
        await Promise.race(deliveries);
        continue;
      }
      // Reset before fetching: a trigger stored during the fetch wakes the
      // next wait at once (sleep() sees the abort).
      this.#wake = new AbortController();
      let jobs: Job<StoredRequest>[] = [];
      try {
        jobs = await this.#boss.fetch<StoredRequest>(this.#queue, {
          batchSize: free,
        });
      } catch (error) {
        if (!this.#running) break;
        this.#emit({ type: "error", error });
      }
      for (const job of jobs) {
        this.#inFlight.set(job.id, job);
        const delivery = this.#deliver(job).finally(() => {
          this.#inFlight.delete(job.id);
          deliveries.delete(delivery);
        });
        deliveries.add(delivery);
      }
      // A full batch says there is more: fetch again once a slot is free.
      if (jobs.length === free) continue;
      await sleep(pollInterval, this.#wake.signal);
    }
    await Promise.all(deliveries);
  }

  async #deliver(job: Job<StoredRequest>): Promise<void> {
    const data = job.data;
    const attempt = job.retryCount + 1;
    let result: TriggerResult;
    try {
      const secret = data.secret ?? this.#secret;
      const headers = data.headers.filter(([name]) =>
        !name.toLowerCase().startsWith("webhook-")
      );
      // The same id on every attempt; with a secret, a fresh signature.
      if (secret === undefined) headers.push(["webhook-id", data.id]);
      result = await trigger(data.url, {
        sign: secret === undefined ? undefined : { secret, id: data.id },
        method: data.method,
        headers,
        body: data.body === null ? undefined : fromBase64(data.body),
        timeout: data.timeout,
        wait: "accepted",
        transport: data.transport,
        caCerts: data.caCerts,
        signal: this.#abort.signal,
      });
    } catch (error) {
      // Stored input that no longer validates (e.g. caCerts on a runtime
      // that cannot use them): retrying will not help.
      await this.#settle(job, "dead", attempt, 0, {
        code: "INVALID",
        message: (error as Error)?.message ?? String(error),
      });
      return;
    }
    const error = result.error && {
      code: result.error.code,
      message: result.error.message,
      ...(result.status !== undefined ? { status: result.status } : {}),
    };
    await this.#settle(
      job,
      verdict(result),
      attempt,
      result.elapsed,
      error,
      result.status,
    );
  }

  async #settle(
    job: Job<StoredRequest>,
    outcome: "done" | "retry" | "dead",
    attempt: number,
    elapsed: number,
    error?: DeliveryError,
    status?: number,
  ): Promise<void> {
    const claim = { id: job.id, retryCount: job.retryCount };
    let type: "delivered" | "retry" | "dead" = "delivered";
    try {
      if (outcome === "done") {
        await this.#boss.complete(this.#queue, claim, { status });
        this.#counters.delivered++;
      } else {
        if (outcome === "dead") {
          // No retries left: pg-boss then dead-letters on fail(). If this
          // process dies in between, the expired job is dead-lettered too.
          await this.#boss.getDb().executeSql(
            `UPDATE ${this.#schema}.job SET retry_limit = retry_count
             WHERE name = $1 AND id = $2 AND state = 'active' AND retry_count = $3`,
            [this.#queue, job.id, job.retryCount],
          );
        }
        const { rows } = await this.#boss.getDb().executeSql(
          `SELECT retry_count < retry_limit AS more FROM ${this.#schema}.job
           WHERE name = $1 AND id = $2`,
          [this.#queue, job.id],
        );
        await this.#boss.fail(this.#queue, claim, error ?? {});
        type = rows[0]?.more ? "retry" : "dead";
        if (type === "retry") this.#counters.retried++;
        else this.#counters.deadLettered++;
      }
    } catch (cause) {
      // The job stays active; its heartbeat lapses and it is retried.
      this.#emit({ type: "error", error: cause });
      return;
    }
    this.#emit({
      type,
      id: job.data.id,
      method: job.data.method,
      url: job.data.url,
      attempt,
      elapsed,
      ...(status !== undefined ? { status } : {}),
      ...(error !== undefined ? { error } : {}),
    });
  }

  #touch(): void {
    if (this.#inFlight.size === 0) return;
    const claims = [...this.#inFlight.values()].map((job) => ({
      id: job.id,
      retryCount: job.retryCount,
    }));
    this.#boss.touch(this.#queue, claims).catch((error) =>
      this.#emit({ type: "error", error })
    );
  }

  stop(options: StopOptions = {}): Promise<void> {
    const close = options.close ?? true;
    const timeout = options.timeout;
    if (
      timeout !== undefined &&
      (typeof timeout !== "number" || !(timeout >= 0) || timeout > 2 ** 31 - 1)
    ) {
      throw new RangeError(
        `Cannot stop outbox: timeout must be a number of milliseconds from 0 to ${
          2 ** 31 - 1
        }, received ${show(timeout)}`,
      );
    }
    if (this.#closing) return this.#closing;
    const stopping = (async () => {
      if (this.#running) {
        this.#running = false;
        this.#wake.abort();
        const timer = timeout === undefined
          ? undefined
          : setTimeout(() => this.#abort.abort(), timeout);
        try {
          await this.#loop;
        } finally {
          clearTimeout(timer);
          clearInterval(this.#touchTimer);
        }
      }
      if (close) {
        this.#closed = true;
        try {
          await this.#boss.stop({
            graceful: true,
            close: true,
            timeout: 5_000,
          });
        } finally {
          await this.#opened.close();
        }
      }
    })();
    if (close) this.#closing = stopping;
    return stopping;
  }

  async deadLetters(options: { limit?: number } = {}): Promise<DeadLetter[]> {
    const limit = options.limit ?? 100;
    const jobs = await this.#boss.findJobs<StoredRequest>(this.#dead, {
      queued: true,
      limit,
    });
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
          ...(typeof output.status === "number"
            ? { status: output.status }
            : {}),
        },
        deadAt: job.createdOn,
      };
    });
  }

  async #deadIds(ids: string[]): Promise<string[]> {
    const found: string[] = [];
    for (const id of ids) {
      const jobs = await this.#boss.findJobs<StoredRequest>(this.#dead, {
        data: { id },
        queued: true,
      });
      found.push(...jobs.map((job) => job.id));
    }
    return found;
  }

  async redrive(ids?: string[]): Promise<number> {
    if (ids === undefined) {
      let moved = 0;
      for (;;) {
        const count = await this.#boss.redrive(this.#dead, { limit: 1000 });
        moved += count;
        if (count < 1000) break;
      }
      if (moved > 0) this.#wake.abort();
      return moved;
    }
    const deadIds = await this.#deadIds(ids);
    if (deadIds.length === 0) return 0;
    const moved = await this.#boss.redrive(this.#dead, {
      ids: deadIds,
      limit: deadIds.length,
    });
    if (moved > 0) this.#wake.abort();
    return moved;
  }

  async discard(ids: string[]): Promise<number> {
    const deadIds = await this.#deadIds(ids);
    if (deadIds.length === 0) return 0;
    await this.#boss.deleteJob(this.#dead, deadIds);
    return deadIds.length;
  }

  async stats(): Promise<OutboxStats> {
    const { rows } = await this.#boss.getDb().executeSql(
      `SELECT name, state::text AS state, count(*)::int AS count
       FROM ${this.#schema}.job WHERE name = $1 OR name = $2
       GROUP BY name, state`,
      [this.#queue, this.#dead],
    );
    const stats: OutboxStats = {
      queued: 0,
      active: 0,
      dead: 0,
      ...this.#counters,
      inFlight: this.#inFlight.size,
    };
    for (const { name, state, count } of rows) {
      if (name === this.#dead) {
        if (state === "created" || state === "retry") stats.dead += count;
      } else if (state === "created" || state === "retry") {
        stats.queued += count;
      } else if (state === "active") stats.active += count;
    }
    return stats;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /** For the dashboard and the command line (./_admin_queries.ts). */
  [ADMIN](): AdminHandle {
    return {
      sql: (text, values) => this.#boss.getDb().executeSql(text, values),
      schema: this.#schema,
      queue: this.#queue,
      dead: this.#dead,
      wake: () => this.#wake.abort(),
    };
  }
}
