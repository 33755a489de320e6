// Connections per origin for the raw-socket transport: a cap on how many are
// open at once (triggers beyond it wait in a queue), idle keep-alive
// connections kept for reuse and watched while idle, and what was learned of
// the origin's unannounced idle timeout (the reuse policy).
import type { RawConn } from "./_conn.ts";
import { holdTimer } from "../_bounded.ts";

/** Default cap on the connections open at once per origin (see
 * bench/queue_bench.ts and docs/delivery.md for how it was chosen). */
export const DEFAULT_MAX_CONNECTIONS = 128;
/** Idle connections kept per origin; more are closed. As many as the
 * default cap: a burst that filled it finds them all again (a lower cap
 * closed the rest after each burst and opened them anew for the next). */
export const MAX_IDLE_PER_ORIGIN = DEFAULT_MAX_CONNECTIONS;
/**
 * How long an idle connection may be reused when the server announces no
 * `Keep-Alive: timeout` and none was learned: below the shortest common
 * unannounced idle timeout (gunicorn's 2 s), so a reused connection is rarely
 * one the server is closing at that very moment.
 */
export const IDLE_TIMEOUT_MS = 1_500;
/** How long an idle connection is kept (and watched) at most. One that
 * lasts this long teaches that the origin's idle timeout is longer: its
 * later idle connections may be reused up to this age. */
export const MAX_IDLE_TIMEOUT_MS = 4_000;
/** Margin below a server's announced `Keep-Alive: timeout`. */
const SERVER_TIMEOUT_MARGIN_MS = 1_000;
/** An idle connection is kept only if it may stay this long. */
const MIN_IDLE_MS = 20;
/** A server close seen this soon after a response, twice at least
 * `QUICK_SPREAD_MS` apart, means "closes after each response": nothing is
 * kept for that origin for a while. (Closes in one burst are a restart.) */
const CLOSES_AFTER_RESPONSE_MS = 50;
const QUICK_SPREAD_MS = 10;
/** A learned idle limit is this share of the idle time the server allowed. */
const LEARNED_SHARE = 0.75;
/** How long a learned limit holds before the origin is given another try. */
const LEARNED_TTL_MS = 10_000;
/** How long a learned tolerance (idle connections lasted) holds. */
const TOLERATED_TTL_MS = 60_000;
/** How often expired idle connections are closed; reuse checks exactly. */
const SWEEP_MS = 250;
/** Served waiters at the front of a queue that are dropped at once, when
 * they are at least half of it. */
const COMPACT_FROM = 1_024;

/** What a trigger gets to send on: a connection to reuse, or leave to open a
 * fresh one (`conn` undefined). */
export interface Lease {
  conn?: RawConn;
  /** The read that watched the idle connection: the response's first bytes.
   * Set, the connection was unref'd for it: the taker refs it again. */
  firstRead?: Promise<Uint8Array | null>;
  /** When the connection went idle (performance.now() ms). */
  idleSince: number;
}

interface Idle {
  conn: RawConn;
  /** Started once the trigger that released it has ended (see release). */
  read?: Promise<Uint8Array | null>;
  since: number;
  /** Until when it may carry a request (performance.now() ms). */
  reusable: number;
  /** When it is closed: kept past `reusable` only to learn how long the
   * server lets it idle. */
  expires: number;
  /** Whether `expires` is the full keep time, not a learned limit (lasting
   * that long then teaches something). */
  full: boolean;
  idle: boolean;
}

interface Waiter {
  reuse: boolean;
  /** Its trigger's `maxConnections`: a fresh connection only while fewer
   * carry a request. */
  max: number;
  grant(lease: Lease): void;
  done: boolean;
  /** Fresh places that went past it while it waited at its own (lower)
   * cap: from {@linkcode MAX_PASSES} on, none does. */
  passed: number;
}

interface Origin {
  /** Connections open or being opened, idle ones included. */
  open: number;
  idle: Idle[];
  /** Triggers waiting for a connection, oldest first (from `head`). */
  waiters: Waiter[];
  head: number;
  /** At least the highest `max` of the waiters behind the first: none of
   * them fits while fewer carry requests (one cap for all, the usual case:
   * never looked for). */
  highest: number;
  /** Learned: keep idle connections at most this long (ms), until `until`. */
  learnedMs?: number;
  until: number;
  /** When a quick close (right after a response) was first seen. */
  quickSince?: number;
  /** Learned: idle connections lasted this long (ms), until `toleratedUntil`. */
  toleratedMs?: number;
  toleratedUntil: number;
}

const origins = new Map<string, Origin>();
let sweeper: ReturnType<typeof setInterval> | undefined;

function originOf(key: string): Origin {
  let origin = origins.get(key);
  if (origin === undefined) {
    origin = {
      open: 0,
      idle: [],
      waiters: [],
      head: 0,
      highest: 0,
      until: 0,
      toleratedUntil: 0,
    };
    origins.set(key, origin);
  }
  return origin;
}

/** Forgets an origin with nothing open, waiting or learned. */
function forgetIfEmpty(key: string, origin: Origin, now: number): void {
  if (
    origin.open === 0 && origin.head >= origin.waiters.length &&
    (origin.learnedMs === undefined || origin.until <= now) &&
    (origin.quickSince === undefined ||
      now - origin.quickSince > LEARNED_TTL_MS) &&
    (origin.toleratedMs === undefined || origin.toleratedUntil <= now)
  ) {
    origins.delete(key);
  }
}

// One timer for the whole pool, not one per idle connection (a timer costs
// about as much as the rest of a reused trigger's own work).
function sweep(): void {
  const now = performance.now();
  for (const [key, origin] of origins) {
    for (const entry of [...origin.idle]) {
      if (entry.expires > now) continue;
      // It lasted its whole keep time: the server's idle timeout is longer.
      if (entry.full && learnedLimit(origin, now) === undefined) {
        origin.toleratedMs = Math.max(
          now - entry.since,
          origin.toleratedUntil > now ? origin.toleratedMs ?? 0 : 0,
        );
        origin.toleratedUntil = now + TOLERATED_TTL_MS;
      }
      discard(key, origin, entry);
    }
    forgetIfEmpty(key, origin, now);
  }
  if (origins.size === 0 && sweeper !== undefined) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

function startSweeper(): void {
  if (sweeper === undefined) {
    sweeper = setInterval(sweep, SWEEP_MS);
    holdTimer(sweeper, false);
  }
}

/** Closes an idle connection and frees its place. */
function discard(key: string, origin: Origin, entry: Idle): void {
  if (!entry.idle) return;
  entry.idle = false;
  const at = origin.idle.indexOf(entry);
  if (at >= 0) origin.idle.splice(at, 1);
  entry.conn.close();
  closed(key, origin);
}

/** Times the first waiter in line, at its own (lower) cap, may be passed
 * over by a waiter behind it or a newcomer whose cap leaves room; then no
 * place goes past it until the connections carrying requests are few
 * enough for it (or it gives up). */
const MAX_PASSES = 16;

/** One connection of `origin` is gone: waiters may open one now. */
function closed(key: string, origin: Origin): void {
  origin.open--;
  dispatch(origin);
  if (origin.head === origin.waiters.length) {
    forgetIfEmpty(key, origin, performance.now());
  }
}

/**
 * Gives fresh places to waiters while one fits: the first in line when its
 * `max` leaves room; else the first behind it whose `max` does, unless the
 * first was passed over MAX_PASSES times (the places are then held back for
 * it). Called whenever a place may have come free: a connection closed, a
 * connection handed to a waiter, the first in line gone.
 */
function dispatch(origin: Origin): void {
  while (true) {
    dropServed(origin);
    const { waiters, head } = origin;
    const first = waiters[head];
    if (first === undefined) return;
    const busy = origin.open - origin.idle.length;
    let waiter: Waiter | undefined = first;
    if (busy >= first.max) {
      waiter = undefined;
      if (first.passed < MAX_PASSES && busy < origin.highest) {
        let highest = 0;
        for (let i = head + 1; i < waiters.length; i++) {
          const behind = waiters[i];
          if (behind.done) continue;
          if (busy < behind.max) {
            waiter = behind;
            break;
          }
          highest = Math.max(highest, behind.max);
        }
        // Nobody fits: not looked for again until fewer carry requests.
        if (waiter === undefined) origin.highest = highest;
      }
      if (waiter === undefined) return; // held back, or nobody fits
      first.passed++;
    }
    // Served where it stands in line: passed over from now on.
    waiter.done = true;
    origin.open++;
    waiter.grant({ idleSince: 0 });
  }
}

/** Drops the waiters at the front of the line that were served or gave
 * up. */
function dropServed(origin: Origin): void {
  const { waiters } = origin;
  while (origin.head < waiters.length && waiters[origin.head].done) {
    waiters[origin.head++] = undefined as unknown as Waiter;
  }
  if (origin.head === waiters.length) {
    waiters.length = 0;
    origin.head = 0;
    origin.highest = 0;
  } else if (origin.head >= COMPACT_FROM && origin.head * 2 >= waiters.length) {
    // A queue that never empties (a steady overload): drop the served
    // front, or the array grows by one slot per queued trigger forever.
    waiters.splice(0, origin.head);
    origin.head = 0;
  }
}

/** The first waiter in line, taken (marked served). */
function nextWaiter(origin: Origin): Waiter | undefined {
  dropServed(origin);
  if (origin.head === origin.waiters.length) return undefined;
  const waiter = origin.waiters[origin.head];
  waiter.done = true;
  dropServed(origin);
  return waiter;
}

/** The origin's learned idle limit, when one holds now. */
function learnedLimit(origin: Origin, now: number): number | undefined {
  if (origin.learnedMs === undefined) return undefined;
  if (origin.until > now) return origin.learnedMs;
  origin.learnedMs = undefined;
  return undefined;
}

/**
 * The server closed a connection that had been idle for `idleMs`: keep the
 * origin's idle connections shorter than that from now on (for a while).
 */
function learn(origin: Origin, idleMs: number, now: number): void {
  let limit = Math.floor(idleMs * LEARNED_SHARE);
  if (idleMs < CLOSES_AFTER_RESPONSE_MS) {
    const since = origin.quickSince;
    if (since === undefined || now - since > LEARNED_TTL_MS) {
      origin.quickSince = now;
      return;
    }
    if (now - since < QUICK_SPREAD_MS) return;
    limit = 0;
  }
  const current = learnedLimit(origin, now);
  origin.learnedMs = current === undefined ? limit : Math.min(current, limit);
  origin.until = now + LEARNED_TTL_MS;
  origin.toleratedMs = undefined;
}

/** Until when `entry` may carry a request: what was known when it went
 * idle, or longer when its origin's idle connections were since seen to
 * last longer. */
function reusableUntil(origin: Origin, entry: Idle, now: number): number {
  if (!entry.full || origin.toleratedUntil <= now) return entry.reusable;
  return Math.max(entry.reusable, entry.since + (origin.toleratedMs ?? 0));
}

/**
 * A reused connection died before answering after being idle since
 * `idleSince`: the server's idle timeout is shorter than that.
 */
export function learnStale(key: string, idleSince: number): void {
  const now = performance.now();
  learn(originOf(key), now - idleSince, now);
  startSweeper();
}

/**
 * Whether a connection to `key` should be offered for reuse at all (sent
 * without `Connection: close`): not while the origin is known to close
 * connections right after its responses.
 */
export function worthKeeping(key: string): boolean {
  const origin = origins.get(key);
  if (origin?.learnedMs === undefined) return true;
  const limit = learnedLimit(origin, performance.now());
  return limit === undefined || limit >= MIN_IDLE_MS;
}

/**
 * A place on a connection to `key`, at once when one is free: an idle
 * connection (when `reuse`), or leave to open a fresh one while fewer than
 * `max` are open. Undefined when the caller must {@linkcode waitTurn}.
 * `now`: `performance.now()`, when the caller has it. A connection whose
 * watch had started (`firstRead`) comes unref'd: the caller refs it before
 * anything waits.
 */
export function tryAcquire(
  key: string,
  max: number,
  reuse: boolean,
  now: number = performance.now(),
): Lease | undefined {
  let origin = originOf(key);
  let entry: Idle | undefined;
  let discarded = false;
  while ((entry = origin.idle.at(-1)) !== undefined && entry.expires <= now) {
    discard(key, origin, entry);
    discarded = true;
  }
  // Its last connection discarded, the origin may have been forgotten: the
  // place taken below is counted on the one kept from now on.
  if (discarded) origin = originOf(key);
  // `max` counts the connections carrying a request (after the discards
  // above, which may have given a place to a waiter): idle ones left by
  // triggers with a larger cap do not make room beyond it.
  if (origin.open - origin.idle.length >= max) return undefined;
  if (origin.head < origin.waiters.length) {
    // A trigger waits, at its own lower cap (or it would have this place):
    // this one passes it, at most MAX_PASSES times.
    dropServed(origin);
    const first = origin.waiters[origin.head];
    if (first !== undefined) {
      if (first.passed >= MAX_PASSES) return undefined;
      first.passed++;
    }
  }
  if (entry !== undefined && reusableUntil(origin, entry, now) <= now) {
    // Idle too long to trust (it is kept to learn from): not reused.
    if (origin.open < max) entry = undefined;
    else {
      // Its place is needed: the oldest idle connection gives it up.
      const oldest = origin.idle.shift()!;
      oldest.idle = false;
      oldest.conn.close();
      return { idleSince: 0 };
    }
  }
  if (entry !== undefined && (reuse || origin.open >= max)) {
    origin.idle.pop();
    entry.idle = false;
    if (!reuse) {
      // A caller that will not reuse takes the place of an idle connection.
      entry.conn.close();
      return { idleSince: 0 };
    }
    // Not ref'd here: the taker does it once its write is on its way (an op,
    // ~0.5 µs on a cold CPU, before the write otherwise), and only when the
    // watch unref'd it.
    return { conn: entry.conn, firstRead: entry.read, idleSince: entry.since };
  }
  if (origin.open < max) {
    origin.open++;
    return { idleSince: 0 };
  }
  return undefined;
}

/**
 * Waits for a place on a connection to `key` (FIFO). Rejects with the
 * signal's reason when it aborts first; the place is then not taken.
 */
export function waitTurn(
  key: string,
  { reuse, max, signal }: { reuse: boolean; max: number; signal: AbortSignal },
): Promise<Lease> {
  const origin = originOf(key);
  return new Promise<Lease>((resolve, reject) => {
    const onAbort = () => {
      if (waiter.done) return;
      dropServed(origin);
      const first = origin.waiters[origin.head] === waiter;
      waiter.done = true;
      reject(signal.reason);
      // Places held back for it go to the ones behind it.
      if (first) dispatch(origin);
    };
    const waiter: Waiter = {
      reuse,
      max,
      done: false,
      passed: 0,
      grant(lease) {
        signal.removeEventListener("abort", onAbort);
        resolve(lease);
      },
    };
    origin.waiters.push(waiter);
    if (max > origin.highest) origin.highest = max;
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Gives back a place taken with {@linkcode tryAcquire} or
 * {@linkcode waitTurn}: `conn` when it may carry another request (it goes to
 * the next waiter, or idle into the pool), else undefined (it was closed).
 * `serverMs` is the server's announced `Keep-Alive: timeout`.
 *
 * `read` is a read already pending on `conn`: the next taker's first read,
 * or the watch's.
 *
 * Returns, when `conn` went idle into the pool, the function that starts
 * watching it: call it once the trigger's caller was told (the socket
 * transport calls it two microtasks after; see the comment at its end).
 */
export function release(
  key: string,
  conn: RawConn | undefined,
  serverMs?: number,
  read?: Promise<Uint8Array | null>,
): (() => void) | undefined {
  // Ended by a close below, or handled by whoever takes it.
  read?.catch(() => {});
  const origin = originOf(key);
  if (conn === undefined) {
    closed(key, origin);
    return undefined;
  }
  const now = performance.now();
  const waiter = nextWaiter(origin);
  if (waiter !== undefined) {
    if (waiter.reuse) waiter.grant({ conn, idleSince: now, firstRead: read });
    else {
      conn.close();
      waiter.grant({ idleSince: 0 });
    }
    // The first in line may have been one places were held back for.
    dispatch(origin);
    return undefined;
  }
  // Kept (and watched) as long as the server allows, at most 4 s; reused
  // only while idle for less than the server announced, or than idle
  // connections to this origin were seen to last, or 1.5 s.
  const learned = learnedLimit(origin, now);
  let keepMs = serverMs === undefined
    ? MAX_IDLE_TIMEOUT_MS
    : Math.min(MAX_IDLE_TIMEOUT_MS, serverMs - SERVER_TIMEOUT_MARGIN_MS);
  let reuseMs = keepMs;
  if (serverMs === undefined) {
    const tolerated = origin.toleratedUntil > now ? origin.toleratedMs : 0;
    reuseMs = Math.max(IDLE_TIMEOUT_MS, tolerated ?? 0);
  }
  const full = learned === undefined;
  if (!full) keepMs = reuseMs = Math.min(keepMs, reuseMs, learned);
  reuseMs = Math.min(reuseMs, keepMs);
  if (origin.idle.length >= MAX_IDLE_PER_ORIGIN || reuseMs < MIN_IDLE_MS) {
    conn.close();
    closed(key, origin);
    return undefined;
  }
  const entry: Idle = {
    conn,
    since: now,
    reusable: now + reuseMs,
    expires: now + keepMs,
    full,
    idle: true,
  };
  // Anything arriving on an idle connection (its close, a reset, a stray
  // 408) means it cannot carry a request: drop it, and learn how long the
  // server let it idle.
  const onIdleEnd = () => {
    if (!entry.idle) return;
    learn(origin, performance.now() - entry.since, performance.now());
    discard(key, origin, entry);
  };
  if (read !== undefined) {
    entry.read = read;
    read.then(onIdleEnd, onIdleEnd);
  }
  origin.idle.push(entry);
  startSweeper();
  // The watch starts after the trigger's caller was told its trigger is
  // over: a caller that fires again at once takes the connection before any
  // read is pending on it (and writes sooner: starting a read costs ~1 µs,
  // by when the target may have gone back to sleep), then reads after its
  // write, as on a fresh connection.
  return () => {
    if (!entry.idle) return;
    if (entry.read === undefined) {
      entry.read = conn.read();
      entry.read.then(onIdleEnd, onIdleEnd);
    }
    conn.unref?.();
  };
}

/**
 * Closes every idle connection, all origins together, keeping what was
 * learned of each origin: for a connect that failed because the process ran
 * out of descriptors, which idle connections to other origins (up to
 * {@linkcode MAX_IDLE_PER_ORIGIN} each, kept up to
 * {@linkcode MAX_IDLE_TIMEOUT_MS}) may be holding.
 *
 * @returns How many were closed.
 */
export function shedIdle(): number {
  let shed = 0;
  for (const [key, origin] of [...origins]) {
    for (const entry of [...origin.idle]) {
      discard(key, origin, entry);
      shed++;
    }
  }
  totalShed += shed;
  return shed;
}

let totalShed = 0;
/** How many idle connections {@linkcode shedIdle} closed so far: a connect
 * that failed while another trigger's call shed them (descriptors freed
 * meanwhile) is worth a retry too. */
export function shedCount(): number {
  return totalShed;
}

/** The number of idle connections kept now, all origins together. */
export function idleConnectionCount(): number {
  let count = 0;
  for (const origin of origins.values()) count += origin.idle.length;
  return count;
}

/** The number of connections open now (idle or carrying a request), and of
 * triggers waiting for one, all origins together. */
export function connectionCounts(): { open: number; waiting: number } {
  let open = 0, waiting = 0;
  for (const origin of origins.values()) {
    open += origin.open;
    for (let i = origin.head; i < origin.waiters.length; i++) {
      if (!origin.waiters[i].done) waiting++;
    }
  }
  return { open, waiting };
}

/**
 * Closes every idle connection the raw-socket transport keeps for reuse. A
 * connection still carrying a request returns to the pool when that request
 * is over: await its `result.done` first to include it. Call this at
 * shutdown, or between tests that must not share connections. What was
 * learned of origins' idle timeouts is forgotten too.
 *
 * @returns A promise that resolves once they are closed.
 *
 * @example Usage
 * ```ts
 * import { closeIdleConnections } from "./_pool.ts";
 * import { trigger } from "../trigger/trigger.ts";
 * import assert from "node:assert/strict";
 *
 * const server = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   () => new Response(null, { status: 202 }),
 * );
 * const url = `http://127.0.0.1:${server.addr.port}/`;
 * const first = await trigger(url, { wait: "accepted" });
 * await first.done; // the connection is idle in the pool now
 * const second = await trigger(url, { wait: "accepted" }); // reuses it
 * assert.equal(second.status, 202);
 * await second.done;
 *
 * await closeIdleConnections();
 * await server.shutdown();
 * ```
 */
export function closeIdleConnections(): Promise<void> {
  for (const [key, origin] of [...origins]) {
    for (const entry of [...origin.idle]) discard(key, origin, entry);
    origin.learnedMs = origin.toleratedMs = origin.quickSince = undefined;
    forgetIfEmpty(key, origin, performance.now());
  }
  if (origins.size === 0 && sweeper !== undefined) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
  return Promise.resolve();
}
