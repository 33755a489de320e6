// The examples built by each platform's own build tool, the way their users
// deploy them, offline: Wrangler (`npm install && npx wrangler deploy
// --dry-run`), Netlify's edge bundler (what `netlify build` runs for
// netlify/edge-functions) and `vercel build`; and webpack building a Worker
// (Next.js's bundler, with no example of its own). Each project is copied with the
// library beside it (imported relatively, as from the published package);
// the tools and Node 22 are installed from npm into a cache folder once.
// Supabase's CLI cannot build here: it bundles with Docker or on Supabase's
// servers after a login (docs/platforms.md).
import assert from "node:assert/strict";
import { Miniflare } from "npm:miniflare@4.20260426.0";
import { parse as parseToml } from "npm:smol-toml@1.9.1";
import { npmModules, type Ran, runOk } from "../_node/_runtimes.ts";

const decoder = new TextDecoder();
const ROOT = new URL("../../", import.meta.url).pathname;
const WRANGLER_CONFIGS = ["wrangler.jsonc", "wrangler.json", "wrangler.toml"];
const EDGE_BUNDLER = "@netlify/edge-bundler@16.1.1";
const VERCEL = "vercel@64.0.2";
/** Minutes a tool may take here (2 shared cores) before the test fails. */
const TOOL_MS = 5 * 60_000;

/** Runs a command; fails the test with its output unless it succeeds. */
function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<Ran> {
  return runOk(command, args, TOOL_MS, options);
}

/**
 * A PATH whose `node` is Node 22 (Wrangler 4 and the edge bundler need
 * ≥ 22.12), from npm's per-platform Node package (the one `npm i node@22`
 * would fetch in its install script).
 */
async function node22Path(): Promise<string> {
  const os = Deno.build.os === "darwin" ? "darwin" : "linux";
  const arch = Deno.build.arch === "aarch64" ? "arm64" : "x64";
  const modules = await npmModules(`node-${os}-${arch}@22`);
  const bin = `${modules}/node-${os}-${arch}/bin`;
  const { stdout } = await run(`${bin}/node`, ["--version"]);
  const [major, minor] = stdout.trim().slice(1).split(".").map(Number);
  assert.ok(major === 22 && minor >= 12, `Node ${stdout.trim()} is too old`);
  // Deno stays on PATH: Netlify's edge bundler runs it.
  const deno = Deno.execPath().replace(/\/[^/]+$/, "");
  return `${bin}:${deno}:${Deno.env.get("PATH") ?? ""}`;
}

/**
 * Copies `project` (relative to the repository) into a temporary folder
 * with mod.ts and src/ at the same relative place, runs `fn` with the copy's
 * root and the project's folder in it, then removes it.
 */
async function withCopy(
  project: string,
  fn: (root: string, dir: string) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "trigger-deploy-" });
  try {
    const parent = `${root}/${project.replace(/\/[^/]+$/, "")}`;
    await Deno.mkdir(parent, { recursive: true });
    await run("cp", ["-R", `${ROOT}mod.ts`, `${ROOT}src`, `${root}/`]);
    await run("cp", ["-R", `${ROOT}${project}`, `${parent}/`]);
    for (
      const generated of ["node_modules", ".wrangler", ".netlify", ".vercel"]
    ) {
      await Deno.remove(`${root}/${project}/${generated}`, { recursive: true })
        .catch(() => {});
    }
    await fn(root, `${root}/${project}`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** The folders under examples/ that hold a Wrangler config. */
async function wranglerProjects(): Promise<string[]> {
  const projects: string[] = [];
  for await (const entry of Deno.readDir(`${ROOT}examples`)) {
    if (!entry.isDirectory) continue;
    for (const config of WRANGLER_CONFIGS) {
      try {
        await Deno.stat(`${ROOT}examples/${entry.name}/${config}`);
        projects.push(`examples/${entry.name}`);
        break;
      } catch {
        // not this one
      }
    }
  }
  return projects.sort();
}

Deno.test("Wrangler ^4.164.0 (the examples' range): every Wrangler config under examples/ builds with `npm install && npx wrangler deploy --dry-run`, and the Hono one, bundling ./hono, runs in workerd", async () => {
  const PATH = await node22Path();
  const projects = await wranglerProjects();
  for (
    const known of ["examples/cloudflare-hono", "examples/cloudflare-worker"]
  ) {
    assert.ok(projects.includes(known), `${known} in ${projects.join(", ")}`);
  }
  for (const project of projects) {
    await withCopy(project, async (_root, dir) => {
      const env = { PATH, WRANGLER_SEND_METRICS: "false", CI: "true" };
      await run("npm", ["install", "--no-audit", "--no-fund"], {
        cwd: dir,
        env,
      });
      const { stdout } = await run(
        "npx",
        ["wrangler", "deploy", "--dry-run", "--outdir", "dist"],
        { cwd: dir, env },
      );
      // The examples pin `^4.164.0`, so npm installs the newest 4.x: accept
      // any version in that range, not only the one this test was written on.
      const version = stdout.match(/wrangler (\d+)\.(\d+)\.(\d+)/);
      assert.ok(version, `no Wrangler version in: ${stdout}`);
      assert.ok(
        Number(version[1]) === 4 && Number(version[2]) >= 164,
        `Wrangler ${version[0]} is outside the examples' ^4.164.0`,
      );
      const code = await Deno.readTextFile(`${dir}/dist/index.js`);
      assert.match(code, /function trigger\(/, `${project}: trigger() bundled`);
      const source = await Deno.readTextFile(`${dir}/src/index.ts`);
      if (!source.includes("src/hono/mod.ts")) return;

      // ./hono went into the bundle, with Hono from npm; the bundle runs.
      assert.match(code, /function connection\(/, `${project}: ./hono`);
      const mf = new Miniflare({
        name: "worker",
        modules: [{ type: "ESModule", path: "index.js", contents: code }],
        compatibilityDate: "2026-04-01",
        serviceBindings: { SELF: "worker" },
      });
      try {
        const response = await mf.dispatchFetch("http://worker.test/orders", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ id: 7 }),
        });
        assert.equal(response.status, 201);
        assert.deepEqual(await response.json(), { started: true });
      } finally {
        await mf.dispose();
      }
    });
  }
});

Deno.test(`Netlify: the edge bundler of \`netlify build\` (${EDGE_BUNDLER}) bundles examples/netlify offline, with its netlify.toml route`, async () => {
  const PATH = await node22Path();
  const modules = await npmModules(EDGE_BUNDLER);
  await withCopy("examples/netlify", async (root, dir) => {
    const toml = parseToml(await Deno.readTextFile(`${dir}/netlify.toml`));
    const declarations = toml.edge_functions as unknown[];
    const dist = `${dir}/.netlify/edge-functions-dist`;
    const script = `
      import { bundle } from ${
      JSON.stringify(`${modules}/@netlify/edge-bundler/dist/node/index.js`)
    };
      const logs = [];
      const { manifest } = await bundle(
        [${JSON.stringify(`${dir}/netlify/edge-functions`)}],
        ${JSON.stringify(dist)},
        ${JSON.stringify(declarations)},
        {
          basePath: ${JSON.stringify(root)},
          cacheDirectory: ${JSON.stringify(`${root}/.cache`)},
          userLogger: (...args) => logs.push(args.join(" ")),
          systemLogger: () => {},
        },
      );
      console.log(JSON.stringify({ manifest, logs }));
    `;
    const { stdout } = await run(
      "node",
      ["--input-type=module", "-e", script],
      { cwd: dir, env: { PATH } },
    );
    const { manifest } = JSON.parse(stdout) as {
      manifest: {
        bundles: { asset: string; format: string }[];
        routes: { function: string; pattern: string }[];
      };
    };
    assert.deepEqual(
      manifest.routes.map((r) => [r.function, r.pattern]),
      [["start", "^/start/?$"]],
    );
    assert.equal(manifest.bundles.length, 1);
    assert.equal(manifest.bundles[0].format, "eszip2");
    const eszip = decoder.decode(
      await Deno.readFile(`${dist}/${manifest.bundles[0].asset}`),
    );
    for (
      const module of [
        "examples/netlify/netlify/edge-functions/start.ts",
        "mod.ts",
        "src/transport/_runtime.ts",
        "src/transport/_fetch.ts",
      ]
    ) {
      assert.ok(eszip.includes(`/${module}`), `${module} is in the bundle`);
    }
  });
});

Deno.test(`Vercel: \`vercel build\` (${VERCEL}) builds examples/vercel offline into a function whose every import is in its output`, async () => {
  const PATH = await node22Path();
  // sandbox@4.4.0, which vercel@64.0.2 pins, is missing from the npm
  // registry reachable here; 4.5.0 stands in for it.
  const modules = await npmModules(VERCEL, undefined, {
    overrides: { sandbox: "4.5.0" },
  });
  await withCopy("examples/vercel", async (root) => {
    // What `vercel pull` writes after a login: the project's settings, here
    // a project whose Root Directory is examples/vercel.
    await Deno.mkdir(`${root}/.vercel`);
    await Deno.writeTextFile(
      `${root}/.vercel/project.json`,
      JSON.stringify({
        projectId: "prj_example",
        orgId: "team_example",
        settings: { framework: null, rootDirectory: "examples/vercel" },
      }),
    );
    await run(`${modules}/.bin/vercel`, ["build"], {
      cwd: root,
      env: { PATH, VERCEL_TELEMETRY_DISABLED: "1", CI: "1" },
    });
    const func = `${root}/.vercel/output/functions/api/start.func`;
    const config = JSON.parse(
      await Deno.readTextFile(`${func}/.vc-config.json`),
    ) as { entrypoint?: string; handler?: string };
    const entry = config.entrypoint ?? config.handler;
    assert.ok(entry, JSON.stringify(config));
    await Deno.stat(`${func}/${entry}`);

    // Every relative import of every output module resolves to a file there.
    const pending = [entry];
    const seen = new Set<string>();
    while (pending.length > 0) {
      const file = pending.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const code = (await Deno.readTextFile(`${func}/${file}`))
        .replace(/\/\*[\s\S]*?\*\//g, "") // comments, JSDoc examples included
        .replace(/^\s*\/\/.*$/gm, "");
      const imports = code.matchAll(
        /\b(?:import|export)\b[^;"'`]*?\bfrom\s*["'](\.[^"']+)["']/g,
      );
      for (const [, spec] of imports) {
        const target = new URL(spec, `file:///${file}`).pathname.slice(1);
        await Deno.stat(`${func}/${target}`).catch(() => {
          throw new Error(`${file} imports ${spec}, missing from the output`);
        });
        pending.push(target);
      }
    }
    assert.ok(
      [...seen].some((file) => file.endsWith("src/transport/_fetch.js")),
      [...seen].join(", "),
    );
  });
});

const WEBPACK = "webpack@5.113.0";
const ESBUILD_LOADER = "esbuild-loader@4.5.0";

Deno.test(`webpack (${WEBPACK}, the bundler of Next.js and OpenNext) builds a Worker importing mod.ts without a warning, leaving cloudflare:sockets and cloudflare:workers to workerd: transport "socket" connects there`, async () => {
  const webpack = await npmModules(WEBPACK);
  const loader = await npmModules(ESBUILD_LOADER);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      await request.arrayBuffer();
      return new Response(null, { status: 202 });
    },
  );
  const dir = await Deno.makeTempDir({ prefix: "trigger-webpack-" });
  try {
    await Deno.writeTextFile(
      `${dir}/worker.ts`,
      `import { trigger } from ${JSON.stringify(`${ROOT}mod.ts`)};
export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const transport = url.searchParams.get("transport") as "socket" | "auto";
    const result = await trigger(url.searchParams.get("to")!, {
      json: { transport },
      transport,
      wait: "accepted",
    });
    return Response.json({
      ok: result.ok,
      transport: result.transport,
      status: result.status,
      code: result.error?.code,
      message: result.error?.message,
    });
  },
};
`,
    );
    // webpack's Node API: the stats' warnings and errors, as JSON.
    await Deno.writeTextFile(
      `${dir}/build.cjs`,
      `const webpack = require(${JSON.stringify(`${webpack}/webpack`)});
webpack({
  mode: "production",
  target: "webworker",
  context: ${JSON.stringify(dir)},
  entry: "./worker.ts",
  experiments: { outputModule: true },
  output: {
    path: ${JSON.stringify(`${dir}/dist`)},
    filename: "worker.mjs",
    module: true,
    library: { type: "module" },
  },
  module: { rules: [{ test: /\\.ts$/, loader: "esbuild-loader", options: { target: "es2022" } }] },
  resolve: { extensions: [".ts", ".js"] },
  resolveLoader: { modules: [${JSON.stringify(loader)}] },
}, (error, stats) => {
  if (error) throw error;
  const { warnings, errors } = stats.toJson({ all: false, warnings: true, errors: true });
  console.log(JSON.stringify({
    warnings: warnings.map((w) => w.message),
    errors: errors.map((e) => e.message),
  }));
});
`,
    );
    const built = await run("node", [`${dir}/build.cjs`]);
    const { warnings, errors } = JSON.parse(
      built.stdout.trim().split("\n").at(-1)!,
    );
    // Before: "Critical dependency: the request of a dependency is an
    // expression", twice, and both imports replaced by a context that
    // always fails ("Cannot find module 'cloudflare:sockets'").
    assert.deepEqual({ warnings, errors }, { warnings: [], errors: [] });
    const mf = new Miniflare({
      modules: [{
        type: "ESModule",
        path: "worker.mjs",
        contents: await Deno.readTextFile(`${dir}/dist/worker.mjs`),
      }],
      compatibilityDate: "2026-04-01",
    });
    try {
      const to = `http://127.0.0.1:${server.addr.port}/job`;
      for (const transport of ["socket", "auto"]) {
        const response = await mf.dispatchFetch(
          `http://worker.test/?transport=${transport}&to=${
            encodeURIComponent(to)
          }`,
        );
        assert.deepEqual(await response.json(), {
          ok: true,
          transport: transport === "socket" ? "socket" : "fetch",
          status: 202,
        });
      }
    } finally {
      await mf.dispose();
    }
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
