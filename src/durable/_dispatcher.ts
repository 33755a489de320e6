// Delivering stored triggers: fetch jobs in batches, deliver each with
// trigger(), settle the outcomes in batches (completes in one statement,
// retries and dead letters in one transaction), touch in-flight jobs so a
// dispatcher that dies loses them to a live one.
import type { Job } from "npm:pg-boss@12.38.0";
import { trigger } from "../trigger/trigger.ts";
import { SIGN_HEADERS } from "../trigger/_request.ts";
import { DEFAULT_MAX_CONNECTIONS } from "../transport/_pool.ts";
import type { TriggerResult } from "../trigger/types.ts";
import { answered, type Engine } from "./_engine.ts";
import { resolvers } from "../_resolvers.ts";
import { Batcher, Rejected } from "./_batch.ts";
import {
  exhaustRetries,
  postponeRetries,
  releaseJobs,
  type Sql,
  withoutRetries,
} from "./_pgboss_sql.ts";
import { LEASE_MARGIN_SECONDS, type StoredRequest } from "./_enqueue.ts";
import { DEFAULT_RETRY } from "./_validate.ts";
import { fromBase64 } from "../signature/_sign.ts";
import { type AttemptTrace, detached, traceAttempt } from "./_trace.ts";
import type { DeliveryError, OutboxEvent } from "./types.ts";
import { DEFAULT_MAX_BODY_SIZE } from "../_options.ts";

/** How often a dispatcher touches its in-flight jobs. */
const TOUCH_INTERVAL = 3_000;
/** A job fetched ahead is attempted at once only while its lease was
 * renewed less than this long ago: the heartbeat lapses `beat` s after the
 * last renewal, and the attempt's first touch comes up to
 * {@linkcode TOUCH_INTERVAL} later, with a second for the touch itself (6 s
 * for the outbox's 10 s, `HEARTBEAT_SECONDS`); at least half the beat. */
function leaseSafeMs(beat: number): number {
  return Math.max(beat * 1_000 - TOUCH_INTERVAL - 1_000, beat * 500);
}
/** Waits before a settlement that failed (a database restart, a dropped
 * connection) is tried again: 11.75 s in all, past the 10 s heartbeat, so
 * an outage the lease outlasts is ridden out (when the retries ended at
 * 3.75 s, an outage of 4.5 s on a real PostgreSQL sent every delivery then
 * settling again). After the last, the job stays active and its heartbeat
 * lapses (a retry: the request is sent again). A late try is harmless:
 * pg-boss's complete() and fail() are fenced to the attempt. One that timed
 * out is not tried again: the database is stalled, not gone, and may still
 * apply it. */
const SETTLE_RETRY_MS = [250, 1_000, 2_500, 4_000, 4_000];
const RETRYABLE_STATUS = new Set([408, 429]);
/** A fetch brings about this many ms of deliveries at the current rate. */
const FILL_MS = 50;
/** The most jobs one fetch asks for: this many times `concurrency`, and no
 * more than {@linkcode MAX_FETCH} (unless `concurrency` is larger). */
const FETCH_PER_SLOT = 4;
const MAX_FETCH = 256;
/** Stored body text one fetch may bring at most, counting each job at the
 * largest body it may hold (`maxBodySize`, base64: 4/3): fetches of up to
 * 288 jobs at the default `maxBodySize` (384 MiB). */
const FETCH_BYTES = 288 * DEFAULT_MAX_BODY_SIZE * 4 / 3;
/** The shortest interval a delivery rate is measured over. */
const RATE_WINDOW_MS = 10;
/** A signal that never aborts (timer-only waits). */
const NEVER = new AbortController().signal;

type Outcome = "done" | "retry" | "dead";

interface Settlement {
  job: Job<StoredRequest>;
  outcome: Outcome;
  attempt: number;
  elapsed: number;
  error?: DeliveryError;
  status?: number;
  /** The wait the target asked for before a retry (`Retry-After`, ms). */
  retryAfter?: number;
}

export interface Counters {
  delivered: number;
  retried: number;
  deadLettered: number;
}

/** What to do with a job after one attempt. */
export function verdict(result: TriggerResult): Outcome {
  if (result.ok) return "done";
  const status = result.error?.status ?? result.status;
  if (result.error?.code !== "HTTP_STATUS" || status === undefined) {
    return "retry";
  }
  // 5xx only: a status past 599 is no server error (RFC 9110 §15).
  return (status >= 500 && status < 600) || RETRYABLE_STATUS.has(status)
    ? "retry"
    : "dead";
}

/**
 * Sizes fetches: about {@linkcode FILL_MS} ms of deliveries at the rate
 * attempts start, at least `concurrency`, at most 4 × `concurrency` and
 * {@linkcode MAX_FETCH} (or `concurrency` when larger), and never more jobs
 * than {@linkcode FETCH_BYTES} holds at `maxBodySize` each (at least one):
 * with large bodies allowed, a fetch of hundreds could take longer than
 * `queryTimeout`, its jobs claimed and never attempted. Fast deliveries take
 * fewer, larger statements (a statement's fixed cost, large on PGlite, is
 * shared by more jobs); a slow target keeps fetches at `concurrency`, so a
 * dispatcher does not hold jobs that another could deliver sooner, and
 * prefetched jobs (within two fetches) stay within 8 × `concurrency`.
 */
export class FetchSize {
  #min: number;
  #max: number;
  /** Attempts started per ms, smoothed. */
  #rate = 0;
  #count = 0;
  #since: number;

  constructor(
    concurrency: number,
    now: number,
    maxBodySize = DEFAULT_MAX_BODY_SIZE,
  ) {
    const fits = Math.max(1, Math.floor(FETCH_BYTES / (maxBodySize * 4 / 3)));
    this.#min = Math.min(concurrency, fits);
    this.#max = Math.min(
      fits,
      Math.max(concurrency, Math.min(FETCH_PER_SLOT * concurrency, MAX_FETCH)),
    );
    this.#since = now;
  }

  /** An HTTP attempt started. */
  started(): void {
    this.#count++;
  }

  /** How many jobs a fetch starting at `now` (ms) asks for. */
  next(now: number): number {
    const elapsed = now - this.#since;
    if (elapsed >= RATE_WINDOW_MS) {
      const rate = this.#count / elapsed;
      this.#rate = (this.#rate + rate) / 2;
      this.#count = 0;
      this.#since = now;
    }
    return Math.min(
      this.#max,
      Math.max(this.#min, Math.ceil(this.#rate * FILL_MS)),
    );
  }
}

/** The header an unsigned attempt gets from the outbox: its id. */
const UNSIGNED_HEADERS = ["webhook-id"];

/** The `concurrency` of every running dispatcher in this process: they
 * share the process's connections, so a delivery may open as many per
 * origin as all of them may deliver at once (two outboxes, each under the
 * cap of 128, could together be held past it). */
let runningConcurrency = 0;

export class Dispatcher {
  readonly inFlight = new Map<string, Job<StoredRequest>>();
  readonly counters: Counters = { delivered: 0, retried: 0, deadLettered: 0 };
  #engine: Engine;
  #queue: string;
  #schema: string;
  #secret?: string;
  #emit: (event: OutboxEvent) => void;
  #maxBodySize: number;
  #settle: Batcher<Settlement>;
  #running = false;
  #loop?: Promise<void>;
  #stopping?: Promise<void>;
  #wake = new AbortController();
  #abort = new AbortController();
  /** The `done` of answered deliveries still reading the rest of their
   * response (for the connection's reuse): cut when a stop is over. */
  #tails = new Set<Promise<void>>();
  /** This run's `concurrency`, counted in {@linkcode runningConcurrency}. */
  #concurrency = 0;
  #touchTimer?: ReturnType<typeof setInterval>;
  #touching?: Promise<void>;
  #reported = new WeakSet<object>();
  #retryWaits = new WeakMap<object, Promise<void>>();
  /** Settlements waiting to be tried again, and what ends their waits at
   * once: the database answering another statement (it is back). */
  #retrying = 0;
  #back = new AbortController();
  /** Aborted at `stop({ timeout })`'s deadline: every settlement waiting to
   * be tried again goes then, whatever refused it. */
  #stopWake = new AbortController();
  #settling = new Set<Promise<void>>();
  /** Called as each settlement ends: the dispatch loop's wake while it
   * waits for one (its slots all taken by outcomes not yet settled). */
  #onSettled?: () => void;
  /** A prefetched job not attempted within this long after its fetch goes
   * back to waiting: pg-boss's lease (`expireInSeconds`: the HTTP timeout
   * plus the lease margin) counts from the fetch, and the attempt and its
   * settlement must fit in it. */
  #holdLimit: number;
  /** When each held job's lease was last renewed, at the latest: its fetch
   * or this dispatcher's last touch that covered it (the time each
   * started). Dropped with the job from `inFlight` (`#forget`): a WeakMap
   * here grew the heap by 0.3–0.5 MB over 20,000 deliveries
   * (`tests/durable/dispatch_memory_test.ts`). */
  #leased = new Map<Job<StoredRequest>, Clocks>();

  constructor(engine: Engine, settings: {
    queue: string;
    schema: string;
    secret?: string;
    maxBodySize: number;
    emit: (event: OutboxEvent) => void;
    /** @default {LEASE_MARGIN_SECONDS} */
    leaseMargin?: number;
  }) {
    this.#engine = engine;
    this.#holdLimit = (settings.leaseMargin ?? LEASE_MARGIN_SECONDS) * 1000 /
      2;
    this.#maxBodySize = settings.maxBodySize;
    this.#queue = settings.queue;
    this.#schema = settings.schema;
    this.#secret = settings.secret;
    this.#emit = settings.emit;
    // One settle batch in flight: outcomes arriving meanwhile join the next
    // one (fewer, larger statements; two in flight made more, smaller ones
    // and delivered less on both engines).
    this.#settle = new Batcher((items) => this.#settleBatch(items), 500, 1);
  }

  get running(): boolean {
    return this.#running;
  }

  /** Ends a poll wait at once: new work is stored. */
  wake(): void {
    this.#wake.abort();
  }

  start(concurrency: number, pollInterval: number): void {
    this.#running = true;
    this.#concurrency = concurrency;
    runningConcurrency += concurrency;
    this.#abort = new AbortController();
    // A stop's deadline woke the waits of that run; this run waits again.
    this.#back = new AbortController();
    this.#stopWake = new AbortController();
    detached(() => {
      this.#touchTimer = setInterval(() => this.#touch(), TOUCH_INTERVAL);
      this.#loop = this.#dispatch(concurrency, pollInterval);
    });
  }

  /** Stops fetching and waits for in-flight deliveries and their
   * settlement; `timeout` ms on, aborts the deliveries still running. A
   * second call returns the stop under way. */
  stop(timeout: number | undefined): Promise<void> {
    if (this.#stopping) return this.#stopping;
    if (!this.#running) return Promise.resolve();
    this.#stopping = this.#stop(timeout).finally(() => {
      this.#stopping = undefined;
    });
    return this.#stopping;
  }

  async #stop(timeout: number | undefined): Promise<void> {
    this.#running = false;
    // Counted until this run's deliveries are over (they hold their
    // connections until then); a start() meanwhile counts its own.
    const concurrency = this.#concurrency;
    this.#wake.abort();
    const timer = timeout === undefined ? undefined : setTimeout(() => {
      this.#abort.abort();
      // Settlements waiting to be tried again go now, not after their
      // backoff: the stop's time is up.
      this.#back.abort();
      this.#stopWake.abort();
    }, timeout);
    try {
      await this.#loop;
      // Until none is left: one ending may start another (a reclaim's
      // touch answered after the loop ended releases its jobs).
      while (this.#settling.size > 0) await Promise.all(this.#settling);
    } finally {
      runningConcurrency -= concurrency;
      clearTimeout(timer);
      clearInterval(this.#touchTimer);
      // Deliveries answered at their status line may still be reading the
      // rest (a slow or stalled body): nothing waits for it now. Left, they
      // kept the process up to each one's timeout (30 s by default) after
      // the stop, and an exit then said they were cut short.
      this.#abort.abort();
      await Promise.all(this.#tails);
      // A touch under way finishes before the caller may close the engine.
      await this.#touching;
    }
  }

  async #dispatch(concurrency: number, pollInterval: number): Promise<void> {
    // Fetched jobs not yet attempted: within two batches, fetched while the
    // previous batch is being delivered (the fetch's round trip overlaps
    // the HTTP requests). A slot frees when its HTTP attempt ends; the
    // outcome is settled in the background, in batches.
    const ready: Array<{ job: Job<StoredRequest>; fetched: Clocks }> = [];
    const size = new FetchSize(
      concurrency,
      performance.now(),
      this.#maxBodySize,
    );
    /** Jobs the fetches under way asked for. */
    let asking = 0;
    const deliveries = new Set<Promise<void>>();
    const fetches = new Set<Promise<void>>();
    // PostgreSQL: two fetches in flight (each on its own connection, SKIP
    // LOCKED keeps them apart) hide one round trip behind another. PGlite
    // has one connection: one at a time.
    const parallel = this.#engine.engine === "postgres" ? 2 : 1;
    /** The last fetch came back short: poll again at `nextPoll`. */
    let drained = false;
    let nextPoll = 0;
    let hold: { at: number; wait: ReturnType<typeof sleep> } | undefined;
    // The loop waits for whichever comes first of what it is waiting for;
    // each tells it by calling `wake`. Not Promise.race over what is under
    // way: each race left a reaction on every delivery still pending, so a
    // delivery hanging to its timeout held one per pass of the loop (memory
    // growing with throughput, ~50 bytes a delivery, until it ended).
    let kick: (() => void) | undefined;
    const wake = () => {
      const resume = kick;
      kick = undefined;
      resume?.();
    };
    const fetchBatch = async (asked: number) => {
      // Reset before fetching: a trigger stored during the fetch wakes the
      // next wait at once.
      this.#wake = new AbortController();
      asking += asked;
      // The server starts each job's lease no earlier than this.
      const leased = clocks();
      let jobs: Job<StoredRequest>[] = [];
      try {
        jobs = await this.#fetch(asked);
        this.#answered();
      } catch (error) {
        if (this.#running) this.#emit({ type: "error", error });
      } finally {
        asking -= asked;
      }
      // Both clocks (see held()): on the wall clock alone, one set back
      // (NTP, a resumed VM) held every job past its hold limit.
      const fetched = clocks();
      for (const job of jobs) {
        this.inFlight.set(job.id, job);
        this.#leased.set(job, leased);
        ready.push({ job, fetched });
      }
      drained = jobs.length < asked;
      if (drained) nextPoll = performance.now() + pollInterval;
    };
    const deliverReady = () => {
      // Held too long (slow targets, a slow database): back to waiting
      // before the lease that started at the fetch runs out. The front is
      // the oldest (on the wall clock too, but for jobs fetched across a
      // step back: those go when the front does).
      const limit = this.#holdLimit;
      if (ready.length > 0 && held(ready[0].fetched) >= limit) {
        const expiring: Job<StoredRequest>[] = [];
        const kept: typeof ready = [];
        for (const entry of ready) {
          if (held(entry.fetched) >= limit) expiring.push(entry.job);
          else kept.push(entry);
        }
        ready.splice(0, ready.length, ...kept);
        this.#release(expiring);
      }
      // Outcomes waiting to be settled count too: attempts under way plus
      // outcomes not yet committed stay within 2 × concurrency, so a crash
      // can repeat at most that many requests. Slots idle on the HTTP side
      // lend their share to settling (larger settle batches when the
      // database is the slower side).
      const lapsing: typeof ready = [];
      while (
        ready.length > 0 && deliveries.size < concurrency &&
        deliveries.size + this.#settling.size < 2 * concurrency
      ) {
        const entry = ready.shift()!;
        const { job } = entry;
        if (this.#leaseAtRisk(job)) {
          lapsing.push(entry);
          continue;
        }
        size.started();
        const delivery = this.#deliver(job).finally(() => {
          deliveries.delete(delivery);
          wake();
        });
        deliveries.add(delivery);
      }
      if (lapsing.length > 0) reclaim(lapsing);
    };
    // Jobs whose lease may have lapsed (see #leaseAtRisk): touched first,
    // fenced to this attempt. Those the touch renews are still this
    // dispatcher's and go back to the front of the line; the others are
    // another's now (or failed by pg-boss), forgotten. A touch that fails
    // releases them (fenced too).
    const reclaim = (entries: typeof ready) => {
      const jobs = entries.map((entry) => entry.job);
      const started = clocks();
      const touched = this.#engine.run(
        "Cannot touch jobs",
        () => this.#engine.boss.touch(this.#queue, jobs.map(claim)),
      ).then((result) => {
        const renewed = renewedIds(result, jobs);
        const kept = entries.filter((entry) => renewed.has(entry.job.id));
        const lost: Job<StoredRequest>[] = [];
        for (const { job } of entries) {
          if (renewed.has(job.id)) this.#renewed(job, started);
          else lost.push(job);
        }
        // Released, not just forgotten: a no-op (fenced) for a job another
        // dispatcher has; back to waiting for one still this attempt's that
        // a count alone could not name.
        this.#release(lost);
        if (!this.#running) {
          this.#release(kept.map((entry) => entry.job));
          return;
        }
        ready.unshift(...kept);
        wake();
      }, (error) => {
        this.#emit({ type: "error", error });
        this.#release(jobs);
      });
      this.#track(touched);
    };
    while (this.#running) {
      deliverReady();
      const due = !drained || this.#wake.signal.aborted ||
        performance.now() >= nextPoll;
      // Prefetched jobs stay within two batches: ready, plus what the
      // fetches under way asked for and what the next one asks for (sized
      // now: on PostgreSQL two fetches may overlap for long stretches).
      while (fetches.size < parallel && due) {
        const batchSize = size.next(performance.now());
        if (ready.length + asking > batchSize) break;
        const fetch = fetchBatch(batchSize).finally(() => {
          fetches.delete(fetch);
          wake();
        });
        fetches.add(fetch);
        if (drained) break;
      }
      // Deliveries and fetches under way wake it as they end; settlements
      // too while outcomes not yet settled hold the slots.
      const settlingFull = this.#settling.size > 0 &&
        deliveries.size + this.#settling.size >= 2 * concurrency;
      this.#onSettled = settlingFull ? wake : undefined;
      const waiting = fetches.size > 0 || deliveries.size > 0 || settlingFull;
      // Wait for the poll only when one is really pending: with every
      // slot busy and the prefetch buffer full, no fetch starts, and a wake
      // that already fired (or a poll time already past) must not turn the
      // wait into a resolved promise the loop spins on.
      const now = performance.now();
      const polling = fetches.size === 0 && drained &&
        !this.#wake.signal.aborted && nextPoll > now;
      const pause = polling
        ? sleep(nextPoll - now, this.#wake.signal)
        : !waiting
        ? sleep(pollInterval, NEVER) // a backstop
        : undefined;
      // The oldest prefetched job's hold limit (always ahead: deliverReady
      // released any past it); one timer, kept while that job is oldest.
      if (ready.length > 0) {
        const at = ready[0].fetched.mono + this.#holdLimit;
        if (hold?.at !== at) {
          hold?.wait.cancel();
          const current = hold = { at, wait: sleep(at - now, NEVER) };
          // Once, however many passes it outlasts; not when cancelled. A
          // timer may fire before performance.now() reaches `at` (Node: up to 1 ms
          // early): forgotten, it is made again by the next pass while the
          // job is still held (kept, it never woke the loop again, and the
          // job waited for another delivery to end).
          current.wait.done.then(() => {
            if (hold !== current) return;
            hold = undefined;
            wake();
          });
        }
      } else if (hold !== undefined) {
        hold.wait.cancel();
        hold = undefined;
      }
      const next = new Promise<void>((resume) => kick = resume);
      // This pass's pause wakes this pass only: cancelled after it, it
      // resolves too, and must not wake the next (nor that one the next).
      const resumeThis = kick;
      pause?.done.then(() => {
        if (kick === resumeThis) wake();
      });
      await next;
      pause?.cancel();
    }
    this.#onSettled = undefined;
    hold?.wait.cancel();
    // Stopping: a fetch under way is awaited; the jobs fetched and not yet
    // attempted go back to waiting (no retry used up), then the deliveries
    // under way end and everything settles.
    await Promise.all(fetches);
    this.#release(ready.splice(0).map((r) => r.job));
    await Promise.all(deliveries);
  }

  /** Puts jobs never attempted back to waiting, in the background (tracked
   * with the settlements, so stop() waits for it). */
  #release(jobs: Job<StoredRequest>[]): void {
    if (jobs.length === 0) return;
    const released = this.#engine.run(
      "Cannot release jobs",
      () =>
        releaseJobs(
          this.#engine.boss.getDb() as Sql,
          this.#schema,
          this.#queue,
          jobs.map(claim),
        ),
    ).then(() => {}, (error) => {
      // They stay active; their heartbeat lapses and they are retried.
      this.#emit({ type: "error", error });
    }).finally(() => {
      for (const job of jobs) this.#forget(job);
    });
    this.#track(released);
  }

  /** Counts `settling` in {@linkcode Dispatcher.#settling} until it ends. */
  #track(settling: Promise<void>): void {
    this.#settling.add(settling);
    settling.finally(() => {
      this.#settling.delete(settling);
      this.#onSettled?.();
    });
  }

  async #deliver(job: Job<StoredRequest>): Promise<void> {
    const data = job.data;
    const attempt = job.retryCount + 1;
    let result: TriggerResult;
    let span: AttemptTrace | undefined;
    try {
      if (
        typeof data !== "object" || data === null ||
        typeof data.url !== "string" || !Array.isArray(data.headers)
      ) {
        // A row another pg-boss producer put in this queue.
        throw new TypeError(
          "the job holds no request an outbox stored (another producer's job in this queue?)",
        );
      }
      const secret = data.secret ?? this.#secret;
      // Only the headers the outbox sets on every attempt: with a secret,
      // the three signing owns; without, the id (a caller's own timestamp
      // and signature go as given).
      const owned = secret === undefined ? UNSIGNED_HEADERS : SIGN_HEADERS;
      const headers = data.headers.filter(([name]) =>
        !owned.includes(name.toLowerCase())
      );
      // The same id on every attempt; with a secret, a fresh signature.
      if (secret === undefined) headers.push(["webhook-id", data.id]);
      // A CONSUMER span in the caller's stored trace; the trigger nests in
      // it. It ends with the HTTP attempt; settling follows in a batch.
      span = traceAttempt(data.trace, this.#queue, job.id, attempt);
      const go = () =>
        trigger(data.url, {
          sign: secret === undefined ? undefined : { secret, id: data.id },
          method: data.method,
          headers,
          body: data.body === null ? undefined : fromBase64(data.body),
          timeout: data.timeout,
          wait: "accepted",
          transport: data.transport,
          caCerts: data.caCerts,
          // The process-wide cap per origin (128) would hold deliveries
          // past it waiting for a connection, their timeout running (behind
          // a slow target they timed out unsent, using up a retry).
          maxConnections: Math.max(
            DEFAULT_MAX_CONNECTIONS,
            runningConcurrency,
          ),
          signal: this.#abort.signal,
        });
      result = await (span ? span.within(go) : go());
      const tail = result.done;
      this.#tails.add(tail);
      tail.then(() => this.#tails.delete(tail));
      if (
        !result.ok && result.error?.code === "ABORTED" &&
        this.#abort.signal.aborted
      ) {
        // stop({ timeout }) cut this attempt short: not the target's
        // failure, so it goes back to waiting without using up a retry.
        span?.end(false, { code: "ABORTED", message: result.error.message });
        this.#release([job]);
        return;
      }
    } catch (error) {
      // Stored input that no longer validates (e.g. caCerts on a runtime
      // that cannot use them): retrying will not help.
      const invalid = {
        code: "INVALID",
        message: (error as Error)?.message ?? String(error),
      };
      span?.end(false, invalid);
      await this.#settleOne({
        job,
        outcome: "dead",
        attempt,
        elapsed: 0,
        error: invalid,
      });
      return;
    }
    const error = result.error && {
      code: result.error.code,
      message: result.error.message,
      ...(result.status !== undefined ? { status: result.status } : {}),
    };
    span?.end(result.ok, error);
    await this.#settleOne({
      job,
      outcome: verdict(result),
      attempt,
      elapsed: result.elapsed,
      error,
      status: result.status,
      retryAfter: result.error?.retryAfter,
    });
  }

  /**
   * Up to `asked` jobs, claimed for this dispatcher. On PostgreSQL in a
   * transaction of its own: a connection lost while the fetch runs (a
   * pooler restarting, a network path dropped, the fetch's bound passing)
   * rolls the claim back, where an autocommitted fetch kept its jobs active
   * with nobody delivering them until their lease lapsed (a retry used up,
   * or an `EXPIRED` dead letter without retries). Only a connection lost
   * while COMMIT is under way leaves the outcome unknown. PGlite runs in
   * this process: nothing between them is lost.
   */
  #fetch(asked: number): Promise<Job<StoredRequest>[]> {
    const what = "Cannot fetch jobs";
    const { boss } = this.#engine;
    if (this.#engine.engine === "embedded") {
      return this.#engine.run(
        what,
        () => boss.fetch<StoredRequest>(this.#queue, { batchSize: asked }),
      );
    }
    return this.#engine.transaction(
      what,
      (db) =>
        boss.fetch<StoredRequest>(this.#queue, {
          batchSize: asked,
          db: db as unknown as NonNullable<
            Parameters<typeof boss.fetch>[1]
          >["db"],
        }),
      "jobs may have been fetched: each is fetched again when its lease ends",
    );
  }

  /** Drops `job` from `inFlight`, unless a later attempt of the same job
   * took its place there (this attempt's lease lapsed, pg-boss made it a
   * retry, and this dispatcher fetched it again): that one is still under
   * way and must go on being touched. */
  #forget(job: Job<StoredRequest>): void {
    if (this.inFlight.get(job.id) === job) this.inFlight.delete(job.id);
    this.#leased.delete(job);
  }

  /** Queues the outcome for the next settle batch (not awaited: the slot
   * is free already); the job stays in `inFlight`, touched, until then. */
  #settleOne(settlement: Settlement): Promise<void> {
    const settled = this.#settleNow(settlement).finally(() =>
      this.#forget(settlement.job)
    );
    this.#track(settled);
    return Promise.resolve();
  }

  async #settleNow(settlement: Settlement): Promise<void> {
    for (let retry = 0;; retry++) {
      try {
        await this.#settle.add(settlement);
        return;
      } catch (error) {
        // Tried again (pg-boss's complete() and fail() are fenced to this
        // attempt: one that went through is not applied twice), the job
        // still in `inFlight`, touched.
        if (
          retry < SETTLE_RETRY_MS.length &&
          (error as { code?: unknown } | null)?.code !== "TIMEOUT"
        ) {
          this.#retrying++;
          try {
            await this.#retryWait(error, SETTLE_RETRY_MS[retry]);
          } finally {
            this.#retrying--;
          }
          continue;
        }
        // The job stays active; its heartbeat lapses and it is retried. One
        // event per failed statement, not one per job in it.
        if (typeof error === "object" && error !== null) {
          if (this.#reported.has(error)) return;
          this.#reported.add(error);
        }
        this.#emit({ type: "error", error });
        return;
      }
    }
  }

  /** The wait before the items of a failed statement (`error`, the same
   * for all of them) are tried again: one timer for them all, so they go
   * again together, in one statement (a wait each made a statement each,
   * and an error event each when they failed again). */
  #retryWait(error: unknown, ms: number): Promise<void> {
    // Woken early by another statement's answer only when the connection
    // failed: a refusal of the statement itself (a serialization failure,
    // a lock timeout) waits its backoff out.
    const wake = connectionLost(error)
      ? this.#back.signal
      : this.#stopWake.signal;
    if (typeof error !== "object" || error === null) {
      return sleep(ms, wake).done;
    }
    let wait = this.#retryWaits.get(error);
    if (wait === undefined) {
      wait = sleep(ms, wake).done;
      this.#retryWaits.set(error, wait);
      // For this failure's items only: the same error object again later
      // (a driver that reuses one) gets a wait of its own.
      wait.finally(() => this.#retryWaits.delete(error));
    }
    return wait;
  }

  /** The database answered a statement: settlements waiting to be tried
   * again go now (they hold delivery slots while they wait: waiting out the
   * backoff after a short outage held every slot for up to 4 s). */
  #answered(): void {
    if (this.#retrying === 0) return;
    this.#back.abort();
    this.#back = new AbortController();
  }

  /** Settles a batch; an item whose statement failed is a `Rejected` (the
   * others' statements went through). */
  async #settleBatch(items: Settlement[]): Promise<Array<void | Rejected>> {
    const done = items.filter((s) => s.outcome === "done");
    const failed = items.filter((s) => s.outcome !== "done");
    const types = new Map<Settlement, "delivered" | "retry" | "dead">();
    const errors = new Map<Settlement, unknown>();
    // Completions: one statement per distinct status (almost always one).
    for (const group of groupBy(done, (s) => String(s.status))) {
      try {
        const response = await this.#engine.run(
          "Cannot complete jobs",
          () =>
            this.#engine.boss.complete(
              this.#queue,
              group.map(claim),
              group[0].status === undefined ? {} : { status: group[0].status },
            ),
        );
        // Only the jobs this attempt still held (one that expired or that
        // another dispatcher took over is not counted).
        this.#answered();
        const completed = settledIds(response, group);
        for (const s of group) {
          if (completed.has(s.job.id)) types.set(s, "delivered");
        }
      } catch (error) {
        for (const s of group) errors.set(s, error);
      }
    }
    // Retries and dead letters: one transaction, so a job is never left
    // with its retries used up but not failed.
    if (failed.length > 0) {
      try {
        const last = await this.#engine.transaction(
          "Cannot fail jobs",
          async (db) => {
            const dead = failed.filter((s) => s.outcome === "dead");
            if (dead.length > 0) {
              await exhaustRetries(
                db,
                this.#schema,
                this.#queue,
                dead.map(claim),
              );
            }
            // Asked of the database only for jobs whose stored form cannot
            // say (redriven dead letters, rows from before it could).
            const unknown = failed.filter((s) =>
              s.outcome === "retry" && lastAttempt(s.job) === undefined
            );
            const exhausted = unknown.length === 0
              ? new Set<string>()
              : await withoutRetries(
                db,
                this.#schema,
                this.#queue,
                unknown.map(claim),
              );
            const settled = new Set<string>();
            for (
              const group of groupBy(failed, (s) => JSON.stringify(s.error))
            ) {
              const response = await this.#engine.boss.fail(
                this.#queue,
                group.map(claim),
                group[0].error ?? {},
                { db },
              );
              for (const id of settledIds(response, group)) settled.add(id);
            }
            // A 429 or 503 that said when to come back: not before then.
            const waits = failed.filter((s) =>
              s.outcome === "retry" && s.retryAfter !== undefined &&
              s.retryAfter > 0 && settled.has(s.job.id)
            );
            if (waits.length > 0) {
              await postponeRetries(
                db,
                this.#schema,
                this.#queue,
                waits.map((s) => ({ ...claim(s), ms: s.retryAfter! })),
                // No longest delay stored: the default one.
                DEFAULT_RETRY.maxDelay / 1000,
              );
            }
            return { exhausted, settled };
          },
          "the failures may have been recorded; a job whose record was not is tried again when its lease ends",
        );
        this.#answered();
        for (const s of failed) {
          if (!last.settled.has(s.job.id)) continue;
          const dead = s.outcome === "dead" ||
            (lastAttempt(s.job) ?? last.exhausted.has(s.job.id));
          types.set(s, dead ? "dead" : "retry");
        }
      } catch (error) {
        for (const s of failed) errors.set(s, error);
      }
    }
    for (const s of items) {
      const type = types.get(s);
      if (type === undefined) continue;
      if (type === "delivered") this.counters.delivered++;
      else if (type === "retry") this.counters.retried++;
      else this.counters.deadLettered++;
      // A row another pg-boss producer put in the queue may hold no
      // stored request at all (dead-lettered INVALID): its job id then.
      const data = s.job.data as Partial<StoredRequest> | null;
      this.#emit({
        type,
        id: String(data?.id ?? s.job.id),
        method: String(data?.method ?? ""),
        url: String(data?.url ?? ""),
        attempt: s.attempt,
        elapsed: s.elapsed,
        ...(s.status !== undefined ? { status: s.status } : {}),
        ...(s.error !== undefined ? { error: s.error } : {}),
      });
    }
    // Items of a failed statement are tried again by their callers.
    return items.map((s) =>
      errors.has(s) ? new Rejected(errors.get(s)) : undefined
    );
  }

  #touch(): void {
    // One touch at a time: on a slow database they would pile up.
    if (this.inFlight.size === 0 || this.#touching !== undefined) return;
    const jobs = [...this.inFlight.values()];
    const started = clocks();
    this.#touching = this.#engine.run(
      "Cannot touch jobs",
      () => this.#engine.boss.touch(this.#queue, jobs.map(claim)),
    ).then(
      (result) => {
        // Only what it renewed: a job another dispatcher took while this
        // one was frozen is not this attempt's any more (the touch is
        // fenced), and must still look at risk.
        const renewed = renewedIds(result, jobs);
        for (const job of jobs) {
          if (renewed.has(job.id)) this.#renewed(job, started);
        }
        this.#answered();
      },
      (error) => this.#emit({ type: "error", error }),
    ).finally(() => this.#touching = undefined);
  }

  /**
   * Whether a job fetched ahead may have lost its lease, or will before
   * the next touch renews it: this process was frozen (a platform between
   * invocations, `docker pause`, a laptop asleep) or its touches failed.
   * Another dispatcher may have it by now (pg-boss retries a job whose
   * heartbeat lapsed), so it is touched before it is attempted (`reclaim`
   * in `#dispatch`). Before, a dispatcher thawed after 12–30 s sent every
   * job it had fetched ahead, each already sent by another.
   */
  /** Notes a renewal of `job`'s lease that started at `started`, unless the
   * job left meanwhile (settled or released while the touch ran): noted
   * then, it would never be dropped again. */
  #renewed(job: Job<StoredRequest>, started: Clocks): void {
    if (this.inFlight.get(job.id) === job) this.#leased.set(job, started);
  }

  #leaseAtRisk(job: Job<StoredRequest>): boolean {
    const leased = this.#leased.get(job);
    // The job's own heartbeat (the outbox stores HEARTBEAT_SECONDS; a row
    // another producer or pg-boss's own redrive made may differ, or have
    // none: then its lease is the expiry the hold limit keeps within).
    const beat = (job as { heartbeatSeconds?: unknown }).heartbeatSeconds;
    if (leased === undefined || typeof beat !== "number" || !(beat > 0)) {
      return false;
    }
    // Either clock: the wall clock runs on while a machine sleeps (the
    // monotonic one does not, on Linux), the monotonic one while the wall
    // clock is set back.
    return held(leased) > leaseSafeMs(beat);
  }
}

/** A moment on both clocks: the wall clock (`Date.now()`) and the
 * monotonic one (`performance.now()`). */
interface Clocks {
  wall: number;
  mono: number;
}

function clocks(): Clocks {
  return { wall: Date.now(), mono: performance.now() };
}

/**
 * Milliseconds since `since`, the larger on either clock: the monotonic
 * one runs on while the wall clock is set back (NTP, a resumed VM: on the
 * wall clock alone, polls and hold limits stopped for the step), the wall
 * one while the machine sleeps (the monotonic one stops on Linux and
 * macOS), as the database's clock, which ends a job's lease, does.
 */
function held(since: Clocks): number {
  return Math.max(Date.now() - since.wall, performance.now() - since.mono);
}

/**
 * Whether pg-boss's `fail()` dead-letters this attempt rather than
 * scheduling a retry, from the fetched job alone; `undefined` when it
 * cannot say. pg-boss retries while `retry_count < retry_limit`; the fetch
 * returns `retry_count` (fail() is fenced to it: the same attempt, still
 * active), and the row's `retry_limit` is the one stored with the job while
 * the job is the one stored (its id is `data.job ?? data.id`): nothing changes an
 * active job's limit but {@linkcode exhaustRetries} (a "dead" outcome,
 * counted as dead anyway); pg-boss's `update()` touches only waiting jobs,
 * its `retry()` only failed ones. A dead letter the outbox redrives is a
 * new job named in `data.job` with the stored limit; one pg-boss's own
 * `redrive()` re-created has the queue's: `undefined`, and the dispatcher
 * asks the database.
 */
export function lastAttempt(
  job: { id: string; retryCount: number; data: StoredRequest },
): boolean | undefined {
  if (typeof job.data !== "object" || job.data === null) return undefined;
  const { job: storedAs = job.data.id, retryLimit } = job.data;
  if (storedAs !== job.id || !Number.isInteger(retryLimit)) return undefined;
  return job.retryCount >= retryLimit!;
}

/** The ids a fenced `touch()` renewed: pg-boss 12.38 returns them beside
 * the count; without them, all when the count says so, else (not knowing
 * which) none. */
function renewedIds(result: unknown, jobs: Job<StoredRequest>[]): Set<string> {
  const { settled: ids, affected } = (result ?? {}) as {
    settled?: unknown;
    affected?: unknown;
  };
  return new Set<string>(
    Array.isArray(ids)
      ? ids.map(String)
      : affected === jobs.length
      ? jobs.map((job) => job.id)
      : [],
  );
}

function claim(
  item: { id: string; retryCount: number } | Settlement,
): { id: string; retryCount: number } {
  const job = "job" in item ? item.job : item;
  return { id: job.id, retryCount: job.retryCount };
}

/** The ids a pg-boss `complete()`/`fail()` settled: its `settled` list
 * (untyped in 12.38), else all or none by its `affected` count. */
function settledIds(response: unknown, group: Settlement[]): Set<string> {
  const { settled, affected, requested } = response as {
    settled?: unknown;
    affected?: number;
    requested?: number;
  };
  if (Array.isArray(settled)) return new Set(settled.map(String));
  return new Set(
    affected !== undefined && affected === requested
      ? group.map((s) => s.job.id)
      : [],
  );
}

function groupBy<T>(items: T[], key: (item: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return [...groups.values()];
}

function sleep(
  ms: number,
  wake: AbortSignal,
): { done: Promise<void>; cancel(): void } {
  const { promise, resolve } = resolvers<void>();
  // Woken already (a trigger stored while this dispatcher was fetching): an
  // abort listener added now would never fire.
  if (wake.aborted) return { done: Promise.resolve(), cancel() {} };
  const timer = setTimeout(cancel, ms);
  function cancel() {
    clearTimeout(timer);
    wake.removeEventListener("abort", cancel);
    resolve();
  }
  wake.addEventListener("abort", cancel, { once: true });
  return { done: promise, cancel };
}

/**
 * Whether `error` (an OutboxError, its cause chain looked through) says the
 * connection failed rather than the statement: no SQLSTATE (a socket error
 * such as ECONNREFUSED or ECONNRESET, a connection the pool found ended), or
 * class 08 (connection exception), 57P01–57P03 (the server shutting down
 * or starting) or 57P05 (the server ended an idle session).
 */
export function connectionLost(error: unknown): boolean {
  let e: unknown = error;
  for (
    let depth = 0;
    depth < 4 && typeof e === "object" && e !== null;
    depth++
  ) {
    // A SQLSTATE (EPIPE, ECONNRESET and the like are socket errors).
    if (answered(e)) {
      const code = (e as { code: string }).code;
      return code.startsWith("08") || /^57P0[1235]$/.test(code);
    }
    e = (e as { cause?: unknown }).cause;
  }
  return true;
}
