// A/B of two copies of the library in one process: alternating blocks of
// triggers through each, against one Deno.serve target (its own process),
// each copy with its own connection pool. Prints each copy's p50 and the
// median of the per-block-pair ratios B ÷ A (under 1: B is faster). Compare a
// copy with itself first (an A/A run) to see the noise.
//
//   git archive <commit> | tar -x -C /tmp/a    (a copy of an older version)
//   deno run -A bench/ab.ts /tmp/a . [sent|accepted|stream] [get|post]
//
// `stream`: "sent" back to back (each call awaits its "sent" only; the
// block's `done`s are awaited after it), as `deno task bench`'s
// "sent, back to back" row.
import { spawnDeno } from "./_spawn.ts";

const [aPath, bPath, wait = "accepted", kind = "get"] = Deno.args;
if (!aPath || !bPath) {
  throw new TypeError(
    "usage: bench/ab.ts <dir A> <dir B> [sent|accepted|stream] [get|post]",
  );
}
const BLOCKS = 80;
const PER_BLOCK = 60;

const load = (dir: string) =>
  import(new URL("mod.ts", `file://${Deno.realPathSync(dir)}/`).href);
const copies = { A: await load(aPath), B: await load(bPath) };
const child = await spawnDeno([
  "eval",
  `Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: ({ port }) => console.log(port) },
    async (request) => { await request.text(); return new Response(null, { status: 202 }); });`,
]);
const origin = `http://127.0.0.1:${Number(child.line)}`;
const form = kind === "post" ? { id: "7", text: "x".repeat(1_000) } : undefined;

function median(values: number[]): number {
  return values.toSorted((a, b) => a - b)[values.length >> 1];
}

const samples: Record<"A" | "B", number[]> = { A: [], B: [] };
const ratios: number[] = [];
for (let block = 0; block < BLOCKS; block++) {
  const p50 = { A: 0, B: 0 };
  const order = block % 2 ? (["A", "B"] as const) : (["B", "A"] as const);
  for (const name of order) {
    const times: number[] = [];
    const done: Promise<unknown>[] = [];
    for (let i = 0; i < PER_BLOCK; i++) {
      const start = performance.now();
      const result = await copies[name].trigger(`${origin}/${name}`, {
        wait: wait === "stream" ? "sent" : wait,
        form,
      });
      times.push((performance.now() - start) * 1_000);
      if (!result.ok) throw result.error;
      if (wait === "stream") done.push(result.done);
      else await result.done;
    }
    await Promise.all(done);
    samples[name].push(...times);
    p50[name] = median(times);
  }
  ratios.push(p50.B / p50.A);
}
console.log(
  `${wait} ${kind}: A p50 ${median(samples.A).toFixed(1)} µs, B p50 ${
    median(samples.B).toFixed(1)
  } µs; B ÷ A ${median(ratios).toFixed(3)} (median of ${BLOCKS} block pairs)`,
);
await copies.A.closeIdleConnections();
await copies.B.closeIdleConnections();
child.process.kill();
await child.process.status;
