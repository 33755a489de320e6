// Raw sockets on Deno, Deno Deploy, Supabase and Netlify edge functions.
import type {
  Connector,
  ConnectStage,
  ConnectTarget,
  RawConn,
} from "./_conn.ts";
import { KeptBuffer, untilAborted } from "./_conn.ts";
import { holdTimer } from "../_bounded.ts";

const READ_CHUNK = 1024;

// What this file uses of Deno's sockets, declared here rather than taken
// from the `Deno` namespace's types: the sources then type-check where
// those are absent (tsc for a Node or Workers app that holds a copy).

/** A `Deno.Conn`, as used here. */
interface DenoSocket {
  read(buffer: Uint8Array): Promise<number | null>;
  write(data: Uint8Array): Promise<number>;
  close(): void;
  ref(): void;
  unref(): void;
  /** A `Deno.TcpConn`'s. */
  setNoDelay?(noDelay?: boolean): void;
}

/** A `Deno.TlsConn`, as used here. */
interface DenoTlsSocket extends DenoSocket {
  handshake(): Promise<unknown>;
}

/** `Deno.connect` and `Deno.connectTls`, as used here. */
interface DenoSockets {
  connect(options: {
    hostname: string;
    port: number;
    signal?: AbortSignal;
  }): Promise<DenoSocket>;
  connectTls(options: {
    hostname: string;
    port: number;
    caCerts?: string[];
    alpnProtocols?: string[];
  }): Promise<DenoTlsSocket>;
}

/** The `Deno` global: only called on Deno (see _runtime.ts). */
function deno(): DenoSockets {
  return (globalThis as unknown as { Deno: DenoSockets }).Deno;
}

/**
 * Whether closing a `Deno.Conn` settles its pending `write()` and `read()`
 * (they reject with `Interrupted`): Deno 2.9.5 and later. Before, a write
 * the peer never drained (1.x to 2.9.4) and a read (2.8.3) stayed pending
 * after `close()`, so a trigger's timeout or abort never ended it
 * (docs/platforms.md, "Runtime versions"). Where the version cannot be told
 * (an edge runtime's own build), it is taken as older.
 */
function closeSettles(): boolean {
  const version = (globalThis as { Deno?: { version?: { deno?: unknown } } })
    .Deno?.version?.deno;
  const match = typeof version === "string"
    ? /^(\d+)\.(\d+)\.(\d+)/.exec(version)
    : null;
  if (match === null) return false;
  const [major, minor, patch] = match.slice(1).map(Number);
  return major > 2 || major === 2 && (minor > 9 || minor === 9 && patch >= 5);
}

let settles: boolean | undefined;

/** Raised for a write or read pending when its connection was closed. */
function interrupted(): Error {
  const errors = (globalThis as {
    Deno?: { errors?: { Interrupted?: new (message: string) => Error } };
  }).Deno?.errors;
  const Interrupted = errors?.Interrupted ?? Error;
  return new Interrupted("operation canceled: the connection was closed");
}

class DenoConn implements RawConn {
  #conn: DenoSocket;
  /** On a Deno whose close() leaves them pending: the writes and reads
   * under way, rejected by close(). */
  #pending?: Set<(error: Error) => void>;
  #buffer?: Uint8Array;
  #kept = new KeptBuffer();
  #closed = false;
  /** The last read filled the buffer: more may be waiting. */
  #full = false;
  constructor(conn: DenoSocket) {
    this.#conn = conn;
    // A head and a large body go out as two writes: without TCP_NODELAY,
    // Nagle's algorithm and delayed ACKs can hold the tail for ~40 ms.
    conn.setNoDelay?.(true);
    if (!(settles ??= closeSettles())) this.#pending = new Set();
  }
  /** `promise`, settled by close() too where Deno's own is not. */
  #settled<T>(promise: Promise<T>): Promise<T> {
    const pending = this.#pending;
    if (pending === undefined) return promise;
    if (this.#closed) {
      promise.catch(() => {});
      return Promise.reject(interrupted());
    }
    return new Promise<T>((resolve, reject) => {
      pending.add(reject);
      promise.then(resolve, reject).finally(() => pending.delete(reject));
    });
  }
  // write() and read() chain on Deno's own promise instead of awaiting it
  // in an async function: one microtask hop less each way (~1 % of an
  // "accepted" trigger on one CPU, at the noise; docs/performance.md,
  // eighth pass).
  write(data: Uint8Array): Promise<void> {
    // Mostly written whole by the first call: no view made for it.
    try {
      return this.#settled(this.#conn.write(data)).then((n) =>
        n < data.length ? this.#rest(data, n) : undefined
      );
    } catch (error) {
      return Promise.reject(error); // a failure is a rejection, as before
    }
  }
  async #rest(data: Uint8Array, offset: number): Promise<void> {
    while (offset < data.length) {
      offset += await this.#settled(this.#conn.write(data.subarray(offset)));
    }
  }
  read(): Promise<Uint8Array | null> {
    const buffer = this.#buffer ??= new Uint8Array(READ_CHUNK);
    try {
      return this.#settled(this.#conn.read(buffer)).then((n) => {
        this.#full = n === READ_CHUNK;
        return n === null ? null : buffer.subarray(0, n);
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }
  scratch(size: number): Uint8Array {
    return this.#kept.get(size);
  }
  mayHoldMore(): boolean {
    return this.#full;
  }
  unref(): void {
    this.#conn.unref();
  }
  ref(): void {
    this.#conn.ref();
  }
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the peer's reset.
    }
    if (this.#pending !== undefined && this.#pending.size > 0) {
      const error = interrupted();
      for (const reject of this.#pending) reject(error);
      this.#pending.clear();
    }
  }
}

/** Connects with `Deno.connect`, or `Deno.connectTls` and an explicit
 * handshake so TLS failures surface here, not as a write error. */
export const connectDeno: Connector = (
  target: ConnectTarget,
  onStage: (stage: ConnectStage) => void,
): Promise<RawConn> => {
  const { hostname, port, signal } = target;
  if (!target.tls) {
    // The trigger's signal is raced, not given to Deno.connect: a connect
    // aborted as it completed was rejected with its socket left open, for
    // good (206–316 of 3,000 triggers aborted at 0–2 ms on loopback).
    // Raced, a connection that comes late is closed. A connect still
    // pending ABANDON_MS after the trigger gave up (a host that never
    // answers) is aborted then, by a signal of its own.
    if (signal.aborted) return Promise.reject(signal.reason);
    const abandon = new AbortController();
    const connecting = deno().connect({
      hostname,
      port,
      signal: abandon.signal,
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const giveUp = () => {
      timer = setTimeout(() => abandon.abort(), ABANDON_MS);
      holdTimer(timer, false);
    };
    signal.addEventListener("abort", giveUp, { once: true });
    connecting.catch(() => {}).finally(() => {
      signal.removeEventListener("abort", giveUp);
      clearTimeout(timer);
    });
    return untilAborted(connecting, signal).then((conn) => new DenoConn(conn));
  }
  return connectTls(target, onStage);
};

/** How long a connect may go on after its trigger gave up (the connection
 * is closed when it comes) before it is aborted: past a loopback or LAN
 * connect, short enough that connects to a host that never answers do not
 * pile up far past the per-origin cap. */
const ABANDON_MS = 250;

async function connectTls(
  target: ConnectTarget,
  onStage: (stage: ConnectStage) => void,
): Promise<RawConn> {
  const { hostname, port, signal } = target;
  // connectTls takes no signal: race it, and close a late connection.
  const tls = await untilAborted(
    // ALPN offers HTTP/1.1, as the connections on Node and Bun do (and
    // Deno's fetch, among others): a server that requires ALPN accepts it.
    deno().connectTls({
      hostname,
      port,
      caCerts: target.caCerts,
      alpnProtocols: ["http/1.1"],
    }),
    signal,
  );
  onStage("tls");
  const conn = new DenoConn(tls);
  try {
    await untilAborted(tls.handshake().then(() => conn), signal);
  } catch (error) {
    conn.close();
    throw error;
  }
  return conn;
}
