// Exits while triggers are still in flight, on Deno, Node or Bun: the module
// should say on stderr how many were cut short. argv / Deno.args: the target
// URL, how many triggers, a mode, and the triggers' timeout in ms (3 000 by
// default). Modes: "drain" to drain them first, "throw" to end with an
// uncaught exception, "sigint" / "sigterm" to be killed by a signal it has no
// handler for, "end" to call no exit at all (the process ends when its event
// loop empties; each outcome is printed as it arrives); none: exit at once.
import { drainTriggers, trigger } from "../../mod.ts";

declare const process: {
  argv: string[];
  pid: number;
  exit(code: number): never;
  kill(pid: number, signal: string): void;
};
const deno = (globalThis as { Deno?: typeof Deno }).Deno;
const args = deno ? deno.args : process.argv.slice(2);
const [target, count, mode, timeout = "3000"] = args;

const results = await Promise.all(
  Array.from(
    { length: Number(count) },
    (_, i) =>
      trigger(`${target}/exit?i=${i}`, {
        json: { i },
        timeout: Number(timeout),
      }),
  ),
);
console.log(JSON.stringify(results.map((r) => r.ok)));
if (mode === "drain") await drainTriggers();
if (mode === "throw") throw new Error("uncaught, on purpose");
if (mode === "sigint" || mode === "sigterm") {
  const signal = mode === "sigint" ? "SIGINT" : "SIGTERM";
  if (deno) deno.kill(deno.pid, signal);
  else process.kill(process.pid, signal);
  // Killed before the next turn; never reached.
  await new Promise((resolve) => setTimeout(resolve, 10_000));
}
if (mode === "end") {
  // Nothing awaits these: only the triggers themselves can keep the process
  // alive long enough for the lines to be printed.
  results.forEach((result, i) =>
    result.outcome.then((outcome) =>
      console.log(
        JSON.stringify({
          i,
          status: outcome.status,
          code: outcome.error?.code,
        }),
      )
    )
  );
} else if (deno) deno.exit(0);
else process.exit(0);
