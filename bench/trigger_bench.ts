// `deno task bench:all`: what the caller waits for, per way of firing a request,
// against a local Deno.serve target that answers 202 at once.
//
// The target runs in its own process, so its work does not share the bench's
// event loop. Only the caller's wait is measured (`b.start()`/`b.end()`);
// `result.done` is awaited after `b.end()`, so each background connection is
// closed before the next iteration starts and nothing leaks. After the
// benches, the seed's own loop runs too: PHP's fsockopen/fwrite/fclose per
// trigger against the same target, timed inside PHP with hrtime() (skipped
// when php-cli is absent). Then the target's hit counts must equal the
// triggers sent (the lossy bare close and PHP loop are only reported), a
// p50/p90 table (which `deno bench` does not print) is logged with the
// issue's targets, and bench/latency.svg is written.
import { closeIdleConnections, trigger } from "../mod.ts";
import { USER_AGENT } from "../src/trigger/_request.ts";
import { type Bar, latencySvg } from "./_svg.ts";
import { spawnDeno } from "./_spawn.ts";

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
  const { line, process } = await spawnDeno(["eval", TARGET]);
  return { origin: `http://127.0.0.1:${Number(line.trim())}`, process };
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
function rawRequest(
  method: string,
  path: string,
  form?: string,
  keepAlive = false,
): Uint8Array {
  const encoder = new TextEncoder();
  const body = form === undefined ? new Uint8Array() : encoder.encode(form);
  const head = `${method} ${path} HTTP/1.1\r\n` +
    `Host: ${hostname}:${port}\r\n` +
    (form === undefined ? "" : (
      "Content-Type: application/x-www-form-urlencoded;charset=UTF-8\r\n"
    )) +
    `User-Agent: ${USER_AGENT}\r\n` +
    (form === undefined ? "" : `Content-Length: ${body.length}\r\n`) +
    (keepAlive ? "\r\n" : "Connection: close\r\n\r\n");
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

/** Kept connections of the "bare keep-alive" rows, closed by finish(). */
const keptConns = new Map<string, Deno.Conn>();
const answerBuffer = new Uint8Array(4_096);

/**
 * The floor for an acknowledged trigger on a reused connection: write the
 * request on a kept socket and read the answer's head (202, no body).
 */
async function bareKeepAlive(path: string, request: Uint8Array) {
  let conn = keptConns.get(path);
  if (!conn) {
    conn = await Deno.connect({ hostname, port });
    keptConns.set(path, conn);
  }
  await conn.write(request);
  let text = "";
  while (!text.includes("\r\n\r\n")) {
    const n = await conn.read(answerBuffer);
    if (n === null) throw new Error("The target closed a kept connection");
    text += new TextDecoder().decode(answerBuffer.subarray(0, n));
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
  const keepAliveRequest = post
    ? rawRequest("POST", `${p}/bare-keepalive`, FORM_TEXT, true)
    : rawRequest("GET", `${p}/bare-keepalive`, undefined, true);
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
      name: "bare keep-alive: write, read 202 (floor)",
      path: `${p}/bare-keepalive`,
      fn: (b, path) =>
        measure(b, path, () => bareKeepAlive(path, keepAliveRequest)),
    },
    ...[true, false].flatMap((reuse) =>
      (["sent", "accepted"] as const).map((wait) => ({
        group,
        name: `trigger() wait: "${wait}", ${
          reuse ? "reused (default)" : "reuse: false (fresh)"
        }`,
        path: `${p}/${wait}${reuse ? "" : "-fresh"}`,
        async fn(b: Deno.BenchContext, path: string) {
          const url = target.origin + path;
          const result = await measure(
            b,
            path,
            () => trigger(url, { form, wait, reuse }),
          );
          if (!result.ok) throw result.error;
          // Outside the measure: the connection is back in the pool (or
          // closed) before the next iteration.
          await result.done;
        },
      }))
    ),
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
    for (const post of [false, true]) await phpLoop(post);
    await closeIdleConnections();
    for (const conn of keptConns.values()) conn.close();
    const counts = await (await fetch(`${target.origin}/count`)).json();
    await (await fetch(`${target.origin}/shutdown`)).body?.cancel();
    await target.process.status;
    return counts;
  })();
}

/** The PHP loop: connect, write, close, timed per trigger with hrtime(). */
const PHP_LOOP = `
[, $port, $n, $warmup, $request] = $argv;
$request = base64_decode($request);
$samples = [];
for ($i = 0; $i < $warmup + $n; $i++) {
  $start = hrtime(true);
  $fp = fsockopen("127.0.0.1", (int) $port, $errno, $errstr, 5);
  if ($fp === false) { fwrite(STDERR, "$errno $errstr\\n"); continue; }
  fwrite($fp, $request);
  fclose($fp);
  if ($i >= $warmup) $samples[] = (hrtime(true) - $start) / 1e3;
}
echo json_encode($samples);
`;

/** Whether php-cli is installed; the PHP rows are skipped otherwise. */
let php: boolean | undefined;

/** Runs PHP's loop against `/get/php` or `/post/php`, into `samples`. */
async function phpLoop(post: boolean): Promise<void> {
  const path = post ? "/post/php" : "/get/php";
  const request = post
    ? rawRequest("POST", path, FORM_TEXT)
    : rawRequest("GET", path);
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("php", {
      args: [
        "-r",
        PHP_LOOP,
        "--",
        String(port),
        String(N),
        String(WARMUP),
        btoa(String.fromCharCode(...request)),
      ],
      stderr: "inherit",
    }).output();
    php = true;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    php = false;
    return;
  }
  if (!output.success) throw new Error(`php exited with ${output.code}`);
  // Measured in µs inside PHP; kept in ms like the other samples.
  const measured: number[] = JSON.parse(new TextDecoder().decode(output.stdout))
    .map((us: number) => us / 1_000);
  phpCalls[path] = N + WARMUP;
  samples[path] = measured;
}
const phpCalls: Record<string, number> = {};

function quantile(values: number[], q: number): number {
  const sorted = values.slice(-N).sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
}
const p50 = (values: number[]) => quantile(values, 0.5);

/** Table rows: every bench's path, then the PHP loop's. */
function rows(): Array<{ path: string; name: string; calls: number }> {
  const list = benches.map(({ path, name }) => ({
    path,
    name,
    calls: samples[path]?.length ?? 0,
  }));
  for (const [path, calls] of Object.entries(phpCalls)) {
    list.push({ path, name: "PHP fsockopen + fwrite + fclose", calls });
  }
  return list;
}

const baseOf = (path: string) => path.replace(/\/[^/]+$/, "/bare");

function report({ hits, lost }: Counts): string {
  const lines = [
    "",
    `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores; p50 of the last ${N} calls`,
    "path                   p50 µs  p90 µs  × bare  calls    hits    lost",
  ];
  for (const { path, calls } of rows()) {
    const own = samples[path] ?? [];
    const base = samples[baseOf(path)] ?? [];
    lines.push(
      [
        path.padEnd(20),
        (p50(own) * 1_000).toFixed(1).padStart(8),
        (quantile(own, 0.9) * 1_000).toFixed(1).padStart(7),
        (p50(own) / p50(base)).toFixed(2).padStart(7),
        String(calls).padStart(6),
        String(hits[path] ?? 0).padStart(7),
        String(lost[path] ?? 0).padStart(7),
      ].join(" "),
    );
  }
  if (php === false) lines.push("PHP loop skipped: php-cli is not installed");
  lines.push("", "targets (issue 6), p50 ratios:");
  for (const p of ["/get", "/post"]) {
    const ratio = (a: string, b: string) =>
      p50(samples[`${p}/${a}`] ?? []) / p50(samples[`${p}/${b}`] ?? []);
    const verdict = (value: number, limit: number) =>
      `${value.toFixed(2)} ${value <= limit ? "met" : "NOT met"} (≤ ${
        limit.toFixed(2)
      })`;
    lines.push(
      `${p.padEnd(5)}  sent/bare ${verdict(ratio("sent", "bare"), 1.1)}; ` +
        `accepted reused/bare ${verdict(ratio("accepted", "bare"), 1)}; ` +
        (php
          ? `sent/PHP ${verdict(ratio("sent", "php"), 1)}`
          : "sent/PHP skipped"),
    );
  }
  return lines.join("\n");
}

const COLORS: Record<string, string> = {
  bare: "#9e9e9e",
  "bare-kept": "#bdbdbd",
  "bare-keepalive": "#6d6d6d",
  php: "#8e6bbf",
  sent: "#1f77b4",
  "sent-fresh": "#7fb2dd",
  accepted: "#2a9d4b",
  "accepted-fresh": "#8fd19e",
  fetch: "#f28e2b",
  "fetch-aborted": "#f7b97a",
};

/** Writes bench/latency.svg: p50 bars, p10–p90 whiskers, per group. */
async function writePlot({ hits }: Counts): Promise<void> {
  const all = rows();
  const order = Object.keys(COLORS);
  const groups = ["/get", "/post"].map((p) => {
    const baseline = p50(samples[`${p}/bare`]) * 1_000;
    const bars: Bar[] = all
      .filter(({ path }) => path.startsWith(`${p}/`))
      .sort((a, b) =>
        order.indexOf(a.path.slice(p.length + 1)) -
        order.indexOf(b.path.slice(p.length + 1))
      )
      .map(({ path, name, calls }) => {
        const own = samples[path];
        const us = (q: number) => quantile(own, q) * 1_000;
        const delivered = hits[path] ?? 0;
        return {
          label: name.replace("trigger() wait: ", "trigger() "),
          p10: us(0.1),
          p50: us(0.5),
          p90: us(0.9),
          color: COLORS[path.slice(p.length + 1)] ?? "#666",
          note: `${(us(0.5) / baseline).toFixed(2)}× bare` +
            (delivered < calls ? `, ${delivered}/${calls} delivered` : ""),
        };
      });
    return {
      title: p === "/get" ? "GET, no body" : "POST, 1 KB form",
      baseline,
      bars,
    };
  });
  const svg = latencySvg(
    "What the caller waits for, per way of firing a request (p50 bar, p10–p90 whisker)",
    [
      `Deno ${Deno.version.deno} on Linux, ${navigator.hardwareConcurrency} cores, 127.0.0.1; target: Deno.serve answering 202 in another process.`,
      `${N} calls per mode after ${WARMUP} warm-up; PHP ${
        php ? "timed inside PHP with hrtime()" : "skipped (no php-cli)"
      }. Dashed line: bare connect + write + close p50.`,
      '"delivered" counts bodies read intact by the target: the close-at-once modes lose POSTs on Deno.serve.',
    ].join("\n"),
    groups,
  );
  await Deno.writeTextFile(new URL("./latency.svg", import.meta.url), svg);
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
      await writePlot(counts);
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
