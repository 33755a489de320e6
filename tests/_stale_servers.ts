// Targets that close keep-alive connections the way real servers do, each
// counting the intact bodies it received by id (the loss tests): Python's
// http.server with an idle timeout, a raw Deno server with an unannounced idle
// close or a close just after each response, and a Node cluster restarted
// gracefully. Every one listens on 127.0.0.1, port 0.
import { within } from "./_wait.ts";
import {
  closeQuietly,
  latin1Text,
  lineSplitter,
  nextRequest,
} from "./_servers.ts";

/** The padding each test body carries; a body is intact when it has it all. */
export const PAD = "x".repeat(1000);

/** A 1 KB JSON body for the trigger numbered `id`. */
export function lossBody(id: string): string {
  return JSON.stringify({ id, pad: PAD });
}

/** The id of an intact body, else undefined. */
export function intactId(text: string): string | undefined {
  try {
    const { id, pad } = JSON.parse(text);
    return pad === PAD && typeof id === "string" ? id : undefined;
  } catch {
    return undefined;
  }
}

/** A target counting intact bodies per id. */
export interface CountingTarget {
  url: string;
  /** Stops the target and returns how often each id arrived intact. */
  stop(): Promise<Map<string, number>>;
}

/** Runs a child that prints its port, then one received id per line, until
 * its stdin closes. */
async function lineTarget(
  command: string,
  args: string[],
  path = "/hook",
): Promise<CountingTarget & { send(line: string): Promise<void> }> {
  const child = new Deno.Command(command, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream())
    .pipeThrough(lineSplitter()).getReader();
  const first = await within(reader.read(), `${command} start`, 10_000);
  const port = Number(first.value);
  const counts = new Map<string, number>();
  const pump = (async () => {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      if (value.startsWith("id ")) {
        const id = value.slice(3);
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
    }
  })();
  const writer = child.stdin.getWriter();
  return {
    url: `http://127.0.0.1:${port}${path}`,
    send: (line) => writer.write(new TextEncoder().encode(line + "\n")),
    async stop() {
      await writer.close();
      await within(child.status, `${command} exit`, 10_000);
      await within(pump, `${command} output`, 10_000);
      return counts;
    },
  };
}

const PYTHON_TARGET = `
import json, sys, threading, http.server
idle = float(sys.argv[1])
lock = threading.Lock()
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a WSGI server would
    timeout = idle                 # the idle timeout, never announced
    def log_message(self, *args):
        pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            data = json.loads(body)
            if data["pad"] == "x" * 1000:
                with lock:
                    sys.stdout.write("id " + data["id"] + "\\n")
                    sys.stdout.flush()
        except Exception:
            pass
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.stdin.read()
server.shutdown()
`;

/** Python's `http.server` (HTTP/1.1, threaded) closing connections idle for
 * `idleMs` without announcing it, the way gunicorn does. */
export function pythonIdleTarget(idleMs: number): Promise<CountingTarget> {
  return lineTarget("python3", ["-c", PYTHON_TARGET, String(idleMs / 1000)]);
}

const NODE_CLUSTER_TARGET = `
const cluster = require("node:cluster");
const http = require("node:http");
if (cluster.isPrimary) {
  // Workers share the listening socket (the kernel's accept queue), as in a
  // socket-handoff restart: round-robin dispatch can strand a connection
  // handed to a worker that is closing (seen here: a fresh connection never
  // answered nor closed).
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  let port = 0, current;
  const fork = () => new Promise((resolve) => {
    const worker = cluster.fork();
    worker.on("message", (id) => process.stdout.write("id " + id + "\\n"));
    worker.on("listening", (address) => resolve([worker, address.port]));
  });
  fork().then(([worker, listening]) => {
    current = worker;
    port = listening;
    console.log(port);
    let buffered = "";
    process.stdin.setEncoding("utf8").on("data", async (chunk) => {
      buffered += chunk;
      let end;
      while ((end = buffered.indexOf("\\n")) >= 0) {
        buffered = buffered.slice(end + 1);
        // A graceful restart: the new worker listens, then the old one stops
        // accepting and closes its idle keep-alive connections.
        const [next] = await fork();
        const old = current;
        current = next;
        old.send("stop");
        console.log("restarted");
      }
    }).on("end", () => {
      for (const worker of Object.values(cluster.workers)) worker.kill();
      process.exit(0);
    });
  });
} else {
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("latin1");
    req.on("data", (chunk) => body += chunk);
    req.on("end", () => {
      try {
        const data = JSON.parse(body);
        if (data.pad === "x".repeat(1000)) process.send(data.id);
      } catch {}
      res.writeHead(202).end();
    });
  });
  // Port 0 in every worker: the primary hands all of them its one port.
  server.listen(0, "127.0.0.1");
  process.on("message", (message) => {
    if (message !== "stop") return;
    server.close(() => process.disconnect());
    server.closeIdleConnections();
  });
}
`;

/** A Node `http` cluster (primary and one worker): `restart()` replaces the
 * worker gracefully (`server.close()` + `closeIdleConnections()`). */
export async function nodeClusterTarget(): Promise<
  CountingTarget & { restart(): Promise<void> }
> {
  // cluster.fork() runs a script file again: -e has none.
  const script = await Deno.makeTempFile({ suffix: ".cjs" });
  await Deno.writeTextFile(script, NODE_CLUSTER_TARGET);
  try {
    const target = await lineTarget("node", [script]);
    return {
      url: target.url,
      restart: () => target.send("restart"),
      async stop() {
        try {
          return await target.stop();
        } finally {
          await Deno.remove(script);
        }
      },
    };
  } catch (error) {
    await Deno.remove(script);
    throw error;
  }
}

/** Options for {@linkcode rawClosingTarget}. */
export interface ClosingOptions {
  /** Close a connection idle this long after a response, unannounced. */
  idleMs?: number;
  /** Close each connection this many ms (min, max) after each response,
   * without `Connection: close`. */
  closeAfterMs?: [number, number];
}

/**
 * A raw Deno keep-alive server answering 202 to every request, closing
 * connections as `options` say; it counts intact bodies and, per request,
 * the connection that carried it.
 */
export function rawClosingTarget(options: ClosingOptions): CountingTarget & {
  /** The connection number (from 1) of each request, in arrival order. */
  connections: number[];
  /** Request heads, in arrival order. */
  heads: string[];
} {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const counts = new Map<string, number>();
  const connections: number[] = [];
  const heads: string[] = [];
  const open = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const reply = new TextEncoder().encode(
    "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
  );
  let number = 0;
  const serve = async (conn: Deno.Conn, id: number) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let closed = false;
    const closeIn = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        closed = true;
        closeQuietly(conn);
      }, ms);
    };
    let buffered = "";
    const buffer = new Uint8Array(16 * 1024);
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) return;
        // The idle close won the race: the bytes came to a connection this
        // server has closed, and are not served (as a server whose close
        // came first never reads them). Without this, a loaded machine runs
        // the timer and the read's completion in one turn, and the server
        // counts a request it then cannot answer: a duplicate the client
        // cannot avoid, made by this server, not by the close.
        if (closed) return;
        clearTimeout(timer);
        buffered += latin1Text(buffer.subarray(0, n));
        let request: ReturnType<typeof nextRequest>;
        while ((request = nextRequest(buffered)) !== undefined) {
          const { head, body } = request;
          buffered = request.rest;
          connections.push(id);
          heads.push(head);
          const intact = intactId(body);
          if (intact !== undefined) {
            counts.set(intact, (counts.get(intact) ?? 0) + 1);
          }
          await conn.write(reply);
        }
        if (options.closeAfterMs) {
          const [min, max] = options.closeAfterMs;
          closeIn(min + Math.random() * (max - min));
        } else if (options.idleMs !== undefined) closeIn(options.idleMs);
      }
    } catch {
      // Closed by the timer or the client.
    } finally {
      clearTimeout(timer);
      open.delete(conn);
      closeQuietly(conn);
    }
  };
  const loop = (async () => {
    for await (const conn of listener) {
      open.add(conn);
      const handler = serve(conn, ++number);
      handlers.add(handler);
      handler.finally(() => handlers.delete(handler));
    }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/hook`,
    connections,
    heads,
    async stop() {
      listener.close();
      for (const conn of open) closeQuietly(conn);
      await loop.catch(() => {});
      await Promise.all(handlers);
      return counts;
    },
  };
}
