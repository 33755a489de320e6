// Storing triggers: the job's stored form, and the group-committed insert
// (concurrent outbox.trigger() calls share one multi-row INSERT in one
// transaction; each resolves only once that transaction has committed).
import type { PreparedRequest } from "../trigger/_request.ts";
import type { Engine } from "./_engine.ts";
import { Batcher } from "./_batch.ts";
import type { Retry } from "./_validate.ts";

/** The form a trigger is stored in (the job's data). */
export interface StoredRequest {
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
  /** The caller's trace context (`traceparent`, …), when OTel is on. */
  trace?: Record<string, string>;
}

/** A dispatcher that stops touching its jobs loses them after this long. */
export const HEARTBEAT_SECONDS = 10;
/** The lease beyond the HTTP timeout (a backstop; heartbeats come first). */
const LEASE_MARGIN_SECONDS = 60;
/** The most rows in one INSERT. */
const MAX_BATCH = 500;

/** One row for pg-boss's `insert()`. */
export interface JobRow {
  id: string;
  data: StoredRequest;
  retryLimit: number;
  retryDelay: number;
  retryBackoff: boolean;
  retryDelayMax?: number;
  expireInSeconds: number;
  heartbeatSeconds: number;
  startAfter?: Date;
}

export function jobRow(
  jobId: string,
  data: StoredRequest,
  retry: Retry,
  delay: number | undefined,
): JobRow {
  return {
    id: jobId,
    data,
    retryLimit: retry.limit,
    // pg-boss keeps whole seconds: round up, never retry sooner than asked.
    retryDelay: Math.ceil(retry.delay / 1000),
    retryBackoff: retry.backoff,
    ...(retry.backoff
      ? { retryDelayMax: Math.ceil(retry.maxDelay / 1000) }
      : {}),
    expireInSeconds: Math.ceil(data.timeout / 1000) + LEASE_MARGIN_SECONDS,
    heartbeatSeconds: HEARTBEAT_SECONDS,
    ...(delay ? { startAfter: new Date(Date.now() + delay) } : {}),
  };
}

export function storedRequest(
  id: string,
  req: PreparedRequest,
  body: Uint8Array | null,
  options: {
    transport?: string;
    secret?: string;
    trace?: Record<string, string>;
  },
): StoredRequest {
  const stored: StoredRequest = {
    id,
    method: req.method,
    url: req.href,
    headers: req.headers,
    body: body === null ? null : toBase64(body),
    timeout: req.timeout,
  };
  if (options.transport !== undefined && options.transport !== "auto") {
    stored.transport = req.transport;
  }
  if (req.caCerts !== undefined) stored.caCerts = req.caCerts;
  if (options.secret !== undefined) stored.secret = options.secret;
  if (options.trace !== undefined) stored.trace = options.trace;
  return stored;
}

/** Inserts rows in batches, one transaction per batch. */
export function groupCommit(engine: Engine, queue: string): Batcher<JobRow> {
  return new Batcher<JobRow>(async (rows) => {
    await engine.transaction(
      "Cannot trigger request",
      (db) => engine.boss.insert(queue, rows, { db }),
    );
    return rows.map(() => undefined);
  }, MAX_BATCH);
}

export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
