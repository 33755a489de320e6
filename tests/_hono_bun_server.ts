// Entry bundled for `bun` by tests/hono/connection_test.ts: serves the test
// app through Bun.serve on a loopback port, prints {"port":N}, exits on
// SIGTERM.
import { createHonoTestApp } from "./_hono_app.ts";

declare const Bun: {
  serve(options: {
    fetch: (request: Request, server: unknown) => Response | Promise<Response>;
    hostname: string;
    port: number;
  }): { port: number; stop(closeActive?: boolean): Promise<void> };
};
declare const process: {
  on(event: string, listener: () => void): void;
  exit(code?: number): never;
};

const { app } = createHonoTestApp();
const server = Bun.serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 });
console.log(JSON.stringify({ port: server.port }));
process.on("SIGTERM", () => server.stop(true).then(() => process.exit(0)));
