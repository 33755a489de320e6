// Raw-socket clients for tests/hono/connection_test.ts: they really disconnect.

import { WAIT_TIMEOUT } from "./_wait.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Milliseconds to wait. */
export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** An HTTP/1.1 request as bytes; a string body is sent as is. */
export function rawRequest(
  method: string,
  path: string,
  body?: string,
  type = "text/plain",
): Uint8Array {
  const head = [`${method} ${path} HTTP/1.1`, "Host: 127.0.0.1"];
  if (body !== undefined) {
    head.push(`Content-Type: ${type}`, `Content-Length: ${body.length}`);
  }
  return encoder.encode(head.join("\r\n") + "\r\n\r\n" + (body ?? ""));
}

/**
 * Closes `conn` if it is still open after WAIT_TIMEOUT, failing the pending
 * read: `close()` then throws saying so. A server that never answers fails
 * the test instead of hanging it.
 */
function bounded(conn: Deno.Conn, what: string): { close(): void } {
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    conn.close();
  }, WAIT_TIMEOUT);
  return {
    close() {
      clearTimeout(timer);
      if (expired) {
        throw new Error(`${what}: no answer within ${WAIT_TIMEOUT} ms`);
      }
      conn.close();
    },
  };
}

/** Writes the request, waits `closeAfter` ms (0: none) and closes the socket. */
export async function sendAndClose(
  port: number,
  request: Uint8Array,
  closeAfter: number,
): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(request);
    if (closeAfter > 0) await sleep(closeAfter);
  } finally {
    conn.close();
  }
}

/** Writes the request and reads until the server closes or the whole answer is in; returns the raw answer. */
export async function sendAndRead(
  port: number,
  request: Uint8Array,
): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const bound = bounded(conn, "sendAndRead()");
  try {
    await conn.write(request);
    let text = "";
    const buffer = new Uint8Array(16 * 1024);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += decoder.decode(buffer.subarray(0, n));
      const end = text.indexOf("\r\n\r\n");
      const length = /content-length: *(\d+)/i.exec(text)?.[1];
      if (
        end >= 0 && length !== undefined &&
        text.length >= end + 4 + Number(length)
      ) break;
    }
    return text;
  } finally {
    bound.close();
  }
}

/** Writes the request, reads only the status line, then closes: the caller of `wait: "accepted"`. */
export async function sendAndReadStatus(
  port: number,
  request: Uint8Array,
): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const bound = bounded(conn, "sendAndReadStatus()");
  try {
    await conn.write(request);
    let text = "";
    const buffer = new Uint8Array(1024);
    while (!text.includes("\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += decoder.decode(buffer.subarray(0, n));
    }
    return Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
  } finally {
    bound.close();
  }
}

/** Fetches `GET /log/:id` until `ready(record)` or `timeout` ms; returns the last record (or null). */
export async function waitForRecord<T>(
  base: string,
  id: string,
  ready: (record: T) => boolean,
  timeout = 5000,
): Promise<T | null> {
  const start = Date.now();
  let record: T | null = null;
  while (Date.now() - start < timeout) {
    const response = await fetch(`${base}/log/${id}`);
    record = await response.json() as T | null;
    if (record !== null && ready(record)) return record;
    await sleep(25);
  }
  return record;
}

/** Fetches a JSON value. */
export async function getJson<T>(url: string, init?: RequestInit): Promise<T> {
  const response = await fetch(url, init);
  return await response.json() as T;
}
