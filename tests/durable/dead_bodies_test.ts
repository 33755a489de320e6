// The dead letter list reads of each body only what it shows (a preview of
// `bodyLimit` chars), with its size: it read every body whole (14 dead
// letters of 64 MiB took 19 s and 1.6 GB to list). What it shows is what a
// whole read shows, for text (a multi-byte char cut at the preview's edge
// included), binary, short, empty and absent bodies.
import assert from "node:assert/strict";
import { openOutbox } from "../../src/durable/mod.ts";
import {
  ADMIN,
  type Administered,
  adminOf,
} from "../../src/durable/_admin_queries.ts";
import { deadLetterPage } from "../../src/durable/_pgboss_sql.ts";
import { until } from "../_wait.ts";

Deno.test("deadLetters(): body previews and sizes from a bounded read, as a whole read gives them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox_dead_bodies_" });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      await request.arrayBuffer();
      return new Response(null, { status: 404 });
    },
  );
  const outbox = await openOutbox({ dir, onEvent() {} });
  try {
    const url = `http://127.0.0.1:${server.addr.port}/x`;
    const bodies: Record<string, string | Uint8Array | undefined> = {
      long: "é€😀a".repeat(50_000),
      binary: new Uint8Array([0xff, 0xfe, 0x00, 0x41]),
      late: new Uint8Array([
        ...new TextEncoder().encode("ok".repeat(100)),
        0xff,
      ]),
      short: "hi",
      one: "a",
      two: "ab",
      empty: "",
      none: undefined,
    };
    const ids: Record<string, string> = {};
    for (const [name, body] of Object.entries(bodies)) {
      ids[name] = (await outbox.trigger(url, {
        method: body === undefined ? "DELETE" : "POST",
        body,
        headers: { "webhook-id": `msg_${name}` },
      })).id;
    }
    outbox.start({ pollInterval: 50 });
    await until(
      async () => (await outbox.stats()).dead === 8,
      "8 dead letters",
    );
    await outbox.stop({ close: false });
    const admin = adminOf(outbox);
    const handle = (outbox as unknown as Administered)[ADMIN]();
    // Rows stored before bodies had their size stored: it is worked out.
    const legacy = () =>
      handle.db.executeSql(
        `UPDATE ${handle.schema}.job SET data = data - 'bodySize'
         WHERE name = $1`,
        [handle.dead],
      );
    const limits: Array<number | "legacy"> = [
      1,
      7,
      100,
      2_000,
      "legacy",
      7,
      2_000,
    ];
    for (const limit of limits) {
      if (limit === "legacy") {
        await legacy();
        continue;
      }
      const bodyLimit: number = limit;
      const { letters } = await admin.deadLetters({ bodyLimit });
      assert.equal(letters.length, 8);
      for (const letter of letters) {
        const whole = (await admin.history(letter.id, { bodyLimit }))!.job;
        const name = letter.id.slice(4);
        const shown = {
          body: letter.body,
          size: letter.bodySize,
          truncated: letter.bodyTruncated,
          binary: letter.bodyBinary,
        };
        // "late": invalid UTF-8 only past the preview: shown as text, cut.
        // (The bytes a preview of bodyLimit chars reads: 4 a char, and 4.)
        const read = Math.ceil((4 * (bodyLimit + 1)) / 3) * 3;
        if (name === "late" && read < 201) {
          assert.deepEqual(shown, {
            body: "ok".repeat(100).slice(0, bodyLimit),
            size: 201,
            truncated: true,
            binary: false,
          });
          continue;
        }
        assert.deepEqual(shown, {
          body: whole.body,
          size: whole.bodySize,
          truncated: whole.bodyTruncated,
          binary: whole.bodyBinary,
        }, `${name}, bodyLimit ${bodyLimit}`);
      }
    }
    // A preview as large as the dashboard takes (any whole number).
    assert.equal(
      (await admin.deadLetters({ bodyLimit: 500_000_000 })).letters.length,
      8,
    );
    // What leaves the database: no body in `data`, a bounded head of it.
    const rows = await deadLetterPage(
      handle.db,
      handle.schema,
      handle.dead,
      100,
      0,
      2_700,
    );
    assert.equal(rows.length, 8);
    for (const row of rows) {
      assert.equal((row.data as { body?: string }).body, undefined);
      assert.ok(
        row.body_head === null || (row.body_head as string).length <= 2_700,
      );
    }
    assert.equal(
      (await admin.deadLetters()).letters.find((l) => l.id === "msg_long")!
        .bodySize,
      new TextEncoder().encode(bodies.long as string).length,
    );
  } finally {
    await outbox.stop();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
