// The demo needs nothing from npm (issue #11): run as README's demo task runs
// it, on an empty Deno cache, it prints its lines and the cache holds no npm
// package afterwards. (The `deno task` runner itself installs every npm
// package in deno.lock before any task: see docs/testing.md.)
import assert from "node:assert/strict";
import { output } from "../_wait.ts";

Deno.test("the demo runs on an empty Deno cache without downloading any npm package", async () => {
  const cache = await Deno.makeTempDir({ prefix: "trigger-demo-cache-" });
  try {
    const config = JSON.parse(
      await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
    );
    // The task's own command, as `deno task demo` runs it.
    const args = (config.tasks.demo as string).split(" ");
    assert.equal(args[0], "deno");
    const result = await output(Deno.execPath(), {
      args: args.slice(1),
      cwd: new URL("../..", import.meta.url).pathname,
      env: { DENO_DIR: cache, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      timeout: 60_000,
      what: "deno task demo's command",
    });
    const stdout = new TextDecoder().decode(result.stdout);
    assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
    assert.match(stdout, /^caller waited \d+\.\d ms$/m);
    assert.match(stdout, /^job took +\d+ ms$/m);
    assert.match(stdout, /^job body +intact: /m);
    const npm = [];
    try {
      for (const entry of Deno.readDirSync(`${cache}/npm`)) {
        npm.push(entry.name);
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    assert.deepEqual(npm, [], "no npm registry was touched");
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});
