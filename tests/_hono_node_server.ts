// Entry bundled for `node` by tests/hono/connection_test.ts: serves the test app through
// @hono/node-server on a loopback port, prints {"port":N}, exits on SIGTERM.
// Not in deno.json: only this test entry needs it.
// deno-lint-ignore no-import-prefix
import { serve } from "npm:@hono/node-server@^2.1.9";
import { createHonoTestApp } from "./_hono_app.ts";

declare const process: {
  on(event: string, listener: () => void): void;
  exit(code?: number): never;
};

const { app } = createHonoTestApp();
const server = serve(
  { fetch: app.fetch, hostname: "127.0.0.1", port: 0 },
  (info) => console.log(JSON.stringify({ port: info.port })),
);
process.on("SIGTERM", () => server.close(() => process.exit(0)));
