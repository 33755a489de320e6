// Exits while triggers are still in flight, on Deno, Node or Bun: the module
// should say on stderr how many were cut short. argv / Deno.args: the target
// URL, how many triggers, and "drain" to drain them first.
import { drainTriggers, trigger } from "../../mod.ts";

declare const process: { argv: string[]; exit(code: number): never };
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
if (deno) deno.exit(0);
else process.exit(0);
