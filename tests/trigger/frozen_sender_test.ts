// A sender frozen and thawed (SIGSTOP, SIGCONT), as platforms freeze a
// process between invocations (AWS Lambda, Vercel's and Netlify's functions)
// and `docker pause` does: its timers all come due at once on thaw, while
// the answers that arrived meanwhile wait in its sockets. On Deno, Node
// (bundled) and Bun.
import assert from "node:assert/strict";
import { lineSplitter } from "../_servers.ts";
import { until, within } from "../_wait.ts";
import { bundle } from "../_bundle.ts";
import { bunBinary, withTempFile } from "../_node/_runtimes.ts";

const ENTRY = "./_node/frozen_sender_entry.ts";

/** Runs the sender with `command args`, freezes it 2 s once armed, and
 * checks what each trigger said against what the server received. */
async function frozenSender(command: string, args: string[]): Promise<void> {
  const received: string[] = [];
  // Answered 300 ms after the sender is frozen: within its timeout, while
  // it cannot read.
  const { promise: stopped, resolve: answer } = Promise.withResolvers<void>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      received.push(new URL(request.url).searchParams.get("i")!);
      await stopped;
      await new Promise((resolve) => setTimeout(resolve, 300));
      return new Response(null, { status: 202 });
    },
  );
  const child = new Deno.Command(command, {
    args: [
      ...args,
      JSON.stringify({
        url: `http://127.0.0.1:${server.addr.port}/hook`,
        n: 6,
        maxConnections: 2,
        timeout: 900,
      }),
    ],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const lines: ReadableStreamDefaultReader<string> = child.stdout
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(lineSplitter())
    .getReader();
  let frozen = false;
  try {
    // Two written (maxConnections: 2), four waiting for a connection.
    await until(() => received.length === 2, "the first two requests");
    Deno.kill(child.pid, "SIGSTOP");
    frozen = true;
    answer();
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    Deno.kill(child.pid, "SIGCONT");
    frozen = false;
    const line = await within(lines.read(), "the outcomes", 30_000);
    const outcomes = JSON.parse(line.value!) as Array<
      { ok: boolean; code?: string }
    >;
    const told = JSON.stringify(outcomes);
    // Two written before the freeze (maxConnections: 2), answered during
    // it; four waiting for a connection, their time up at the thaw, never
    // written.
    const ok = outcomes.flatMap((o, i) => o.ok ? [String(i)] : []);
    assert.equal(ok.length, 2, told);
    assert.deepEqual([...received].sort(), ok.sort(), told);
    for (const outcome of outcomes) {
      if (!outcome.ok) assert.equal(outcome.code, "TIMEOUT", told);
    }
    assert.equal((await child.status).code, 0);
  } finally {
    answer();
    if (frozen) Deno.kill(child.pid, "SIGCONT");
    try {
      child.kill("SIGKILL");
    } catch {
      // Exited already.
    }
    await child.status;
    await lines.cancel().catch(() => {});
    await server.shutdown();
  }
}

const NAME =
  "thawed past its timeout, a trigger whose answer arrived while it was frozen is ok, not TIMEOUT; one still waiting for a connection is TIMEOUT and never written";

Deno.test(`${NAME} (Deno)`, () =>
  frozenSender(Deno.execPath(), [
    "run",
    "-A",
    new URL(`.${ENTRY}`, import.meta.url).pathname,
  ]));

for (const runtime of ["node", "bun"] as const) {
  Deno.test(`${NAME} (${runtime === "node" ? "Node" : "Bun"})`, async () => {
    const code = await bundle(ENTRY, "node");
    const binary = runtime === "bun" ? await bunBinary() : "node";
    await withTempFile(code, (path) => frozenSender(binary, [path]));
  });
}
