// Imported by URL: the repository, served over a local HTTP server, works from
// a folder with no deno.json — `deno run` and `deno check --all` (remote
// modules included) through `http://127.0.0.1:…/mod.ts`.
import assert from "node:assert/strict";
import { output } from "../_wait.ts";

const ROOT = new URL("../../", import.meta.url);
const HONO = new URL("src/hono/mod.ts", ROOT);

const CONTENT_TYPES: Record<string, string> = {
  ts: "application/typescript; charset=utf-8",
  mts: "application/typescript; charset=utf-8",
  js: "application/javascript; charset=utf-8",
  mjs: "application/javascript; charset=utf-8",
  json: "application/json; charset=utf-8",
};

interface RepoServer {
  origin: string;
  /** Paths served so far, e.g. "/mod.ts". */
  served: Set<string>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Serves the repository's files read-only on 127.0.0.1, a fresh port. */
function serveRepository(): RepoServer {
  const served = new Set<string>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const { pathname } = new URL(request.url);
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
    origin: `http://127.0.0.1:${server.addr.port}`,
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

/** Flags for a no-config run that re-fetches this server's modules. */
function remoteFlags(origin: string): string[] {
  const host = new URL(origin).host;
  return [
    "--no-config",
    "--no-lock",
    `--allow-import=${host}`,
    `--reload=${origin}/`,
  ];
}

async function exists(url: URL): Promise<boolean> {
  try {
    await Deno.stat(url);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

Deno.test("mod.ts imported by URL runs a trigger from a folder with no deno.json", async () => {
  await using repo = serveRepository();
  await using folder = await tempFolder();
  const script = `
import { trigger } from "${repo.origin}/mod.ts";

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
    ...remoteFlags(repo.origin),
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

Deno.test("mod.ts and src/hono/mod.ts imported by URL pass deno check --all", async () => {
  await using repo = serveRepository();
  await using folder = await tempFolder();
  // The Hono helper is checked as soon as it exists in the repository.
  const withHono = await exists(HONO);
  const lines = [
    `import * as core from "${repo.origin}/mod.ts";`,
    `export function fire(url: string): Promise<core.TriggerResult> {`,
    `  return core.trigger(url, { wait: "accepted", json: { id: 7 } });`,
    `}`,
    `export type Code = core.TriggerErrorCode;`,
  ];
  if (withHono) {
    lines.push(
      `import * as hono from "${repo.origin}/src/hono/mod.ts";`,
      `export { hono };`,
    );
  }
  await Deno.writeTextFile(`${folder.path}/check.ts`, lines.join("\n") + "\n");

  const { code, stderr } = await deno(folder.path, [
    "check",
    "--all",
    ...remoteFlags(repo.origin),
    "check.ts",
  ]);
  assert.equal(code, 0, `deno check --all failed:\n${stderr}`);
  assert.ok(repo.served.has("/mod.ts"), "mod.ts was not fetched by URL");
  if (withHono) {
    assert.ok(
      repo.served.has("/src/hono/mod.ts"),
      "src/hono/mod.ts was not fetched by URL",
    );
  }
});
