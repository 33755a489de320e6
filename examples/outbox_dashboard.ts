// The outbox dashboard on a seeded embedded outbox.
//
//   DASHBOARD_TOKEN=$(openssl rand -hex 16) deno run -A examples/outbox_dashboard.ts
//
// Opens an embedded outbox in a temporary directory, seeds it (deliveries to
// a local target, one job retrying, one dead letter whose body is
// `<script>alert(1)</script>`), and serves the dashboard on
// 127.0.0.1:$PORT (default 8787) behind $DASHBOARD_TOKEN, sent as
// `Authorization: Bearer <token>` (a browser's login prompt takes it as the
// password, any user name). Runs until stopped (Ctrl-C).
import { Hono } from "npm:hono@^4.13.19";
import { openOutbox } from "../src/durable/mod.ts";
import { dashboard } from "../src/durable/dashboard/mod.ts";

const token = Deno.env.get("DASHBOARD_TOKEN");
if (token === undefined || token.length < 16) {
  console.error(
    "Set DASHBOARD_TOKEN to a token of at least 16 characters, e.g.\n  DASHBOARD_TOKEN=$(openssl rand -hex 16) deno run -A examples/outbox_dashboard.ts",
  );
  Deno.exit(2);
}
const port = Number(Deno.env.get("PORT") ?? 8787);

// A local target: /ok answers 200, /flaky 503 (retried), /gone 404 (dead).
const target = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  (request) => {
    const path = new URL(request.url).pathname;
    const status = path === "/flaky" ? 503 : path === "/gone" ? 404 : 200;
    return new Response(null, { status });
  },
);
const targetUrl = `http://127.0.0.1:${target.addr.port}`;

const dir = await Deno.makeTempDir({ prefix: "outbox_dashboard_" });
const outbox = await openOutbox({ dir });
for (let i = 0; i < 5; i++) {
  await outbox.trigger(`${targetUrl}/ok`, { json: { report: i } });
}
await outbox.trigger(`${targetUrl}/flaky`, {
  json: { flaky: true },
  retry: { limit: 5, delay: 600_000, backoff: false },
});
await outbox.trigger(`${targetUrl}/gone`, {
  body: "<script>alert(1)</script>",
  headers: { "content-type": "text/html" },
});
outbox.start();
const deadline = Date.now() + 30_000;
for (;;) {
  const stats = await outbox.stats();
  if (stats.dead === 1 && stats.active === 0 && stats.queued === 1) break;
  if (Date.now() > deadline) {
    throw new Error(`Seeding timed out: ${JSON.stringify(stats)}`);
  }
  await new Promise((r) => setTimeout(r, 100));
}

const app = new Hono();
app.get("/", (c) => c.redirect("/outbox"));
const dash = dashboard(outbox, { token, path: "/outbox" });
app.all(`${dash.path}/*`, (c) => dash.fetch(c.req.raw));
const server = Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen({ hostname, port }) {
    console.log(`Dashboard: http://${hostname}:${port}/outbox`);
    console.log(
      `  curl -H "Authorization: Bearer $DASHBOARD_TOKEN" http://${hostname}:${port}/outbox`,
    );
  },
}, app.fetch);

const stop = Promise.withResolvers<void>();
Deno.addSignalListener("SIGINT", () => stop.resolve());
if (Deno.build.os !== "windows") {
  Deno.addSignalListener("SIGTERM", () => stop.resolve());
}
await stop.promise;
await server.shutdown();
await outbox.stop({ timeout: 1_000 });
await target.shutdown();
await Deno.remove(dir, { recursive: true });
