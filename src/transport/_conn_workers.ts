// Raw sockets on Cloudflare Workers, through connect() from cloudflare:sockets.
// Loaded with a non-literal dynamic import, so no other runtime (and no
// bundler) ever tries to resolve "cloudflare:sockets".
import type {
  Connector,
  ConnectStage,
  ConnectTarget,
  RawConn,
} from "./_conn.ts";
import { untilAborted } from "./_conn.ts";

interface WorkersSocket {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  readonly opened: Promise<unknown>;
  close(): Promise<void>;
}
type Connect = (
  address: { hostname: string; port: number },
  options: { secureTransport: "on" | "off"; allowHalfOpen: boolean },
) => WorkersSocket;

const SOCKETS_MODULE = ["cloudflare", "sockets"].join(":");
let loaded: Promise<Connect> | undefined;

class WorkersConn implements RawConn {
  #socket: WorkersSocket;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #closed = false;
  /** Writes not yet taken by workerd. */
  #writing = 0;
  /** A read started with a request's first write, before any read of its
   * answer: in workerd a read started only after a write failed on a reset
   * gets no data, so a 413 the server sent mid-upload, then reset, was
   * lost (a read started before the failure gets it). */
  #ahead: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
  constructor(socket: WorkersSocket) {
    this.#socket = socket;
    this.#reader = socket.readable.getReader();
    this.#writer = socket.writable.getWriter();
  }
  write(data: Uint8Array): Promise<void> {
    if (this.#ahead === undefined) {
      this.#ahead = this.#reader.read();
      // Its failure is the next read()'s, or nobody's after a close.
      this.#ahead.catch(() => {});
    }
    this.#writing++;
    const written = this.#writer.write(data);
    written.then(this.#wrote, this.#wrote);
    return written;
  }
  #wrote = () => {
    this.#writing--;
  };
  async read(): Promise<Uint8Array | null> {
    const ahead = this.#ahead;
    this.#ahead = undefined;
    const { value, done } = await (ahead ?? this.#reader.read());
    return done ? null : value;
  }
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // workerd's close() waits for pending writes to flush, and settles
    // neither them nor a pending read: against a server that stops reading
    // a large body, a trigger hung past its timeout. A write still pending
    // is given up (aborted), the read cancelled; bytes workerd already took
    // are flushed by close() as before.
    if (this.#writing > 0) this.#writer.abort().catch(() => {});
    this.#reader.cancel().catch(() => {});
    this.#socket.close().catch(() => {});
  }
}

/** Connects with cloudflare:sockets; TLS via `secureTransport: "on"`. */
export const connectWorkers: Connector = async (
  target: ConnectTarget,
  _onStage: (stage: ConnectStage) => void,
): Promise<RawConn> => {
  loaded ??= import(/* webpackIgnore: true */ /* @vite-ignore */ SOCKETS_MODULE)
    .then((m) => m.connect as Connect);
  const connect = await loaded;
  const socket = connect(
    { hostname: target.hostname, port: target.port },
    { secureTransport: target.tls ? "on" : "off", allowHalfOpen: false },
  );
  // No separate TLS stage: `opened` settles after connect and handshake
  // alike, so the failure's message tells them apart (see _classify.ts).
  const conn = new WorkersConn(socket);
  try {
    await untilAborted(socket.opened.then(() => conn), target.signal);
  } catch (error) {
    conn.close();
    throw error;
  }
  return conn;
};
