// verifyTrigger()'s own answers (401, 413, the duplicate's 200 and 429, the
// store's 503) keep what middleware before it set with c.header() (a
// request id, security headers), as connection()'s answers do; their own
// content type stays. Before, a bare Response carried none of them.
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  type ClaimResult,
  type DedupStore,
  MemoryDedupStore,
  verifyTrigger,
  type VerifyTriggerEnv,
} from "../../src/hono/mod.ts";
import { createSecret } from "../../mod.ts";
import { signedHeaders } from "../_signed.ts";

/** A store that answers every claim with `answer`. */
function fixedStore(answer: ClaimResult | Error): DedupStore {
  return {
    claim: () =>
      answer instanceof Error
        ? Promise.reject(answer)
        : Promise.resolve(answer),
    complete: () => Promise.resolve(),
    release: () => Promise.resolve(),
  };
}

function app(secret: string, store: DedupStore) {
  const app = new Hono<VerifyTriggerEnv>();
  app.use("*", async (c, next) => {
    c.header("x-request-id", "req-7");
    c.header("content-type", "application/json");
    c.header("set-cookie", "seen=1");
    await next();
  });
  app.post(
    "/job",
    verifyTrigger({
      secret,
      store,
      maxBodySize: 64,
      reportError() {},
    }),
    (c) => c.text("ran"),
  );
  return app;
}

Deno.test("verifyTrigger()'s own answers keep the headers earlier middleware set with c.header() (not its content type): 401, 413, duplicate 200 and 429, store 503", async () => {
  const secret = createSecret();
  const cases: Array<[string, DedupStore, () => Promise<RequestInit>, number]> =
    [
      ["unsigned", new MemoryDedupStore(), () => Promise.resolve({}), 401],
      ["too large", new MemoryDedupStore(), async () => {
        const body = "x".repeat(100);
        return {
          body,
          headers: await signedHeaders(secret, body, { id: "msg_big" }),
        };
      }, 413],
      ["done", fixedStore("done"), async () => ({
        body: "{}",
        headers: await signedHeaders(secret, "{}", { id: "msg_done" }),
      }), 200],
      ["busy", fixedStore("busy"), async () => ({
        body: "{}",
        headers: await signedHeaders(secret, "{}", { id: "msg_busy" }),
      }), 429],
      ["store down", fixedStore(new Error("down")), async () => ({
        body: "{}",
        headers: await signedHeaders(secret, "{}", { id: "msg_down" }),
      }), 503],
    ];
  for (const [name, store, init, status] of cases) {
    const response = await app(secret, store).request("/job", {
      method: "POST",
      ...(await init()),
    });
    const text = await response.text();
    assert.equal(response.status, status, `${name}: ${text}`);
    assert.notEqual(text, "ran", name);
    assert.equal(response.headers.get("x-request-id"), "req-7", name);
    assert.equal(response.headers.get("set-cookie"), "seen=1", name);
    assert.match(
      response.headers.get("content-type") ?? "",
      /^text\/plain/,
      name,
    );
  }
});
