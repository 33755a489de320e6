// A trigger's id may be long (a `sign.id` or a caller's `webhook-id` header
// up to 256 characters; longer ones from before ids were checked): the
// dashboard's buttons for its dead letter work (they answered 400 "at most
// 1000 ids" past 200 characters).
import assert from "node:assert/strict";
import { openOutbox } from "../../src/durable/mod.ts";
import { dashboard } from "../../src/durable/dashboard/mod.ts";
import { createSecret } from "../../mod.ts";
import { openEngine } from "../../src/durable/_engine.ts";
import { checkOpenOptions } from "../../src/durable/_validate.ts";
import { until } from "../_wait.ts";

Deno.test("the dashboard redrives and discards dead letters whose ids are 256 and 1,000 characters long", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox_long_id_" });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(null, { status: 404 }),
  );
  let outbox = await openOutbox({ dir, onEvent() {} });
  try {
    const target = `http://127.0.0.1:${server.addr.port}`;
    const signedId = "s".repeat(256);
    const headerId = "h".repeat(1_000);
    await outbox.trigger(`${target}/a`, {
      sign: { secret: createSecret(), id: signedId },
    });
    // Stored before a header's id was checked (refused now): made here by
    // changing a stored one.
    await outbox.trigger(`${target}/b`, {
      headers: { "webhook-id": "stored-before" },
    });
    await outbox.stop();
    const db = await openEngine(checkOpenOptions({ dir }), () => {});
    try {
      await db.transaction("a long id", (sql) =>
        sql.executeSql(
          `UPDATE pgboss.job SET data = jsonb_set(data, '{id}', to_jsonb($1::text))
            WHERE data->>'id' = 'stored-before'`,
          [headerId],
        ), "(unknown)");
    } finally {
      await db.close();
    }
    outbox = await openOutbox({ dir, onEvent() {} });
    outbox.start({ pollInterval: 50 });
    await until(
      async () => (await outbox.stats()).dead === 2,
      "two dead letters",
    );
    await outbox.stop({ close: false });

    const token = "a-long-random-token-0123";
    const dash = dashboard(outbox, { token });
    const auth = { authorization: `Bearer ${token}` };
    const page = await (await dash.fetch(
      new Request("http://127.0.0.1/dead", { headers: auth }),
    )).text();
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page)![1];
    const post = async (path: string, fields: [string, string][]) => {
      const response = await dash.fetch(
        new Request(`http://127.0.0.1${path}`, {
          method: "POST",
          headers: {
            ...auth,
            "content-type": "application/x-www-form-urlencoded",
          },
          body: new URLSearchParams([["_csrf", csrf], ...fields]),
        }),
      );
      await response.body?.cancel();
      return [response.status, response.headers.get("location")];
    };
    assert.deepEqual(await post("/dead/discard", [["one", headerId]]), [
      303,
      "/dead?done=discarded&n=1",
    ]);
    assert.deepEqual(await post("/dead/redrive", [["id", signedId]]), [
      303,
      "/dead?done=redriven&n=1",
    ]);
    assert.equal((await outbox.stats()).dead, 0);
  } finally {
    await outbox.stop();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
