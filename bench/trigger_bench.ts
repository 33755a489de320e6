// `deno task bench`: what the caller waits for, per way of firing a request,
// against a local Deno.serve target that answers 202 at once.
//
// The target runs in its own process, so its work does not share the bench's
// event loop. Only the caller's wait is measured (`b.start()`/`b.end()`);
// `result.done` is awaited after `b.end()`, so each background connection is
// closed before the next iteration starts and nothing leaks. After the
// benches, the target's hit counts must equal the triggers sent, and a p50
// table (which `deno bench` does not print) is logged.
import { trigger } from "../mod.ts";
import { USER_AGENT } from "../src/_request.ts";

/** Measured iterations per bench; the p50 table uses the last N samples. */
const N = 2_000;
const WARMUP = 200;

/**
 * The target: counts hits per path, a POST only once its body was read in
 * full (`lost` otherwise); `/count` reports, `/shutdown` stops it.
 */
const TARGET = `
const hits = {};
const lost = {};
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => console.log(port) },
  async (request) => {
    const { pathname } = new URL(request.url);
    if (pathname === "/count") return Response.json({ hits, lost });
    if (pathname === "/shutdown") {
      queueMicrotask(() => server.shutdown());
      return new Response(null, { status: 204 });
    }
    try {
      const body = await request.text();
      const expected = Number(request.headers.get("content-length") ?? 0);
      if (body.length !== expected) throw new Error("short body");
      hits[pathname] = (hits[pathname] ?? 0) + 1;
    } catch {
      lost[pathname] = (lost[pathname] ?? 0) + 1;
    }
    return new Response(null, { status: 202 });
  },
);
`;

async function startTarget(): Promise<
  { origin: string; process: Deno.ChildProcess }
> {
  const process = new Deno.Command(Deno.execPath(), {
    args: ["eval", TARGET],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = process.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("The bench target exited before listening");
    text += value;
  }
  // The target prints nothing else.
  await reader.cancel();
  return { origin: `http://127.0.0.1:${Number(text.trim())}`, process };
}

const target = await startTarget();
const hostname = "127.0.0.1";
const port = Number(new URL(target.origin).port);

/** Caller-side wait of every call, in ms, per target path. */
const samples: Record<string, number[]> = {};

/** Runs `fire` as the measured part of one iteration and records it. */
async function measure<T>(
  b: Deno.BenchContext,
  path: string,
  fire: () => Promise<T>,
): Promise<T> {
  b.start();
  const start = performance.now();
  try {
    return await fire();
  } finally {
    const wait = performance.now() - start;
    b.end();
    (samples[path] ??= []).push(wait);
  }
}

/** The bytes trigger() writes, encoded once, outside the loop. */
function rawRequest(method: string, path: string, form?: string): Uint8Array {
  const encoder = new TextEncoder();
  const body = form === undefined ? new Uint8Array() : encoder.encode(form);
  const head = `${method} ${path} HTTP/1.1\r\n` +
    `Host: ${hostname}:${port}\r\n` +
    (form === undefined ? "" : (
      "Content-Type: application/x-www-form-urlencoded;charset=UTF-8\r\n"
    )) +
    `User-Agent: ${USER_AGENT}\r\n` +
    (form === undefined ? "" : `Content-Length: ${body.length}\r\n`) +
    "Connection: close\r\n\r\n";
  const bytes = new Uint8Array(head.length + body.length);
  bytes.set(encoder.encode(head));
  bytes.set(body, head.length);
  return bytes;
}

/** The PHP trick: connect, write, close at once. */
async function bare(request: Uint8Array): Promise<void> {
  const conn = await connectAndWrite(request);
  conn.close();
}

async function connectAndWrite(request: Uint8Array): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname, port });
  let offset = 0;
  while (offset < request.length) {
    offset += await conn.write(request.subarray(offset));
  }
  return conn;
}

/** Reads until the server closes (it answers with `Connection: close`). */
async function drain(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(1_024);
  try {
    while (await conn.read(buffer) !== null) {
      // The status line is all trigger() reads; here the rest goes too.
    }
  } finally {
    conn.close();
  }
}

const FORM = { id: "7", text: "x".repeat(1_000) };
const FORM_TEXT = new URLSearchParams(FORM).toString();

const benches: Array<{
  group: string;
  name: string;
  path: string;
  baseline?: boolean;
  fn: (b: Deno.BenchContext, path: string) => Promise<void>;
}> = [];

for (const post of [false, true]) {
  const group = post
    ? "POST a 1 KB form to a local target"
    : "GET a local target";
  const p = post ? "/post" : "/get";
  const form = post ? FORM : undefined;
  const bareRequest = post
    ? rawRequest("POST", `${p}/bare`, FORM_TEXT)
    : rawRequest("GET", `${p}/bare`);
  const keptRequest = post
    ? rawRequest("POST", `${p}/bare-kept`, FORM_TEXT)
    : rawRequest("GET", `${p}/bare-kept`);

  benches.push(
    {
      group,
      name: "bare Deno.connect + write + close",
      path: `${p}/bare`,
      baseline: true,
      fn: (b, path) => measure(b, path, () => bare(bareRequest)),
    },
    {
      // What trigger() does by hand: the caller's wait ends after the write,
      // the socket is read and closed afterwards, so nothing is lost.
      group,
      name: "bare, closed after the answer (loss-free)",
      path: `${p}/bare-kept`,
      async fn(b, path) {
        const reading = await measure(b, path, async () => {
          const conn = await connectAndWrite(keptRequest);
          return { done: drain(conn) };
        });
        await reading.done;
      },
    },
    {
      group,
      name: 'trigger() wait: "sent"',
      path: `${p}/sent`,
      async fn(b, path) {
        const url = target.origin + path;
        const result = await measure(b, path, () => trigger(url, { form }));
        if (!result.ok) throw result.error;
        await result.done;
      },
    },
    {
      group,
      name: 'trigger() wait: "accepted"',
      path: `${p}/accepted`,
      async fn(b, path) {
        const url = target.origin + path;
        const result = await measure(
          b,
          path,
          () => trigger(url, { form, wait: "accepted" }),
        );
        if (!result.ok) throw result.error;
        await result.done;
      },
    },
    {
      group,
      name: "fetch, body consumed",
      path: `${p}/fetch`,
      async fn(b, path) {
        const init = post
          ? { method: "POST", body: new URLSearchParams(FORM) }
          : {};
        await measure(b, path, async () => {
          const response = await fetch(target.origin + path, init);
          await response.arrayBuffer();
        });
      },
    },
    {
      group,
      name: "fetch, aborted after headers",
      path: `${p}/fetch-aborted`,
      async fn(b, path) {
        const init = post
          ? { method: "POST", body: new URLSearchParams(FORM) }
          : {};
        await measure(b, path, async () => {
          const controller = new AbortController();
          const response = await fetch(target.origin + path, {
            ...init,
            signal: controller.signal,
          });
          controller.abort();
          await response.body?.cancel().catch(() => {});
        });
      },
    },
  );
}

for (const { group, name, path, baseline, fn } of benches) {
  Deno.bench({
    name,
    group,
    baseline,
    n: N,
    warmup: WARMUP,
    // An async function: Deno runs a plain one returning a promise as sync.
    async fn(b) {
      await fn(b, path);
    },
  });
}

interface Counts {
  hits: Record<string, number>;
  lost: Record<string, number>;
}

/** Reads the counts and stops the target, once. */
let finished: Promise<Counts> | undefined;
function finish(): Promise<Counts> {
  return finished ??= (async () => {
    const counts = await (await fetch(`${target.origin}/count`)).json();
    await (await fetch(`${target.origin}/shutdown`)).body?.cancel();
    await target.process.status;
    return counts;
  })();
}

function p50(values: number[]): number {
  const sorted = values.slice(-N).sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function report({ hits, lost }: Counts): string {
  const lines = [
    "",
    "path                 p50 µs  × bare  calls    hits    lost",
  ];
  for (const { path } of benches) {
    const own = samples[path] ?? [];
    const base = samples[path.replace(/\/[^/]+$/, "/bare")] ?? [];
    lines.push(
      [
        path.padEnd(18),
        (p50(own) * 1_000).toFixed(1).padStart(8),
        (p50(own) / p50(base)).toFixed(2).padStart(7),
        String(own.length).padStart(6),
        String(hits[path] ?? 0).padStart(7),
        String(lost[path] ?? 0).padStart(7),
      ].join(" "),
    );
  }
  return lines.join("\n");
}

// Runs last (groups run in the order they are declared, ungrouped benches
// first): no trigger or fetch may be lost. Deno may call it more than once.
let reported = false;
Deno.bench({
  name: "check: every trigger reached the target",
  group: "after the benches",
  n: 1,
  warmup: 0,
  async fn(b) {
    // Explicit timers, so Deno does not batch this step thousands of times.
    b.start();
    const counts = await finish();
    b.end();
    if (!reported) {
      reported = true;
      console.log(report(counts));
    }
    for (const { path } of benches) {
      if (path.endsWith("/bare")) continue; // lossy by design: reported only
      const sent = samples[path]?.length ?? 0;
      const hits = counts.hits[path] ?? 0;
      if (hits !== sent) {
        throw new Error(`Lost requests on ${path}: sent ${sent}, hits ${hits}`);
      }
    }
  },
});
