// Diagnostic for issue 16's write floor: what one write of the bench's request
// costs as a function of how long after the previous answer it is made.
// The write floor in `bench/ratios.ts` writes ~1 µs after reading the answer;
// a trigger loop writes after reading the answer, releasing the connection,
// resolving `done` and preparing the next request. This sweeps a busy gap of
// 0–30 µs between the answer and the next write, on a kept connection to a
// Deno.serve target in its own process (as in ratios.ts), p50 of 1,500 writes
// per gap, two passes:
//
//   deno run -A bench/write_gap.ts [get|post]
import { spawnDeno } from "./_spawn.ts";

const POST = Deno.args[0] === "post";
const GAPS_US = [0, 2, 4, 6, 8, 10, 15, 20, 30];
const CALLS = 1_500;

const child = await spawnDeno([
  "eval",
  `Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: ({ port }) => console.log(port) },
    async (request) => { await request.arrayBuffer(); return new Response(null, { status: 202 }); });`,
]);
const port = Number(child.line);
const body = "id=7&text=" + "x".repeat(1_000);
const request = new TextEncoder().encode(
  POST
    ? `POST /gap HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
      "Content-Type: application/x-www-form-urlencoded;charset=UTF-8\r\n" +
      `Content-Length: ${body.length}\r\n\r\n${body}`
    : `GET /gap HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`,
);
const buffer = new Uint8Array(4_096);
const decoder = new TextDecoder();
const conn = await Deno.connect({ hostname: "127.0.0.1", port });
conn.setNoDelay(true);

function median(values: number[]): number {
  return values.toSorted((a, b) => a - b)[values.length >> 1];
}

async function writeAfter(gapUs: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const until = performance.now() + gapUs / 1_000;
    while (performance.now() < until) {
      // busy, as a trigger loop's own work is
    }
    const start = performance.now();
    let offset = 0;
    while (offset < request.length) {
      offset += await conn.write(request.subarray(offset));
    }
    samples.push((performance.now() - start) * 1_000);
    let head = "";
    while (!head.endsWith("\r\n\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) throw new Error("The target closed the connection");
      head += decoder.decode(buffer.subarray(0, n));
    }
  }
  return median(samples);
}

console.log(
  `${
    POST ? "POST, 1 KB form" : "GET"
  }: p50 µs of one write, by µs after the answer`,
);
for (let pass = 0; pass < 2; pass++) {
  const row: string[] = [];
  for (const gap of GAPS_US) {
    row.push(`${gap}: ${(await writeAfter(gap)).toFixed(1)}`);
  }
  console.log(`  ${row.join("  ")}`);
}
conn.close();
child.process.kill();
await child.process.status;
