// Connection reuse for the raw-socket transport: idle keep-alive connections
// per origin, watched while idle so a server's close is seen before reuse.
import type { RawConn } from "./_conn.ts";

/** Idle connections kept per origin; more are closed. */
export const MAX_IDLE_PER_ORIGIN = 64;
/** How long an idle connection is kept, at most (undici's default). */
export const IDLE_TIMEOUT_MS = 4_000;
/** Margin below a server's announced `Keep-Alive: timeout`. */
const SERVER_TIMEOUT_MARGIN_MS = 1_000;

/** An idle connection taken from the pool. */
export interface Reused {
  conn: RawConn;
  /** The read that watched the idle connection: the response's first bytes. */
  firstRead: Promise<Uint8Array | null>;
}

interface Idle {
  conn: RawConn;
  read: Promise<Uint8Array | null>;
  /** When it stops being reusable (performance.now() ms). */
  expires: number;
  idle: boolean;
}

const pools = new Map<string, Idle[]>();
/** How often expired idle connections are closed; reuse checks exactly. */
const SWEEP_MS = 1_000;
let sweeper: ReturnType<typeof setInterval> | undefined;

function unrefTimer(timer: ReturnType<typeof setTimeout>): void {
  const unref = (timer as { unref?: () => void }).unref;
  if (typeof unref === "function") unref.call(timer);
}

// One timer for the whole pool, not one per idle connection (a timer costs
// about as much as the rest of a reused trigger's own work).
function sweep(): void {
  const now = performance.now();
  for (const [key, list] of [...pools]) {
    for (const entry of [...list]) {
      if (entry.expires <= now) discard(key, entry);
    }
  }
}

function discard(key: string, entry: Idle): void {
  if (!entry.idle) return;
  entry.idle = false;
  const list = pools.get(key);
  if (list) {
    const at = list.indexOf(entry);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) pools.delete(key);
  }
  stopSweeperIfEmpty();
  entry.conn.close();
}

function stopSweeperIfEmpty(): void {
  if (pools.size === 0 && sweeper !== undefined) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

/** Takes the most recently used idle connection for `key`, if any. */
export function takeIdle(key: string): Reused | undefined {
  const list = pools.get(key);
  if (!list) return undefined;
  const now = performance.now();
  let entry: Idle | undefined;
  while ((entry = list.at(-1)) !== undefined && entry.expires <= now) {
    discard(key, entry);
  }
  if (entry === undefined) return undefined;
  list.pop();
  if (list.length === 0) {
    pools.delete(key);
    stopSweeperIfEmpty();
  }
  entry.idle = false;
  entry.conn.ref?.();
  return { conn: entry.conn, firstRead: entry.read };
}

/**
 * Keeps `conn` for the next request to `key`. While idle it is unref'd (it
 * never keeps the process alive), its close by the server is noticed through
 * a pending read, and it is closed after the idle timeout.
 */
export function putIdle(key: string, conn: RawConn, serverMs?: number): void {
  const list = pools.get(key) ?? [];
  const keepMs = Math.min(
    IDLE_TIMEOUT_MS,
    serverMs === undefined ? Infinity : serverMs - SERVER_TIMEOUT_MARGIN_MS,
  );
  if (list.length >= MAX_IDLE_PER_ORIGIN || keepMs <= 0) {
    conn.close();
    return;
  }
  const entry: Idle = {
    conn,
    read: conn.read(),
    expires: performance.now() + keepMs,
    idle: true,
  };
  // Anything arriving on an idle connection (its close, a reset, a stray
  // 408) means it cannot carry a request: drop it.
  entry.read.then(() => discard(key, entry), () => discard(key, entry));
  conn.unref?.();
  list.push(entry);
  pools.set(key, list);
  if (sweeper === undefined) {
    sweeper = setInterval(sweep, SWEEP_MS);
    unrefTimer(sweeper);
  }
}

/** The number of idle connections kept now, per origin key. */
export function idleConnectionCount(): number {
  let count = 0;
  for (const list of pools.values()) count += list.length;
  return count;
}

/**
 * Closes every idle connection the raw-socket transport keeps for reuse. A
 * connection still carrying a request returns to the pool when that request
 * is over: await its `result.done` first to include it. Call this at
 * shutdown, or between tests that must not share connections.
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
  for (const [key, list] of [...pools]) {
    for (const entry of [...list]) discard(key, entry);
  }
  stopSweeperIfEmpty();
  return Promise.resolve();
}
