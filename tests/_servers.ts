// Real loopback targets for the tests: a raw capture server, Deno.serve and
// Node http recorders, a TLS server with a generated certificate, and
// misbehaving servers. Every one listens on 127.0.0.1, port 0.
import net from "node:net";
import { output, WAIT_TIMEOUT, within } from "./_wait.ts";

/** What a recorder saw of one request. */
export interface Seen {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

/**
 * A small async queue: push now, take later, in order. A take waits at most
 * its timeout (default {@linkcode WAIT_TIMEOUT}), then rejects with a message
 * naming the queue: a request that never arrives fails the test, never hangs
 * it.
 */
export class Queue<T> {
  #items: T[] = [];
  #waiting: Array<(item: T) => void> = [];
  #name: string;
  constructor(name = "a queue") {
    this.#name = name;
  }
  push(item: T): void {
    const waiter = this.#waiting.shift();
    if (waiter) waiter(item);
    else this.#items.push(item);
  }
  take(timeout: number = WAIT_TIMEOUT): Promise<T> {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift()!);
    return new Promise((resolve, reject) => {
      const waiter = (item: T) => {
        clearTimeout(timer);
        resolve(item);
      };
      const timer = setTimeout(() => {
        this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
        reject(
          new Error(
            `Nothing arrived in ${this.#name} within ${timeout} ms`,
          ),
        );
      }, timeout);
      this.#waiting.push(waiter);
    });
  }
  get size(): number {
    return this.#items.length;
  }
}

/**
 * The path and query of a request URL as received: unlike
 * `pathname + search`, keeps the "?" of an empty query.
 */
function targetOf(href: string): string {
  return href.slice(href.indexOf("/", href.indexOf("//") + 2));
}

/** A target that records requests. */
export interface Recorder {
  origin: string;
  seen: Queue<Seen>;
  close(): Promise<void>;
}

/** Deno.serve recording each request; the handler can be slowed down. */
export function denoRecorder(
  options: { delay?: number; status?: number } = {},
): Recorder {
  const seen = new Queue<Seen>("the Deno.serve recorder");
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      if (options.delay) {
        await new Promise((resolve) => setTimeout(resolve, options.delay));
      }
      const body = new Uint8Array(await request.arrayBuffer());
      seen.push({
        method: request.method,
        url: targetOf(request.url),
        headers: Object.fromEntries(request.headers),
        body,
      });
      return new Response(null, { status: options.status ?? 202 });
    },
  );
  return {
    origin: `http://127.0.0.1:${server.addr.port}`,
    seen,
    close: () => server.shutdown(),
  };
}

const NODE_RECORDER = `
const http = require("node:http");
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const headers = {};
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i].toLowerCase();
      headers[name] = headers[name] === undefined
        ? req.rawHeaders[i + 1]
        : headers[name] + ", " + req.rawHeaders[i + 1];
    }
    process.stdout.write(JSON.stringify({
      method: req.method, url: req.url, headers,
      body: Buffer.concat(chunks).toString("base64"),
    }) + "\\n");
    res.writeHead(202).end();
  });
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\\n");
});
process.stdin.on("data", () => {}).on("end", () => server.close(() => process.exit(0)));
`;

/** A Node `http` server (a real `node` process) recording each request. */
export async function nodeRecorder(): Promise<Recorder> {
  const child = new Deno.Command("node", {
    args: ["-e", NODE_RECORDER],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const seen = new Queue<Seen>("the Node http recorder");
  const lines = child.stdout
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(lineSplitter());
  const reader = lines.getReader();
  const first = await within(reader.read(), "the Node http recorder's port")
    .catch((error) => {
      child.kill("SIGKILL");
      throw error;
    });
  const { port } = JSON.parse(first.value!);
  const pump = (async () => {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      const item = JSON.parse(value);
      seen.push({
        method: item.method,
        url: item.url,
        headers: item.headers,
        body: Uint8Array.from(atob(item.body), (c) => c.charCodeAt(0)),
      });
    }
  })();
  return {
    origin: `http://127.0.0.1:${port}`,
    seen,
    async close() {
      await child.stdin.close();
      try {
        await within(
          Promise.all([pump, child.status]),
          "the Node http recorder's exit",
        );
      } catch (error) {
        child.kill("SIGKILL");
        await child.status;
        throw error;
      }
    },
  };
}

/** Splits a text stream into its non-empty lines. */
export function lineSplitter(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const part of parts) if (part) controller.enqueue(part);
    },
  });
}

/** The raw bytes of one request read from a plain `Deno.listen` socket. */
export interface RawCapture {
  origin: string;
  port: number;
  /** Raw requests, one per connection, read until the framing says done. */
  requests: Queue<Uint8Array>;
  /** Number of connections accepted so far. */
  connections: () => number;
  close(): Promise<void>;
}

/**
 * Accepts connections, reads one request (head + Content-Length body), keeps
 * its raw bytes, answers 204 and closes.
 */
export function rawCapture(): RawCapture {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests = new Queue<Uint8Array>("the raw capture server");
  let connections = 0;
  const handlers = new Set<Promise<void>>();
  const loop = (async () => {
    for await (const conn of listener) {
      connections++;
      const handler = handleRaw(conn, requests).finally(() =>
        handlers.delete(handler)
      );
      handlers.add(handler);
    }
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    requests,
    connections: () => connections,
    async close() {
      listener.close();
      await loop.catch(() => {});
      await Promise.all(handlers);
    },
  };
}

async function handleRaw(conn: Deno.Conn, out: Queue<Uint8Array>) {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buffer = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      chunks.push(buffer.slice(0, n));
      total += n;
      if (nextRequest(latin1Text(concat(chunks, total)))) break;
    }
    out.push(concat(chunks, total));
    await conn.write(
      new TextEncoder().encode("HTTP/1.1 204 No Content\r\n\r\n"),
    );
  } catch {
    // The client went away; what was read is enough.
  } finally {
    closeQuietly(conn);
  }
}

/** The first complete request (head, Content-Length body) in `buffered`,
 * and what follows it; undefined while it is incomplete. */
export function nextRequest(
  buffered: string,
): { head: string; body: string; rest: string } | undefined {
  const end = buffered.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const head = buffered.slice(0, end);
  const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
  if (buffered.length < end + 4 + length) return undefined;
  return {
    head,
    body: buffered.slice(end + 4, end + 4 + length),
    rest: buffered.slice(end + 4 + length),
  };
}

/** Closes `conn`, if it is not closed yet. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** A server started by {@linkcode rawKeepAlive}. */
export interface RawKeepAlive {
  /** Its URL (path /job). */
  url: string;
  /** Each request: its connection (from 1), its number on it, its head. */
  requests: Queue<{ conn: number; n: number; head: string }>;
  /** Connections accepted so far. */
  connections: () => number;
  /** Connections open now (a client's close ends one). */
  openConnections: () => number;
  /** Closes the server side of every open connection. */
  dropConnections(): void;
  close(): Promise<void>;
}

/**
 * A raw keep-alive server: for each request on a connection it calls
 * `answer(n, head, conn)` (n counts requests on that connection, from 1;
 * conn counts connections, from 1) and writes what it returns, or closes the
 * connection when it returns null.
 */
export function rawKeepAlive(
  answer: (n: number, head: string, conn: number) => string | null,
): RawKeepAlive {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests = new Queue<{ conn: number; n: number; head: string }>();
  let connections = 0;
  const open = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const loop = (async () => {
    for await (const conn of listener) {
      const id = ++connections;
      open.add(conn);
      const handler = (async () => {
        let buffered = "";
        let n = 0;
        const buffer = new Uint8Array(16 * 1024);
        try {
          while (true) {
            const read = await conn.read(buffer);
            if (read === null) return;
            buffered += latin1Text(buffer.subarray(0, read));
            let request: ReturnType<typeof nextRequest>;
            while ((request = nextRequest(buffered)) !== undefined) {
              const { head } = request;
              buffered = request.rest;
              n++;
              requests.push({ conn: id, n, head });
              const reply = answer(n, head, id);
              if (reply === null) return;
              await conn.write(new TextEncoder().encode(reply));
            }
          }
        } catch {
          // The client went away.
        } finally {
          open.delete(conn);
          closeQuietly(conn);
        }
      })();
      handlers.add(handler);
      handler.finally(() => handlers.delete(handler));
    }
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    url: `http://127.0.0.1:${port}/job`,
    requests,
    connections: () => connections,
    openConnections: () => open.size,
    /** Closes the server side of every open connection. */
    dropConnections() {
      for (const conn of open) closeQuietly(conn);
    },
    async close() {
      listener.close();
      for (const conn of open) closeQuietly(conn);
      await loop.catch(() => {});
      await Promise.all(handlers);
    },
  };
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const all = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return all;
}

/** A listener whose connections are handled by `onConn` (misbehaviours). */
export function misbehaving(
  onConn: (conn: Deno.Conn) => Promise<void>,
): { origin: string; port: number; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const handlers = new Set<Promise<void>>();
  const loop = (async () => {
    for await (const conn of listener) {
      const handler = onConn(conn).catch(() => {}).finally(() => {
        try {
          conn.close();
        } catch {
          // closed
        }
        handlers.delete(handler);
      });
      handlers.add(handler);
    }
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    async close() {
      listener.close();
      await loop.catch(() => {});
      await Promise.all(handlers);
    },
  };
}

/** A server that reads every request and never answers (the client's
 * close ends each connection). */
export function silent(): ReturnType<typeof misbehaving> {
  return misbehaving(async (conn) => {
    const buffer = new Uint8Array(4096);
    while ((await conn.read(buffer)) !== null);
  });
}

/** A port nothing listens on (bound then released). */
export function deadPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** A self-signed leaf certificate for 127.0.0.1 and localhost. */
export interface TestCert {
  cert: string;
  key: string;
}

/** Generates a certificate with openssl (CA:FALSE, SAN for the loopback). */
export async function makeCert(): Promise<TestCert> {
  const dir = await Deno.makeTempDir({ prefix: "trigger-cert-" });
  try {
    const { success, stderr } = await output("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
      ],
      stdout: "null",
      stderr: "piped",
      timeout: 60_000,
    });
    if (!success) {
      throw new Error(`openssl failed: ${new TextDecoder().decode(stderr)}`);
    }
    return {
      cert: await Deno.readTextFile(`${dir}/cert.pem`),
      key: await Deno.readTextFile(`${dir}/key.pem`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** An https Deno.serve recorder using `cert`. */
export function tlsRecorder(tls: TestCert): Recorder {
  const seen = new Queue<Seen>("the TLS recorder");
  const server = Deno.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      cert: tls.cert,
      key: tls.key,
      onListen() {},
    },
    async (request) => {
      seen.push({
        method: request.method,
        url: targetOf(request.url),
        headers: Object.fromEntries(request.headers),
        body: new Uint8Array(await request.arrayBuffer()),
      });
      return new Response(null, { status: 202 });
    },
  );
  return {
    origin: `https://127.0.0.1:${server.addr.port}`,
    seen,
    close: () => server.shutdown(),
  };
}

/** Deno.serve recording the client port (the connection) of each request. */
export function portRecorder(): {
  url: string;
  ports: number[];
  close(): Promise<void>;
} {
  const ports: number[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request, info) => {
      await request.arrayBuffer();
      ports.push(info.remoteAddr.port);
      return new Response("accepted, with a body to skip", { status: 202 });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/job`,
    ports,
    close: () => server.shutdown(),
  };
}

/** Decodes bytes as Latin-1 (one char per byte), to look at raw requests. */
export function latin1Text(bytes: Uint8Array): string {
  // Not TextDecoder("latin1"): that is windows-1252 and remaps 0x80–0x9F.
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return text;
}

/**
 * Per connection: answers small requests 200 (kept alive); a request whose
 * Content-Length is over 1 MB gets 413 as soon as its head is read, and the
 * connection is closed with the body unread (a reset), as a server refusing
 * an upload does (with `closeAfter`, that many ms after the 413).
 * Counts the large requests' heads.
 */
export function earlyAnswerServer(
  options: { closeAfter?: number } = {},
): ReturnType<typeof misbehaving> & {
  heads: string[];
} {
  const encoder = new TextEncoder();
  const heads: string[] = [];
  const server = misbehaving(async (conn) => {
    const buffer = new Uint8Array(64 * 1024);
    let pending = "";
    while (true) {
      let end: number;
      while ((end = pending.indexOf("\r\n\r\n")) < 0) {
        const n = await conn.read(buffer);
        if (n === null) return;
        pending += new TextDecoder("latin1").decode(buffer.subarray(0, n));
      }
      const head = pending.slice(0, end);
      pending = pending.slice(end + 4);
      const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (length > 1024 * 1024) {
        heads.push(head.split("\r\n")[0]);
        await conn.write(encoder.encode(
          "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ));
        // Some servers close at once; others a moment later (`closeAfter`
        // ms), the body still unread: either way a reset follows.
        if (options.closeAfter) {
          await new Promise((r) => setTimeout(r, options.closeAfter));
        }
        return; // closed with the body unread
      }
      while (pending.length < length) {
        const n = await conn.read(buffer);
        if (n === null) return;
        pending += new TextDecoder("latin1").decode(buffer.subarray(0, n));
      }
      pending = pending.slice(length);
      await conn.write(encoder.encode(
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nKeep-Alive: timeout=5\r\n\r\n",
      ));
    }
  });
  return { ...server, heads };
}

/**
 * A node:net server on 127.0.0.1 (port 0): `onSocket` writes what it likes
 * on each connection (a socket error is ignored). Resolves with its port
 * and a bounded `close()`.
 */
export async function netServer(
  onSocket: (socket: net.Socket) => void,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((socket) => {
    socket.on("error", () => {});
    onSocket(socket);
  });
  await within(
    new Promise<void>((resolve) =>
      server.listen(0, "127.0.0.1", () => resolve())
    ),
    "node:net listen",
  );
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      within(
        new Promise<void>((resolve) => server.close(() => resolve())),
        "node:net close",
      ),
  };
}
