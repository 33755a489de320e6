// trigger() and the Hono helper inside workerd (Cloudflare's runtime), through
// Miniflare: the module is bundled for the browser platform and loaded as an
// ES module worker.
import assert from "node:assert/strict";
import { Miniflare } from "miniflare";
import { Queue } from "../_servers.ts";
import { bundle } from "../_bundle.ts";

/** A Deno.serve target that records bodies and answers after `delay` ms. */
function target(delay: number) {
  const hits = new Queue<{ body: string; at: number }>();
  let answered = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      hits.push({ body: await request.text(), at: performance.now() });
      await new Promise((r) => setTimeout(r, delay));
      answered++;
      return new Response(null, { status: 202 });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/job`,
    hits,
    answered: () => answered,
    close: () => server.shutdown(),
  };
}

async function withWorker(
  entry: string,
  fn: (mf: Miniflare) => Promise<void>,
  bindings: Record<string, string> = {},
) {
  const mf = new Miniflare({
    modules: [{
      type: "ESModule",
      path: "worker.mjs",
      contents: await bundle(entry),
    }],
    compatibilityDate: "2026-04-01",
    bindings,
  });
  try {
    await fn(mf);
  } finally {
    await mf.dispose();
  }
}

Deno.test({
  name:
    "workerd: trigger() with ctx.waitUntil answers before a 1 s target and the hit arrives (fetch and socket)",
  async fn() {
    const slow = target(1_000);
    try {
      await withWorker("./_workers/trigger_worker.ts", async (mf) => {
        for (const transport of ["fetch", "socket", "auto"]) {
          const query = new URLSearchParams({ target: slow.url, transport });
          const before = slow.answered();
          const response = await mf.dispatchFetch(
            `http://worker.test/?${query}`,
          );
          const result = await response.json() as {
            ok: boolean;
            transport: string;
          };
          assert.equal(
            slow.answered(),
            before,
            "the worker answered before the target did",
          );
          assert.equal(result.ok, true, JSON.stringify(result));
          // On Workers, "auto" picks the raw socket from cloudflare:sockets.
          assert.equal(
            result.transport,
            transport === "fetch" ? "fetch" : "socket",
          );
          const hit = await slow.hits.take();
          assert.deepEqual(JSON.parse(hit.body), {
            from: "worker",
            mode: "now",
          });
        }
        // "accepted" over the socket waits for the status line.
        const query = new URLSearchParams({
          target: slow.url,
          wait: "accepted",
        });
        const result =
          await (await mf.dispatchFetch(`http://worker.test/?${query}`)).json();
        assert.deepEqual(result, {
          ok: true,
          transport: "socket",
          status: 202,
          code: null,
        });
        await slow.hits.take();
      });
    } finally {
      await slow.close();
    }
  },
});

Deno.test({
  name:
    "workerd: a trigger started after the response is lost without waitUntil and delivered with it",
  async fn() {
    const fast = target(0);
    try {
      await withWorker("./_workers/trigger_worker.ts", async (mf) => {
        const tries = 5;
        for (let i = 0; i < tries; i++) {
          const query = new URLSearchParams({
            target: fast.url,
            mode: "late-without-waitUntil",
          });
          assert.equal(
            await (await mf.dispatchFetch(`http://worker.test/?${query}`))
              .text(),
            "answered",
          );
        }
        await new Promise((r) => setTimeout(r, 1_000));
        assert.equal(
          fast.hits.size,
          0,
          "workerd cancelled every unkept trigger",
        );

        for (let i = 0; i < tries; i++) {
          const query = new URLSearchParams({
            target: fast.url,
            mode: "late-with-waitUntil",
          });
          assert.equal(
            await (await mf.dispatchFetch(`http://worker.test/?${query}`))
              .text(),
            "answered",
          );
        }
        for (let i = 0; i < tries; i++) {
          const hit = await fast.hits.take();
          assert.equal(JSON.parse(hit.body).mode, "late-with-waitUntil");
        }
      });
    } finally {
      await fast.close();
    }
  },
});

Deno.test({
  name:
    "workerd: connection({ ack: true }) answers 202 and its background work completes through executionCtx.waitUntil",
  async fn() {
    const reports = target(0);
    try {
      await withWorker("./_workers/hono_worker.ts", async (mf) => {
        const ids = [1, 2, 3];
        for (const id of ids) {
          const response = await mf.dispatchFetch("http://worker.test/jobs", {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ report: reports.url, id }),
          });
          assert.equal(response.status, 202);
          await response.arrayBuffer();
        }
        const seen = [];
        for (const _ of ids) {
          seen.push(JSON.parse((await reports.hits.take()).body));
        }
        assert.deepEqual(seen.map((s) => s.id).sort(), ids);
        assert.ok(seen.every((s) => s.status === 0), JSON.stringify(seen));
      });
    } finally {
      await reports.close();
    }
  },
});

Deno.test("workerd: the Cloudflare examples run as written (Worker, and Hono with an acknowledged trigger)", async () => {
  const jobs = target(0);
  try {
    await withWorker("../examples/cloudflare_worker.ts", async (mf) => {
      const response = await mf.dispatchFetch(
        "http://worker.test/?month=2026-08",
      );
      assert.deepEqual(await response.json(), {
        started: true,
        transport: "socket",
      });
      assert.deepEqual(JSON.parse((await jobs.hits.take()).body), {
        month: "2026-08",
      });
    }, { JOB_URL: jobs.url });

    await withWorker("../examples/cloudflare_hono.ts", async (mf) => {
      const response = await mf.dispatchFetch("http://worker.test/orders", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ id: 42 }),
      });
      assert.equal(response.status, 201);
      assert.deepEqual(await response.json(), { started: true });
      assert.deepEqual(JSON.parse((await jobs.hits.take()).body), { id: 42 });

      const ack = await mf.dispatchFetch("http://worker.test/jobs/report", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ id: 43 }),
      });
      assert.equal(ack.status, 202);
      await ack.arrayBuffer();
    }, { JOB_URL: jobs.url });
  } finally {
    await jobs.close();
  }
});
