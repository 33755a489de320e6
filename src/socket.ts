// The raw-socket transport: HTTP/1.1 written by hand over a raw connection
// (Deno.connect / connectTls, or cloudflare:sockets), the status line read
// back.
import { findStatus, latin1, MAX_HEAD_BYTES, requestHead } from "./_http1.ts";
import type { PreparedRequest } from "./_request.ts";
import { abortFailure, bodyBytes, failure } from "./_fail.ts";
import { TriggerError } from "./errors.ts";
import type { ConnectStage, RawConn } from "./_conn.ts";
import { rawConnector } from "./_runtime.ts";

/** Bodies up to this size go out in the same write as the head. */
const COALESCE_LIMIT = 64 * 1024;

type Phase = ConnectStage | "write" | "read";

const DNS_FAILURE =
  /lookup address|name or service|nodename nor servname|dns|no such host/i;

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

/** Reads until the final status line; undefined if the server closed first. */
async function readStatus(
  conn: RawConn,
  req: PreparedRequest,
): Promise<number | undefined> {
  let buffer: Uint8Array | undefined;
  let length = 0;
  while (true) {
    const chunk = await conn.read();
    if (chunk === null) {
      if (length === 0) return undefined;
      throw failure(
        "CLOSED",
        "Connection closed in the middle of the status line",
        req,
      );
    }
    if (length === 0 && buffer === undefined) {
      // The common case: the status line comes in the first chunk.
      const scan = findStatus(chunk, chunk.length);
      if (scan.kind === "status") return scan.status;
    }
    if (length + chunk.length > MAX_HEAD_BYTES) {
      throw failure("PROTOCOL", "Response head too long", req);
    }
    if (buffer === undefined || length + chunk.length > buffer.length) {
      const bigger = new Uint8Array(
        Math.max(1024, (length + chunk.length) * 2),
      );
      if (buffer) bigger.set(buffer.subarray(0, length));
      buffer = bigger;
    }
    buffer.set(chunk, length);
    length += chunk.length;
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
  const connect = rawConnector()!;
  let phase: Phase = "connect";
  let conn: RawConn | undefined;
  const close = () => conn?.close();
  signal.addEventListener("abort", close, { once: true });
  try {
    const body = req.body instanceof Request ? await bodyBytes(req) : req.body;
    if (signal.aborted) throw abortFailure(signal, req);
    const { url } = req;
    const tls = url.protocol === "https:";
    conn = await connect({
      hostname: url.hostname.startsWith("[")
        ? url.hostname.slice(1, -1)
        : url.hostname,
      port: url.port ? Number(url.port) : tls ? 443 : 80,
      tls,
      caCerts: req.caCerts,
      signal,
    }, (stage) => phase = stage);
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
      await conn.write(data);
    } else {
      await conn.write(latin1(head));
      if (body !== null) await conn.write(body);
    }
    onSent();
    // Let the caller resume before the read starts.
    await undefined;

    phase = "read";
    return await readStatus(conn, req);
  } catch (error) {
    throw classify(error, phase, req, signal);
  } finally {
    signal.removeEventListener("abort", close);
    close();
  }
}
