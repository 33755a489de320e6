/**
 * `verifyTrigger()`: a Hono middleware that lets only signed triggers in
 * (Standard Webhooks signatures, as `trigger()`'s `sign` option writes them)
 * and runs each message once: a replay or retry of a message already handled
 * is answered `200` without running the route again. Re-exported by
 * `./hono`.
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import { verifyTrigger } from "./verify.ts";
 * import { signPayload } from "../signature/sign.ts";
 * import assert from "node:assert/strict";
 *
 * const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
 * const app = new Hono();
 * let runs = 0;
 * app.post("/jobs/report", verifyTrigger({ secret }), async (c) => {
 *   runs++;
 *   return c.json(await c.req.json()); // the body is still readable
 * });
 *
 * const body = JSON.stringify({ month: "2024-05" });
 * const id = "msg_2024_05";
 * const timestamp = Math.floor(Date.now() / 1000);
 * const headers = {
 *   "webhook-id": id,
 *   "webhook-timestamp": String(timestamp),
 *   "webhook-signature": await signPayload(secret, { id, timestamp, body }),
 * };
 * const first = await app.request("/jobs/report", { method: "POST", headers, body });
 * assert.equal(first.status, 200);
 * assert.deepEqual(await first.json(), { month: "2024-05" });
 *
 * const again = await app.request("/jobs/report", { method: "POST", headers, body });
 * assert.equal(again.status, 200);
 * assert.equal(again.headers.get("x-trigger-duplicate"), "done");
 * assert.equal(runs, 1);
 *
 * const forged = await app.request("/jobs/report", {
 *   method: "POST",
 *   headers,
 *   body: JSON.stringify({ month: "1999-01" }),
 * });
 * assert.equal(forged.status, 401);
 * assert.equal(await forged.text(), "Invalid signature\n");
 * ```
 *
 * @module
 */

// A full specifier: users import this file by URL, where deno.json's bare
// "hono" mapping does not apply. Types only: no runtime dependency.
// deno-lint-ignore no-import-prefix
import type { Context, MiddlewareHandler } from "npm:hono@^4.13.19";
import {
  importKey,
  isMessageId,
  parseSecret,
  parseSignatures,
  TIMESTAMP,
  verify,
} from "../signature/_sign.ts";
import { annotate } from "./_trace.ts";

/**
 * What {@linkcode DedupStore.claim} found: `"claimed"` — the id is new (or
 * was released, or its entry expired) and now belongs to the caller, who
 * must `complete()` or `release()` it; `"done"` — a delivery of this id
 * already succeeded; `"busy"` — another delivery of it is running now.
 */
export type ClaimResult = "claimed" | "done" | "busy";

/**
 * Where {@linkcode verifyTrigger} remembers message ids. The default is a
 * {@linkcode MemoryDedupStore} per middleware; implement this interface over
 * a shared database (PostgreSQL, Redis, Deno KV…) so several instances
 * deduplicate together. Every method may be called concurrently for the same
 * id from several instances: `claim()` must be atomic.
 *
 * A PostgreSQL sketch (one row per id; `expires_at` is a lease while
 * running, the memory of a success once done):
 *
 * ```sql
 * CREATE TABLE webhook_ids (id text PRIMARY KEY, done boolean NOT NULL,
 *                           expires_at timestamptz NOT NULL);
 * -- claim(id, ttlMs): take the row when absent or expired, then read it.
 * INSERT INTO webhook_ids VALUES ($1, false, now() + $2 * interval '1 ms')
 *   ON CONFLICT (id) DO UPDATE SET done = false, expires_at = EXCLUDED.expires_at
 *   WHERE webhook_ids.expires_at <= now()
 *   RETURNING 'claimed';
 * -- no row returned: SELECT CASE WHEN done THEN 'done' ELSE 'busy' END ...
 * --   (and "claimed" if the row vanished in between: retry the insert)
 * -- complete(id, ttlMs): UPDATE webhook_ids SET done = true,
 * --   expires_at = now() + $2 * interval '1 ms' WHERE id = $1;
 * -- release(id):         DELETE FROM webhook_ids WHERE id = $1 AND NOT done;
 * -- and now and then:    DELETE FROM webhook_ids WHERE expires_at <= now();
 * ```
 *
 * @example Usage
 * ```ts
 * import { type DedupStore, MemoryDedupStore } from "./verify.ts";
 * import assert from "node:assert/strict";
 *
 * const store: DedupStore = new MemoryDedupStore();
 * assert.equal(await store.claim("msg_1", 60_000), "claimed");
 * assert.equal(await store.claim("msg_1", 60_000), "busy");
 * await store.release("msg_1"); // the route failed: runnable again
 * assert.equal(await store.claim("msg_1", 60_000), "claimed");
 * await store.complete("msg_1", 600_000);
 * assert.equal(await store.claim("msg_1", 60_000), "done");
 * ```
 */
export interface DedupStore {
  /**
   * Atomically takes `id` for one delivery, unless a live entry exists.
   *
   * @param id The `webhook-id` (1–256 visible ASCII characters, no `.`).
   * @param ttlMs How long the claim holds without `complete()` or
   *   `release()` (a lease: a crashed instance's claim lapses after it).
   * @returns What was found; see {@linkcode ClaimResult}.
   */
  claim(id: string, ttlMs: number): Promise<ClaimResult>;
  /**
   * Marks a claimed id as done: later claims answer `"done"` for `ttlMs`.
   *
   * @param id The id.
   * @param ttlMs How long to remember it.
   */
  complete(id: string, ttlMs: number): Promise<void>;
  /**
   * Drops a claim that did not succeed, so a retry can run.
   *
   * @param id The id.
   */
  release(id: string): Promise<void>;
}

/** Options for {@linkcode MemoryDedupStore}. */
export interface MemoryDedupStoreOptions {
  /** The most ids kept at once. Default `100_000` (a few MB). */
  maxEntries?: number;
}

/**
 * The default {@linkcode DedupStore}: a `Map` in this process, bounded in
 * size and time. Expired entries go first; when it is still full, the oldest
 * completed ids are forgotten (a replay of one of those, if its timestamp is
 * still inside the tolerance, would run again: size it above your messages
 * per `remember` window). Running claims are never dropped; when every entry
 * is a running claim, a new id is answered `"busy"`.
 *
 * @example Usage
 * ```ts
 * import { MemoryDedupStore } from "./verify.ts";
 * import assert from "node:assert/strict";
 *
 * const store = new MemoryDedupStore({ maxEntries: 2 });
 * for (const id of ["a", "b", "c"]) {
 *   assert.equal(await store.claim(id, 60_000), "claimed");
 *   await store.complete(id, 60_000);
 * }
 * assert.equal(store.size, 2); // "a" was forgotten to make room
 * ```
 */
export class MemoryDedupStore implements DedupStore {
  #entries = new Map<string, { done: boolean; expires: number }>();
  #max: number;

  /**
   * Creates an empty store.
   *
   * @param options The size bound.
   * @throws {RangeError} When `maxEntries` is not a whole number >= 1.
   */
  constructor(options: MemoryDedupStoreOptions = {}) {
    const { maxEntries = 100_000 } = options;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(
        `Cannot create MemoryDedupStore: maxEntries must be a whole number >= 1, received ${
          String(maxEntries)
        }`,
      );
    }
    this.#max = maxEntries;
  }

  /** The number of ids held now, expired ones not yet swept included. */
  get size(): number {
    return this.#entries.size;
  }

  /** {@inheritDoc DedupStore.claim} */
  claim(id: string, ttlMs: number): Promise<ClaimResult> {
    const now = Date.now();
    this.#sweep(now);
    const entry = this.#entries.get(id);
    if (entry !== undefined) {
      if (entry.expires > now) {
        return Promise.resolve(entry.done ? "done" : "busy");
      }
      this.#entries.delete(id);
    }
    if (this.#entries.size >= this.#max && !this.#makeRoom(now)) {
      return Promise.resolve("busy");
    }
    this.#entries.set(id, { done: false, expires: now + ttlMs });
    return Promise.resolve("claimed");
  }

  /** {@inheritDoc DedupStore.complete} */
  complete(id: string, ttlMs: number): Promise<void> {
    // Deleted and set again: the Map's order stays the order of expiry.
    this.#entries.delete(id);
    this.#entries.set(id, { done: true, expires: Date.now() + ttlMs });
    if (this.#entries.size > this.#max) this.#makeRoom(Date.now());
    return Promise.resolve();
  }

  /** {@inheritDoc DedupStore.release} */
  release(id: string): Promise<void> {
    if (this.#entries.get(id)?.done === false) this.#entries.delete(id);
    return Promise.resolve();
  }

  /** Drops expired entries from the front (the oldest). */
  #sweep(now: number): void {
    for (const [id, entry] of this.#entries) {
      if (entry.expires > now) return;
      this.#entries.delete(id);
    }
  }

  /** Frees one slot: an expired entry, else the oldest done one. */
  #makeRoom(now: number): boolean {
    let oldestDone: string | undefined;
    for (const [id, entry] of this.#entries) {
      if (entry.expires <= now) {
        this.#entries.delete(id);
        return true;
      }
      if (entry.done && oldestDone === undefined) oldestDone = id;
      if (oldestDone !== undefined) break;
    }
    if (oldestDone === undefined) return false;
    this.#entries.delete(oldestDone);
    return true;
  }
}

/** What {@linkcode verifyTrigger} tells the route, as `c.var.trigger`. */
export interface VerifiedTrigger {
  /** The `webhook-id`: the same on every retry of one message. */
  id: string;
  /** The `webhook-timestamp`, unix seconds. */
  timestamp: number;
}

/** The context variables {@linkcode verifyTrigger} sets. */
export type VerifyTriggerVariables = {
  /** The verified message's id and timestamp. */
  trigger: VerifiedTrigger;
};

/**
 * The Hono environment that types `c.var.trigger`:
 * `new Hono<VerifyTriggerEnv>()` (or `ConnectionEnv & VerifyTriggerEnv`).
 */
export type VerifyTriggerEnv = {
  /** The context variables. */
  Variables: VerifyTriggerVariables;
};

/** Options for {@linkcode verifyTrigger}. Give `secret` or `secrets`. */
export interface VerifyTriggerOptions {
  /** The shared secret, `whsec_<base64>`. */
  secret?: string;
  /** Several secrets accepted at once, for a rotation: the new one and the
   * old one until every sender has moved. */
  secrets?: readonly string[];
  /** Seconds a timestamp may lie behind or ahead of this clock. Default
   * `300`. */
  tolerance?: number;
  /** Where ids are remembered. Default: a new {@linkcode MemoryDedupStore}
   * for this middleware (one process). */
  store?: DedupStore;
  /** Seconds a succeeded id is remembered. Default and minimum
   * `2 * tolerance`: by then any copy of the request has a timestamp too old
   * to pass, so a replay can never run twice. Longer protects a sender that
   * re-signs its retries with fresh timestamps (an outbox) for longer. */
  remember?: number;
  /** Seconds a running delivery holds its id (the claim's lease): a
   * concurrent delivery of the same id is answered `429` meanwhile, and a
   * crashed instance's claim lapses after it. Default `300`. Must outlast
   * the route (with `connection({ ack: true })` behind, only the body read
   * and the `202`). */
  lease?: number;
  /** The largest body in bytes read for verification; larger gets `413`.
   * Default `1_048_576` (1 MiB). */
  maxBodySize?: number;
  /** Seconds the body may take to arrive (a slow-loris guard); slower gets
   * `408`. Default `30`; `0` means no limit. */
  bodyTimeout?: number;
  /** Reports store failures. Default: `console.error`. */
  onError?: (error: unknown, c: Context) => unknown;
}

/** The header that marks an answer given instead of running the route. */
const DUPLICATE_HEADER = "x-trigger-duplicate";
const PREFIX = "Cannot create verifyTrigger() middleware: ";

/**
 * A middleware that lets only signed triggers reach the route and runs each
 * message once. It checks the Standard Webhooks headers `trigger()` writes
 * with its `sign` option (`webhook-id`, `webhook-timestamp`,
 * `webhook-signature`) against the raw body bytes, in constant time, and
 * leaves the body readable (`c.req.json()`, `c.req.raw` … still work).
 *
 * Answers, the route not running:
 * - `401` with a one-line reason: `Missing webhook-signature header`,
 *   `Malformed webhook-timestamp header`, `Message timestamp too old`,
 *   `Message timestamp too new`, `Invalid signature`, …
 * - `413` for a body over `maxBodySize`, `408` for one slower than
 *   `bodyTimeout`, `400` for one that cannot be read.
 * - `200` with `x-trigger-duplicate: done` for an id whose route already
 *   succeeded within `remember`: a retry or a replay; the sender can stop.
 * - `429` with `Retry-After` and `x-trigger-duplicate: running` while
 *   another delivery of the same id runs: retry later (429 rather than 409
 *   because senders, this package's outbox included, retry 429 and give up
 *   on most other 4xx).
 * - `503` when the store fails (reported to `onError`).
 *
 * An id counts as done only when the route succeeded: a 2xx response and no
 * throw (Hono turns a throw into its error answer inside the chain; a 5xx,
 * a 4xx or a throw leaves the id runnable again).
 *
 * Place it before `connection({ ack: true })`: a bad signature never gets a
 * `202`. Then the route's success, for deduplication, is the `202` itself:
 * the id is done once the job is accepted, and its background run is not
 * repeated even if it fails — what an at-least-once sender needs.
 *
 * @param options The secret(s), the tolerance, the store and limits.
 * @returns The middleware; it sets `c.var.trigger` (`{ id, timestamp }`).
 * @throws {TypeError} When no secret is given or one is malformed (never
 *   shown), or `store`/`onError` are not what they must be.
 * @throws {RangeError} For a bad `tolerance`, `remember`, `lease`,
 *   `maxBodySize` or `bodyTimeout`.
 *
 * @example With an early ack
 * ```ts
 * import { Hono } from "hono";
 * import { connection, drainBackground, verifyTrigger } from "./mod.ts";
 * import { signPayload } from "../signature/sign.ts";
 * import assert from "node:assert/strict";
 *
 * const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
 * const app = new Hono();
 * const sent: string[] = [];
 * app.post(
 *   "/jobs/mail",
 *   verifyTrigger({ secret }),
 *   connection({ ack: true }),
 *   async (c) => void sent.push((await c.req.json()).to),
 * );
 *
 * const body = JSON.stringify({ to: "ada@example.com" });
 * const id = "msg_mail_1";
 * const timestamp = Math.floor(Date.now() / 1000);
 * const signature = await signPayload(secret, { id, timestamp, body });
 * const headers = {
 *   "webhook-id": id,
 *   "webhook-timestamp": String(timestamp),
 *   "webhook-signature": signature,
 * };
 * const request = () => app.request("/jobs/mail", { method: "POST", headers, body });
 * assert.equal((await request()).status, 202);
 * assert.equal((await request()).status, 200); // a retry: not run again
 *
 * const unsigned = await app.request("/jobs/mail", { method: "POST", body });
 * assert.equal(unsigned.status, 401); // never a 202
 * await drainBackground();
 * assert.deepEqual(sent, ["ada@example.com"]);
 * ```
 */
export function verifyTrigger(
  options: VerifyTriggerOptions,
): MiddlewareHandler<VerifyTriggerEnv> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${PREFIX}options must be an object with a secret`);
  }
  const {
    secret,
    secrets,
    tolerance = 300,
    store = new MemoryDedupStore(),
    lease = 300,
    maxBodySize = 1_048_576,
    bodyTimeout = 30,
    onError = reportToConsole,
  } = options;
  const keyBytes = secretList(secret, secrets);
  checkNumber("tolerance", tolerance, 1);
  const { remember = 2 * tolerance } = options;
  checkNumber("remember", remember, 2 * tolerance);
  checkNumber("lease", lease, 1);
  // A timer waits at most 2^31 - 1 ms.
  checkNumber("bodyTimeout", bodyTimeout, 0, 2_147_483);
  if (typeof maxBodySize !== "number" || !(maxBodySize >= 0)) {
    throw new RangeError(
      `${PREFIX}maxBodySize must be a number >= 0, received ${
        String(maxBodySize)
      }`,
    );
  }
  if (
    typeof store !== "object" || store === null ||
    typeof store.claim !== "function" ||
    typeof store.complete !== "function" ||
    typeof store.release !== "function"
  ) {
    throw new TypeError(
      `${PREFIX}store must have claim(), complete() and release() methods`,
    );
  }
  if (typeof onError !== "function") {
    throw new TypeError(
      `${PREFIX}onError must be a function, received ${typeof onError}`,
    );
  }
  let keys: Promise<CryptoKey[]> | undefined;

  return async function verifyTrigger(c, next) {
    const headers = c.req.raw.headers;
    const id = headers.get("webhook-id");
    const stamp = headers.get("webhook-timestamp");
    const header = headers.get("webhook-signature");
    if (id === null) return reject(401, "Missing webhook-id header");
    if (stamp === null) return reject(401, "Missing webhook-timestamp header");
    if (header === null) {
      return reject(401, "Missing webhook-signature header");
    }
    if (!isMessageId(id)) return reject(401, "Malformed webhook-id header");
    if (!TIMESTAMP.test(stamp)) {
      return reject(401, "Malformed webhook-timestamp header");
    }
    const timestamp = Number(stamp);
    const now = Math.floor(Date.now() / 1000);
    if (now - timestamp > tolerance) {
      return reject(401, "Message timestamp too old");
    }
    if (timestamp - now > tolerance) {
      return reject(401, "Message timestamp too new");
    }
    const signatures = parseSignatures(header);
    if (signatures === undefined) {
      return reject(401, "Malformed webhook-signature header");
    }
    if (signatures.length === 0) {
      return reject(401, "No v1 signature in webhook-signature header");
    }

    const body = await readBody(c, maxBodySize, bodyTimeout);
    if (body === "too large") {
      return reject(413, `Request body exceeds ${maxBodySize} bytes`);
    }
    if (body === "timeout") {
      return reject(408, `Request body not received within ${bodyTimeout} s`);
    }
    if (body === "failed") return reject(400, "Request body could not be read");

    keys ??= Promise.all(keyBytes.map((bytes) => importKey(bytes, "verify")));
    if (!await verify(await keys, signatures, { id, timestamp, body })) {
      return reject(401, "Invalid signature");
    }

    let claim: ClaimResult;
    try {
      claim = await store.claim(id, lease * 1000);
    } catch (error) {
      await report(onError, error, c);
      return reject(503, "Deduplication store unavailable");
    }
    annotate({
      "fire_trigger.webhook.id": id,
      "fire_trigger.webhook.duplicate": claim !== "claimed",
    });
    if (claim === "done") {
      return new Response("Duplicate: this webhook-id was already handled\n", {
        status: 200,
        headers: { ...TEXT, [DUPLICATE_HEADER]: "done" },
      });
    }
    if (claim !== "claimed") {
      return new Response(
        "Duplicate: this webhook-id is being handled; retry later\n",
        {
          status: 429,
          headers: {
            ...TEXT,
            [DUPLICATE_HEADER]: "running",
            "retry-after": "5",
          },
        },
      );
    }

    if (hasBody(c.req.raw)) c.req.raw = bufferedRequest(c.req.raw, body);
    c.set("trigger", { id, timestamp });
    let succeeded = false;
    let response: Response | undefined;
    try {
      await next();
      // Judged at once: a route running in the background behind
      // connection({ ack: true }) shares the Context and may write its own
      // answer to it while the store is awaited below.
      response = c.res;
      succeeded = c.error === undefined && response.status >= 200 &&
        response.status < 300;
    } finally {
      try {
        if (succeeded) await store.complete(id, remember * 1000);
        else await store.release(id);
      } catch (error) {
        await report(onError, error, c);
      }
    }
    if (c.res !== response) c.res = response;
  };
}

const TEXT = { "content-type": "text/plain; charset=UTF-8" };

function reject(status: number, reason: string): Response {
  annotate({ "fire_trigger.webhook.rejected": reason });
  return new Response(reason + "\n", { status, headers: TEXT });
}

function secretList(
  secret: unknown,
  secrets: unknown,
): Uint8Array[] {
  if (secret !== undefined && secrets !== undefined) {
    throw new TypeError(`${PREFIX}give secret or secrets, not both`);
  }
  if (secrets !== undefined) {
    if (!Array.isArray(secrets) || secrets.length === 0) {
      throw new TypeError(
        `${PREFIX}secrets must be a non-empty array of secrets`,
      );
    }
    return secrets.map((s, i) => parseSecret(s, `${PREFIX}secrets[${i}]`));
  }
  if (secret === undefined) {
    throw new TypeError(`${PREFIX}a secret (or secrets) is required`);
  }
  return [parseSecret(secret, `${PREFIX}secret`)];
}

function checkNumber(
  name: string,
  value: unknown,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): void {
  if (
    typeof value !== "number" || !Number.isFinite(value) || !(value >= min) ||
    value > max
  ) {
    throw new RangeError(
      `${PREFIX}${name} must be a number of seconds from ${min} to ${max}, received ${
        String(value)
      }`,
    );
  }
}

function reportToConsole(error: unknown, c: Context): void {
  console.error(
    `verifyTrigger(): deduplication store failed: ${c.req.method} ${c.req.url}`,
    error,
  );
}

async function report(
  onError: (error: unknown, c: Context) => unknown,
  error: unknown,
  c: Context,
): Promise<void> {
  try {
    await onError(error, c);
  } catch (failure) {
    console.error("verifyTrigger(): onError threw", failure);
  }
}

function hasBody(request: Request): boolean {
  return request.method !== "GET" && request.method !== "HEAD";
}

/**
 * Reads the whole body, at most `limit` bytes, within `seconds` (0: no
 * limit). An earlier middleware's read through Hono is reused (its cache).
 */
async function readBody(
  c: Context,
  limit: number,
  seconds: number,
): Promise<Uint8Array | "too large" | "timeout" | "failed"> {
  const raw = c.req.raw;
  if (!hasBody(raw)) return new Uint8Array(0);
  if (raw.bodyUsed) {
    try {
      const bytes = new Uint8Array(await c.req.arrayBuffer());
      return bytes.byteLength > limit ? "too large" : bytes;
    } catch {
      return "failed";
    }
  }
  if (Number(raw.headers.get("content-length")) > limit) return "too large";
  if (raw.body === null) return new Uint8Array(0);
  const reader = raw.body.getReader();
  let timedOut = false;
  const timer = seconds > 0
    ? setTimeout(() => {
      timedOut = true;
      reader.cancel().catch(noop);
    }, seconds * 1000)
    : undefined;
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (timedOut) return "timeout";
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel().catch(noop);
        return "too large";
      }
      chunks.push(value);
    }
  } catch {
    return timedOut ? "timeout" : "failed";
  } finally {
    clearTimeout(timer);
  }
  if (chunks.length === 1) return chunks[0];
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

function noop(): void {}

/** A copy of `raw` with its body in memory, for the route to read again. */
function bufferedRequest(raw: Request, body: Uint8Array): Request {
  const request = new Request(raw.url, {
    method: raw.method,
    headers: raw.headers,
    body: body as BodyInit,
    signal: raw.signal,
  });
  const cf = (raw as { cf?: unknown }).cf;
  if (cf !== undefined) Object.defineProperty(request, "cf", { value: cf });
  return request;
}
