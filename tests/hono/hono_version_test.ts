// ./hono depends on no Hono version's types (src/hono/context.ts is
// structural): a user's app on Hono 4.7.0 type-checks with it, as one on the
// current 4.x does (the other tests). Checked in a folder of its own with
// its own import map, like a user's project.
import assert from "node:assert/strict";

const HONO = new URL("../../src/hono/mod.ts", import.meta.url).href;

const APP = `
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import {
  connection,
  type ConnectionEnv,
  drainBackground,
  verifyTrigger,
  type VerifyTriggerEnv,
} from "${HONO}";

const app = new Hono<ConnectionEnv & VerifyTriggerEnv>();
app.onError((error, c) => {
  if (error instanceof HTTPException || "getResponse" in error) {
    return (error as HTTPException).getResponse();
  }
  return c.text("Internal Server Error", 500);
});
app.post(
  "/jobs/report",
  verifyTrigger({ secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }),
  connection({ ack: true, timeLimit: 60_000 }),
  async (c) => {
    const conn = c.var.connection;
    conn.onShutdown((status) => console.log(status, c.var.trigger.id));
    const { month } = await c.req.json<{ month: string }>();
    if (conn.signal.aborted) return;
    return c.json({ month });
  },
);
app.use("/slow/*", connection({ timeLimit: 5_000 }));
app.get("/slow/report", (c) => c.text(String(c.var.connection.status)));
export default { fetch: app.fetch, drain: drainBackground };
`;

Deno.test("a user's app on hono@4.7.0 type-checks with ./hono", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hono_4_7_" });
  try {
    await Deno.writeTextFile(
      `${dir}/deno.json`,
      JSON.stringify({
        imports: { hono: "npm:hono@4.7.0", "hono/": "npm:/hono@4.7.0/" },
      }),
    );
    await Deno.writeTextFile(`${dir}/app.ts`, APP);
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["check", "app.ts"],
      cwd: dir,
      stdout: "null",
      stderr: "piped",
      signal: AbortSignal.timeout(120_000),
    }).output();
    const errors = new TextDecoder().decode(stderr);
    assert.equal(code, 0, errors);
    // It really was 4.7.0 that was checked against.
    const lock = await Deno.readTextFile(`${dir}/deno.lock`);
    assert.match(lock, /hono@4\.7\.0/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
