// A stream body that never ends: the trigger ends at its timeout or its
// caller's abort, and the stream is cancelled then, not read on (before, the
// read was abandoned, not stopped: an endless stream went on filling memory,
// ~1 GiB two seconds after a 2 s timeout, and its cancel() was never
// called). On Deno, Node (bundled) and Bun, both transports. And a chunk
// that is a string is BODY on all three (Bun's Request sent it).
import assert from "node:assert/strict";
import { bundle } from "../_bundle.ts";
import { bunBinary, runOk, withTempFile } from "../_node/_runtimes.ts";

const ENTRY = "./_node/endless_body_entry.ts";

async function endless(command: string, args: string[]): Promise<void> {
  // Never reached: the body is read whole before anything is sent.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  try {
    const url = `http://127.0.0.1:${listener.addr.port}/hook`;
    const { stdout } = await runOk(command, [...args, url], 30_000);
    const { cases, stringChunk } = JSON.parse(
      stdout.trim().split("\n").at(-1)!,
    ) as {
      stringChunk: string;
      cases: Array<{
        transport: string;
        end: string;
        code?: string;
        cancelled: boolean;
        atEnd: number;
        later: number;
      }>;
    };
    assert.equal(stringChunk, "BODY", "a string chunk is no bytes");
    assert.equal(cases.length, 4);
    for (const c of cases) {
      const told = JSON.stringify(c);
      assert.equal(c.code, c.end === "timeout" ? "TIMEOUT" : "ABORTED", told);
      assert.ok(c.atEnd > 0, `the stream was being read: ${told}`);
      assert.equal(c.cancelled, true, `the stream was cancelled: ${told}`);
      assert.equal(c.later, c.atEnd, `nothing read after the end: ${told}`);
    }
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const conn of held) conn.close();
  }
}

const NAME =
  "a stream body that never ends: the trigger ends at its timeout or its caller's abort, and the stream is cancelled, not read on";

Deno.test(`${NAME} (Deno)`, () =>
  endless(Deno.execPath(), [
    "run",
    "-A",
    new URL(`.${ENTRY}`, import.meta.url).pathname,
  ]));

for (const runtime of ["node", "bun"] as const) {
  Deno.test(`${NAME} (${runtime === "node" ? "Node" : "Bun"})`, async () => {
    const code = await bundle(ENTRY, "node");
    const binary = runtime === "bun" ? await bunBinary() : "node";
    await withTempFile(code, (path) => endless(binary, [path]));
  });
}
