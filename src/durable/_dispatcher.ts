// Delivering stored triggers: fetch jobs in batches, deliver each with
// trigger(), settle the outcomes in batches (completes in one statement,
// retries and dead letters in one transaction), touch in-flight jobs so a
// dispatcher that dies loses them to a live one.
import type { Job } from "npm:pg-boss@12.38.0";
import { trigger } from "../trigger/trigger.ts";
import type { TriggerResult } from "../trigger/types.ts";
import type { Engine } from "./_engine.ts";
import { Batcher } from "./_batch.ts";
import { exhaustRetries } from "./_pgboss_sql.ts";
import { fromBase64, type StoredRequest } from "./_enqueue.ts";
import type { DeliveryError, OutboxEvent } from "./types.ts";

/** How often a dispatcher touches its in-flight jobs. */
const TOUCH_INTERVAL = 3_000;
const RETRYABLE_STATUS = new Set([408, 429]);

type Outcome = "done" | "retry" | "dead";

interface Settlement {
  job: Job<StoredRequest> & { retryLimit?: number };
  outcome: Outcome;
  attempt: number;
  elapsed: number;
  error?: DeliveryError;
  status?: number;
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
  return status >= 500 || RETRYABLE_STATUS.has(status) ? "retry" : "dead";
}

export class Dispatcher {
  readonly inFlight = new Map<string, Job<StoredRequest>>();
  readonly counters: Counters = { delivered: 0, retried: 0, deadLettered: 0 };
  #engine: Engine;
  #queue: string;
  #schema: string;
  #secret?: string;
  #emit: (event: OutboxEvent) => void;
  #settle: Batcher<Settlement>;
  #running = false;
  #loop?: Promise<void>;
  #wake = new AbortController();
  #abort = new AbortController();
  #touchTimer?: ReturnType<typeof setInterval>;
  #reported = new WeakSet<object>();

  constructor(engine: Engine, settings: {
    queue: string;
    schema: string;
    secret?: string;
    emit: (event: OutboxEvent) => void;
  }) {
    this.#engine = engine;
    this.#queue = settings.queue;
    this.#schema = settings.schema;
    this.#secret = settings.secret;
    this.#emit = settings.emit;
    this.#settle = new Batcher((items) => this.#settleBatch(items), 500, 2);
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
    this.#abort = new AbortController();
    this.#touchTimer = setInterval(() => this.#touch(), TOUCH_INTERVAL);
    this.#loop = this.#dispatch(concurrency, pollInterval);
  }

  /** Stops fetching and waits for in-flight deliveries and their
   * settlement; `timeout` ms on, aborts the deliveries still running. */
  async stop(timeout: number | undefined): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#wake.abort();
    const timer = timeout === undefined
      ? undefined
      : setTimeout(() => this.#abort.abort(), timeout);
    try {
      await this.#loop;
      await this.#settle.idle();
    } finally {
      clearTimeout(timer);
      clearInterval(this.#touchTimer);
    }
  }

  async #dispatch(concurrency: number, pollInterval: number): Promise<void> {
    const deliveries = new Set<Promise<void>>();
    // Fetch again once half the slots are free: batches, not one by one.
    const refill = Math.ceil(concurrency / 2);
    while (this.#running) {
      const free = concurrency - this.inFlight.size;
      if (free < refill) {
        await Promise.race(deliveries);
        continue;
      }
      // Reset before fetching: a trigger stored during the fetch wakes the
      // next wait at once (sleep() sees the abort).
      this.#wake = new AbortController();
      let jobs: Job<StoredRequest>[] = [];
      try {
        jobs = await this.#engine.run(
          "Cannot fetch jobs",
          () =>
            this.#engine.boss.fetch<StoredRequest>(this.#queue, {
              batchSize: free,
              includeMetadata: true,
            }),
        );
      } catch (error) {
        if (!this.#running) break;
        this.#emit({ type: "error", error });
      }
      for (const job of jobs) {
        this.inFlight.set(job.id, job);
        const delivery = this.#deliver(job).finally(() => {
          this.inFlight.delete(job.id);
          deliveries.delete(delivery);
        });
        deliveries.add(delivery);
      }
      // A full batch says there is more: fetch again once slots are free.
      if (jobs.length > 0 && jobs.length === free) continue;
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
      await this.#settleOne({
        job,
        outcome: "dead",
        attempt,
        elapsed: 0,
        error: {
          code: "INVALID",
          message: (error as Error)?.message ?? String(error),
        },
      });
      return;
    }
    await this.#settleOne({
      job,
      outcome: verdict(result),
      attempt,
      elapsed: result.elapsed,
      error: result.error && {
        code: result.error.code,
        message: result.error.message,
        ...(result.status !== undefined ? { status: result.status } : {}),
      },
      status: result.status,
    });
  }

  async #settleOne(settlement: Settlement): Promise<void> {
    try {
      await this.#settle.add(settlement);
    } catch (error) {
      // The job stays active; its heartbeat lapses and it is retried. One
      // event per failed batch, not one per job in it.
      if (typeof error === "object" && error !== null) {
        if (this.#reported.has(error)) return;
        this.#reported.add(error);
      }
      this.#emit({ type: "error", error });
    }
  }

  async #settleBatch(items: Settlement[]): Promise<void[]> {
    const done = items.filter((s) => s.outcome === "done");
    const failed = items.filter((s) => s.outcome !== "done");
    const types = new Map<Settlement, "delivered" | "retry" | "dead">();
    const errors: unknown[] = [];
    // Completions: one statement per distinct status (almost always one).
    for (const group of groupBy(done, (s) => String(s.status))) {
      try {
        await this.#engine.run(
          "Cannot complete jobs",
          () =>
            this.#engine.boss.complete(
              this.#queue,
              group.map(claim),
              group[0].status === undefined ? {} : { status: group[0].status },
            ),
        );
        for (const s of group) types.set(s, "delivered");
      } catch (error) {
        errors.push(error);
      }
    }
    // Retries and dead letters: one transaction, so a job is never left
    // with its retries used up but not failed.
    if (failed.length > 0) {
      try {
        await this.#engine.transaction("Cannot fail jobs", async (db) => {
          const dead = failed.filter((s) => s.outcome === "dead");
          if (dead.length > 0) {
            await exhaustRetries(
              db,
              this.#schema,
              this.#queue,
              dead.map(claim),
            );
          }
          for (const group of groupBy(failed, (s) => JSON.stringify(s.error))) {
            await this.#engine.boss.fail(
              this.#queue,
              group.map(claim),
              group[0].error ?? {},
              { db },
            );
          }
        });
        for (const s of failed) {
          const more = s.outcome === "retry" &&
            (s.job.retryLimit === undefined ||
              s.job.retryCount < s.job.retryLimit);
          types.set(s, more ? "retry" : "dead");
        }
      } catch (error) {
        errors.push(error);
      }
    }
    for (const s of items) {
      const type = types.get(s);
      if (type === undefined) continue;
      if (type === "delivered") this.counters.delivered++;
      else if (type === "retry") this.counters.retried++;
      else this.counters.deadLettered++;
      this.#emit({
        type,
        id: s.job.data.id,
        method: s.job.data.method,
        url: s.job.data.url,
        attempt: s.attempt,
        elapsed: s.elapsed,
        ...(s.status !== undefined ? { status: s.status } : {}),
        ...(s.error !== undefined ? { error: s.error } : {}),
      });
    }
    // Unsettled jobs stay active; their heartbeat lapses and they are
    // retried. One error event per failed statement.
    if (errors.length > 0) throw errors[0];
    return items.map(() => undefined);
  }

  #touch(): void {
    if (this.inFlight.size === 0) return;
    const claims = [...this.inFlight.values()].map(claim);
    this.#engine.run(
      "Cannot touch jobs",
      () => this.#engine.boss.touch(this.#queue, claims),
    ).catch((error) => this.#emit({ type: "error", error }));
  }
}

function claim(
  item: { id: string; retryCount: number } | Settlement,
): { id: string; retryCount: number } {
  const job = "job" in item ? item.job : item;
  return { id: job.id, retryCount: job.retryCount };
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
