// A sender frozen and thawed (SIGSTOP, SIGCONT), as platforms freeze a
// process between invocations (AWS Lambda, Vercel's and Netlify's functions)
// and `docker pause` does: its timers all come due at once on thaw, while
// the answers that arrived meanwhile wait in its sockets.
import assert from "node:assert/strict";
import { lineSplitter } from "../_servers.ts";
import { within } from "../_wait.ts";

const SENDER = new URL("./_frozen_sender.ts", import.meta.url);

Deno.test("thawed past its timeout, a trigger whose answer arrived while it was frozen is ok, not TIMEOUT; one still waiting for a connection is TIMEOUT and never written", async () => {
  const received: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      received.push(new URL(request.url).searchParams.get("i")!);
      // Answered while the sender is frozen, within its timeout.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      return new Response(null, { status: 202 });
    },
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      SENDER.href,
      JSON.stringify({
        url: `http://127.0.0.1:${server.addr.port}/hook`,
        n: 6,
        maxConnections: 2,
        timeout: 2_000,
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
    const armed = await within(lines.read(), "the sender armed", 30_000);
    assert.equal(armed.value, "armed");
    Deno.kill(child.pid, "SIGSTOP");
    frozen = true;
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    Deno.kill(child.pid, "SIGCONT");
    frozen = false;
    const line = await within(lines.read(), "the outcomes", 30_000);
    const outcomes = JSON.parse(line.value!) as Array<
      { ok: boolean; code?: string }
    >;
    // Two written before the freeze (maxConnections: 2), answered during
    // it; four waiting for a connection, their time up at the thaw.
    const ok = outcomes.flatMap((o, i) => o.ok ? [String(i)] : []);
    assert.deepEqual(ok.sort(), [...received].sort(), JSON.stringify(outcomes));
    assert.equal(ok.length, 2, JSON.stringify(outcomes));
    for (const outcome of outcomes) {
      if (!outcome.ok) assert.equal(outcome.code, "TIMEOUT");
    }
    assert.equal((await child.status).code, 0);
  } finally {
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
});
