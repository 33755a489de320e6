/**
 * The types of `verifyTrigger()`: its options and what it tells the route.
 *
 * @module
 */
import type { MiddlewareContext } from "./context.ts";
import type { DedupStore } from "../dedup/store.ts";

/**
 * What `verifyTrigger()` tells the route, as `c.var.trigger`.
 *
 * @example Usage
 * ```ts
 * import type { VerifiedTrigger } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const trigger: VerifiedTrigger = { id: "msg_1", timestamp: 1_700_000_000 };
 * assert.equal(new Date(trigger.timestamp * 1000).getUTCFullYear(), 2023);
 * ```
 */
export interface VerifiedTrigger {
  /** The `webhook-id` (or `svix-id`): the same on every retry of one message. */
  id: string;
  /** The `webhook-timestamp`, unix seconds (the wire format's unit). */
  timestamp: number;
}

/**
 * The context variables `verifyTrigger()` sets.
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import type { VerifyTriggerVariables } from "./mod.ts";
 *
 * const app = new Hono<{ Variables: VerifyTriggerVariables }>();
 * app.post("/hook", (c) => c.text(c.var.trigger?.id ?? "unsigned"));
 * ```
 */
export type VerifyTriggerVariables = {
  /** The verified message's id and timestamp. */
  trigger: VerifiedTrigger;
};

/**
 * The Hono environment that types `c.var.trigger`:
 * `new Hono<VerifyTriggerEnv>()` (or `ConnectionEnv & VerifyTriggerEnv`).
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import type { ConnectionEnv, VerifyTriggerEnv } from "./mod.ts";
 *
 * const app = new Hono<ConnectionEnv & VerifyTriggerEnv>();
 * app.post("/hook", (c) => c.text(c.var.trigger.id));
 * ```
 */
export type VerifyTriggerEnv = {
  /** The context variables. */
  Variables: VerifyTriggerVariables;
};

/** Options for `verifyTrigger()`. Durations are milliseconds. */
export interface VerifyTriggerOptions {
  /**
   * The shared secret, `whsec_<base64>`, or several accepted at once for a
   * rotation (the new one and the old one until every sender has moved) —
   * as `verifyPayload()` takes it. Required.
   */
  secret: string | readonly string[];
  /**
   * Milliseconds a timestamp may lie behind or ahead of this clock: from
   * 1 000 to half of `Number.MAX_SAFE_INTEGER`.
   *
   * @default {300_000}
   */
  tolerance?: number;
  /**
   * Where ids are remembered.
   *
   * @default {new MemoryDedupStore()}
   */
  store?: DedupStore;
  /**
   * What this route's ids are kept under in the store, before the id
   * (`<scope>:<id>`): 1–64 letters, digits, `_` or `-`. Routes that share a
   * store and a scope share their ids. Without it, each secret is a scope of
   * its own (16 hex digits of its SHA-256): one message a sender delivers to
   * two endpoints (Svix, with each endpoint's secret) runs on each. During a
   * secret rotation a retry signed with the other secret is then another
   * key, and may run beside the first delivery: give the route a scope of
   * its own to keep one key across rotations.
   *
   * @default {undefined} (the verifying secret's)
   */
  scope?: string;
  /**
   * Milliseconds a succeeded id is remembered (the `ttl` of
   * `store.complete()`). The minimum and default, `2 * tolerance`, outlives
   * any copy of the request: by then its timestamp is too old to pass, so a
   * replay can never run twice. Longer protects a sender that re-signs its
   * retries with fresh timestamps (an outbox) for longer.
   *
   * @default {2 * tolerance}
   */
  remember?: number;
  /**
   * Milliseconds a running delivery holds its id (the claim's lease, the
   * `ttl` of `store.claim()`): a concurrent delivery of the same id is
   * answered `429` meanwhile, and a crashed instance's claim lapses after
   * it. Must outlast the route (with `connection({ ack: true })` behind,
   * only the body read and the `202`). At least 1 000.
   *
   * @default {300_000}
   */
  lease?: number;
  /**
   * Milliseconds the store may take to answer a call. A claim that takes
   * longer is answered `503` (and reported); should it then succeed, the
   * claim is released. A `complete()` or `release()` that takes longer is
   * reported and no longer waited for: the route's answer goes out, and the
   * id stays claimed (a retry gets `429`) until the store catches up or the
   * lease lapses. A call that outlived it is not kept alive or drained.
   * The built-in `MemoryDedupStore`'s own methods, which answer at once,
   * are not timed; one replaced on the instance or overridden is.
   * From 1 to 2^31 − 1.
   *
   * @default {10_000}
   */
  storeTimeout?: number;
  /**
   * The largest body in bytes read for verification; larger gets `413`.
   * A whole number >= 0, or `Infinity` for no limit.
   *
   * @default {1_048_576}
   */
  maxBodySize?: number;
  /**
   * Milliseconds the whole body may take to arrive; slower gets `408` and
   * what was read of it is let go. (Closing the socket is the server's:
   * `Deno.serve` kept it open 5 s after the 408 as measured, the client
   * silent.) `0` means no limit; otherwise at least 1 000 (a value left in
   * seconds is refused).
   *
   * @default {10_000}
   */
  bodyTimeout?: number;
  /**
   * The most body bytes this middleware holds in memory at once across
   * requests before their signature is checked (unauthenticated bytes).
   * Past it a request gets `503` with `Retry-After` and is not read. A
   * whole number >= 0, or `Infinity` for no limit; must be at least
   * `maxBodySize` (a RangeError otherwise).
   *
   * @default {16_777_216}
   */
  maxBufferedBytes?: number;
  /**
   * Reports store failures (the request is answered `503`, or the route's
   * answer kept), and a platform's `waitUntil` that threw when handed the
   * store's late work. No answer waits for it (a promise it returns is kept
   * alive and waited for by `drainBackground()`). Not Hono's
   * `app.onError`, which makes an error answer.
   *
   * @default {console.error}
   */
  reportError?: (error: unknown, c: MiddlewareContext) => unknown;
}
