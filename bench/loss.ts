// Measures what each way of firing a request loses: the seed's close-at-once
// trick against trigger() "sent" and "accepted", 100 POSTs with a 4 KB body
// each, counted at the receiver (Deno.serve, Node http, nginx in front of
// Deno.serve when nginx is installed, and nginx + php-fpm, the seed's own
// setup, when both are). Prints a Markdown table.
//
//   deno run --allow-all bench/loss.ts
import { trigger } from "../mod.ts";
import { latin1 } from "../src/transport/_http1.ts";
import { NGINX } from "../tests/_env.ts";
import { PHP_FPM, startPhp } from "../tests/_php.ts";

const TRIES = 100;
const BODY = "x".repeat(4096);

interface Target {
  name: string;
  /** Where the POSTs go. */
  url: string;
  intact: () => number;
  /** Anything else the receiver saw, for the cell. */
  note?: () => string;
  close(): Promise<void>;
}

function denoTarget(): Target {
  let intact = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      try {
        if ((await request.text()) === BODY) intact++;
      } catch {
        // The body read fails when the client left: the hit is lost.
      }
      return new Response(null, { status: 202 });
    },
  );
  return {
    name: "Deno.serve",
    url: `http://127.0.0.1:${server.addr.port}/job`,
    intact: () => intact,
    close: () => server.shutdown(),
  };
}

async function nodeTarget(): Promise<Target> {
  const child = new Deno.Command("node", {
    args: [
      "-e",
      `
      let intact = 0;
      const server = require("node:http").createServer((req, res) => {
        let body = "";
        req.setEncoding("latin1");
        req.on("data", (c) => body += c);
        req.on("end", () => { if (body.length === ${BODY.length}) intact++; res.writeHead(202).end(); });
        req.on("error", () => {});
      });
      server.listen(0, "127.0.0.1", () => console.log(server.address().port));
      process.stdin.on("data", () => console.log(intact)).on("end", () => process.exit(0));
    `,
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const port = Number((await lines.read()).value!.trim());
  const writer = child.stdin.getWriter();
  let last = 0;
  return {
    name: "Node http",
    url: `http://127.0.0.1:${port}/job`,
    intact: () => last,
    async close() {
      await writer.write(new Uint8Array([10]));
      last = Number((await lines.read()).value!.trim());
      await writer.close();
      await lines.cancel();
      await child.status;
    },
  };
}

async function nginxTarget(): Promise<Target | undefined> {
  if (!NGINX) return undefined;
  const upstream = denoTarget();
  const dir = await Deno.makeTempDir({ prefix: "loss-nginx-" });
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
     events {}
     http { access_log ${dir}/access.log; client_body_temp_path ${dir};
       proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
       server { listen 127.0.0.1:${port}; location / { proxy_pass ${
      new URL(upstream.url).origin
    }; } } }`,
  );
  const child = new Deno.Command(NGINX, {
    args: ["-p", dir, "-c", `${dir}/nginx.conf`],
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return {
    name: "nginx → Deno.serve",
    url: `http://127.0.0.1:${port}/job`,
    intact: upstream.intact,
    async close() {
      child.kill("SIGQUIT");
      await child.status;
      await Deno.remove(dir, { recursive: true });
      await upstream.close();
    },
  };
}

// Reads the body and appends a line for each intact one; then writes some
// output (flushed) and appends a line to finished.log if it is still running:
// PHP ends a script at its first output after the caller left, unless the
// script calls ignore_user_abort(true).
const COUNT_PHP = `<?php
if (file_get_contents('php://input') === str_repeat('x', ${BODY.length})) {
  file_put_contents(__DIR__ . '/intact.log', "1\\n", FILE_APPEND | LOCK_EX);
}
http_response_code(202);
echo "accepted\\n";
flush();
file_put_contents(__DIR__ . '/finished.log', "1\\n", FILE_APPEND | LOCK_EX);
`;

async function phpTarget(): Promise<Target | undefined> {
  if (!NGINX || !PHP_FPM) return undefined;
  const php = await startPhp({ "job.php": COUNT_PHP });
  const count = async (file: string) =>
    (await Deno.readTextFile(`${php.dir}/${file}`).catch(() => "")).length / 2;
  let last = 0;
  let aborted = 0;
  let finished = 0;
  return {
    name: "nginx → php-fpm",
    url: `${php.origin}/job.php`,
    intact: () => last,
    note: () => `${aborted}×499, ${finished} ran past an output`,
    async close() {
      // nginx logs each request when done with it; then let php-fpm finish.
      const end = Date.now() + 10_000;
      while (
        (await php.accessLog()).split("\n").length <= TRIES &&
        Date.now() < end
      ) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 500));
      last = await count("intact.log");
      finished = await count("finished.log");
      aborted = (await php.accessLog()).split("\n")
        .filter((line) => line.includes('" 499 ')).length;
      await php.stop();
    },
  };
}

/** The seed's trick: connect, write, close at once without reading. */
async function closeAtOnce(target: string) {
  const url = new URL(target);
  const conn = await Deno.connect({
    hostname: url.hostname,
    port: Number(url.port),
  });
  const request = `POST ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\n` +
    `Content-Type: text/plain\r\nContent-Length: ${BODY.length}\r\n` +
    `Connection: close\r\n\r\n${BODY}`;
  await conn.write(latin1(request));
  conn.close();
}

// Each mode resolves when the caller may move on, with what is left running.
const modes: Array<[string, (url: string) => Promise<unknown>]> = [
  ["close at once (the seed's trick)", closeAtOnce],
  ["trigger() sent (default)", async (url) => {
    const result = await trigger(url, { body: BODY });
    return { background: result.done };
  }],
  [
    "trigger() accepted",
    (url) => trigger(url, { body: BODY, wait: "accepted" }),
  ],
];

const targets: Array<[string, () => Promise<Target | undefined>]> = [
  ["Deno.serve", () => Promise.resolve(denoTarget())],
  ["Node http", nodeTarget],
  ["nginx → Deno.serve", nginxTarget],
  ["nginx → php-fpm", phpTarget],
];

const rows: string[] = [];
for (const [mode, fire] of modes) {
  const cells: string[] = [];
  for (const [, make] of targets) {
    const target = await make();
    if (!target) {
      cells.push("n/a");
      continue;
    }
    const started = performance.now();
    const pending = [];
    for (let i = 0; i < TRIES; i++) pending.push(fire(target.url));
    const returned = await Promise.all(pending);
    const ms = performance.now() - started;
    await Promise.all(
      returned.map((r) => (r as { background?: Promise<void> })?.background),
    );
    await new Promise((r) => setTimeout(r, 500)); // let handlers finish
    await target.close();
    const note = target.note ? `, ${target.note()}` : "";
    cells.push(`${target.intact()}/${TRIES} (${ms.toFixed(0)} ms${note})`);
  }
  rows.push(`| ${mode} | ${cells.join(" | ")} |`);
}
console.log(
  `bodies intact (caller's wait for all ${TRIES}, concurrent)\n\n` +
    `| mode | ${targets.map(([name]) => name).join(" | ")} |\n` +
    `|---|${targets.map(() => "---|").join("")}\n${rows.join("\n")}`,
);
