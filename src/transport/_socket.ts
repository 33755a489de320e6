// The raw-socket transport: HTTP/1.1 written by hand over a raw connection
// (Deno.connect / connectTls, or cloudflare:sockets), the response read back:
// its status for the caller, the rest skipped so the connection can be reused.
import { latin1, requestHead } from "./_http1.ts";
import { ResponseProtocolError, ResponseReader } from "./_response.ts";
import type { PreparedRequest } from "../trigger/_request.ts";
import { abortFailure, bodyBytes, failure } from "../trigger/_fail.ts";
import { TriggerError } from "../trigger/errors.ts";
import type { ConnectStage, ConnectTarget, RawConn } from "./_conn.ts";
import { rawConnector, rawSocketsCanBeReused } from "./_runtime.ts";
import { putIdle, type Reused, takeIdle } from "./_pool.ts";

/** Bodies up to this size go out in the same write as the head. */
const COALESCE_LIMIT = 64 * 1024;
/** Methods safe to send again (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);
const DNS_FAILURE =
  /lookup address|name or service|nodename nor servname|dns|no such host/i;

type Phase = ConnectStage | "write" | "read";

/** What the transport tells the caller as it goes. */
export interface SendEvents {
  /** The whole request is written. */
  onSent(): void;
  /** The final status line arrived. */
  onStatus(status: number): void;
  /** A stale reused connection: the request goes again on a fresh one. */
  onResend?(): void;
  /** The request starts (`true`) or stops (`false`) waiting for a
   * connection to its origin. */
  onQueue?(waiting: boolean): void;
}

/** A reused connection died before answering: nothing proves receipt. */
class StaleConnection extends Error {
  constructor(cause: unknown) {
    super("Reused connection closed before answering", { cause });
  }
}

function classify(
  error: unknown,
  phase: Phase,
  req: PreparedRequest,
  signal: AbortSignal,
): TriggerError {
  if (error instanceof TriggerError) return error;
  if (signal.aborted) return abortFailure(signal, req);
  if (error instanceof ResponseProtocolError) {
    return failure(
      "PROTOCOL",
      `${error.message}: ${JSON.stringify(error.line)}`,
      req,
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  switch (phase) {
    case "connect":
      if (DNS_FAILURE.test(message)) {
        return failure(
          "DNS",
          `Host "${req.url.hostname}" could not be resolved`,
          req,
          error,
        );
      }
      return failure("CONNECT", `Could not connect (${message})`, req, error);
    case "tls":
      return failure("TLS", `TLS handshake failed (${message})`, req, error);
    case "write":
      return failure(
        "CLOSED",
        `Connection closed while sending (${message})`,
        req,
        error,
      );
    case "read":
      return failure(
        "CLOSED",
        `Connection closed before the status line (${message})`,
        req,
        error,
      );
  }
}

function connectTarget(req: PreparedRequest, signal: AbortSignal) {
  const { url } = req;
  const tls = url.protocol === "https:";
  return {
    hostname: url.hostname.startsWith("[")
      ? url.hostname.slice(1, -1)
      : url.hostname,
    port: url.port ? Number(url.port) : tls ? 443 : 80,
    tls,
    caCerts: req.caCerts,
    signal,
  };
}

/**
 * Sends `req` over a raw socket: `onSent` once the whole request is written,
 * `onStatus` when the final status line arrives; resolves when the
 * connection is back in the pool or closed, with the status (undefined when
 * the server closed without answering). Rejects with a TriggerError.
 *
 * A reused connection that dies before any response byte is retried once on
 * a fresh one for idempotent methods only; for others it is reported, since
 * nothing proves the server did not receive the request.
 */
export async function sendOverSocket(
  req: PreparedRequest,
  signal: AbortSignal,
  events: SendEvents,
): Promise<number | undefined> {
  const body = req.body instanceof Request
    ? await bodyBytes(req, signal)
    : req.body;
  if (signal.aborted) throw abortFailure(signal, req);
  const target = connectTarget(req, signal);
  const key = req.reuse && rawSocketsCanBeReused()
    ? `${req.url.protocol}//${target.hostname}:${target.port}|${
      req.caCerts?.join("") ?? ""
    }`
    : undefined;
  const head = requestHead(
    req.method,
    req.url,
    req.headers,
    body?.length ?? null,
    key !== undefined,
  );
  let data: Uint8Array;
  let rest: Uint8Array | null = null;
  if (body !== null && body.length <= COALESCE_LIMIT) {
    data = latin1(head, body.length);
    data.set(body, head.length);
  } else {
    data = latin1(head);
    rest = body;
  }

  let reused = key === undefined ? undefined : takeIdle(key);
  while (true) {
    try {
      return await exchange(req, signal, events, target, reused, key, [
        data,
        rest,
      ]);
    } catch (error) {
      if (!(error instanceof StaleConnection)) throw error;
      if (!IDEMPOTENT.has(req.method)) {
        throw failure(
          "CLOSED",
          `Reused connection closed after the request was written; not sent again, since ${req.method} is not idempotent`,
          req,
          error.cause,
        );
      }
      reused = undefined; // once more, on a fresh connection
      events.onResend?.();
    }
  }
}

async function exchange(
  req: PreparedRequest,
  signal: AbortSignal,
  events: SendEvents,
  target: ConnectTarget,
  reused: Reused | undefined,
  key: string | undefined,
  [data, rest]: [Uint8Array, Uint8Array | null],
): Promise<number | undefined> {
  let phase: Phase = "connect";
  let conn: RawConn | undefined = reused?.conn;
  let kept = false;
  const close = () => conn?.close();
  signal.addEventListener("abort", close, { once: true });
  const response = new ResponseReader(req.method);
  try {
    conn ??= await rawConnector()!(target, (stage) => phase = stage);
    if (signal.aborted) throw abortFailure(signal, req);

    phase = "write";
    await conn.write(data);
    if (rest !== null) await conn.write(rest);
    events.onSent();
    // Let the caller resume before the read starts.
    await undefined;

    phase = "read";
    let first = reused?.firstRead;
    while (!response.complete && !response.giveUp) {
      const chunk = first ? await first : await conn.read();
      first = undefined;
      if (chunk === null) {
        if (response.received === 0) {
          if (reused) throw new StaleConnection(null);
          return undefined;
        }
        response.end();
        if (response.status === undefined) {
          throw failure(
            "CLOSED",
            "Connection closed in the middle of the status line",
            req,
          );
        }
        break;
      }
      const known = response.status !== undefined;
      response.push(chunk);
      if (!known && response.status !== undefined) {
        events.onStatus(response.status);
      }
      // Read the rest only to reuse the connection.
      if (
        response.status !== undefined &&
        (key === undefined || !response.keepAlive)
      ) break;
    }
    if (key !== undefined && response.reusable && !signal.aborted) {
      putIdle(key, conn, response.keepAliveMs);
      kept = true;
    }
    return response.status;
  } catch (error) {
    // After the status, a failure only means the connection is not reused.
    if (response.status !== undefined) return response.status;
    if (
      reused && response.received === 0 && !signal.aborted &&
      !(error instanceof TriggerError)
    ) {
      throw new StaleConnection(error);
    }
    throw classify(error, phase, req, signal);
  } finally {
    signal.removeEventListener("abort", close);
    if (!kept) close();
  }
}
