// A sender for tests/transport/descriptors_test.ts, on Deno or Node
// (bundled), run under a low `ulimit -n`: 24 triggers to origin A leave
// their connections idle in the pool; files are opened until the process
// has no descriptor left; then 8 triggers at once to origin B. Prints one
// JSON line: how many of A's were ok, how many files were opened, and B's
// codes (or "ok").
import { closeSync, openSync } from "node:fs";
import { trigger } from "../../mod.ts";

const runtime = globalThis as {
  Deno?: { args: string[] };
  process?: { argv: string[] };
};
const [a, b] = runtime.Deno?.args ?? runtime.process!.argv.slice(2);

const first = await Promise.all(
  Array.from(
    { length: 24 },
    (_, i) => trigger(`${a}?i=${i}`, { wait: "accepted", timeout: 5_000 }),
  ),
);
await Promise.all(first.map((result) => result.done));
const files: number[] = [];
try {
  for (let i = 0; i < 4_096; i++) files.push(openSync("/dev/null", "r"));
} catch {
  // Out of descriptors: what the connect to B meets.
}
const second = await Promise.all(
  Array.from(
    { length: 8 },
    (_, i) => trigger(`${b}?i=${i}`, { wait: "accepted", timeout: 5_000 }),
  ),
);
for (const fd of files) closeSync(fd);
console.log(JSON.stringify({
  ok: first.filter((result) => result.ok).length,
  files: files.length,
  b: second.map((result) => result.error?.code ?? "ok"),
  messages: second.flatMap((result) => result.error?.message ?? []),
}));
