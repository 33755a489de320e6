// Entry run in a `deno` subprocess by tests/hono/connection_test.ts (with
// the runtime flags under test, such as --unstable-no-legacy-abort): serves
// the test app on Deno.serve on a loopback port, prints {"port":N}, drains
// the background work and exits on SIGTERM.
import { drainBackground } from "../src/hono/mod.ts";
import { createHonoTestApp } from "./_hono_app.ts";

const { app } = createHonoTestApp();
const server = Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(JSON.stringify({ port })),
}, app.fetch);
Deno.addSignalListener("SIGTERM", async () => {
  await drainBackground({ timeout: 10_000 });
  await server.shutdown();
  Deno.exit(0);
});
