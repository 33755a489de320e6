// The raw-socket transport: HTTP/1.1 written by hand over Deno.connect or
// Deno.connectTls, the status line read back.
import { findStatus, latin1, MAX_HEAD_BYTES, requestHead } from "./_http1.ts";
import type { PreparedRequest } from "./_request.ts";
import { abortFailure, bodyBytes, failure } from "./_fail.ts";
import { TriggerError } from "./errors.ts";
import { denoRuntime } from "./_runtime.ts";

/** Bodies up to this size go out in the same write as the head. */
const COALESCE_LIMIT = 64 * 1024;
const READ_CHUNK = 1024;

type Phase = "connect" | "tls" | "write" | "read";

function classify(
  error: unknown,
  phase: Phase,
  req: PreparedRequest,
  signal: AbortSignal,
): TriggerError {
  if (error instanceof TriggerError) return error;
  if (signal.aborted) return abortFailure(signal, req);
  const message = error instanceof Error ? error.message : String(error);
  switch (phase) {
    case "connect":
      if (
        /lookup address|name or service|nodename nor servname/i.test(message)
      ) {
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

/** `promise`, or a rejection as soon as `signal` aborts (closing a late conn). */
function untilAborted<T extends Deno.Conn>(
  promise: Promise<T>,
  signal: AbortSignal,
  req: PreparedRequest,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.then((late) => late.close(), () => {});
      reject(abortFailure(signal, req));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() =>
      signal.removeEventListener("abort", onAbort)
    );
  });
}

/** Writes all of `data`, looping over partial writes. */
async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    offset += await conn.write(data.subarray(offset));
  }
}

/** Reads until the final status line; undefined if the server closed first. */
async function readStatus(
  conn: Deno.Conn,
  req: PreparedRequest,
): Promise<number | undefined> {
  let buffer = new Uint8Array(READ_CHUNK);
  let length = 0;
  while (true) {
    if (length === buffer.length) {
      if (buffer.length >= MAX_HEAD_BYTES) {
        throw failure("PROTOCOL", "Response head too long", req);
      }
      const bigger = new Uint8Array(buffer.length * 4);
      bigger.set(buffer);
      buffer = bigger;
    }
    const n = await conn.read(buffer.subarray(length));
    if (n === null) {
      if (length === 0) return undefined;
      throw failure(
        "CLOSED",
        "Connection closed in the middle of the status line",
        req,
      );
    }
    length += n;
    const scan = findStatus(buffer, length);
    if (scan.kind === "status") return scan.status;
    if (scan.kind === "invalid") {
      throw failure(
        "PROTOCOL",
        `Not an HTTP/1.x status line: ${JSON.stringify(scan.line)}`,
        req,
      );
    }
  }
}

/**
 * Sends `req` over a raw socket. Calls `onSent` once the whole request is
 * written, then waits for the status line and resolves with it (undefined
 * when the server closed without answering). Rejects with a TriggerError.
 * The socket is closed on every path; aborting `signal` closes it at once.
 */
export async function sendOverSocket(
  req: PreparedRequest,
  signal: AbortSignal,
  onSent: () => void,
): Promise<number | undefined> {
  const deno = denoRuntime()!;
  let phase: Phase = "connect";
  let conn: Deno.Conn | undefined;
  const close = () => {
    try {
      conn?.close();
    } catch {
      // Already closed.
    }
  };
  signal.addEventListener("abort", close, { once: true });
  try {
    const body = await bodyBytes(req);
    if (signal.aborted) throw abortFailure(signal, req);
    const { url } = req;
    const secure = url.protocol === "https:";
    const hostname = url.hostname.startsWith("[")
      ? url.hostname.slice(1, -1)
      : url.hostname;
    const port = url.port ? Number(url.port) : secure ? 443 : 80;
    if (secure) {
      // connectTls takes no signal: race it, and close a late connection.
      const connecting = deno.connectTls({
        hostname,
        port,
        caCerts: req.caCerts,
      });
      const tls = await untilAborted(connecting, signal, req);
      conn = tls;
      if (signal.aborted) throw abortFailure(signal, req);
      phase = "tls";
      await tls.handshake();
    } else {
      conn = await deno.connect({ hostname, port, signal });
    }
    if (signal.aborted) throw abortFailure(signal, req);

    phase = "write";
    const head = requestHead(
      req.method,
      url,
      req.headers,
      body?.length ?? null,
    );
    if (body !== null && body.length <= COALESCE_LIMIT) {
      const data = latin1(head, body.length);
      data.set(body, head.length);
      await writeAll(conn, data);
    } else {
      await writeAll(conn, latin1(head));
      if (body !== null) await writeAll(conn, body);
    }
    onSent();

    phase = "read";
    return await readStatus(conn, req);
  } catch (error) {
    throw classify(error, phase, req, signal);
  } finally {
    signal.removeEventListener("abort", close);
    close();
  }
}
