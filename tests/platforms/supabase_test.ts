// The Supabase example run as a Supabase function runs: its own Deno process
// serving with `Deno.serve`, with Supabase's `EdgeRuntime` global preloaded
// (Supabase's edge runtime itself, and its CLI's bundler, need Docker or a
// login: docs/platforms.md). Deno.serve listens where DENO_SERVE_ADDRESS says.
import assert from "node:assert/strict";
import { denoRecorder, Queue } from "../_servers.ts";

const decoder = new TextDecoder();
const FUNCTION = new URL(
  "../../examples/supabase/supabase/functions/start/index.ts",
  import.meta.url,
).pathname;
const PRELOAD = new URL("../_edge/supabase_preload.ts", import.meta.url)
  .pathname;

/** The next line of `lines` matching `pattern`, or a failure after `ms`. */
async function lineMatching(
  lines: Queue<string>,
  pattern: RegExp,
  ms = 15_000,
): Promise<RegExpMatchArray> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const line = await Promise.race([
      lines.take(),
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), end - performance.now());
      }),
    ]).finally(() => clearTimeout(timer));
    const match = line?.match(pattern);
    if (match) return match;
  }
  throw new Error(`no line matching ${pattern} within ${ms} ms`);
}

Deno.test("Supabase example (EdgeRuntime preloaded): auto picks the raw socket, the hit arrives and the background part goes to EdgeRuntime.waitUntil until it settles", async () => {
  const recorder = denoRecorder({ delay: 300 });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-env=JOB_URL",
      "--preload",
      PRELOAD,
      FUNCTION,
    ],
    env: {
      DENO_SERVE_ADDRESS: "tcp:127.0.0.1:0",
      JOB_URL: `${recorder.origin}/supabase`,
    },
    stdout: "piped",
    stderr: "piped", // Deno.serve says where it listens on stderr
  }).spawn();
  const lines = new Queue<string>();
  const read = async (stream: ReadableStream<Uint8Array>) => {
    const text = new TextDecoder();
    let rest = "";
    for await (const chunk of stream) {
      rest += text.decode(chunk, { stream: true });
      const parts = rest.split("\n");
      rest = parts.pop()!;
      for (const line of parts) lines.push(line);
    }
  };
  const reading = Promise.all([read(child.stdout), read(child.stderr)]);
  try {
    const [, origin] = await lineMatching(
      lines,
      /Listening on (http:\S+?)\/?$/,
    );
    const response = await fetch(origin, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ month: "2026-07" }),
    });
    assert.deepEqual(await response.json(), {
      started: true,
      transport: "socket",
    });
    await lineMatching(lines, /^waitUntil: handed$/);
    const seen = await recorder.seen.take();
    assert.deepEqual(JSON.parse(decoder.decode(seen.body)), {
      month: "2026-07",
    });
    await lineMatching(lines, /^waitUntil: settled$/);
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await reading;
    await recorder.close();
  }
});
