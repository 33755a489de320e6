// What connection() costs a route, in requests/s.
//
//   deno bench --allow-net=127.0.0.1 bench/hono_bench.ts   Deno.bench groups
//   deno run --allow-net=127.0.0.1 bench/hono_bench.ts     a requests/s table
//                                                          with the cost ratio
//
// Quote the `deno run` table: it alternates the three ways in rounds. Under
// `deno bench` the server and the timers share the bench loop, and the
// Deno.serve groups and the 1 ms-work groups come out distorted (~0.9 ms per
// request whatever the route, timers resolving early).
//
// The same Hono app serves each route three ways: bare ("without"), with
// connection(), and with a hand-written watch of `c.req.raw.signal` ("signal
// only": the least a route that wants to know about its caller must do).
// Routes: a GET answering at once, a 1 KB POST whose body the route reads
// (on Deno, connection() watches body reads to see a caller leave), and a
// GET doing 1 ms of work. Measured two ways: `app.request()` in-process (the
// middleware's own cost) and a real Deno.serve on 127.0.0.1 driven by fetch
// with keep-alive (what a server sees). On Deno.serve, reading
// `request.signal` at all is most of the cost: Deno makes the signal lazily.
import { Hono, type MiddlewareHandler } from "hono";
import { connection, type ConnectionEnv } from "../src/hono/mod.ts";

const BODY = "x".repeat(1024);

const app = new Hono<ConnectionEnv>();
const signalOnly: MiddlewareHandler = async function signalOnly(c, next) {
  const signal = c.req.raw.signal;
  const onAbort = () => {};
  signal.addEventListener("abort", onAbort, { once: true });
  await next();
  signal.removeEventListener("abort", onAbort);
};
for (
  const [key, middleware] of Object.entries({
    signal: signalOnly,
    signal2: signalOnly, // for an A/A check of the --ratio mode
    conn: connection() as MiddlewareHandler,
  })
) {
  app.use(`/${key}`, middleware);
  app.use(`/${key}/*`, middleware);
}
for (const key of ["plain", "signal", "signal2", "conn"]) {
  app.get(`/${key}`, (c) => c.text("ok"));
  app.post(`/${key}`, async (c) => c.text(String((await c.req.text()).length)));
  app.get(`/${key}/work`, async (c) => {
    await new Promise((resolve) => setTimeout(resolve, 1));
    return c.text("ok");
  });
}

const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  app.fetch,
);
const origin = `http://127.0.0.1:${server.addr.port}`;

async function inProcess(path: string, post: boolean): Promise<void> {
  const response = await app.request(
    path,
    post ? { method: "POST", body: BODY } : undefined,
  );
  await response.text();
}

async function overHttp(path: string, post: boolean): Promise<void> {
  const response = await fetch(
    origin + path,
    post ? { method: "POST", body: BODY } : undefined,
  );
  await response.text();
}

const variants = [
  { name: "GET", post: false, suffix: "", perRound: 2_000 },
  { name: "POST 1 KB", post: true, suffix: "", perRound: 2_000 },
  { name: "GET, 1 ms work", post: false, suffix: "/work", perRound: 150 },
] as const;

if (import.meta.main && Deno.args[0] === "--ratio") {
  // For bench/ratios.ts: connection() ÷ "signal only" req/s on a GET over
  // Deno.serve + fetch, as one JSON line of per-round values.
  //
  // The machine's speed drifts by ±30 % within a second here (2 cores
  // shared with other processes), so the two routes run in short blocks of
  // BLOCK GETs, in pairs (one block of each, the order alternating), and
  // each pair gives one ratio: both blocks saw nearly the same machine.
  // A round's value is the median of its PAIRS pair ratios (a burst of
  // load that hits one block of a pair moves one ratio, not the median).
  // Long blocks summed per round (this mode until now) gave 0.94 for two
  // copies of the same route; this gives 1.00 (`--ratio signal signal2`).
  const [a, b] = Deno.args.length === 3
    ? [Deno.args[1], Deno.args[2]]
    : ["signal", "conn"];
  const ROUNDS = 7;
  const PAIRS = 100;
  const BLOCK = 20;
  for (let i = 0; i < 1_000; i++) {
    for (const key of [a, b]) await overHttp(`/${key}`, false);
  }
  const block = async (key: string) => {
    const start = performance.now();
    for (let i = 0; i < BLOCK; i++) await overHttp(`/${key}`, false);
    return performance.now() - start;
  };
  const rounds: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const pairs: number[] = [];
    for (let pair = 0; pair < PAIRS; pair++) {
      let timeA, timeB;
      if (pair % 2) {
        timeB = await block(b);
        timeA = await block(a);
      } else {
        timeA = await block(a);
        timeB = await block(b);
      }
      // b's requests/s ÷ a's: a's time ÷ b's.
      pairs.push(timeA / timeB);
    }
    pairs.sort((x, y) => x - y);
    rounds.push((pairs[PAIRS / 2 - 1] + pairs[PAIRS / 2]) / 2);
  }
  console.log(JSON.stringify(rounds));
  await server.shutdown();
} else if (import.meta.main) {
  // `deno run`: a table of requests/s, the three ways alternated in rounds
  // so drift (JIT, GC) hits them alike.
  const ROUNDS = 8;
  const keys = ["plain", "signal", "conn"] as const;
  const ways = [
    ["app.request", inProcess],
    ["Deno.serve + fetch", overHttp],
  ] as const;
  const rows: Record<string, string>[] = [];
  for (const [way, run] of ways) {
    for (const { name, post, suffix, perRound } of variants) {
      const time = { plain: 0, signal: 0, conn: 0 };
      for (let i = 0; i < perRound / 4; i++) {
        for (const key of keys) await run(`/${key}${suffix}`, post);
      }
      for (let round = 0; round < ROUNDS; round++) {
        for (const key of keys) {
          const start = performance.now();
          for (let i = 0; i < perRound; i++) {
            await run(`/${key}${suffix}`, post);
          }
          time[key] += performance.now() - start;
        }
      }
      const rate = (key: typeof keys[number]) =>
        ROUNDS * perRound / (time[key] / 1000);
      const cost = (from: number, to: number) =>
        `${((1 - to / from) * 100).toFixed(1)} %`;
      rows.push({
        way,
        route: name,
        "without req/s": rate("plain").toFixed(0),
        "signal only req/s": rate("signal").toFixed(0),
        "connection() req/s": rate("conn").toFixed(0),
        "cost vs without": cost(rate("plain"), rate("conn")),
        "cost vs signal only": cost(rate("signal"), rate("conn")),
      });
    }
  }
  console.table(rows);
  await server.shutdown();
} else {
  server.unref();
  for (const { name, post, suffix } of variants) {
    for (
      const [way, run] of [
        ["app.request", inProcess],
        ["Deno.serve", overHttp],
      ] as const
    ) {
      const group = `${way} ${name}`;
      Deno.bench({
        name: `${group} without connection()`,
        group,
        baseline: true,
        fn: () => run(`/plain${suffix}`, post),
      });
      Deno.bench({
        name: `${group} signal only`,
        group,
        fn: () => run(`/signal${suffix}`, post),
      });
      Deno.bench({
        name: `${group} with connection()`,
        group,
        fn: () => run(`/conn${suffix}`, post),
      });
    }
  }
}
