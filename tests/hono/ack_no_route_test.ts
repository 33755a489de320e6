// connection({ ack: true }) mounted with app.use() by prefix: a request
// that no route matches (a typo'd path, the wrong method) is not
// acknowledged. The 202 said a job was accepted that nothing ran, and
// verifyTrigger() in front took its id for done (the sender's retry: 200).
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  connection,
  type ConnectionEnv,
  drainBackground,
  verifyTrigger,
  type VerifyTriggerEnv,
} from "../../src/hono/mod.ts";
import { createSecret } from "../../mod.ts";
import { signedHeaders } from "../_signed.ts";

Deno.test("connection({ ack: true }) by app.use(): a path or method no route matches gets Hono's 404, not a 202; verifyTrigger() in front releases the id (the retry: 404 again, not 200 done)", async () => {
  const secret = createSecret();
  const ran: string[] = [];
  const app = new Hono<ConnectionEnv & VerifyTriggerEnv>();
  app.use("/jobs/*", verifyTrigger({ secret }), connection({ ack: true }));
  app.post("/jobs/report", (c) => {
    ran.push(c.var.trigger.id);
    return c.text("done");
  });
  const send = async (method: string, path: string, id: string) => {
    const body = `{"job":"${id}"}`;
    const response = await app.request(path, {
      method,
      body,
      headers: await signedHeaders(secret, body, { id }),
    });
    await response.body?.cancel();
    return response.status;
  };
  try {
    assert.equal(await send("POST", "/jobs/reprot", "msg_typo"), 404);
    assert.equal(await send("POST", "/jobs/reprot", "msg_typo"), 404);
    assert.equal(await send("PUT", "/jobs/report", "msg_put"), 404);
    assert.equal(await send("PUT", "/jobs/report", "msg_put"), 404);
    // The route that is there: acknowledged, run once, its retry done.
    assert.equal(await send("POST", "/jobs/report", "msg_ok"), 202);
    assert.equal(await drainBackground({ timeout: 10_000 }), true);
    assert.equal(await send("POST", "/jobs/report", "msg_ok"), 200);
    assert.deepEqual(ran, ["msg_ok"]);
  } finally {
    await drainBackground({ timeout: 10_000 });
  }
});

Deno.test("connection({ ack: true }) still acknowledges when the route follows as route-level middleware, behind more middleware, or in a sub-app with its own error handler", async () => {
  const ran: string[] = [];
  const app = new Hono<ConnectionEnv>();
  app.post("/inline", connection({ ack: true }), (c) => {
    ran.push("inline");
    return c.text("done");
  });
  app.use("/more/*", connection({ ack: true }));
  app.use("/more/*", async (_c, next) => {
    await next();
  });
  app.post("/more/job", () => {
    ran.push("more");
    return new Response("done");
  });
  const sub = new Hono<ConnectionEnv>();
  sub.onError((_error, c) => c.text("sub failed", 500));
  sub.post("/job", (c) => {
    ran.push("sub");
    return c.text("done");
  });
  app.use("/sub/*", connection({ ack: true }));
  app.route("/sub", sub);
  for (const path of ["/inline", "/more/job", "/sub/job"]) {
    const response = await app.request(path, { method: "POST", body: "x" });
    await response.body?.cancel();
    assert.equal(response.status, 202, path);
  }
  assert.equal(await drainBackground({ timeout: 10_000 }), true);
  assert.deepEqual(ran.sort(), ["inline", "more", "sub"]);
  // Only middleware after it on an unknown path: Hono's 404.
  const response = await app.request("/more/none", {
    method: "POST",
    body: "x",
  });
  await response.body?.cancel();
  assert.equal(response.status, 404);
});
