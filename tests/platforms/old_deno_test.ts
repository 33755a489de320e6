// A Deno older than 2.9.5 (as platforms' Deno may be): closing a
// Deno.Conn there does not settle a pending write (1.x to 2.9.4) or read
// (2.8.3), so a trigger's timeout or abort must settle them itself. Deno
// 2.8.3 (from npm, cached) has both; each trigger ends at its deadline.
import assert from "node:assert/strict";
import { npmModules, run, withTempFile } from "../_node/_runtimes.ts";

const mod = new URL("../../mod.ts", import.meta.url).href;

const probe = `
import { trigger } from ${JSON.stringify(mod)};
// Accepts, never reads and never answers.
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const held = [];
(async () => { for await (const conn of listener) held.push(conn); })();
const url = \`http://127.0.0.1:\${listener.addr.port}/upload\`;
const body = new Uint8Array(10 * 1024 * 1024);
const timed = async (name, options) => {
  const start = performance.now();
  const result = await trigger(url, { reuse: false, ...options });
  await result.done;
  console.log(JSON.stringify({ name, code: result.error?.code, ms: Math.round(performance.now() - start) }));
};
await timed("write, timeout", { body, timeout: 1000 });
const controller = new AbortController();
setTimeout(() => controller.abort(), 1000);
await timed("write, abort", { body, signal: controller.signal, timeout: 60000 });
await timed("read, timeout", { wait: "accepted", timeout: 500 });
console.log(JSON.stringify({ version: Deno.version.deno }));
Deno.exit(0);
`;

Deno.test("Deno 2.8.3: a trigger whose write the target never drains, or whose answer never comes, ends at its timeout or abort (close() settles neither there)", async () => {
  const modules = await npmModules("deno@2.8.3", "deno/package.json");
  const denoDir = await Deno.makeTempDir({ prefix: "trigger-old-deno-" });
  try {
    const ran = await withTempFile(
      probe,
      (path) =>
        run(
          `${modules}/.bin/deno`,
          ["run", "-A", "--no-check", "--no-config", path],
          60_000,
          { env: { DENO_DIR: denoDir, NO_COLOR: "1" } },
        ),
      "probe.ts",
    );
    assert.equal(ran.code, 0, ran.stdout + ran.stderr);
    const lines = ran.stdout.trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(lines.at(-1), { version: "2.8.3" });
    assert.deepEqual(
      lines.slice(0, -1).map(({ name, code }) => ({ name, code })),
      [
        { name: "write, timeout", code: "TIMEOUT" },
        { name: "write, abort", code: "ABORTED" },
        { name: "read, timeout", code: "TIMEOUT" },
      ],
    );
  } finally {
    await Deno.remove(denoDir, { recursive: true });
  }
});
