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
 * read fails or {@link EARLY_STATUS_MS} pass. Never rejects; resolves the
 * status, or undefined when none arrived.
 */
export async function statusAfterWriteError(
  conn: RawConn,
  pending: Promise<Uint8Array | null> | undefined,
  response: ResponseReader,
): Promise<number | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), EARLY_STATUS_MS);
  });
  try {
    while (response.status === undefined) {
      const reading = pending ?? conn.read();
      pending = undefined;
      reading.catch(() => {}); // abandoned at the bound: never unhandled
      const chunk = await Promise.race([reading, late]);
      if (chunk === null) break;
      response.push(chunk);
    }
  } catch {
    // A read that fails, or bytes that are no status line: none arrived.
  } finally {
    clearTimeout(timer);
  }
  return response.status;
}
