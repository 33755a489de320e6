// `deno task bench:all`: runs the throughput and resources scripts, each in its
// own process so the client's event loop (and its RSS and fd count) are its
// own, and prints their tables. Fails when a trigger was lost, one failed, or
// the open TCP sockets did not return to the baseline; the speed and memory targets
// are reported (met / NOT met), not enforced: this machine is noisy.
//
//   bench/throughput.ts   10,000 acknowledged triggers at concurrency 64, 5 rounds
//   bench/resources.ts    100,000 triggers: fds and RSS, with V8's default young
//                         generation and with it capped (--max-semi-space-size=2)
import { spawnDeno } from "./_spawn.ts";

const here = (file: string) => new URL(file, import.meta.url).pathname;

/** Runs `deno run -A <flags> <script>`, prints its output, parses its JSON line. */
async function runScript(
  flags: string[],
  script: string,
): Promise<Record<string, unknown>> {
  const child = await spawnDeno(["run", "--allow-all", ...flags, here(script)]);
  const rest = child.line + "\n" + await child.rest;
  const status = await child.process.status;
  const lines = rest.trimEnd().split("\n");
  console.log(lines.slice(0, -1).join("\n"));
  if (!status.success) throw new Error(`${script} exited with ${status.code}`);
  return JSON.parse(lines.at(-1)!);
}

/** Runs `body` once, however often Deno calls the bench. */
function once(
  body: () => Promise<void>,
): (b: Deno.BenchContext) => Promise<void> {
  let run: Promise<void> | undefined;
  return async (b) => {
    b.start();
    await (run ??= body());
    b.end();
  };
}

Deno.bench({
  name: "throughput: 10,000 acknowledged triggers at concurrency 64",
  group: "load (separate processes; see the tables)",
  n: 1,
  warmup: 0,
  fn: once(async () => {
    const report = await runScript([], "./throughput.ts");
    if (report.lost !== 0) throw new Error(`Lost triggers: ${report.lost}`);
    for (const round of report.rounds as { ok: number; completed: number }[]) {
      if (round.ok !== round.completed) {
        throw new Error(`Failed triggers: ${JSON.stringify(round)}`);
      }
    }
  }),
});

for (
  const [name, flags] of [
    ["resources: 100,000 triggers, V8 defaults", "--expose-gc"],
    [
      "resources: 100,000 triggers, young generation capped",
      "--expose-gc,--max-semi-space-size=2",
    ],
  ]
) {
  Deno.bench({
    name,
    group: "load (separate processes; see the tables)",
    n: 1,
    warmup: 0,
    fn: once(async () => {
      console.log(`\n${name} (--v8-flags=${flags})`);
      const report = await runScript(
        [`--v8-flags=${flags}`],
        "./resources.ts",
      );
      // TCP sockets: the runtime adds a Unix socketpair of its own later.
      const tcp = report.tcp as { before: number; afterClose: number };
      if (tcp.afterClose !== tcp.before) {
        throw new Error(
          `TCP sockets not back to baseline: ${JSON.stringify(report.fds)}`,
        );
      }
      if (report.lost !== 0 || report.failed !== 0) {
        throw new Error(`Lost ${report.lost}, failed ${report.failed}`);
      }
    }),
  });
}
