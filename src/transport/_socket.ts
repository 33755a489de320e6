// The raw-socket transport: HTTP/1.1 written by hand over a raw connection
// (Deno.connect / connectTls, node:net / node:tls, or cloudflare:sockets), the response read back:
// its status for the caller, the rest skipped so the connection can be reused.
import { networkCode } from "./_classify.ts";
import { show } from "../_show.ts";
import {
  hasHeadRoom,
  requestBytes,
  requestInto,
  type Site,
  siteOf,
} from "./_http1.ts";
import { ResponseProtocolError, ResponseReader } from "./_response.ts";
import { statusAfterWriteError } from "./_early_status.ts";
import { ownBody, type PreparedRequest } from "../trigger/_request.ts";
import { abortFailure, bodyBytes, failure } from "../trigger/_fail.ts";
import { TriggerError } from "../trigger/errors.ts";
import {
  caCertsKey,
  type ConnectStage,
  type ConnectTarget,
  type RawConn,
} from "./_conn.ts";
import { rawConnector, rawSocketsCanBeReused } from "./_runtime.ts";
import {
  learnStale,
  type Lease,
  release,
  shedCount,
  shedIdle,
  tryAcquire,
  waitTurn,
  worthKeeping,
} from "./_pool.ts";

/** Bodies up to this size go out in the same write as the head. */
const COALESCE_LIMIT = 64 * 1024;
type Phase = ConnectStage | "write" | "read";

/** What the transport tells the caller as it goes. */
export interface SendEvents {
  /** When the trigger started (`performance.now()`): the transport's "now"
   * up to its first await (a call costs ~0.2 µs). */
  readonly start?: number;
  /** The whole request is written. */
  onSent(): void;
  /** The final status line arrived; with a 429 or 503, once its head is
   * read, and the wait its `Retry-After` asked for (ms). */
  onStatus(status: number, retryAfter?: number): void;
  /** A stale reused connection: the request goes again on a fresh one. */
  onResend?(): void;
  /** The request starts (`true`) or stops (`false`) waiting for a
   * connection to its origin. */
  onQueue?(waiting: boolean): void;
  /** The request got its connection after waiting its turn: called before
   * its bytes are made (a signed request is signed again, so its timestamp
   * is the time it is sent). */
  onTurn?(): Promise<void>;
  /** Set by the transport while it holds a connection; the caller calls it
   * right after aborting the signal (timeout, caller's signal). */
  cancel?: () => void;
  /** The exchange is over and its connection back in the pool or closed,
   * with this status: what the returned promise resolves with, told
   * synchronously (the promise still settles after). */
  onEnd?(status: number | undefined): void;
}

/** Microtask turns given to a read started after a response: one whose
 * bytes are already here settles within two on Deno (its read op completes
 * at once), Node and Bun (a chunk queued, or the socket's buffer handed over
 * by `socket.read()`); a timer's turn would cost ~2 ms. */
const LOOK_TURNS = 8;

/** Whether `read` is still pending after {@linkcode LOOK_TURNS} microtask
 * turns: nothing was waiting to be read. Never rejects. */
async function nothingWaiting(
  read: Promise<Uint8Array | null>,
): Promise<boolean> {
  let settled = false;
  read.then(() => settled = true, () => settled = true);
  for (let turn = 0; turn < LOOK_TURNS && !settled; turn++) await undefined;
  return !settled;
}

/** A reused connection died before answering: nothing proves receipt. */
class StaleConnection extends Error {
  /** 408 when the server said so (its idle timeout): it did not read the
   * request. */
  readonly status?: number;
  constructor(cause: unknown, status?: number) {
    super("Reused connection closed before answering", { cause });
    this.status = status;
  }
}

/** A failure to open a socket because the process (EMFILE) or the system
 * (ENFILE) has no descriptor left: Node's and Deno's codes and messages
 * (Bun reports it as ECONNREFUSED: not told apart). */
function outOfDescriptors(error: unknown): boolean {
  // Node's connector wraps the runtime's error: its code is on the cause.
  for (const each of [error, (error as { cause?: unknown } | null)?.cause]) {
    const { code, message } = (each ?? {}) as {
      code?: unknown;
      message?: unknown;
    };
    if (code === "EMFILE" || code === "ENFILE") return true;
    // The runtimes' wordings, not a bare "EMFILE" (a host name may hold it).
    if (
      typeof message === "string" &&
      /\(os error 2[34]\)$|^connect E[MN]FILE /.test(message)
    ) return true;
  }
  return false;
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
      `${error.message}: ${show(error.line)}`,
      req,
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  switch (phase) {
    case "connect":
      // Workers open and secure a socket in one step: its message decides.
      switch (networkCode(message, req.url.hostname)) {
        case "DNS":
          return failure(
            "DNS",
            `Host "${req.url.hostname}" could not be resolved`,
            req,
            error,
          );
        case "TLS":
          return failure(
            "TLS",
            `TLS handshake failed (${message})`,
            req,
            error,
          );
        default:
          return failure(
            "CONNECT",
            `Could not connect (${message})`,
            req,
            error,
          );
      }
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

function connectTarget(
  site: Site,
  req: PreparedRequest,
  signal: AbortSignal,
): ConnectTarget {
  const { hostname, port, tls } = site;
  return { hostname, port, tls, caCerts: req.caCerts, signal };
}

/**
 * Sends `req` over a raw socket: `onSent` once the whole request is written,
 * `onStatus` when the final status line arrives; resolves when the
 * connection is back in the pool or closed, with the status (undefined when
 * the server closed without answering). Rejects with a TriggerError.
 *
 * Where connections are shared (not on Workers), at most `maxConnections`
 * are open per origin; a trigger beyond waits its turn, within its timeout
 * and signal. A reused connection that ends before any byte of the answer
 * (or answers 408, a server's idle timeout) is replaced once by a fresh one
 * and the same bytes are sent again, unless `resend` is false.
 */
export async function sendOverSocket(
  req: PreparedRequest,
  signal: AbortSignal,
  events: SendEvents,
): Promise<number | undefined> {
  // A body given as text is encoded only below, once the connection (and
  // its buffer) is known.
  const text = req.text;
  // After an await the clock is read: signing, the fallback transport's
  // wait for node:net (both before this), reading a body (below).
  let now = req.sign === undefined && !req.fallback ? events.start : undefined;
  let body: Uint8Array | null;
  if (text !== undefined) body = null;
  else if (req.body instanceof Request) {
    body = await bodyBytes(req, signal);
    now = undefined;
  } else body = req.body;
  if (signal.aborted) throw abortFailure(signal, req);
  const site = siteOf(req.url);
  const key = !rawSocketsCanBeReused()
    ? undefined
    : req.caCerts === undefined
    ? site.key
    // Unambiguous: ["ab", "c"] and ["a", "bc"] are different pools.
    : `${site.key}|${caCertsKey(req.caCerts)}`;
  const reuse = key !== undefined && req.reuse && worthKeeping(key);

  let lease: Lease | undefined;
  let waited = false;
  if (key !== undefined) {
    lease = tryAcquire(key, req.maxConnections, reuse, now);
    if (lease === undefined) {
      waited = true;
      // Built after the wait: the caller's bytes are copied now.
      if (req.borrowed) {
        ownBody(req);
        body = req.body as Uint8Array;
      }
      events.onQueue?.(true);
      const waitedFor = (code: "TIMEOUT" | "ABORTED", cause?: unknown) =>
        failure(
          code,
          `${
            code === "TIMEOUT" ? "Timed out" : "Aborted"
          } waiting for a connection (maxConnections: ${req.maxConnections} open to this origin)`,
          req,
          cause,
        );
      try {
        lease = await waitTurn(key, {
          reuse,
          max: req.maxConnections,
          signal,
        });
      } catch {
        events.onQueue?.(false);
        const { code, cause } = abortFailure(signal, req);
        throw waitedFor(code as "TIMEOUT" | "ABORTED", cause);
      }
      events.onQueue?.(false);
      if (
        events.start !== undefined &&
        performance.now() - events.start >= req.timeout
      ) {
        // Its time ran out while it waited, its timer not run yet (a
        // process thawed after a freeze reads its sockets before it runs
        // its overdue timers): the place goes on to the next in line, and
        // nothing is written. Idle in the pool, it is watched at once
        // (nobody to tell first).
        release(key, lease.conn, undefined, lease.firstRead)?.();
        throw waitedFor("TIMEOUT");
      }
    }
  }
  let data: Uint8Array;
  let rest: Uint8Array | null = null;
  const conn = lease?.conn;
  try {
    if (waited && events.onTurn !== undefined) {
      await events.onTurn();
      // Signed again: the body is bytes now, the headers new.
      body = req.body as Uint8Array | null;
    }
    if (
      conn?.scratch !== undefined &&
      (text !== undefined
        ? 3 * text.length <= COALESCE_LIMIT
        : body !== null
        ? body.length <= COALESCE_LIMIT && !hasHeadRoom(body)
        // No body: a shared (frozen) header list's head is kept encoded and
        // goes out as it is; one of the caller's own is written here.
        : !Object.isFrozen(req.headers))
    ) {
      // Into the reused connection's own buffer: no typed array per request
      // (a body with room for the head before it needs none either).
      data = requestInto(
        site,
        req.method,
        req.headers,
        text ?? body,
        reuse,
        (size) => conn.scratch!(size),
      );
    } else {
      // A body too large for one write is written after a wait: the caller's
      // bytes are copied now.
      if (req.borrowed && body!.length > COALESCE_LIMIT) {
        ownBody(req);
        body = req.body as Uint8Array;
      }
      // Read only here: a body given as text is encoded when first read.
      const bytes = text !== undefined ? req.body as Uint8Array : body;
      // Bodies up to COALESCE_LIMIT go out in the same write as the head.
      const coalesce = bytes === null || bytes.length <= COALESCE_LIMIT;
      data = requestBytes(
        site,
        req.method,
        req.headers,
        coalesce ? bytes : false,
        bytes?.length ?? null,
        reuse,
      );
      if (!coalesce) rest = bytes;
    }
  } catch (error) {
    // Nothing was written: the place taken is given back, its connection
    // (if one) closed, or the origin would count it open for good.
    if (key !== undefined) {
      lease!.conn?.close();
      release(key, undefined);
    }
    if (!req.borrowed) throw error;
    // The caller's own code, run during the call, detached its buffer.
    throw failure(
      "BODY",
      "Request body could not be read: its ArrayBuffer was detached during the call",
      req,
      error,
    );
  }
  // The caller's bytes, if still borrowed, are in `data` now (its copy):
  // nothing here reads `req.body` again.
  req.borrowed = undefined;

  const exchange = new Exchange(req, signal, events, site, key, reuse);
  while (true) {
    try {
      return await exchange.run(lease, data, rest);
    } catch (error) {
      if (!(error instanceof StaleConnection)) throw error;
      learnStale(key!, lease!.idleSince);
      if (!req.resend) {
        release(key!, undefined);
        // The server's 408 says it did not read the request: that status.
        if (error.status !== undefined) {
          events.onStatus(error.status);
          return error.status;
        }
        throw failure(
          "CLOSED",
          "Reused connection closed before answering; not sent again (resend: false), though the server may have received it",
          req,
          error.cause,
        );
      }
      // Once more, byte for byte, on a fresh connection in the same place.
      lease = { idleSince: 0 };
      events.onResend?.();
    }
  }
}

/** One request's life on a connection: write, read, then keep or close. */
class Exchange {
  // Fields assigned by hand, not parameter properties: Node's type stripping
  // (its default since 22.18) refuses those.
  readonly req: PreparedRequest;
  readonly signal: AbortSignal;
  readonly events: SendEvents;
  readonly site: Site;
  readonly key: string | undefined;
  readonly reuse: boolean;
  constructor(
    req: PreparedRequest,
    signal: AbortSignal,
    events: SendEvents,
    site: Site,
    key: string | undefined,
    reuse: boolean,
  ) {
    this.req = req;
    this.signal = signal;
    this.events = events;
    this.site = site;
    this.key = key;
    this.reuse = reuse;
  }

  async run(
    lease: Lease | undefined,
    data: Uint8Array,
    rest: Uint8Array | null,
  ): Promise<number | undefined> {
    const { req, signal, events, key } = this;
    const reused = lease?.conn !== undefined;
    let phase: Phase = "connect";
    let conn: RawConn | undefined = lease?.conn;
    let kept = false;
    let stale = false;
    /** A read started after the response, kept with the connection. */
    let pending: Promise<Uint8Array | null> | undefined;
    const close = () => conn?.close();
    events.cancel = close;
    const response = new ResponseReader(req.method);
    // What the exchange ends with, told to onEnd once the connection is
    // released (a return's value is known before the finally runs).
    let ended = false;
    let endStatus: number | undefined;
    const end = (status: number | undefined) => {
      ended = true;
      endStatus = status;
      return status;
    };
    try {
      if (conn === undefined) {
        const connect = () =>
          rawConnector()!(
            connectTarget(this.site, req, signal),
            (stage) => phase = stage,
          );
        const shedBefore = shedCount();
        try {
          conn = await connect();
        } catch (error) {
          // Out of descriptors while idle connections (to any origin) hold
          // some: those go, and the connect is tried once more. Before, a
          // burst to one origin left its connections idle, and every
          // trigger to another failed CONNECT until they expired (~4 s).
          // Another trigger may have shed them as this one failed: its
          // retry, and this one's, find descriptors free.
          if (
            phase !== "connect" || signal.aborted ||
            !outOfDescriptors(error) ||
            (shedIdle() === 0 && shedCount() === shedBefore)
          ) throw error;
          // Deno frees a closed socket's descriptor once its pending read
          // is cancelled: after this turn.
          await new Promise((resolve) => setTimeout(resolve, 0));
          conn = await connect();
        }
      }
      if (signal.aborted) throw abortFailure(signal, req);

      phase = "write";
      const writing = conn.write(data);
      // Unref'd while idle and watched: held again from here (see
      // tryAcquire), before anything can wait.
      if (lease?.firstRead !== undefined) conn.ref?.();
      await writing;
      if (rest !== null) await conn.write(rest);
      events.onSent();
      // Let a "sent" caller resume before the read starts.
      if (req.wait === "sent") await undefined;

      phase = "read";
      let first = lease?.firstRead;
      while (!response.complete && !response.giveUp) {
        const chunk = first ? await first : await conn.read();
        first = undefined;
        if (chunk === null) {
          // Ended by our own close (timeout, caller's signal): nothing the
          // server sent decides.
          if (signal.aborted) throw abortFailure(signal, req);
          if (response.received === 0) {
            if (reused) {
              stale = true;
              throw new StaleConnection(null);
            }
            return end(undefined);
          }
          const known = response.status !== undefined;
          response.end();
          if (response.status === undefined) {
            throw failure(
              "CLOSED",
              "Connection closed before a complete final status line",
              req,
            );
          }
          // A 408 the close completed (not one read, and told, before).
          if (!known && reused && response.status === 408) {
            stale = true; // the server's idle timeout, as below
            throw new StaleConnection(null, 408);
          }
          break;
        }
        let known = response.status !== undefined;
        // The status is told at its line, before the rest of the head is
        // read (a 408 or an interim status is not taken): an "accepted"
        // caller resumes sooner, and in either mode the status line is the
        // outcome whatever the head then does.
        if (!known && response.takeStatusLine(chunk) !== undefined) {
          known = true;
          events.onStatus(response.status!);
          if (req.wait === "accepted") await undefined;
        }
        response.push(chunk);
        if (!known && response.status !== undefined) {
          // A 408 that closes a reused connection is the server's idle
          // timeout, sent as the request went out: the request was not read.
          if (reused && response.status === 408 && !response.keepAlive) {
            stale = true;
            throw new StaleConnection(null, 408);
          }
          events.onStatus(response.status, response.retryAfterMs);
          // An "accepted" caller resumes now, before the rest of the
          // exchange (reading on, giving the connection back) runs.
          if (req.wait === "accepted") await undefined;
        }
        // Read the rest only to reuse the connection.
        if (
          response.status !== undefined &&
          (!this.reuse || (response.headRead && !response.keepAlive))
        ) break;
      }
      if (this.reuse && response.reusable && !signal.aborted) {
        if (!conn.mayHoldMore?.()) kept = true;
        else {
          // The read that ended the response may have left bytes unread
          // (it filled its buffer): they would be the next request's
          // answer. One more read, given a few microtask turns: bytes or a
          // close mean the connection cannot carry another request; none,
          // and it is kept with that read pending (handed on).
          pending = conn.read();
          kept = await nothingWaiting(pending);
        }
      }
      return end(response.status);
    } catch (error) {
      if (stale) throw error;
      // After the status, a failure only means the connection is not reused.
      if (response.status !== undefined) return end(response.status);
      // A 429's or 503's status line whose head never came whole (too long,
      // or stalled until the trigger gave up): that status, no wait known.
      if (
        response.lineStatus !== undefined &&
        (error instanceof ResponseProtocolError || signal.aborted)
      ) {
        events.onStatus(response.lineStatus);
        return end(response.lineStatus);
      }
      // A final status line the connection failed right after (a reset) is
      // taken, as when the server closes cleanly there.
      if (
        phase === "read" && response.received > 0 && !signal.aborted &&
        !(error instanceof ResponseProtocolError) &&
        !(error instanceof TriggerError)
      ) {
        response.end();
        if (response.status !== undefined) {
          if (reused && response.status === 408) {
            stale = true; // the server's idle timeout, as in the read above
            throw new StaleConnection(error, 408);
          }
          return end(response.status);
        }
      }
      // A status the server sent before closing (a 413 mid-upload) wins.
      if (phase === "write" && conn !== undefined && !signal.aborted) {
        // Or a 429's or 503's status line whose head did not come whole.
        const status = (await statusAfterWriteError(conn, {
          pending: lease?.firstRead,
          response,
          signal,
        })) ?? (signal.aborted ? undefined : response.lineStatus);
        if (status !== undefined) {
          if (!(reused && status === 408 && !response.keepAlive)) {
            events.onStatus(status, response.retryAfterMs);
            return end(status);
          }
          stale = true; // the server's idle timeout, as in the read below
          throw new StaleConnection(error, 408);
        }
      }
      if (
        reused && response.received === 0 && !signal.aborted &&
        !(error instanceof TriggerError)
      ) {
        stale = true;
        throw new StaleConnection(error);
      }
      throw classify(error, phase, req, signal);
    } finally {
      if (events.cancel === close) events.cancel = undefined;
      if (!kept) close();
      // A stale connection's place goes to its replacement.
      const watch = key === undefined || stale ? undefined : release(
        key,
        kept ? conn : undefined,
        response.keepAliveMs,
        kept ? pending : undefined,
      );
      try {
        if (ended) events.onEnd?.(endStatus);
      } finally {
        // Two microtasks after onEnd: a caller awaiting `done` resumes
        // first, even one that was answered at the status ("accepted") and
        // awaits `done` only then.
        if (watch !== undefined) queueMicrotask(() => queueMicrotask(watch));
      }
    }
  }
}
