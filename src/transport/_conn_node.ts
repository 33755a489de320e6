// Raw sockets on Node and Bun, through node:net and node:tls. Taken from
// process.getBuiltinModule() where it exists (Node >= 20.16, Bun): no
// bundler sees an import then. Elsewhere a non-literal dynamic import (like
// cloudflare:sockets in _conn_workers.ts) that bundlers are told to leave
// alone, so bundles for Workers and edge runtimes never try to resolve
// node:net, and webpack (Next.js) does not turn it into an empty context.
import {
  caCertsKey,
  type Connector,
  type ConnectStage,
  type ConnectTarget,
  KeptBuffer,
  type RawConn,
} from "./_conn.ts";

// What this file uses of node:net and node:tls, declared here rather than
// taken from @types/node: the sources then type-check where those types are
// absent (tsc for a Workers or edge app that holds a copy).

/** Any listener: a parameter list of `never` takes every function. */
type Listener = (...args: never[]) => void;

/** A node:net `Socket` (or node:tls `TLSSocket`), as used here. */
interface Socket {
  on(event: string, listener: Listener): unknown;
  once(event: string, listener: Listener): unknown;
  off(event: string, listener: Listener): unknown;
  write(data: Uint8Array, callback: (error?: Error | null) => void): unknown;
  read(): unknown;
  pause(): unknown;
  resume(): unknown;
  destroy(): unknown;
  setNoDelay(noDelay?: boolean): unknown;
  ref(): unknown;
  unref(): unknown;
  readonly destroyed: boolean;
  readonly readableLength: number;
}

/** A node:tls `SecureContext`: only handed back to `tls.connect`. */
type SecureContext = object;

/** Where `tls.connect` takes its trust from: one or the other. */
interface Trust {
  ca?: string[];
  secureContext?: SecureContext;
}

/** node:tls `connect()`'s options, as used here. */
interface TlsConnectOptions extends Trust {
  socket: Socket;
  host: string;
  servername?: string;
  ALPNProtocols: string[];
}

/** node:net, as used here. */
interface NetModule {
  connect(options: { host: string; port: number }): Socket;
  isIP(input: string): number;
}

/** node:tls, as used here. */
interface TlsModule {
  connect(options: TlsConnectOptions): Socket;
  createSecureContext?(options: { ca: string[] }): SecureContext;
  rootCertificates?: readonly string[];
}

interface NodeModules {
  connect(options: { host: string; port: number }): Socket;
  isIP(input: string): number;
  tlsConnect(options: TlsConnectOptions): Socket;
  createSecureContext?(options: { ca: string[] }): SecureContext;
  rootCertificates: readonly string[];
}

const NET = ["node", "net"].join(":");
const TLS = ["node", "tls"].join(":");
let loaded: NodeModules | undefined;
let loading: Promise<NodeModules> | undefined;
/** Why the last load failed; cleared by a load that works. */
let loadError: unknown;

function modules(net: NetModule, tls: TlsModule): NodeModules {
  return {
    connect: net.connect,
    isIP: net.isIP,
    tlsConnect: tls.connect,
    createSecureContext: typeof tls.createSecureContext === "function"
      ? tls.createSecureContext
      : undefined,
    rootCertificates: tls.rootCertificates ?? [],
  };
}

/** TLS contexts with extra CAs, by the CAs: building one parses every root
 * certificate (~30 ms of blocked event loop), so not per connection. */
const contexts = new Map<string, SecureContext>();
const CONTEXTS_MAX = 16;

/** What `tls.connect` takes to trust the system's roots and `caCerts`. */
function trust(
  node: NodeModules,
  caCerts: string[],
): Trust {
  if (node.createSecureContext === undefined) {
    return { ca: [...node.rootCertificates, ...caCerts] };
  }
  const key = caCertsKey(caCerts);
  let context = contexts.get(key);
  if (context === undefined) {
    if (contexts.size >= CONTEXTS_MAX) contexts.clear();
    context = node.createSecureContext({
      ca: [...node.rootCertificates, ...caCerts],
    });
    contexts.set(key, context);
  }
  return { secureContext: context };
}

/** node:net and node:tls from process.getBuiltinModule, synchronously. */
function builtins(): NodeModules | undefined {
  const process = (globalThis as {
    process?: { getBuiltinModule?: (id: string) => unknown };
  }).process;
  if (typeof process?.getBuiltinModule !== "function") return undefined;
  try {
    const net = process.getBuiltinModule(NET) as NetModule | undefined;
    const tls = process.getBuiltinModule(TLS) as TlsModule | undefined;
    if (typeof net?.connect !== "function") return undefined;
    if (typeof tls?.connect !== "function") return undefined;
    return modules(net, tls);
  } catch {
    return undefined;
  }
}

/**
 * node:net and node:tls. A failed load is not kept: the next call tries
 * again (and until one works, {@linkcode nodeSocketsState} says "failed").
 */
function load(): Promise<NodeModules> {
  loaded ??= builtins();
  if (loaded) return Promise.resolve(loaded);
  return loading ??= Promise.all([
    import(/* webpackIgnore: true */ /* @vite-ignore */ NET),
    import(/* webpackIgnore: true */ /* @vite-ignore */ TLS),
  ]).then(
    ([net, tls]) => {
      loadError = undefined;
      return loaded = modules(net, tls);
    },
    (error: unknown) => {
      loadError = error;
      loading = undefined;
      throw new Error(
        `node:net could not be loaded (${
          error instanceof Error ? error.message : String(error)
        })`,
        { cause: error },
      );
    },
  );
}

/**
 * Whether node:net is loaded ("ready"), failed to load last time
 * ("failed"), or is still loading ("loading", the first trigger on a
 * runtime without process.getBuiltinModule). Starts the load when none ran.
 */
export function nodeSocketsState(): "ready" | "failed" | "loading" {
  loaded ??= builtins();
  if (loaded) return "ready";
  if (loadError !== undefined && loading === undefined) return "failed";
  load().catch(() => {});
  return "loading";
}

/** Resolves once node:net is loaded (true) or could not be (false). */
export function nodeSocketsLoad(): Promise<boolean> {
  return load().then(() => true, () => false);
}

/** A readable message for a socket error; Node's AggregateError (from
 * happy-eyeballs connects) has an empty one. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const nested = (error as { errors?: unknown[] }).errors;
  if (!error.message && Array.isArray(nested) && nested.length > 0) {
    return nested.map(describe).join("; ");
  }
  return error.message || String((error as { code?: unknown }).code ?? error);
}

class NodeConn implements RawConn {
  #socket: Socket;
  #queue: Uint8Array[] = [];
  #ended = false;
  #error: unknown;
  #waiter?: {
    resolve(chunk: Uint8Array | null): void;
    reject(error: unknown): void;
  };
  #closed = false;
  #kept = new KeptBuffer();
  /** Rejects the writes whose callback has not run yet: close() fails them
   * at once (Bun calls the callback of a TLS write pending at destroy()
   * ~10 s later). */
  #writing = new Set<(error: Error) => void>();

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.pause();
    socket.on("data", (chunk: Uint8Array) => {
      const waiter = this.#waiter;
      if (waiter) {
        this.#waiter = undefined;
        waiter.resolve(chunk);
      } else {
        this.#queue.push(chunk);
      }
      // Read on only when asked: the queue never grows past a chunk or two.
      socket.pause();
    });
    const end = () => {
      this.#ended = true;
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter?.resolve(null);
    };
    socket.on("end", end);
    socket.on("close", end);
    // Always listened to: an unhandled 'error' event would crash the process.
    socket.on("error", (error: unknown) => {
      this.#error ??= error;
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter?.reject(new Error(describe(error), { cause: error }));
    });
  }

  write(data: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#closed || this.#socket.destroyed) {
        reject(new Error("Connection closed"));
        return;
      }
      // Read while writing: a server that answers early (a 413 mid-upload)
      // and closes leaves its status unread otherwise, and the write's EPIPE
      // would hide it. The data handler pauses again after one chunk.
      this.#socket.resume();
      this.#writing.add(reject);
      // The callback runs once the bytes are handed to the kernel, or when
      // the socket is destroyed first, then on Node 20 without an error: a
      // write cut short by close(), or by a failure the socket met first (a
      // server's reset seen by the read side), must not count as sent.
      this.#socket.write(data, (error?: Error | null) => {
        this.#writing.delete(reject);
        error ??= this.#error as Error | undefined;
        if (error) reject(new Error(describe(error), { cause: error }));
        else if (this.#closed) reject(new Error("Connection closed"));
        else resolve();
      });
    });
  }

  // Safe to reuse: write() resolves once Node has handed the bytes to the
  // kernel (its callback), and the next request on this connection is
  // built only after this one's exchange is over.
  scratch(size: number): Uint8Array {
    return this.#kept.get(size);
  }

  read(): Promise<Uint8Array | null> {
    const chunk = this.#queue.shift();
    if (chunk) return Promise.resolve(chunk);
    if (this.#error !== undefined) {
      return Promise.reject(
        new Error(describe(this.#error), { cause: this.#error }),
      );
    }
    if (this.#closed) return Promise.reject(new Error("Connection closed"));
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
      // Bytes Node holds already are handed over now: read() emits them as
      // 'data' at once, where resume() would wait a tick, and a caller
      // looking a few microtask turns for bytes that are here (a stray after
      // an answer that filled a read) would miss them.
      if (this.#socket.readableLength > 0) this.#socket.read();
      if (this.#waiter) this.#socket.resume();
    });
  }

  mayHoldMore(): boolean {
    return this.#queue.length > 0 || this.#socket.readableLength > 0;
  }

  unref(): void {
    this.#socket.unref();
  }

  ref(): void {
    this.#socket.ref();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.destroy();
    // As on Deno: a write or read pending on a connection closed here fails
    // (a write the callback then reports is settled already).
    for (const reject of this.#writing) reject(new Error("Connection closed"));
    this.#writing.clear();
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(new Error("Connection closed"));
  }
}

function ignore(): void {}

/** Resolves once `socket` emits `ready` (connect or secureConnect); rejects
 * on its error or the signal's abort, destroying the socket. */
function opened(
  socket: Socket,
  ready: "connect" | "secureConnect",
  signal: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      socket.off(ready, onReady);
      socket.off("error", onError);
      signal.removeEventListener("abort", onAbort);
    };
    const onReady = () => {
      cleanup();
      resolve();
    };
    const onError = (error: unknown) => {
      cleanup();
      socket.destroy();
      reject(new Error(describe(error), { cause: error }));
    };
    const onAbort = () => {
      cleanup();
      socket.destroy();
      reject(signal.reason);
    };
    if (signal.aborted) return onAbort();
    socket.once(ready, onReady);
    socket.once("error", onError);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Connects with `net.connect`, then `tls.connect` over that socket for
 * https, so a TLS failure is told apart from a refused connection. Extra
 * `caCerts` are trusted on top of the bundled roots, as Deno does. */
export const connectNode: Connector = async (
  target: ConnectTarget,
  onStage: (stage: ConnectStage) => void,
): Promise<RawConn> => {
  const node = await load();
  const { hostname, port, signal } = target;
  if (signal.aborted) throw signal.reason;
  const socket = node.connect({ host: hostname, port });
  // Errors are read through opened() and NodeConn; this one listener makes
  // sure a late one can never be an unhandled 'error' event.
  socket.on("error", ignore);
  await opened(socket, "connect", signal);
  // A head and a large body go out as two writes: without TCP_NODELAY,
  // Nagle's algorithm and delayed ACKs can hold the tail for ~40 ms.
  socket.setNoDelay(true);
  if (!target.tls) return new NodeConn(socket);

  onStage("tls");
  try {
    const secure = node.tlsConnect({
      socket,
      host: hostname,
      // SNI carries names only (RFC 6066); an IP is checked against the SANs.
      servername: node.isIP(hostname) ? undefined : hostname,
      // Bun throws here for a CA that is no certificate (Node fails the
      // handshake): the connected socket must not be left open.
      ...(target.caCerts ? trust(node, target.caCerts) : {}),
      ALPNProtocols: ["http/1.1"],
    });
    secure.on("error", ignore);
    await opened(secure, "secureConnect", signal);
    return new NodeConn(secure);
  } catch (error) {
    socket.destroy();
    throw error;
  }
};
