// connection({ timeLimit }): once the limit has passed, a caller still
// waiting gets 503, whatever the route does next; the connection's own stop
// is not logged as an error. Real sockets: Deno.serve and fetch.
import assert from "node:assert/strict";
import { type Context, Hono } from "hono";
import {
  connection,
  type ConnectionEnv,
  ConnectionStatus,
  drainBackground,
} from "../../src/hono/mod.ts";
import { sleep } from "../_hono_client.ts";
import { until, within } from "../_wait.ts";

const LIMIT = 300;

/** Route styles: what a route does once its time limit has passed. */
function styles(upstream: string) {
  return {
    // Stops at the signal, then answers as if all went well.
    "returns 200 after the signal": async (c: RouteContext) => {
      const { signal } = c.var.connection;
      await new Promise((resolve) => signal.addEventListener("abort", resolve));
      return c.text("done");
    },
    // Passes the signal down (to fetch) and lets the TimeoutError propagate.
    "lets the TimeoutError of fetch propagate": async (c: RouteContext) => {
      const response = await fetch(upstream, {
        signal: c.var.connection.signal,
      });
      return c.text(await response.text());
    },
    // Throws the signal's reason itself.
    "throws signal.reason": async (c: RouteContext) => {
      const conn = c.var.connection;
      for (;;) {
        conn.signal.throwIfAborted();
        await sleep(10);
      }
    },
    // Never looks at the signal: works on and answers 200 late.
    "ignores the signal entirely": async (c: RouteContext) => {
      await sleep(LIMIT + 700);
      return c.text("done");
    },
    // Answers its own error at the signal.
    "answers its own 500 at the signal": async (c: RouteContext) => {
      const conn = c.var.connection;
      while (!conn.signal.aborted) await sleep(10);
      return c.text("stopped", 500);
    },
  };
}

type RouteContext = {
  var: { connection: ConnectionEnv["Variables"]["connection"] };
  text(text: string, status?: 500): Response;
};

/** A server that holds every request until its caller aborts. */
function serveUpstream(): { url: string; shutdown(): Promise<void> } {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) =>
      new Promise<Response>((resolve) => {
        const timer = setTimeout(() => resolve(new Response("late")), 10_000);
        request.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve(new Response("aborted"));
        });
      }),
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    shutdown: () => server.shutdown(),
  };
}

Deno.test("connection({ timeLimit }): the waiting caller gets 503 in every route style, nothing logged", async (t) => {
  const upstream = serveUpstream();
  const logged: unknown[][] = [];
  const realError = console.error;
  console.error = (...args: unknown[]) => void logged.push(args);
  const reported: unknown[] = [];
  const shutdown = new Map<string, number[]>();
  const app = new Hono<ConnectionEnv>(); // Hono's default error handler
  const routes = Object.entries(styles(upstream.url));
  routes.forEach(([name, route], i) => {
    app.get(
      `/style/${i}`,
      connection({
        timeLimit: LIMIT,
        reportError: (error) => void reported.push(error),
      }),
      (c) => {
        // A cleanup that takes a while: the route may answer meanwhile.
        c.var.connection.onShutdown(async (status) => {
          await sleep(50);
          shutdown.set(name, [...shutdown.get(name) ?? [], status]);
        });
        return route(c as unknown as RouteContext);
      },
    );
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    app.fetch,
  );
  try {
    for (const [i, [name]] of routes.entries()) {
      await t.step(name, async () => {
        const response = await fetch(
          `http://127.0.0.1:${server.addr.port}/style/${i}`,
          { signal: AbortSignal.timeout(10_000) },
        );
        assert.equal(response.status, 503, name);
        assert.equal(
          await response.text(),
          `Time limit exceeded: the route ran past ${LIMIT} ms\n`,
        );
        await until(() => shutdown.has(name), `${name}: shutdown`);
        assert.deepEqual(shutdown.get(name), [ConnectionStatus.TIMEOUT]);
      });
    }
    assert.equal(await drainBackground(), true);
  } finally {
    console.error = realError;
    await server.shutdown();
    await upstream.shutdown();
  }
  assert.deepEqual(logged, [], "nothing logged as an error");
  assert.deepEqual(reported, [], "nothing reported");
});

Deno.test("connection({ timeLimit }): an app.onError that answers getResponse() keeps the 503", async () => {
  const app = new Hono<ConnectionEnv>();
  const seen: string[] = [];
  app.onError((error, c) => {
    seen.push(error.name);
    if ("getResponse" in error) {
      return (error as { getResponse(): Response }).getResponse();
    }
    return c.text("Internal Server Error", 500);
  });
  app.get("/", connection({ timeLimit: 50 }), async (c) => {
    for (;;) {
      c.var.connection.signal.throwIfAborted();
      await sleep(5);
    }
  });
  const response = await app.request("/");
  assert.equal(response.status, 503);
  await response.body?.cancel();
  assert.equal(await drainBackground(), true);
  assert.deepEqual(seen, ["TimeoutError"]);
});

Deno.test("an early 503 or 499 keeps the headers earlier middleware set (hono's cors()), not the route's", async () => {
  const { cors } = await import("npm:hono@^4.13.19/cors");
  const app = new Hono<ConnectionEnv>();
  app.use(
    "*",
    cors({ origin: "https://app.example", exposeHeaders: ["x-job"] }),
  );
  app.use("*", async (c, next) => {
    c.header("set-cookie", "a=1");
    c.header("set-cookie", "b=2", { append: true });
    await next();
  });
  const route = async (c: Context<ConnectionEnv>) => {
    c.header("x-route", "set before the end");
    c.header("content-type", "application/json");
    await sleep(200); // ignores the signal
    return c.json({ late: true });
  };
  app.get("/limit", connection({ timeLimit: 50 }), route);
  app.get("/gone", connection(), route);
  const origin = { origin: "https://app.example" };
  const limited = await app.request("/limit", { headers: origin });
  const stop = new AbortController();
  const gonePromise = app.request("/gone", {
    headers: origin,
    signal: stop.signal,
  });
  await sleep(20);
  stop.abort();
  const gone = await gonePromise;
  assert.equal(limited.status, 503);
  assert.equal(gone.status, 499);
  for (const response of [limited, gone]) {
    assert.equal(
      response.headers.get("access-control-allow-origin"),
      "https://app.example",
    );
    assert.equal(
      response.headers.get("access-control-expose-headers"),
      "x-job",
    );
    assert.deepEqual(response.headers.getSetCookie(), ["a=1", "b=2"]);
    assert.equal(response.headers.get("x-route"), null, "the route's header");
    await response.body?.cancel();
  }
  assert.equal(
    limited.headers.get("content-type"),
    "text/plain; charset=UTF-8",
  );
  assert.equal(gone.headers.get("content-type"), null);
  assert.equal(await drainBackground(), true);
});

Deno.test("an early 503 keeps headers set with c.header() alone, before Hono made c.res", async () => {
  const app = new Hono<ConnectionEnv>();
  app.use("*", async (c, next) => {
    c.header("x-request-id", "r-1");
    c.header("content-type", "application/json"); // not kept: the 503's own
    await next();
  });
  app.get("/limit", connection({ timeLimit: 30 }), async (c) => {
    c.header("x-route", "set before the end");
    await sleep(150); // ignores the signal
    return c.text("late");
  });
  app.get("/fast", connection({ timeLimit: 1_000 }), (c) => c.text("ok"));
  const limited = await app.request("/limit");
  assert.equal(limited.status, 503);
  assert.equal(limited.headers.get("x-request-id"), "r-1");
  assert.equal(limited.headers.get("x-route"), null, "the route's header");
  assert.equal(
    limited.headers.get("content-type"),
    "text/plain; charset=UTF-8",
  );
  await limited.body?.cancel();
  // The route's own answer keeps them too, as without connection().
  const fast = await app.request("/fast");
  assert.equal(fast.status, 200);
  assert.equal(fast.headers.get("x-request-id"), "r-1");
  assert.equal(await fast.text(), "ok");
  assert.equal(await drainBackground(), true);
});

Deno.test("an early 503 keeps earlier headers however connection() is reached: first handler, wrapped, inside every()", async () => {
  const { every } = await import("npm:hono@^4.13.19/combine");
  const app = new Hono<ConnectionEnv>();
  // One instance everywhere: the first handler of one route, wrapped by
  // another middleware, inside hono's every() behind app middleware or
  // behind another middleware inside every().
  const limit = connection({ timeLimit: 30 });
  const route = async (c: Context<ConnectionEnv>) => {
    c.header("x-route", "set before the end");
    await sleep(150); // ignores the signal
    return c.text("late");
  };
  app.get("/first", limit, route);
  app.get("/wrapped", async (c, next) => {
    c.header("x-before", "wrapper");
    return await limit(c, next);
  }, route);
  app.use("/every-after", async (c, next) => {
    c.header("x-before", "app middleware");
    await next();
  });
  app.get("/every-after", every(limit), route);
  app.get(
    "/every-first",
    every(async (c, next) => {
      c.header("x-before", "inside every()");
      await next();
    }, limit),
    route,
  );
  const expected: Record<string, string | null> = {
    "/first": null,
    "/wrapped": "wrapper",
    "/every-after": "app middleware",
    "/every-first": "inside every()",
  };
  for (const [path, before] of Object.entries(expected)) {
    const response = await app.request(path);
    assert.equal(response.status, 503, path);
    assert.equal(response.headers.get("x-before"), before, path);
    assert.equal(response.headers.get("x-route"), null, `${path}: the route's`);
    assert.equal(
      response.headers.get("content-type"),
      "text/plain; charset=UTF-8",
      path,
    );
    assert.match(await response.text(), /Time limit exceeded/, path);
  }
  assert.equal(await drainBackground(), true);
});

Deno.test("a wrapper whose next resolves with a string: connection() still sees the route's end (not an early one)", async () => {
  for (const timeLimit of [0, 200]) {
    const app = new Hono();
    const limit = connection({ timeLimit });
    app.get(
      "/w",
      // A logging wrapper, untyped, whose next resolves with a label.
      (c, next) => {
        // deno-lint-ignore no-explicit-any
        const untyped = limit as any;
        return untyped(c, async () => {
          await next();
          return "done";
        });
      },
      (c) => c.text("route answered"),
    );
    const response = await within(
      Promise.resolve(app.request("/w")),
      "the answer",
    );
    assert.equal(response.status, 200, `timeLimit ${timeLimit}`);
    assert.equal(await response.text(), "route answered");
  }
  assert.equal(await drainBackground(), true);
});
