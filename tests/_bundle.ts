// Bundles a test entry for a non-Deno runtime (workerd, edge-runtime, Node).
import assert from "node:assert/strict";
import { output } from "./_wait.ts";

/**
 * Bundles `entry` (a path relative to tests/, e.g. "./_edge/node_entry.ts",
 * whichever folder the caller is in) as one ESM file and returns its code.
 */
export async function bundle(
  entry: string,
  platform: "browser" | "node" = "browser",
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "trigger-bundle-" });
  try {
    const out = `${dir}/bundle.mjs`;
    const { success, stderr } = await output(Deno.execPath(), {
      args: [
        "bundle",
        "--quiet",
        "--platform",
        platform,
        "--format",
        "esm",
        "-o",
        out,
        new URL(entry, import.meta.url).pathname,
      ],
      stdout: "null",
      stderr: "piped",
      what: `deno bundle ${entry}`,
    });
    assert.ok(success, new TextDecoder().decode(stderr));
    return await Deno.readTextFile(out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
