// Imported by URL: the repository, served over a local HTTP server, works from
// a folder with no deno.json — `deno run` and `deno check --all` (remote
// modules included) through `http://127.0.0.1:…/mod.ts`, `./hono`,
// `./durable`, `./durable/dashboard` and `./dedup/postgres`.
import assert from "node:assert/strict";
import { output } from "../_wait.ts";

const ROOT = new URL("../../", import.meta.url);

const CONTENT_TYPES: Record<string, string> = {
  ts: "application/typescript; charset=utf-8",
  mts: "application/typescript; charset=utf-8",
  js: "application/javascript; charset=utf-8",
  mjs: "application/javascript; charset=utf-8",
  json: "application/json; charset=utf-8",
};

interface RepoServer {
  /**
   * Where the repository is served: the server's origin and a path prefix
   * unique to this server. Deno's module cache is shared between runs and
   * `--reload=<origin>/` does not reload (measured on Deno 2.9.6), so a port
   * used again would otherwise be answered from the cache.
   */
  base: string;
  /** Paths served so far, e.g. "/mod.ts". */
  served: Set<string>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Serves the repository's files read-only on 127.0.0.1, a fresh port, under
 * a fresh path prefix.
 */
function serveRepository(): RepoServer {
  const served = new Set<string>();
  const prefix = `/repo-${crypto.randomUUID()}`;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const url = new URL(request.url);
      if (!url.pathname.startsWith(prefix + "/")) {
        return new Response("Not found", { status: 404 });
      }
      const pathname = url.pathname.slice(prefix.length);
      const type = CONTENT_TYPES[pathname.split(".").pop()!];
      const file = new URL("." + pathname, ROOT);
      if (
        request.method !== "GET" || type === undefined ||
        !file.href.startsWith(ROOT.href) || pathname.includes("/.")
      ) {
        return new Response("Not found", { status: 404 });
      }
      try {
        const text = await Deno.readTextFile(file);
        served.add(pathname);
        return new Response(text, { headers: { "content-type": type } });
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) {
          return new Response("Not found", { status: 404 });
        }
        throw error;
      }
    },
  );
  return {
    base: `http://127.0.0.1:${server.addr.port}${prefix}`,
    served,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** A temporary folder with no deno.json, removed on dispose. */
async function tempFolder(): Promise<
  { path: string; [Symbol.asyncDispose](): Promise<void> }
> {
  const path = await Deno.makeTempDir({ prefix: "trigger_url_import_" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

/** Runs `deno <args>` in `cwd` with no config or lockfile picked up. */
async function deno(
  cwd: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const result = await output(Deno.execPath(), {
    args,
    cwd,
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    timeout: 180_000,
    what: `deno ${args[0]} (URL import)`,
  });
  const decoder = new TextDecoder();
  return {
    code: result.code,
    stdout: decoder.decode(result.stdout),
    stderr: decoder.decode(result.stderr),
  };
}

/**
 * Flags for a no-config run that re-fetches this server's modules. With
 * `--no-lock` the `npm:` specifiers inside the modules (pg-boss, PGlite, pg,
 * Hono) resolve as a user's would: without our deno.json or deno.lock.
 */
function remoteFlags(base: string): string[] {
  const host = new URL(base).host;
  return [
    "--no-config",
    "--no-lock",
    `--allow-import=${host}`,
    `--reload=${base}`,
  ];
}

Deno.test("mod.ts imported by URL runs a trigger from a folder with no deno.json", async () => {
  await using repo = serveRepository();
  await using folder = await tempFolder();
  const script = `
import { trigger } from "${repo.base}/mod.ts";

const received = Promise.withResolvers<unknown>();
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  async (request) => {
    if (request.method === "POST") received.resolve(await request.json());
    return new Response(null, { status: 202 });
  },
);
const url = \`http://127.0.0.1:\${server.addr.port}/jobs/report?id=7\`;
const sent = await trigger(url, { json: { id: 7, note: "a & b" } });
const body = await received.promise;
await sent.done;
const accepted = await trigger(url, { wait: "accepted" });
await server.shutdown();
console.log(JSON.stringify({
  sent: { ok: sent.ok, transport: sent.transport },
  accepted: { ok: accepted.ok, status: accepted.status },
  body,
}));
`;
  await Deno.writeTextFile(`${folder.path}/run.ts`, script);

  const { code, stdout, stderr } = await deno(folder.path, [
    "run",
    ...remoteFlags(repo.base),
    "--allow-net=127.0.0.1",
    "run.ts",
  ]);
  assert.equal(code, 0, `deno run failed:\n${stderr}`);
  assert.deepEqual(JSON.parse(stdout), {
    sent: { ok: true, transport: "socket" },
    accepted: { ok: true, status: 202 },
    body: { id: 7, note: "a & b" },
  });
  assert.ok(repo.served.has("/mod.ts"), "mod.ts was not fetched by URL");
  assert.ok(
    repo.served.has("/src/trigger/trigger.ts"),
    "src/trigger/trigger.ts was not fetched by URL",
  );
});

Deno.test("./hono imported by URL runs verifyTrigger() and connection({ ack: true }) on the user's own Hono", async () => {
  await using repo = serveRepository();
  await using folder = await tempFolder();
  // The user's Hono, by full specifier; ours only by URL.
  const script = `
import { Hono } from "npm:hono@^4.13.19";
import {
  connection,
  type ConnectionEnv,
  verifyTrigger,
  type VerifyTriggerEnv,
} from "${repo.base}/src/hono/mod.ts";
import { createSecret, trigger } from "${repo.base}/mod.ts";

const secret = createSecret();
const seen = Promise.withResolvers<
  { body: unknown; id: string; status: number }
>();
const app = new Hono<ConnectionEnv & VerifyTriggerEnv>();
app.post(
  "/jobs/report",
  verifyTrigger({ secret }),
  connection({ ack: true }),
  async (c) => {
    const body = await c.req.json();
    const id = c.var.trigger.id;
    c.var.connection.onShutdown((status) => seen.resolve({ body, id, status }));
  },
);
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  app.fetch,
);
const url = \`http://127.0.0.1:\${server.addr.port}/jobs/report\`;
const unsigned = await trigger(url, { wait: "accepted", json: { n: 0 } });
const result = await trigger(url, {
  wait: "accepted",
  json: { month: "2024-05", note: "a & b" },
  sign: { secret, id: "msg_by_url_1" },
});
const route = await seen.promise;
await server.shutdown();
console.log(JSON.stringify({
  unsigned: unsigned.status,
  accepted: { ok: result.ok, status: result.status },
  route,
}));
`;
  await Deno.writeTextFile(`${folder.path}/run.ts`, script);

  const { code, stdout, stderr } = await deno(folder.path, [
    "run",
    "--check",
    ...remoteFlags(repo.base),
    "--allow-net=127.0.0.1",
    "run.ts",
  ]);
  assert.equal(code, 0, `deno run failed:\n${stderr}`);
  assert.deepEqual(JSON.parse(stdout), {
    unsigned: 401,
    accepted: { ok: true, status: 202 },
    route: {
      body: { month: "2024-05", note: "a & b" },
      id: "msg_by_url_1",
      status: 0, // ConnectionStatus.NORMAL
    },
  });
  for (const path of ["/src/hono/mod.ts", "/src/hono/verify.ts", "/mod.ts"]) {
    assert.ok(repo.served.has(path), `${path} was not fetched by URL`);
  }
});

Deno.test("./durable and ./durable/dashboard imported by URL: the outbox delivers, the dashboard refuses without credentials", async () => {
  await using repo = serveRepository();
  await using folder = await tempFolder();
  const script = `
import { openOutbox } from "${repo.base}/src/durable/mod.ts";
import { dashboard } from "${repo.base}/src/durable/dashboard/mod.ts";

const received = Promise.withResolvers<string | null>();
const target = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  async (request) => {
    received.resolve(\`\${request.headers.get("webhook-id")} \${await request.text()}\`);
    return new Response(null, { status: 202 });
  },
);
const outbox = await openOutbox({ dir: "${folder.path}/outbox" });
const { id } = await outbox.trigger(
  \`http://127.0.0.1:\${target.addr.port}/jobs/report\`,
  { json: { report: 7 } },
);
outbox.start({ pollInterval: 100 });
const delivered = await received.promise;

const token = "a-long-random-token-0123";
const dash = dashboard(outbox, { token });
const site = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  dash.fetch,
);
const page = \`http://127.0.0.1:\${site.addr.port}/\`;
const refused = await fetch(page);
await refused.body?.cancel();
const allowed = await fetch(page, {
  headers: { authorization: \`Bearer \${token}\` },
});
const html = await allowed.text();

await outbox.stop();
await site.shutdown();
await target.shutdown();
console.log(JSON.stringify({
  delivered: delivered === \`\${id} {"report":7}\`,
  refused: refused.status,
  allowed: [allowed.status, /By target origin/.test(html)],
}));
`;
  await Deno.writeTextFile(`${folder.path}/run.ts`, script);

  const { code, stdout, stderr } = await deno(folder.path, [
    "run",
    ...remoteFlags(repo.base),
    "--allow-net=127.0.0.1",
    "--allow-read",
    `--allow-write=${folder.path}`,
    "--allow-env",
    "--allow-sys",
    "run.ts",
  ]);
  assert.equal(code, 0, `deno run failed:\n${stderr}`);
  assert.deepEqual(JSON.parse(stdout), {
    delivered: true,
    refused: 401,
    allowed: [200, true],
  });
  for (
    const path of [
      "/src/durable/mod.ts",
      "/src/durable/_engine.ts",
      "/src/durable/dashboard/mod.ts",
    ]
  ) {
    assert.ok(repo.served.has(path), `${path} was not fetched by URL`);
  }
});

Deno.test("mod.ts, ./hono and ./dedup/postgres imported by URL pass deno check --all", async () => {
  await using repo = serveRepository();
  await using folder = await tempFolder();
  const lines = [
    `import * as core from "${repo.base}/mod.ts";`,
    `import * as hono from "${repo.base}/src/hono/mod.ts";`,
    `import * as postgres from "${repo.base}/src/dedup/postgres.ts";`,
    `export function fire(url: string): Promise<core.TriggerResult> {`,
    `  return core.trigger(url, { wait: "accepted", json: { id: 7 } });`,
    `}`,
    `export type Code = core.TriggerErrorCode;`,
    `export function store(connectionString: string): hono.DedupStore {`,
    `  return new postgres.PostgresDedupStore({ connectionString });`,
    `}`,
  ];
  await Deno.writeTextFile(`${folder.path}/check.ts`, lines.join("\n") + "\n");

  const { code, stderr } = await deno(folder.path, [
    "check",
    "--all",
    ...remoteFlags(repo.base),
    "check.ts",
  ]);
  assert.equal(code, 0, `deno check --all failed:\n${stderr}`);
  for (
    const path of ["/mod.ts", "/src/hono/mod.ts", "/src/dedup/postgres.ts"]
  ) {
    assert.ok(repo.served.has(path), `${path} was not fetched by URL`);
  }
});
