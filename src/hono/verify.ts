/**
 * `verifyTrigger()`: a Hono middleware that lets only signed triggers in
 * (Standard Webhooks signatures, as `trigger()`'s `sign` option writes them)
 * and runs each message once: a replay or retry of a message already handled
 * is answered `200` without running the route again. Re-exported by
 * `./hono`. Its options are in `verify_types.ts`, the stores in
 * `../dedup/`, the body reader (shared with `connection()`) in `_body.ts`.
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import { verifyTrigger } from "./mod.ts";
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

import { show } from "../_show.ts";
import { ByteBudget } from "../_byte_budget.ts";
import type { Middleware, MiddlewareContext } from "./context.ts";
import type { VerifyTriggerOptions } from "./verify_types.ts";
import type { ClaimResult } from "../dedup/store.ts";
import { MemoryDedupStore } from "../dedup/memory.ts";
import {
  importKey,
  isMessageId,
  parseSecret,
  parseSignatures,
  TIMESTAMP,
  verify,
} from "../signature/_sign.ts";
import {
  bufferedRequest,
  DEFAULT_BODY_TIMEOUT,
  DEFAULT_MAX_BUFFERED_BYTES,
  hasBody,
  readBody,
  refuseBody,
} from "./_body.ts";
import {
  checkBodyTimeout,
  checkBudget,
  checkBytes,
  checkFunction,
  MAX_TOLERANCE,
} from "./_check.ts";
import { checkMs, DEFAULT_MAX_BODY_SIZE, refuseOnError } from "../_options.ts";
import { consoleReporter, report } from "./_report.ts";
import { annotate } from "./_trace.ts";
import { keepAlive } from "./_background.ts";
import { takeRunning } from "./_running.ts";
import { ownAnswer, respond } from "./_respond.ts";
import { bounded } from "../_bounded.ts";

/** The header that marks an answer given instead of running the route. */
const DUPLICATE_HEADER = "x-trigger-duplicate";
const PREFIX = "Cannot create verifyTrigger() middleware: ";
const TEXT = { "content-type": "text/plain; charset=UTF-8" };

/**
 * A middleware that lets only signed triggers reach the route and runs each
 * message once. It checks the Standard Webhooks headers `trigger()` writes
 * with its `sign` option (`webhook-id`, `webhook-timestamp`,
 * `webhook-signature`, or Svix's `svix-id`, `svix-timestamp`,
 * `svix-signature`) against the raw body bytes, in constant time, and
 * leaves the body readable (`c.req.json()`, `c.req.raw` … still work). It
 * reads the signature header as the reference libraries do: one matching
 * `v1` entry is enough; malformed and unknown entries are skipped.
 *
 * Answers, the route not running:
 * - `401` with a one-line reason: `Missing webhook-signature header`,
 *   `Malformed webhook-timestamp header`, `Message timestamp too old`,
 *   `Message timestamp too new`, `No v1 signature in webhook-signature
 *   header`, `Invalid signature`, …
 * - `413` for a body over `maxBodySize`, `408` for one slower than
 *   `bodyTimeout`, `400` for one that cannot be read, `503` with
 *   `Retry-After` when `maxBufferedBytes` are already held by other
 *   unverified bodies.
 * - `200` with `x-trigger-duplicate: done` for an id whose route already
 *   succeeded within `remember`: a retry or a replay; the sender can stop.
 * - `429` with `Retry-After` and `x-trigger-duplicate: running` while
 *   another delivery of the same id runs: retry later (429 rather than 409
 *   because senders, this package's outbox included, retry 429 and give up
 *   on most other 4xx).
 * - `503` when the store fails (reported to `reportError`).
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
 *   shown), or `store`/`reportError`/`scope` are not what they must be.
 * @throws {RangeError} For a bad `tolerance`, `remember`, `lease`,
 *   `maxBodySize`, `bodyTimeout`, `maxBufferedBytes` or `storeTimeout`, or a
 *   `maxBodySize` over `maxBufferedBytes`.
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
export function verifyTrigger(options: VerifyTriggerOptions): Middleware {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `${PREFIX}options must be an object with a secret, received ${
        options === null ? "null" : typeof options
      }`,
    );
  }
  if ("secrets" in options) {
    throw new TypeError(
      `${PREFIX}secrets is not an option: pass several secrets as secret: [new, old]`,
    );
  }
  refuseOnError(options, PREFIX);
  const {
    secret,
    tolerance = 300_000,
    store = new MemoryDedupStore(),
    lease = 300_000,
    storeTimeout = 10_000,
    scope,
    maxBodySize = DEFAULT_MAX_BODY_SIZE,
    bodyTimeout = DEFAULT_BODY_TIMEOUT,
    maxBufferedBytes = DEFAULT_MAX_BUFFERED_BYTES,
    reportError = consoleReporter(
      "verifyTrigger(): deduplication store failed",
    ),
  } = options;
  /**
   * A store call: `call`, the store's own promise, and `result`, the same
   * bounded by `storeTimeout` (a {@linkcode StoreTimeout} past it). The
   * built-in MemoryDedupStore's own methods answer at once and cannot hang:
   * not timed (a timer per call would cost more than its claim). Judged by
   * the method called, at each call: one replaced on the instance (wrapped,
   * instrumented) or overridden by a subclass may hang, and is timed.
   */
  const timed = <T>(
    fn: () => Promise<T>,
    name: "claim" | "complete" | "release",
  ) => {
    const untimed = store[name] === MemoryDedupStore.prototype[name];
    let call: Promise<T>;
    try {
      call = Promise.resolve(fn());
    } catch (error) {
      call = Promise.reject(error);
    }
    return {
      call,
      result: untimed ? call : bounded(
        storeTimeout,
        () => call,
        () => new StoreTimeout(name, storeTimeout),
      ),
    };
  };
  const keyBytes = secretList(secret);
  if (
    scope !== undefined &&
    (typeof scope !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(scope))
  ) {
    throw new TypeError(
      `${PREFIX}scope must be 1 to 64 letters, digits, "_" or "-", received ${
        show(scope)
      }`,
    );
  }
  checkMs(tolerance, `${PREFIX}tolerance`, 1_000, MAX_TOLERANCE);
  const { remember = 2 * tolerance } = options;
  checkMs(
    remember,
    `${PREFIX}remember`,
    2 * tolerance,
    Number.MAX_SAFE_INTEGER,
  );
  checkMs(lease, `${PREFIX}lease`, 1_000, Number.MAX_SAFE_INTEGER);
  checkMs(storeTimeout, `${PREFIX}storeTimeout`, 1);
  checkBodyTimeout(bodyTimeout, `${PREFIX}bodyTimeout`);
  checkBytes(maxBodySize, `${PREFIX}maxBodySize`);
  checkBytes(maxBufferedBytes, `${PREFIX}maxBufferedBytes`);
  checkBudget(maxBodySize, maxBufferedBytes, PREFIX);
  if (typeof store !== "object" || store === null) {
    throw new TypeError(
      `${PREFIX}store must be a DedupStore, received ${
        store === null ? "null" : typeof store
      }`,
    );
  }
  for (const method of ["claim", "complete", "release"] as const) {
    if (typeof store[method] !== "function") {
      throw new TypeError(
        `${PREFIX}store.${method} must be a function, received ${typeof store[
          method
        ]}`,
      );
    }
  }

  checkFunction(reportError, `${PREFIX}reportError`);
  const budget = new ByteBudget(maxBufferedBytes);
  let keys: Promise<Keys> | undefined;
  const importKeys = (): Promise<Keys> => {
    // A failed import is not kept: the next request tries again.
    keys ??= Promise.all([
      Promise.all(keyBytes.map((bytes) => importKey(bytes, "verify"))),
      scope === undefined
        ? Promise.all(keyBytes.map(scopeOf))
        : keyBytes.map(() => scope),
    ]).then(([keys, scopes]) => ({ keys, scopes }))
      .catch((error) => {
        keys = undefined;
        throw error;
      });
    return keys;
  };

  return async function verifyTrigger(c, next) {
    const found = signatureHeaders(c.req.raw.headers);
    if (typeof found === "string") return reject(c, 401, found);
    const { id, stamp, header, prefix } = found;
    if (!isMessageId(id)) {
      return reject(c, 401, `Malformed ${prefix}-id header`);
    }
    if (!TIMESTAMP.test(stamp)) {
      return reject(c, 401, `Malformed ${prefix}-timestamp header`);
    }
    const timestamp = Number(stamp);
    // In whole seconds of the receiver's clock, as the references count.
    const skew = (Math.floor(Date.now() / 1000) - timestamp) * 1000;
    if (skew > tolerance) return reject(c, 401, "Message timestamp too old");
    if (-skew > tolerance) return reject(c, 401, "Message timestamp too new");
    const signatures = parseSignatures(header);
    if (signatures.length === 0) {
      return reject(c, 401, `No v1 signature in ${prefix}-signature header`);
    }

    const read = await readBody(c, {
      maxBodySize,
      timeout: bodyTimeout,
      budget,
      exact: "verifyTrigger()",
    });
    if (!read.ok) {
      return ownAnswer(c, refuseBody(read.failure, maxBodySize, bodyTimeout));
    }
    const body = read.body ?? new Uint8Array(0);
    let key: string;
    try {
      const { keys, scopes } = await importKeys();
      const index = await verify(keys, signatures, { id, timestamp, body });
      key = index === -1 ? "" : `${scopes[index]}:${id}`;
    } catch (error) {
      read.release();
      throw error;
    }
    // Authenticated (or refused): no longer counted as unverified bytes.
    read.release();
    if (key === "") return reject(c, 401, "Invalid signature");
    // Made before the claim: a method no Request may be made with (Deno.serve
    // hands `TRACE` on) throws here, with nothing claimed.
    const copy = hasBody(c.req.raw)
      ? bufferedRequest(c.req.raw, body)
      : undefined;

    let claim: ClaimResult;
    const token = crypto.randomUUID();
    /** A store call that outlived `storeTimeout`: its failure, should it
     * fail later, is reported. Not kept alive or drained: a store that
     * never answers must not hold a shutdown (a claim lapses with its lease
     * anyway). */
    const afterTimeout = (late: Promise<unknown>) =>
      void late.catch((error) =>
        report(reportError, error, c, "verifyTrigger()")
      );
    /** A platform that refused to keep background work alive. */
    const refused = (error: unknown) =>
      report(reportError, error, c, "verifyTrigger()");
    const claiming = timed(() => store.claim(key, lease, token), "claim");
    try {
      claim = await claiming.result;
    } catch (error) {
      // Should it still succeed, nothing runs under it: let it go.
      if (error instanceof StoreTimeout) {
        afterTimeout(
          claiming.call.then((late) =>
            late === "claimed" ? store.release(key, token) : undefined
          ),
        );
      }
      // Not awaited: a slow reporter must not hold the 503 back.
      keepAlive(
        c,
        report(reportError, error, c, "verifyTrigger()"),
        refused,
      );
      return reject(c, 503, "Deduplication store unavailable");
    }
    annotate({
      "fire_trigger.webhook.id": id,
      "fire_trigger.webhook.duplicate": claim !== "claimed",
    });
    if (claim === "done") {
      return ownAnswer(
        c,
        new Response("Duplicate: this webhook-id was already handled\n", {
          status: 200,
          headers: { ...TEXT, [DUPLICATE_HEADER]: "done" },
        }),
      );
    }
    if (claim !== "claimed") {
      return ownAnswer(
        c,
        new Response(
          "Duplicate: this webhook-id is being handled; retry later\n",
          {
            status: 429,
            headers: {
              ...TEXT,
              [DUPLICATE_HEADER]: "running",
              "retry-after": "5",
            },
          },
        ),
      );
    }

    if (copy !== undefined) c.req.raw = copy;
    c.set("trigger", { id, timestamp });
    let succeeded = false;
    let response: Response | undefined;
    const settle = async () => {
      const settling = succeeded
        ? timed(() => store.complete(key, remember), "complete")
        : timed(() => store.release(key, token), "release");
      try {
        await settling.result;
      } catch (error) {
        if (error instanceof StoreTimeout) afterTimeout(settling.call);
        // Not awaited: a slow reporter must not hold the route's answer.
        keepAlive(
          c,
          report(reportError, error, c, "verifyTrigger()"),
          refused,
        );
      }
    };
    try {
      await next();
      // Judged at once: a route running in the background behind
      // connection({ ack: true }) shares the Context and may write its own
      // answer to it while the store is awaited below.
      response = c.res;
      succeeded = c.error === undefined && response.status >= 200 &&
        response.status < 300;
    } finally {
      // connection() answered early (time limit, caller gone) while the
      // route goes on: the id stays claimed (a retry gets 429) until the
      // run ends, then is released, in the background.
      const running = takeRunning(c);
      if (running === undefined) await settle();
      else keepAlive(c, running.then(settle, settle), refused);
    }
    // As judged: not merged with what a background route wrote since.
    if (c.res !== response) respond(c, response);
  };
}

/** The secrets' keys, and the scope each gives the ids it verifies. */
interface Keys {
  keys: CryptoKey[];
  scopes: string[];
}

/** What a secret's ids are kept under in the store, before the id: the
 * first 8 bytes of the secret's SHA-256, in hex. One message sent to two
 * endpoints (a Svix message to each subscribed endpoint, with the same id
 * and each endpoint's own secret) is two deliveries, each run once, even
 * where both routes share a store. */
async function scopeOf(secret: Uint8Array): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", secret as Uint8Array<ArrayBuffer>),
  );
  let hex = "";
  for (let i = 0; i < 8; i++) hex += digest[i].toString(16).padStart(2, "0");
  return hex;
}

/** The store did not answer within `storeTimeout`. */
class StoreTimeout extends Error {
  constructor(call: string, ms: number) {
    super(`verifyTrigger(): store.${call}() did not answer within ${ms} ms`);
    this.name = "StoreTimeout";
  }
}

/** The three headers, Standard Webhooks' names first, then Svix's. */
function signatureHeaders(
  headers: Headers,
): { id: string; stamp: string; header: string; prefix: string } | string {
  const prefix = headers.has("webhook-id") || !headers.has("svix-id")
    ? "webhook"
    : "svix";
  const id = headers.get(`${prefix}-id`);
  const stamp = headers.get(`${prefix}-timestamp`);
  const header = headers.get(`${prefix}-signature`);
  if (id === null) return `Missing ${prefix}-id header`;
  if (stamp === null) return `Missing ${prefix}-timestamp header`;
  if (header === null) return `Missing ${prefix}-signature header`;
  return { id, stamp, header, prefix };
}

/** A refusal: `reason` as its text, with the headers middleware before
 * set with `c.header()` (a request id, security headers), as
 * connection()'s answers keep them. */
function reject(
  c: MiddlewareContext,
  status: number,
  reason: string,
): Response {
  annotate({ "fire_trigger.webhook.rejected": reason });
  return ownAnswer(
    c,
    new Response(reason + "\n", { status, headers: TEXT }),
  );
}

function secretList(secret: unknown): Uint8Array[] {
  if (secret === undefined) {
    throw new TypeError(`${PREFIX}secret is required`);
  }
  if (typeof secret === "string") {
    return [parseSecret(secret, `${PREFIX}secret`)];
  }
  if (!Array.isArray(secret) || secret.length === 0) {
    throw new TypeError(
      `${PREFIX}secret must be a secret string or a non-empty array of them, received ${
        secret === null ? "null" : Array.isArray(secret) ? "[]" : typeof secret
      }`,
    );
  }
  return secret.map((s, i) => parseSecret(s, `${PREFIX}secret[${i}]`));
}
