// Exits while triggers are still in flight, on Deno, Node or Bun: the module
// should say on stderr how many were cut short. argv / Deno.args: the target
// URL, how many triggers, and a mode: "drain" to drain them first, "throw" to
// end with an uncaught exception, "sigint" to be killed by a SIGINT it has no
// handler for; none: exit at once.
import { drainTriggers, trigger } from "../../mod.ts";

declare const process: {
  argv: string[];
  pid: number;
  exit(code: number): never;
  kill(pid: number, signal: string): void;
};
const deno = (globalThis as { Deno?: typeof Deno }).Deno;
const args = deno ? deno.args : process.argv.slice(2);
const [target, count, mode] = args;

const results = await Promise.all(
  Array.from(
    { length: Number(count) },
    (_, i) => trigger(`${target}/exit?i=${i}`, { json: { i }, timeout: 3_000 }),
  ),
);
console.log(JSON.stringify(results.map((r) => r.ok)));
if (mode === "drain") await drainTriggers();
if (mode === "throw") throw new Error("uncaught, on purpose");
if (mode === "sigint") {
  if (deno) deno.kill(deno.pid, "SIGINT");
  else process.kill(process.pid, "SIGINT");
  // Killed before the next turn; never reached.
  await new Promise((resolve) => setTimeout(resolve, 10_000));
}
if (deno) deno.exit(0);
else process.exit(0);
