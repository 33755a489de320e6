// openOutbox() and the Outbox it returns: checks input, opens the engine,
// creates the queues, and wires storing, delivering and administration.
import {
  ownBody,
  prepare,
  type PreparedRequest,
  SIGN_HEADERS,
} from "../trigger/_request.ts";
import { show } from "../_show.ts";
import { isMessageId } from "../signature/_sign.ts";
import { checkOptions } from "../_options.ts";
import { dropRejection } from "../_callback.ts";
import { OutboxError } from "./errors.ts";
import { type Engine, openEngine } from "./_engine.ts";
import {
  checkHeadSize,
  checkOpenOptions,
  checkStorable,
  duration,
  OPEN,
  type OpenSettings,
  type Retry,
  retrySettings,
  TRIGGER,
} from "./_validate.ts";
import {
  groupCommit,
  HEARTBEAT_SECONDS,
  type JobRow,
  jobRow,
  LEASE_MARGIN,
  LEASE_MARGIN_RANGE,
  LEASE_MARGIN_SECONDS,
  overloaded,
  pendingBodies,
  type StoredRequest,
  storedRequest,
} from "./_enqueue.ts";
import type { Batcher } from "./_batch.ts";
import { checkBodySize, dropBody, knownSize, readBody } from "./_body.ts";
import { Dispatcher } from "./_dispatcher.ts";
import { traceEnqueue } from "./_trace.ts";
import * as admin from "./_admin.ts";
import { ADMIN, type AdminHandle } from "./_admin_queries.ts";
import { nearest } from "./_nearest.ts";
import {
  extendRetention,
  RETENTION_MARGIN_SECONDS,
  type Sql,
} from "./_pgboss_sql.ts";
import type {
  DeadLetter,
  DispatchOptions,
  Outbox,
  OutboxEvent,
  OutboxOptions,
  OutboxStats,
  OutboxTriggerOptions,
  StopOptions,
} from "./types.ts";

/**
 * Opens a durable outbox: embedded (PGlite in `dir`) by default, PostgreSQL
 * with `connectionString`. Installs or migrates pg-boss's schema when needed
 * (`create: false`: only opens one that exists).
 *
 * Delivery is at-least-once. A 2xx status line completes a job; connection
 * failures, timeouts, 5xx, 408 and 429 are retried with exponential backoff
 * up to `retry.limit`, then dead-lettered with the last error and the
 * attempt count; any other status is dead-lettered at once. A 429 or 503
 * with `Retry-After` is retried no sooner than it asks, at most
 * `retry.maxDelay` later (300 s without backoff). Every attempt
 * carries the same `webhook-id` (the trigger's id).
 *
 * Crash safety: a dispatcher touches its in-flight jobs every 3 s; one that
 * dies (`kill -9`) stops touching them, and any live dispatcher (or the same
 * one restarted) puts them back for a retry 10–12 s after their last touch
 * (7–12 s after the crash), then delivers them after the retry delay.
 *
 * @param options Engine, queue, default retry settings, events.
 * @returns The open outbox; `start()` it to deliver in this process.
 * @throws {OutboxError} `"LOCKED"` when the embedded directory is in use,
 *   `"STORAGE"` when it cannot be written, `"DATABASE"` or `"TIMEOUT"` when
 *   the database cannot be opened or reached; with `create: false`,
 *   `"NOT_FOUND"` when the directory, schema or queue does not exist;
 *   `"CONFLICT"` when the queue is another pg-boss user's (not `standard`,
 *   or another dead letter queue).
 * @throws {TypeError} Synchronously, for bad options, naming the value;
 *   as a rejection, where pg-boss's `npm:` import cannot be loaded (Node or
 *   Bun running the sources, not a bundle) or, embedded, there are no Deno
 *   file locks.
 * @throws {RangeError} Synchronously, for a bad duration or retry setting.
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
 * for (let i = 0; (await outbox.stats()).dead === 0; i++) {
 *   assert.ok(i < 300, "dead-lettered within 30 s");
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
export function openOutbox(options: OutboxOptions = {}): Promise<Outbox> {
  // Synchronous: bad input throws at the call site.
  return open(checkOpenOptions(options), leaseMarginOf(options));
}

/** The lease margin a test gave (`[LEASE_MARGIN]`, whole seconds, in
 * {@linkcode LEASE_MARGIN_RANGE}), or the default. */
function leaseMarginOf(options: OutboxOptions): number {
  const margin = (options as { [LEASE_MARGIN]?: unknown })[LEASE_MARGIN];
  if (margin === undefined) return LEASE_MARGIN_SECONDS;
  const { min, max } = LEASE_MARGIN_RANGE;
  if (
    !Number.isInteger(margin) || (margin as number) < min ||
    (margin as number) > max
  ) {
    throw new RangeError(
      `${OPEN}the lease margin must be whole seconds from ${min} to ${max}, received ${
        show(margin)
      }`,
    );
  }
  return margin as number;
}

async function open(
  settings: OpenSettings,
  leaseMargin: number,
): Promise<Outbox> {
  const onEvent = settings.onEvent as
    | ((event: OutboxEvent) => void)
    | undefined;
  const emit = (event: OutboxEvent) => {
    if (onEvent === undefined) {
      if (event.type === "error") {
        console.error("fire-trigger outbox:", event.error);
      }
      return;
    }
    try {
      dropRejection(onEvent(event));
    } catch {
      // The dispatcher must not die of a listener's bug.
    }
  };
  const engine = await openEngine(
    settings,
    (error) => emit({ type: "error", error }),
  );
  const dead = `${settings.queue}_dead`;
  try {
    let existing: QueueFound[] = [];
    await engine.run(OPEN.slice(0, -2), async () => {
      // Before anything is created: a refused queue leaves no "_dead"
      // queue of ours in another user's schema.
      existing = await checkQueues(engine, settings);
      if (!settings.create) return await mustHaveQueues(engine, settings);
      await engine.boss.createQueue(dead, {
        retentionSeconds: RETENTION_MARGIN_SECONDS,
      });
      await engine.boss.createQueue(settings.queue, {
        deadLetter: dead,
        heartbeatSeconds: HEARTBEAT_SECONDS,
        retentionSeconds: RETENTION_MARGIN_SECONDS,
      });
      // Again: one another process made meanwhile (createQueue then did
      // nothing) may not be ours either.
      await checkQueues(engine, settings);
    });
    if (settings.create) {
      await extendOlderRetention(engine, settings, existing, emit);
    }
  } catch (error) {
    await engine.close().catch(() => {});
    throw error;
  }
  return new PgOutbox(engine, {
    queues: { queue: settings.queue, dead, schema: settings.schema },
    retry: settings.retry,
    queryTimeout: settings.queryTimeout,
    maxBodySize: settings.maxBodySize,
    emit,
    secret: settings.secret,
    leaseMargin,
  });
}

/** `create: false`: `NOT_FOUND` naming the queue (and the queues there
 * are) unless it and its dead-letter queue exist. */
async function mustHaveQueues(
  engine: Engine,
  { queue, schema }: OpenSettings,
): Promise<void> {
  const wanted = [queue, `${queue}_dead`];
  // By name: a list of every queue stops at pg-boss's page (1,000).
  const found = (await engine.boss.getQueues(wanted)).map((q) => q.name);
  const missing = wanted.filter((n) => !found.includes(n));
  if (missing.length === 0) return;
  const names = (await engine.boss.getQueues()).map((q) => q.name);
  // Each outbox is a queue and its "_dead" queue: name the first.
  const outboxes = names.filter((n) =>
    !(n.endsWith("_dead") && names.includes(n.slice(0, -5)))
  );
  const shown = nearest(outboxes, queue);
  throw new OutboxError(
    "NOT_FOUND",
    `${OPEN}no queue ${JSON.stringify(missing[0])} in schema ${
      JSON.stringify(schema)
    } of ${engine.where} (create: false creates none); ${
      shown.length === 0
        ? "it has no queues"
        : `queues there: ${shown.join(", ")}`
    }`,
  );
}

/** A queue as {@linkcode checkQueues} found it. */
interface QueueFound {
  name: string;
  retentionSeconds?: number;
}

/**
 * `CONFLICT` unless the queue and its dead letter queue, where they exist,
 * are as the outbox makes them: pg-boss's `standard` policy (the others
 * keep one job per key, and pg-boss's insert skips the rest: a trigger
 * would resolve stored for a row never written) and `<queue>_dead` as the
 * dead letter queue (or failed jobs become no dead letters). Writes
 * nothing. The queues found.
 */
async function checkQueues(
  engine: Engine,
  { queue, schema }: OpenSettings,
): Promise<QueueFound[]> {
  const dead = `${queue}_dead`;
  const queues = await engine.boss.getQueues([queue, dead]);
  const main = queues.find((q) => q.name === queue);
  const problems: string[] = [];
  for (const q of queues) {
    if ((q.policy ?? "standard") !== "standard") {
      problems.push(
        `queue ${JSON.stringify(q.name)} has policy ${
          JSON.stringify(q.policy)
        } (not "standard")`,
      );
    }
  }
  if (main !== undefined && main.deadLetter !== dead) {
    problems.push(
      `queue ${JSON.stringify(queue)} has ${
        main.deadLetter
          ? `dead letter queue ${JSON.stringify(main.deadLetter)}`
          : "no dead letter queue"
      } (not ${JSON.stringify(dead)})`,
    );
  }
  if (problems.length > 0) {
    throw new OutboxError(
      "CONFLICT",
      `${OPEN}${problems.join("; ")}, in schema ${
        JSON.stringify(schema)
      } of ${engine.where}: it is not an outbox's queue; give the outbox a queue of its own`,
    );
  }
  return queues;
}

/** Rows {@linkcode extendRetention} changes per statement. */
const RETENTION_BATCH = 5_000;

/**
 * Queues an earlier release made (pg-boss's 14-day retention) get the
 * outbox's, and so do the rows already in them (pg-boss fixed each row's
 * `keep_until` when it wrote it): waiting jobs keep their schedule and 365
 * days, dead letters 365 days. Once: the queue has the retention after. In
 * batches, each within `queryTimeout` (a backlog of a million rows is no
 * one statement's work); one that fails is reported (an `error` event) and
 * the rest is done at the next open: the queues keep their retention
 * until every row has the new one. The outbox opens either way.
 */
async function extendOlderRetention(
  engine: Engine,
  { queue, schema }: OpenSettings,
  existing: QueueFound[],
  emit: (event: OutboxEvent) => void,
): Promise<void> {
  const older = existing.filter((q) =>
    (q.retentionSeconds ?? 0) < RETENTION_MARGIN_SECONDS
  );
  if (older.length === 0) return;
  try {
    while (
      await engine.run(
        "Cannot extend the retention of an earlier release's jobs",
        () =>
          extendRetention(
            engine.boss.getDb() as Sql,
            schema,
            queue,
            `${queue}_dead`,
            RETENTION_BATCH,
          ),
      ) === RETENTION_BATCH
    ) {
      // Until a batch finds fewer rows short of their retention.
    }
    for (const q of older) {
      await engine.run(
        "Cannot extend the retention of an earlier release's queues",
        () =>
          engine.boss.updateQueue(q.name, {
            retentionSeconds: RETENTION_MARGIN_SECONDS,
          }),
      );
    }
  } catch (error) {
    emit({ type: "error", error });
  }
}

class PgOutbox implements Outbox {
  readonly engine: "embedded" | "postgres";
  #engine: Engine;
  #queues: admin.Queues;
  #retry: Retry;
  #secret?: string;
  #maxBodySize: number;
  #insert: Batcher<JobRow>;
  /** Body text waiting to be stored or being read (`"OVERLOADED"` past
   * 64 MiB). */
  #bodies = pendingBodies();
  #dispatcher: Dispatcher;
  #closed = false;
  /** Aborted when the outbox closes: body reads under way stop. */
  #reads = new AbortController();
  #queryTimeout: number;
  #leaseMargin: number;
  #closing?: Promise<void>;
  #stopping?: Promise<void>;

  constructor(engine: Engine, settings: {
    queues: admin.Queues;
    retry: Retry;
    queryTimeout: number;
    maxBodySize: number;
    emit: (event: OutboxEvent) => void;
    secret?: string;
    leaseMargin: number;
  }) {
    this.#engine = engine;
    this.#leaseMargin = settings.leaseMargin;
    this.engine = engine.engine;
    this.#queues = settings.queues;
    this.#retry = settings.retry;
    this.#secret = settings.secret;
    this.#maxBodySize = settings.maxBodySize;
    this.#queryTimeout = settings.queryTimeout;
    this.#insert = groupCommit(
      engine,
      settings.queues.queue,
      settings.queryTimeout,
      this.#bodies,
    );
    this.#dispatcher = new Dispatcher(engine, {
      queue: settings.queues.queue,
      schema: settings.queues.schema,
      secret: settings.secret,
      maxBodySize: settings.maxBodySize,
      emit: settings.emit,
      leaseMargin: settings.leaseMargin,
    });
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
    let req: PreparedRequest | undefined;
    let retry: Retry, id: string, jobId: string;
    try {
      // Read once, now, as prepare() reads it (getters too): the secret
      // checked at the call is the one stored, whatever the caller's object
      // holds later (one object reused for the next tenant).
      const sign = init.sign;
      if (typeof sign === "object" && sign !== null && !Array.isArray(sign)) {
        const { secret, id, timestamp } = sign;
        init.sign = { secret, id, timestamp };
      }
      for (const key of ["signal", "waitUntil", "fetch"] as const) {
        if (init[key] !== undefined) {
          throw new TypeError(
            `${TRIGGER}${key} cannot be stored; the outbox delivers later, on its own`,
          );
        }
      }
      req = prepare(url, { ...init, wait: "accepted" });
      // Stored after a wait: the caller's bytes are copied now.
      try {
        ownBody(req);
      } catch (error) {
        // Detached during the call (not seen: the options are copied, and
        // their getters read, before the body is looked at): not stored.
        throw new OutboxError(
          "BODY",
          `${TRIGGER}not stored: ${(error as Error).message}`,
          { cause: error },
        );
      }
      ({ retry, id, jobId } = this.#admit(req, init, delay, givenRetry));
    } catch (error) {
      // Refused at the call: a stream body is let go, taken or not.
      if (req !== undefined) dropBody(req.body);
      else if (init.body instanceof ReadableStream && !init.body.locked) {
        init.body.cancel().catch(() => {});
      }
      if (error instanceof OutboxError) return Promise.reject(error);
      throw error;
    }
    // A PRODUCER span in the caller's context, over the wait until the row
    // is committed (its group's transaction); its context goes with the job.
    const trace = traceEnqueue(this.#queues.queue, jobId, req.href);
    const storing = (async () => {
      const read = await readBody(req.body, {
        max: this.#maxBodySize,
        timeout: this.#queryTimeout,
        closing: this.#reads.signal,
        budget: this.#bodies,
        overloaded: () => overloaded(this.#engine.where),
      });
      let data: StoredRequest;
      try {
        data = storedRequest(id, req, read.body, {
          transport: init.transport,
          secret: init.sign?.secret,
          trace: trace?.carrier,
        });
        // Closed while the body was read: nothing is stored after close.
        if (this.#closed) {
          throw new OutboxError("CLOSED", `${TRIGGER}the outbox is closed`);
        }
      } finally {
        // Handed on at once (no wait in between): the waiting row takes
        // the same share of the budget again as it is added.
        read.release();
      }
      await this.#insert.add(
        jobRow(jobId, data, retry, delay, this.#leaseMargin),
      );
      if (!delay) this.#dispatcher.wake();
      return { id };
    })();
    return trace?.follow(storing) ?? storing;
  }

  /** The checks of a trigger after `prepare()` (bad input throws; a closed
   * outbox is `CLOSED`), and the ids it is stored under. */
  #admit(
    req: PreparedRequest,
    init: OutboxTriggerOptions,
    delay: unknown,
    givenRetry: OutboxTriggerOptions["retry"],
  ): { retry: Retry; id: string; jobId: string } {
    duration(TRIGGER, "delay", delay, 0);
    checkBodySize(knownSize(req.body, init.body), this.#maxBodySize);
    const retry = retrySettings(givenRetry, this.#retry, TRIGGER);
    const given = req.headers.find(([name]) =>
      name.toLowerCase() === "webhook-id"
    );
    if (this.#secret !== undefined) {
      // Set again on every attempt: one given here would be dropped.
      const owned = req.headers.find(([name]) =>
        SIGN_HEADERS.includes(name.toLowerCase())
      );
      if (owned !== undefined) {
        throw new TypeError(
          `${TRIGGER}header "${
            owned[0]
          }" is set by the outbox's sign option and cannot be given`,
        );
      }
    }
    // The id of every attempt, which an outbox with `sign` (this one later,
    // or another process's dispatcher) signs: one a signer or a receiver
    // would refuse could never be delivered.
    if (given !== undefined && !isMessageId(given[1])) {
      throw new TypeError(
        `${TRIGGER}header "${
          given[0]
        }" must be 1 to 256 visible ASCII characters other than "." (a Standard Webhooks id), received ${
          show(given[1])
        }`,
      );
    }
    if (this.#closed) {
      throw new OutboxError("CLOSED", `${TRIGGER}the outbox is closed`);
    }
    const jobId = crypto.randomUUID();
    const id = init.sign?.id !== undefined && req.sign !== undefined
      ? req.sign.id
      : given?.[1] ?? jobId;
    if (init.sign?.timestamp !== undefined) {
      throw new TypeError(
        `${TRIGGER}sign.timestamp cannot be given: each attempt is signed afresh, at its own time`,
      );
    }
    checkHeadSize(TRIGGER, req.method, req.href, req.headers);
    checkStorable(TRIGGER, {
      method: req.method,
      url: req.href,
      headers: req.headers,
      caCerts: req.caCerts,
      "sign.secret": init.sign?.secret,
      "sign.id": id,
    });
    return { retry, id, jobId };
  }

  start(options: DispatchOptions = {}): void {
    checkOptions(options, "Cannot start outbox: ");
    if (this.#closed || this.#closing !== undefined) {
      throw new OutboxError("CLOSED", "Cannot start outbox: it is closed");
    }
    const concurrency = options.concurrency ?? 10;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(
        `Cannot start outbox: concurrency must be a whole number above 0, received ${
          show(concurrency)
        }`,
      );
    }
    const pollInterval = duration(
      "Cannot start outbox: ",
      "pollInterval",
      options.pollInterval,
      500,
      1,
    );
    // After a stop under way (`stop({ close: false })` then `start()`):
    // one dispatch loop at a time, never two.
    const begin = () => {
      if (!this.#closed && !this.#dispatcher.running) {
        this.#dispatcher.start(concurrency, pollInterval);
      }
    };
    if (this.#stopping === undefined) begin();
    else this.#stopping.then(begin, begin);
  }

  stop(options: StopOptions = {}): Promise<void> {
    checkOptions(options, "Cannot stop outbox: ");
    const close = options.close ?? true;
    if (typeof close !== "boolean") {
      throw new TypeError(
        `Cannot stop outbox: close must be a boolean, received ${show(close)}`,
      );
    }
    const timeout = duration(
      "Cannot stop outbox: ",
      "timeout",
      options.timeout,
      -1,
    );
    if (this.#closing) return this.#closing;
    // A stop under way (say `stop({ close: false })`) finishes first: the
    // database is never closed under deliveries still settling.
    const previous = this.#stopping;
    const stopping = (async () => {
      await previous?.catch(() => {});
      await this.#dispatcher.stop(timeout === -1 ? undefined : timeout);
      if (close) {
        this.#closed = true;
        this.#reads.abort();
        await this.#insert.idle();
        await this.#engine.close();
      }
    })();
    if (close) this.#closing = stopping;
    this.#stopping = stopping;
    stopping.finally(() => {
      if (this.#stopping === stopping) this.#stopping = undefined;
    }).catch(() => {});
    return stopping;
  }

  /** Rejects admin calls on a closed outbox with `CLOSED`, not a driver error. */
  #open<T>(what: string, run: () => Promise<T>): Promise<T> {
    return this.#closed
      ? Promise.reject(
        new OutboxError("CLOSED", `${what}: the outbox is closed`),
      )
      : run();
  }

  deadLetters(options: { limit?: number } = {}): Promise<DeadLetter[]> {
    checkOptions(options, "Cannot list dead letters: ");
    const limit = options.limit ?? 100;
    // Safe integers only: 1e21 is an integer too, and the query failed.
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError(
        `Cannot list dead letters: limit must be a whole number from 1 to ${Number.MAX_SAFE_INTEGER}, received ${
          show(limit)
        }`,
      );
    }
    return this.#open(
      "Cannot list dead letters",
      () => admin.deadLetters(this.#engine, this.#queues, limit),
    );
  }

  redrive(ids?: string[]): Promise<number> {
    checkIds("Cannot redrive dead letters: ", ids, true);
    const what = "Cannot redrive dead letters";
    return this.#open(
      what,
      () =>
        admin.redrive(this.#engine, this.#queues, {
          ids,
          leaseMargin: this.#leaseMargin,
          fallback: this.#retry,
          closing: () => this.#closingError(what),
        }),
    ).then((moved) => {
      if (moved > 0) this.#dispatcher.wake();
      return moved;
    }, (error) => {
      // Batches before the failure moved jobs: deliver them now.
      if (error instanceof OutboxError && error.done) this.#dispatcher.wake();
      throw error;
    });
  }

  discard(ids: string[]): Promise<number> {
    checkIds("Cannot discard dead letters: ", ids, false);
    const what = "Cannot discard dead letters";
    return this.#open(
      what,
      () =>
        admin.discard(this.#engine, this.#queues, ids, {
          closing: () => this.#closingError(what),
        }),
    );
  }

  /** `CLOSED` once `stop()` closes the outbox, for calls that work in
   * batches (checked before each). */
  #closingError(what: string): OutboxError | undefined {
    return this.#closed || this.#closing !== undefined
      ? new OutboxError("CLOSED", `${what}: the outbox is closed`)
      : undefined;
  }

  stats(): Promise<OutboxStats> {
    return this.#open(
      "Cannot read outbox stats",
      () =>
        admin.stats(this.#engine, this.#queues, {
          ...this.#dispatcher.counters,
          inFlight: this.#dispatcher.inFlight.size,
        }),
    );
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /** For the dashboard and the command line (./_admin_queries.ts). */
  [ADMIN](): AdminHandle {
    const engine = this.#engine;
    return {
      db: {
        executeSql: (text, values) =>
          this.#open(
            "Cannot read the outbox",
            () =>
              engine.run(
                "Cannot read the outbox",
                () => (engine.boss.getDb() as Sql).executeSql(text, values),
              ),
          ),
      },
      schema: this.#queues.schema,
      queue: this.#queues.queue,
      dead: this.#queues.dead,
      wake: () => this.#dispatcher.wake(),
    };
  }
}

function checkIds(prefix: string, ids: unknown, optional: boolean): void {
  if (optional && ids === undefined) return;
  if (!Array.isArray(ids) || ids.some((id) => typeof id !== "string")) {
    throw new TypeError(
      `${prefix}ids must be an array of strings, received ${show(ids)}`,
    );
  }
}
