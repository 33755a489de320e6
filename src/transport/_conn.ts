// The contract every raw-socket implementation meets (private). One file per
// runtime implements it: _conn_deno.ts (Deno.connect / connectTls),
// _conn_workers.ts (cloudflare:sockets) and _conn_node.ts (node:net /
// node:tls on Node and Bun), their modules loaded only where they can run.

/** Where to connect. */
export interface ConnectTarget {
  hostname: string;
  port: number;
  tls: boolean;
  caCerts?: string[];
  /** Aborting it abandons the attempt (a late connection is closed). */
  signal: AbortSignal;
}

/** A connected byte stream. */
export interface RawConn {
  /** Writes all of `data`. */
  write(data: Uint8Array): Promise<void>;
  /** The next bytes read, or null at the end. The view is valid until the
   * next call. */
  read(): Promise<Uint8Array | null>;
  /** Closes the connection; safe to call twice. */
  close(): void;
  /** Lets the process exit while this connection is open (idle in a pool). */
  unref?(): void;
  /** A buffer of at least `size` bytes this connection keeps for the bytes
   * of its requests, one at a time: valid until the next call, so until
   * its request's exchange is over (the next request on the connection
   * starts only then). None: the caller allocates. */
  scratch?(size: number): Uint8Array;
  /** Undoes `unref()`. */
  ref?(): void;
  /** Whether bytes may be left unread after the last read: it filled the
   * read buffer, or more is queued. A response that ended there may have
   * had more after it, so its connection is not reused. None: never. */
  mayHoldMore?(): boolean;
}

/** The largest request buffer a connection keeps (larger ones are made
 * per request): up to 128 idle connections per origin keep one each. */
const KEPT_MAX = 16 * 1024;

/**
 * A connection's own buffer for its requests' bytes ({@linkcode
 * RawConn.scratch}): a new typed array per request costs ~1 µs in a tight
 * loop and 5–6 µs in a trigger loop with its waits (docs/performance.md).
 */
export class KeptBuffer {
  #bytes?: Uint8Array;
  /** At least `size` bytes: the kept buffer (grown when needed), or a new
   * one above 16 KiB. */
  get(size: number): Uint8Array {
    if (size > KEPT_MAX) return new Uint8Array(size);
    if (this.#bytes === undefined || this.#bytes.length < size) {
      this.#bytes = new Uint8Array(Math.max(size, 2048));
    }
    return this.#bytes;
  }
}

/** The stage a connection attempt failed in, for error codes. */
export type ConnectStage = "connect" | "tls";

/** Opens a connection; `onStage("tls")` marks the start of the handshake. */
export type Connector = (
  target: ConnectTarget,
  onStage: (stage: ConnectStage) => void,
) => Promise<RawConn>;

/** `promise`, or a rejection with the signal's reason as soon as it aborts;
 * a connection that arrives late is closed. */
export function untilAborted<T extends { close(): void }>(
  promise: Promise<T>,
  signal: AbortSignal,
): Promise<T> {
  if (signal.aborted) {
    promise.then((late) => late.close(), () => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.then((late) => late.close(), () => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() =>
      signal.removeEventListener("abort", onAbort)
    );
  });
}

/** Keys of `caCerts` arrays already seen, with the certificates they held. */
const caKeys = new WeakMap<
  readonly string[],
  { certs: readonly string[]; key: string }
>();

/**
 * A key that tells sets of extra CAs apart exactly (`["ab", "c"]` is not
 * `["a", "bc"]`), for the connection pool and the TLS contexts. Worked out
 * once per array while it holds the same certificates (comparing them is
 * by reference when unchanged), not serialised on every trigger.
 */
export function caCertsKey(caCerts: readonly string[]): string {
  const known = caKeys.get(caCerts);
  if (
    known !== undefined && known.certs.length === caCerts.length &&
    known.certs.every((cert, i) => cert === caCerts[i])
  ) return known.key;
  const key = JSON.stringify(caCerts);
  caKeys.set(caCerts, { certs: [...caCerts], key });
  return key;
}
