// The throughput and resources target: a Hono app on Deno.serve, in its own
// process, with one route behind `connection({ ack: true })` that answers 202
// at once and then, in the background, reads the JSON body and records its
// id. Prints its port, then serves until `POST /shutdown`.
//
//   POST /job      {"id": n}  → 202; background: id recorded (completed)
//   GET  /count    waits for background work (drainBackground), then
//                  {acknowledged, completed, distinct, connections}
//   POST /reset    zeroes the counts
//   POST /shutdown stops the server
import { Hono } from "hono";
import {
  connection,
  type ConnectionEnv,
  drainBackground,
} from "../src/hono/mod.ts";

let acknowledged = 0;
let completed = 0;
let seen = new Set<number>();
let ports = new Set<number>();

const app = new Hono<ConnectionEnv & { Bindings: Deno.ServeHandlerInfo }>();
app.post(
  "/job",
  async (c, next) => {
    ports.add((c.env.remoteAddr as Deno.NetAddr).port);
    acknowledged++;
    await next();
  },
  connection({ ack: true }),
  async (c) => {
    const { id } = await c.req.json();
    seen.add(id);
    completed++;
  },
);
app.get("/count", async (c) => {
  await drainBackground();
  return c.json({
    acknowledged,
    completed,
    distinct: seen.size,
    connections: ports.size,
  });
});
app.post("/reset", async (c) => {
  await drainBackground();
  acknowledged = completed = 0;
  seen = new Set();
  ports = new Set();
  return c.body(null, 204);
});
app.post("/shutdown", (c) => {
  queueMicrotask(() => server.shutdown());
  return c.body(null, 204);
});

const server = Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(port),
}, (request, info) => app.fetch(request, info));
