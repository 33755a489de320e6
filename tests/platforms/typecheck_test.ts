// The sources type-checked by TypeScript's own compiler, the way a Node or
// edge app that holds a copy of the module checks them (`tsc --noEmit` over
// its tree): with @types/node and no Deno types, and with no types at all
// (a Workers or edge tsconfig). Deno's and Node's socket types are declared
// where used, not taken from the `Deno` namespace or node:net.
import assert from "node:assert/strict";
import { npmModules, runOk } from "../_node/_runtimes.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const TYPESCRIPT = "typescript@5.9.3";
const NODE_TYPES = "@types/node@22.20.7";

const configs = {
  node: {
    module: "NodeNext",
    moduleResolution: "NodeNext",
    types: ["node"],
  },
  edge: {
    module: "ESNext",
    moduleResolution: "Bundler",
    types: [],
  },
};

for (const [name, options] of Object.entries(configs)) {
  Deno.test(`tsc (${TYPESCRIPT}, strict) checks mod.ts and ./hono from a copy with ${name === "node" ? "a Node" : "an edge"} tsconfig${name === "node" ? ` (${NODE_TYPES})` : " (no types)"}: no error`, async () => {
    const typescript = await npmModules(TYPESCRIPT);
    const types = await npmModules(NODE_TYPES, "@types/node/package.json");
    const dir = await Deno.makeTempDir({ prefix: "trigger-tsc-" });
    try {
      await runOk(
        "cp",
        ["-R", `${ROOT}mod.ts`, `${ROOT}src`, `${dir}/`],
        30_000,
      );
      await Deno.writeTextFile(
        `${dir}/tsconfig.json`,
        JSON.stringify({
          compilerOptions: {
            target: "ES2022",
            lib: ["ES2022", "DOM", "DOM.Iterable"],
            strict: true,
            noEmit: true,
            allowImportingTsExtensions: true,
            skipLibCheck: true,
            typeRoots: [`${types}/@types`],
            ...options,
          },
          files: ["mod.ts", "src/hono/mod.ts"],
        }),
      );
      // Before: "Cannot find namespace 'Deno'" (both), "Cannot find module
      // 'node:net'" (edge), 11 and 19 errors.
      const ran = await runOk(
        "node",
        [`${typescript}/typescript/bin/tsc`, "-p", `${dir}/tsconfig.json`],
        120_000,
      );
      assert.equal(ran.stdout.trim(), "");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
