// A target that answers 429 or 503 with `Retry-After` is not tried again
// before then: the retry pg-boss schedules is held back to the wait asked
// for, no later than the trigger's `retry.maxDelay` (300 s without
// backoff). Before, the wait was not read: a retry came at the outbox's own
// delay (at once with `delay: 0`), into the same refusal, using up the
// retries of a target that had said when to come back. On both engines,
// read from the job rows.
import assert from "node:assert/strict";
import { Hono } from "hono";
import { openOutbox, type Outbox } from "../../src/durable/mod.ts";
import { verifyTrigger } from "../../src/hono/mod.ts";
import { createSecret } from "../../mod.ts";
import { ADMIN, type Administered } from "../../src/durable/_admin_queries.ts";
import { until } from "../_wait.ts";
import { DATABASE_URL, freshOptions } from "./_seed.ts";

function sqlOf(outbox: Outbox) {
  return (outbox as unknown as Administered)[ADMIN]().db;
}

for (const engine of ["embedded", "postgres"] as const) {
  Deno.test({
    name:
      `outbox (${engine}): a 429/503's Retry-After holds the retry back that long, capped at retry.maxDelay (300 s without backoff); the retry after it is delivered`,
    ignore: engine === "postgres" && DATABASE_URL === undefined,
    async fn() {
      const arrivals = new Map<string, number[]>();
      const target = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen() {} },
        (request) => {
          const path = new URL(request.url).pathname;
          const times = arrivals.get(path) ?? [];
          times.push(performance.now());
          arrivals.set(path, times);
          if (path === "/soon" && times.length > 1) {
            return new Response(null, { status: 200 });
          }
          const wait = {
            "/thirty": "30",
            "/forever": "100000",
            "/capped": "100000",
            "/soon": "1",
          }[path]!;
          return new Response(null, {
            status: path === "/soon" ? 503 : 429,
            headers: { "retry-after": wait },
          });
        },
      );
      const base = `http://127.0.0.1:${target.addr.port}`;
      const { cleanup, ...options } = await freshOptions(engine);
      const outbox = await openOutbox(options);
      try {
        const noBackoff = { limit: 3, delay: 0, backoff: false };
        await outbox.trigger(`${base}/thirty`, { retry: noBackoff });
        await outbox.trigger(`${base}/forever`, { retry: noBackoff });
        await outbox.trigger(`${base}/capped`, {
          retry: { limit: 3, delay: 1_000, backoff: true, maxDelay: 4_000 },
        });
        await outbox.trigger(`${base}/soon`, { retry: noBackoff });
        outbox.start({ pollInterval: 100 });
        const sql = sqlOf(outbox);
        const waits = async () => {
          const { rows } = await sql.executeSql(
            `SELECT data->>'url' AS url, state::text AS state,
               extract(epoch FROM start_after - now())::float8 AS wait
             FROM pgboss.job
             WHERE name = $1`,
            [options.queue ?? "trigger_outbox"],
          );
          return new Map(
            rows.map((row) => [
              new URL(String(row.url)).pathname,
              { state: String(row.state), wait: Number(row.wait) },
            ]),
          );
        };
        await until(
          async () => {
            const rows = await waits();
            return ["/thirty", "/forever", "/capped"].every((path) =>
              rows.get(path)?.state === "retry"
            ) && rows.get("/soon")?.state === "completed";
          },
          "three retries waiting and the fourth delivered",
          {
            timeout: 30_000,
            interval: 100,
          },
        );
        const rows = await waits();
        const thirty = rows.get("/thirty")!.wait;
        assert.ok(thirty > 25 && thirty <= 30, `/thirty waits ${thirty} s`);
        const forever = rows.get("/forever")!.wait;
        assert.ok(
          forever > 290 && forever <= 300,
          `/forever waits ${forever} s (capped at 300)`,
        );
        const capped = rows.get("/capped")!.wait;
        // pg-boss's own first backoff: 1–2 s.
        assert.ok(
          capped > 2.5 && capped <= 4,
          `/capped waits ${capped} s (maxDelay 4 s)`,
        );
        // Each asked once so far; /soon again once its second had passed.
        for (const path of ["/thirty", "/forever", "/capped"]) {
          assert.equal(arrivals.get(path)?.length, 1, path);
        }
        const [first, second] = arrivals.get("/soon")!;
        assert.ok(
          second - first >= 900,
          `/soon again after ${second - first} ms`,
        );
      } finally {
        await outbox.stop();
        await target.shutdown();
        await cleanup();
      }
    },
  });
}

Deno.test("outbox → verifyTrigger(): an attempt that timed out while its route still runs is answered 429 + Retry-After: 5 on the retry; the outbox waits it out and the next attempt is done, the route run once (before: retries at once into 429 until a dead letter)", async () => {
  const secret = createSecret();
  let runs = 0;
  const app = new Hono();
  app.post("/hook", verifyTrigger({ secret }), async (c) => {
    runs++;
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    return c.text("done");
  });
  const receiver = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    app.fetch,
  );
  const statuses: number[] = [];
  const { cleanup, ...options } = await freshOptions("embedded");
  const events: string[] = [];
  const outbox = await openOutbox({
    ...options,
    sign: { secret },
    onEvent(event) {
      events.push(event.type);
      if (event.type !== "error" && event.status !== undefined) {
        statuses.push(event.status);
      }
    },
  });
  try {
    outbox.start({ pollInterval: 100 });
    // Each attempt waits 1 s for its answer; the route takes 2.5 s.
    await outbox.trigger(`http://127.0.0.1:${receiver.addr.port}/hook`, {
      json: { n: 1 },
      timeout: 1_000,
      retry: { limit: 2, delay: 0, backoff: false },
    });
    await until(
      () => events.includes("delivered") || events.includes("dead"),
      "the trigger delivered or dead",
      { timeout: 30_000, interval: 100 },
    );
    assert.deepEqual(
      events.filter((type) => type !== "error"),
      ["retry", "retry", "delivered"],
      `statuses: ${statuses.join(", ")}`,
    );
    assert.equal(runs, 1, "the route ran once");
  } finally {
    await outbox.stop();
    await receiver.shutdown();
    await cleanup();
  }
});
