// trigger() and the Hono helper inside workerd (Cloudflare's runtime), through
// Miniflare: the module is bundled for the browser platform and loaded as an
// ES module worker.
import assert from "node:assert/strict";
import { Miniflare } from "npm:miniflare@4.20260426.0";
import { Queue } from "../_servers.ts";
import { bundle } from "../_bundle.ts";
import net from "node:net";

/**
 * A Deno.serve target that reads the body, then answers after `delay` ms,
 * and records each request when it answers: `cut` says whether the caller
 * had gone by then (the request's signal aborts when the client leaves).
 */
function target(delay: number) {
  const hits = new Queue<{ body: string; cut: boolean }>();
  /** Every hit by the `id` in its query, for tests that wait by id. */
  const byId = new Map<string, { body: string; cut: boolean }>();
  let answered = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const id = new URL(request.url).searchParams.get("id");
      // A caller that leaves during the body is cut short too.
      const body = await request.text().catch(() => null);
      if (body === null) {
        if (id) byId.set(id, { body: "", cut: true });
        return new Response(null, { status: 400 });
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        request.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
      hits.push({ body, cut: request.signal.aborted });
      if (id) byId.set(id, { body, cut: request.signal.aborted });
      if (!request.signal.aborted) answered++;
      return new Response(null, { status: 202 });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/job`,
    hits,
    byId,
    answered: () => answered,
    close: () => server.shutdown(),
  };
}

/** The next item of `queue`, or a failure naming `what` after `ms`. */
async function take<T>(queue: Queue<T>, what: string, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      queue.take(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no ${what} within ${ms} ms`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits up to `ms` for `check()` to return a value; undefined after. */
async function poll<T>(
  check: () => T | undefined,
  ms: number,
): Promise<T | undefined> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const value = check();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}

async function withWorker<T>(
  entry: string,
  fn: (mf: Miniflare) => Promise<T>,
  bindings: Record<string, string> = {},
  compatibilityFlags: string[] = [],
): Promise<T> {
  // Named, so that the service binding SELF can point at the Worker itself.
  const mf = new Miniflare({
    name: "worker",
    modules: [{
      type: "ESModule",
      path: "worker.mjs",
      contents: await bundle(entry),
    }],
    compatibilityDate: "2026-04-01",
    compatibilityFlags,
    bindings,
    serviceBindings: { SELF: "worker" },
  });
  try {
    return await fn(mf);
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
          // On Workers, "auto" picks fetch: the raw socket only on request.
          assert.equal(
            result.transport,
            transport === "socket" ? "socket" : "fetch",
          );
          const hit = await take(slow.hits, `the ${transport} hit`);
          assert.equal(hit.cut, false, "ctx.waitUntil kept the caller");
          assert.deepEqual(JSON.parse(hit.body), {
            from: "worker",
            mode: "now",
          });
        }
        // "accepted" waits for the status line, over fetch by default.
        const query = new URLSearchParams({
          target: slow.url,
          wait: "accepted",
        });
        const result =
          await (await mf.dispatchFetch(`http://worker.test/?${query}`)).json();
        assert.deepEqual(result, {
          ok: true,
          transport: "fetch",
          status: 202,
          code: null,
        });
        await take(slow.hits, "the accepted hit");
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
          const hit = await take(fast.hits, `kept hit ${i + 1}`);
          assert.equal(JSON.parse(hit.body).mode, "late-with-waitUntil");
        }
      });
    } finally {
      await fast.close();
    }
  },
});

/** How many fresh isolates run each case of the waitUntil test at once. */
const ATTEMPTS = 3;

Deno.test({
  name:
    "workerd: the background part outlives the response with ctx.waitUntil or the one discovered in cloudflare:workers, and is cut without (fetch and socket)",
  async fn() {
    // The target answers 1.5 s after reading the body, and notes whether its
    // caller was still there. workerd cancels a request's unkept I/O once its
    // response is sent, but not every time: an unkept fetch already fully
    // sent escaped in 2 of 12 tries here. So each case runs in 3 fresh
    // isolates at once (fresh: no other request holds workerd's request
    // context open, and "discovered" meets cloudflare:workers not yet
    // loaded). Kept: all 3 answered. Unkept: at least one cut, which shows
    // this target can tell; a trigger keeping nothing alive passes all 3
    // kept runs about once in 300.
    const late = target(1_500);
    const attempt = (transport: string, keep: string, n: number) =>
      withWorker("./_workers/trigger_worker.ts", async (mf) => {
        const id = `${transport}-${keep}-${n}`;
        const query = new URLSearchParams({
          target: `${late.url}?id=${id}`,
          transport,
          keep,
        });
        const result = await (await mf.dispatchFetch(
          `http://worker.test/?${query}`,
        )).json();
        // The worker answered before the target did (a cut caller may have
        // been noted already).
        assert.notEqual(late.byId.get(id)?.cut, false, `${id}: answered late`);
        assert.deepEqual(
          result,
          { ok: true, transport, status: null, code: null },
          id,
        );
        // Past the target's 1.5 s, with room for a slow machine.
        return await poll(() => late.byId.get(id), 6_000);
      });
    try {
      for (const transport of ["fetch", "socket"]) {
        for (const keep of ["discovered", "explicit", "unkept"]) {
          const hits = await Promise.all(
            Array.from(
              { length: ATTEMPTS },
              (_, n) => attempt(transport, keep, n),
            ),
          );
          const delivered = hits.filter((hit) => hit?.cut === false);
          if (keep === "unkept") {
            assert.ok(
              delivered.length < ATTEMPTS,
              `${transport}-unkept: all ${ATTEMPTS} delivered in full, so this target cannot tell`,
            );
          } else {
            assert.equal(
              delivered.length,
              ATTEMPTS,
              `${transport}-${keep}: cut short ${JSON.stringify(hits)}`,
            );
            for (const hit of delivered) {
              assert.equal(JSON.parse(hit!.body).keep, keep);
            }
          }
        }
      }
    } finally {
      await late.close();
    }
  },
});

Deno.test({
  name:
    "workerd: the fetch option carries a self-trigger through a service binding (env.SELF) and auto picks fetch",
  async fn() {
    const jobs = target(0);
    try {
      await withWorker("./_workers/trigger_worker.ts", async (mf) => {
        const query = new URLSearchParams({ target: jobs.url, mode: "self" });
        const response = await mf.dispatchFetch(`http://worker.test/?${query}`);
        assert.deepEqual(await response.json(), {
          ok: true,
          transport: "fetch",
          status: 202,
        });
        const hit = await take(jobs.hits, "the self-triggered job's hit");
        assert.deepEqual(JSON.parse(hit.body), {
          from: "worker",
          mode: "self",
        });
      });
    } finally {
      await jobs.close();
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
          seen.push(JSON.parse((await take(reports.hits, "a report")).body));
        }
        assert.deepEqual(seen.map((s) => s.id).sort(), ids);
        assert.ok(seen.every((s) => s.status === 0), JSON.stringify(seen));
      });
    } finally {
      await reports.close();
    }
  },
});

Deno.test("workerd: the Cloudflare examples run as written (a Worker over fetch, and Hono triggering itself through SELF with an acknowledged route)", async () => {
  const jobs = target(0);
  try {
    await withWorker(
      "../examples/cloudflare-worker/src/index.ts",
      async (mf) => {
        const response = await mf.dispatchFetch(
          "http://worker.test/?month=2026-08",
        );
        assert.deepEqual(await response.json(), {
          started: true,
          transport: "fetch",
        });
        const hit = await take(jobs.hits, "the Worker example's job");
        assert.deepEqual(JSON.parse(hit.body), { month: "2026-08" });
        assert.equal(hit.cut, false);
      },
      { JOB_URL: jobs.url },
    );

    await withWorker(
      "../examples/cloudflare-hono/src/index.ts",
      async (mf) => {
        const response = await mf.dispatchFetch("http://worker.test/orders", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ id: 42 }),
        });
        assert.equal(response.status, 201);
        assert.deepEqual(await response.json(), { started: true });
      },
    );
  } finally {
    await jobs.close();
  }
});

Deno.test({
  name:
    "workerd: without navigator (no_global_navigator) and with nodejs_compat's process, auto still picks fetch",
  async fn() {
    const slow = target(0);
    try {
      await withWorker(
        "./_workers/trigger_worker.ts",
        async (mf) => {
          // The flags took: no navigator, and a process that reports Node.
          const globals = await mf.dispatchFetch("http://worker.test/globals");
          assert.deepEqual(await globals.json(), {
            navigator: "undefined",
            node: "string",
          });
          const query = new URLSearchParams({ target: slow.url });
          const response = await mf.dispatchFetch(
            `http://worker.test/?${query}`,
          );
          const result = await response.json() as {
            ok: boolean;
            transport: string;
          };
          assert.equal(result.ok, true, JSON.stringify(result));
          // Identified as Workers by workerd's own global, not as Node.
          assert.equal(result.transport, "fetch", JSON.stringify(result));
          await take(slow.hits, "the hit");
        },
        {},
        ["no_global_navigator", "nodejs_compat"],
      );
    } finally {
      await slow.close();
    }
  },
});

/** The worker's query for an 8 MB text body over `transport: "socket"` to
 * `listener`, in `wait` mode, with `timeout` ms. */
function bigSocketTrigger(
  listener: Deno.Listener,
  wait: string,
  timeout: number,
): URLSearchParams {
  return new URLSearchParams({
    target: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/job`,
    transport: "socket",
    wait,
    size: String(8 * 1024 * 1024),
    timeout: String(timeout),
  });
}

Deno.test({
  name:
    "workerd: a socket trigger whose server stops reading a large body settles at its timeout (workerd's close() waited for the write forever)",
  async fn() {
    // Takes connections and never reads them: the body fills the buffers.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const conn of listener) held.push(conn);
    })().catch(() => {});
    try {
      await withWorker("./_workers/trigger_worker.ts", async (mf) => {
        for (const wait of ["accepted", "sent"]) {
          const query = bigSocketTrigger(listener, wait, 1_000);
          // A bound on the wait, far above the timeout: not a timing check.
          const answered = await Promise.race([
            mf.dispatchFetch(`http://worker.test/?${query}`).then((r) =>
              r.json()
            ),
            new Promise((resolve) =>
              setTimeout(() => resolve("no answer within 20 s"), 20_000)
            ),
          ]);
          assert.deepEqual(answered, {
            ok: false,
            transport: "socket",
            status: null,
            code: "TIMEOUT",
          }, wait);
        }
      });
    } finally {
      listener.close();
      for (const conn of held) conn.close();
      await accepting;
    }
  },
});

Deno.test({
  name:
    "workerd: a 413 the server sends mid-upload, then resets, is the socket trigger's answer (a read started after the failed write got nothing)",
  async fn() {
    // Reads the head, answers 413, then closes with the body unread: the
    // kernel resets the connection.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const serving = (async () => {
      for await (const conn of listener) {
        (async () => {
          const buffer = new Uint8Array(65_536);
          let seen = "";
          while (!seen.includes("\r\n\r\n")) {
            const n = await conn.read(buffer);
            if (n === null) break;
            seen += new TextDecoder().decode(buffer.subarray(0, n));
          }
          await conn.write(
            new TextEncoder().encode(
              "HTTP/1.1 413 Content Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            ),
          );
          await new Promise((resolve) => setTimeout(resolve, 20));
          conn.close();
        })().catch(() => {});
      }
    })().catch(() => {});
    try {
      await withWorker("./_workers/trigger_worker.ts", async (mf) => {
        for (const wait of ["accepted", "sent"]) {
          const query = bigSocketTrigger(listener, wait, 10_000);
          const response = await mf.dispatchFetch(
            `http://worker.test/?${query}`,
          );
          assert.deepEqual(await response.json(), {
            ok: false,
            transport: "socket",
            status: 413,
            code: "HTTP_STATUS",
          }, wait);
        }
      });
    } finally {
      listener.close();
      await serving;
    }
  },
});

// A reset instead of a close ends the request's whole context in workerd:
// nothing after it runs, the route's wrapper included (before and after).
Deno.test("workerd: a caller that closes in the middle of an acknowledged route's body is ABORTED and answered 499, the route never runs (it was Hono's 500 and NORMAL: workerd's read fails with \"Network connection lost.\", its signal quiet)", async () => {
  const mf = new Miniflare({
    modules: [{
      type: "ESModule",
      path: "worker.mjs",
      contents: await bundle("./_workers/ack_leave_worker.ts"),
    }],
    compatibilityDate: "2026-04-01",
  });
  try {
    const url = await mf.ready;
    for (const how of ["close"] as const) {
      const socket = net.connect(Number(url.port), url.hostname);
      socket.on("error", () => {});
      await new Promise((resolve) => socket.once("connect", resolve));
      socket.write(
        `POST /job HTTP/1.1\r\nHost: worker\r\nContent-Length: 5000\r\n\r\n${
          "a".repeat(1000)
        }`,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      socket.destroy();
      let log: string[] = [];
      const end = performance.now() + 10_000;
      while (log.length === 0 && performance.now() < end) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        log = await (await fetch(new URL("/log", url))).json();
      }
      assert.deepEqual(log, ["499 status 1"], how);
    }
  } finally {
    await mf.dispose();
  }
});
