// The shutdown recipe of docs/platforms-node-bun.md, on Deno, Node or Bun:
// starts a trigger to a slow target, prints "ready", and on SIGINT or
// SIGTERM drains the triggers, prints what it saw and exits 0.
// argv / Deno.args: the target URL.
import { drainTriggers, trigger } from "../../mod.ts";

declare const process: {
  argv: string[];
  once(signal: string, listener: () => void): void;
  exit(code: number): never;
};
const deno = (globalThis as { Deno?: typeof Deno }).Deno;
const [target] = deno ? deno.args : process.argv.slice(2);

const result = await trigger(`${target}/shutdown`, { json: { at: "exit" } });

async function shutdown(signal: string): Promise<never> {
  const drained = await drainTriggers({ timeout: 4_000 });
  console.log(
    JSON.stringify({ signal, drained, outcome: await result.outcome }),
  );
  return deno ? deno.exit(0) : process.exit(0);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  if (deno) deno.addSignalListener(signal, () => shutdown(signal));
  else process.once(signal, () => shutdown(signal));
}
console.log(JSON.stringify({ ready: result.ok }));
