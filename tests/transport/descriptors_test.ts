// A process out of descriptors while idle connections to one origin hold
// some: triggers to another origin (8 at once: the first to fail closes the
// idle ones, and the others retry too) close the idle ones and connect
// (before, it failed CONNECT, "Too many open files", until they expired,
// up to 4 s; hunt AF measured 10 of 10 such triggers failing on Deno,
// Node and Bun). On Deno and Node (bundled), under `ulimit -n 64`. Bun
// reports EMFILE as ECONNREFUSED, which cannot be told apart: not run.
import assert from "node:assert/strict";
import { bundle } from "../_bundle.ts";
import { runOk, withTempFile } from "../_node/_runtimes.ts";

const ENTRY = "./_node/descriptors_entry.ts";

async function outOfDescriptors(command: string): Promise<void> {
  const serve = () =>
    Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response(null, { status: 202 }),
    );
  const a = serve();
  const b = serve();
  let received = 0;
  const c = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => {
      received++;
      return new Response(null, { status: 202 });
    },
  );
  try {
    const { stdout } = await runOk("bash", [
      "-c",
      `ulimit -n 64 && exec ${command} "$@"`,
      "sender",
      `http://127.0.0.1:${a.addr.port}/a`,
      `http://127.0.0.1:${c.addr.port}/b`,
    ], 30_000);
    const told = stdout.trim().split("\n").at(-1)!;
    const { ok, files, b: code } = JSON.parse(told);
    assert.equal(ok, 24, told);
    assert.ok(files > 0, `descriptors were used up: ${told}`);
    assert.deepEqual(code, Array(8).fill("ok"), told);
    assert.equal(received, 8, told);
  } finally {
    await Promise.all([a.shutdown(), b.shutdown(), c.shutdown()]);
  }
}

const NAME =
  "out of descriptors with idle connections to another origin: they are closed and 8 triggers at once connect";

Deno.test(`${NAME} (Deno)`, () =>
  outOfDescriptors(
    `${Deno.execPath()} run -A ${
      new URL(`.${ENTRY}`, import.meta.url).pathname
    }`,
  ));

Deno.test(`${NAME} (Node)`, async () => {
  const code = await bundle(ENTRY, "node");
  await withTempFile(code, (path) => outOfDescriptors(`node ${path}`));
});
