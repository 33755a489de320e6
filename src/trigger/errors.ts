/**
 * What went wrong with a trigger that was valid but could not be delivered.
 *
 * - `"CONNECT"`: the TCP connection was refused or the host is unreachable.
 * - `"DNS"`: the host name could not be resolved.
 * - `"TLS"`: the TLS handshake failed (untrusted certificate, wrong name, …).
 * - `"TIMEOUT"`: `timeout` passed, or the `signal` aborted with a `TimeoutError`.
 * - `"ABORTED"`: the `signal` aborted.
 * - `"CLOSED"`: the server closed or reset the connection before answering.
 * - `"HTTP_STATUS"`: the server answered with a status outside 200–299.
 * - `"PROTOCOL"`: the server's answer is not an HTTP/1.x status line (or,
 *   over a `fetch` that exposes them, as workerd's does, an interim 1xx
 *   status: the final one is not known).
 * - `"BODY"`: the request body could not be read (a failing stream or Blob).
 * - `"SIGN"`: the request could not be signed (`sign` option; WebCrypto failed).
 * - `"NETWORK"`: any other network failure; see `cause`.
 */
export type TriggerErrorCode =
  | "CONNECT"
  | "DNS"
  | "TLS"
  | "TIMEOUT"
  | "ABORTED"
  | "CLOSED"
  | "HTTP_STATUS"
  | "PROTOCOL"
  | "BODY"
  | "SIGN"
  | "NETWORK";

/** Options for {@linkcode TriggerError}. */
export interface TriggerErrorOptions {
  /** The original error, when there is one. */
  cause?: unknown;
  /** The method of the request that failed. */
  method?: string;
  /** The URL of the request that failed. */
  url?: string;
  /** The status code, for `"HTTP_STATUS"`. */
  status?: number;
  /** Milliseconds a 429 or 503 asked to wait (`Retry-After`). */
  retryAfter?: number;
}

/**
 * The error a failed {@linkcode trigger} reports in `result.error`. It is
 * never thrown by `trigger()`: network failures resolve with `ok: false`.
 *
 * @example Usage
 * ```ts
 * import { TriggerError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new TriggerError("CONNECT", "Connection refused", {
 *   method: "POST",
 *   url: "http://127.0.0.1:9/jobs",
 * });
 * assert.equal(error.name, "TriggerError");
 * assert.equal(error.code, "CONNECT");
 * assert.equal(error.message, "Connection refused: POST http://127.0.0.1:9/jobs");
 * assert.ok(TriggerError.is(error));
 * ```
 */
export class TriggerError extends Error {
  /** What kind of failure this is. */
  readonly code: TriggerErrorCode;
  /** The method of the request that failed, when known. */
  readonly method?: string;
  /** The URL of the request that failed, when known. */
  readonly url?: string;
  /** The status code the server answered, for `"HTTP_STATUS"`. */
  readonly status?: number;
  /** For a `429` or `503` whose head carried `Retry-After`: the wait it asked
   * for, in milliseconds (delay-seconds × 1000, or an HTTP-date less the
   * time it was read, 0 once past). `undefined` for other statuses, for a
   * value RFC 9110 does not allow (a list, a fraction, no date), and for a
   * 429 or 503 whose head never came whole (stalled, closed, over 64 KiB). */
  readonly retryAfter?: number;

  /**
   * Creates a trigger error.
   *
   * @param code What kind of failure this is.
   * @param message What happened; the method and URL are appended.
   * @param options The cause, the request it concerns, the status and the
   *   wait a 429 or 503 asked for.
   */
  constructor(
    code: TriggerErrorCode,
    message: string,
    options: TriggerErrorOptions = {},
  ) {
    const target = options.method && options.url
      ? `: ${options.method} ${options.url}`
      : "";
    super(
      message + target,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "TriggerError";
    this.code = code;
    this.method = options.method;
    this.url = options.url;
    this.status = options.status;
    this.retryAfter = options.retryAfter;
  }

  /**
   * Tells whether a value is a `TriggerError`, also across realms and copies
   * of this module (it checks `name` and `code` as well as `instanceof`).
   *
   * @param value Any value.
   * @returns Whether `value` is a `TriggerError`.
   */
  static is(value: unknown): value is TriggerError {
    return value instanceof TriggerError ||
      (value instanceof Error && value.name === "TriggerError" &&
        typeof (value as { code?: unknown }).code === "string");
  }
}
