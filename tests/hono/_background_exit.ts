// Run by tests/hono/drain_test.ts: answers one acknowledged request whose
// job outlives the process, then exits; with "drain", waits for it first.
import { Hono } from "hono";
import { connection, drainBackground } from "../../src/hono/mod.ts";

const app = new Hono();
app.post("/job", connection({ ack: true }), async (c) => {
  await new Promise((resolve) => setTimeout(resolve, 200));
  return c.body(null, 204);
});
const response = await app.request("/job", { method: "POST", body: "x" });
console.log(response.status);
if (Deno.args[0] === "drain") await drainBackground({ timeout: 5_000 });
Deno.exit(0);
