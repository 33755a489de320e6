// A server may answer before the body is all sent (413 Content Too Large,
// 401) and close: the next write then fails, but the status line may already
// be waiting in the socket's buffer. Read it before calling the write lost.
import type { RawConn } from "./_conn.ts";
import type { ResponseReader } from "./_response.ts";

/** How long a connection whose write failed is read for a status line. */
const EARLY_STATUS_MS = 500;

/**
 * Reads `conn` (first awaiting `pending`, a read already started on it)
 * into `response` until the status line is known, the connection ends, a
 * read fails or {@link EARLY_STATUS_MS} pass; once `signal` aborted, what
 * the connection's end would complete is not taken. Never rejects; resolves
 * the status, or undefined when none arrived.
 */
export async function statusAfterWriteError(
  conn: RawConn,
  { pending, response, signal }: {
    pending: Promise<Uint8Array | null> | undefined;
    response: ResponseReader;
    signal: AbortSignal;
  },
): Promise<number | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const LATE = "late";
  const late = new Promise<typeof LATE>((resolve) => {
    timer = setTimeout(() => resolve(LATE), EARLY_STATUS_MS);
  });
  try {
    while (response.status === undefined) {
      const reading = pending ?? conn.read();
      pending = undefined;
      reading.catch(() => {}); // abandoned at the bound: never unhandled
      let chunk: Uint8Array | null | typeof LATE;
      try {
        chunk = await Promise.race([reading, late]);
      } catch {
        chunk = null; // reset: what arrived before it counts, as on a close
      }
      if (chunk === LATE) break;
      if (chunk === null) {
        // Closed or reset right after a complete status line: taken, unless
        // the close was ours (timeout, caller's signal), as in the read.
        if (!signal.aborted) response.end();
        break;
      }
      response.push(chunk);
    }
  } catch {
    // Bytes that are no status line: none arrived.
  } finally {
    clearTimeout(timer);
  }
  return response.status;
}
