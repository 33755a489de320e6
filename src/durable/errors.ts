// The outbox's one error class: a domain condition callers are meant to
// catch, with a code saying which.

/** Why an outbox operation failed:
 * - `"LOCKED"`: another process (or another outbox in this one) has the
 *   embedded directory open.
 * - `"STORAGE"`: the embedded directory cannot be written (read-only, full,
 *   no permission).
 * - `"DATABASE"`: the database could not be opened, reached or used; with
 *   `openOutbox({ create: false })`, also a pg-boss schema at a version
 *   other than the one this release supports (older: not migrated; newer: a
 *   newer pg-boss migrated it), the message naming both versions.
 * - `"TIMEOUT"`: the database did not answer within `queryTimeout` (or
 *   `connectTimeout`). (A statement PostgreSQL cancelled for its own
 *   `statement_timeout` or `lock_timeout` is an answer: `"DATABASE"`,
 *   nothing kept.) For `outbox.trigger()` a `"TIMEOUT"`'s outcome can be
 *   unknown:
 *   when the message says "not stored", nothing was written; otherwise (the
 *   bound passed while COMMIT was under way, or the connection was lost)
 *   the row may have been stored. Give the trigger an id (`sign.id` or a
 *   `webhook-id` header) and retry with the same id: a receiver that
 *   deduplicates by `webhook-id` then runs it once.
 * - `"OVERLOADED"`: `outbox.trigger()` only: too many triggers (10,000, or
 *   64 MiB of their stored (base64) bodies, stream bodies being read counted
 *   as they arrive) already wait for the database to store them; nothing was
 *   written (a stream body is cancelled).
 * - `"TOO_LARGE"`: `outbox.trigger()` only: the body, read from a stream
 *   or `FormData`, is larger than `maxBodySize`; nothing was written. (A
 *   body whose size is known at the call is refused there, with a
 *   `RangeError`.)
 * - `"BODY"`: `outbox.trigger()` only: the body stream failed while it was
 *   read (the error is `cause`); nothing was written.
 * - `"CLOSED"`: the outbox was stopped.
 * - `"NOT_FOUND"`: `openOutbox({ create: false })` only: the embedded
 *   directory, the schema or a queue does not exist (a mistyped name); the
 *   message names it, and nothing was created.
 * - `"CONFLICT"`: `openOutbox()` only: the queue exists with pg-boss
 *   settings the outbox cannot keep its promises under (another pg-boss
 *   user's queue: a policy other than `standard`, which drops rows, or a
 *   dead letter queue other than `<queue>_dead`); the message names them.
 *   Give the outbox a queue of its own. */
export type OutboxErrorCode =
  | "LOCKED"
  | "STORAGE"
  | "DATABASE"
  | "TIMEOUT"
  | "OVERLOADED"
  | "TOO_LARGE"
  | "BODY"
  | "CLOSED"
  | "NOT_FOUND"
  | "CONFLICT";

/**
 * The error the outbox rejects with when the database or its directory
 * fails it; the original error is `cause` (with any password removed).
 * Messages never contain the connection string's password.
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
   * `redrive()` and `discard()` only: how many dead letters the call moved
   * or deleted before it failed. They work in batches of 1,000, one
   * transaction each; these were committed and stay so (the failing batch
   * was rolled back, or for a `"TIMEOUT"` at COMMIT its outcome is
   * unknown). Calling again does the rest: nothing is moved twice.
   * Undefined on other errors.
   */
  declare readonly done?: number;
  /**
   * Creates an outbox error.
   *
   * @param code What kind of failure this is.
   * @param message A sentence naming the directory or database.
   * @param options The original error as `cause`; `done` as above.
   */
  constructor(
    code: OutboxErrorCode,
    message: string,
    options?: { cause?: unknown; done?: number },
  ) {
    super(message, options);
    this.name = "OutboxError";
    this.code = code;
    if (options?.done !== undefined) this.done = options.done;
  }
}
