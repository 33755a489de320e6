// Node and Bun running the sources as they are: the outbox's and the dedup
// store's `npm:` imports cannot load there (only Deno resolves them). The
// failure says so, and is not taken for the database's. And the outbox from
// a bundle (which carries them) on Node 20.
import assert from "node:assert/strict";
import { bundle } from "../_bundle.ts";
import { DATABASE_URL } from "../durable/_seed.ts";
import { skipUnless } from "../_env.ts";
import {
  bunBinary,
  node22Binary,
  run,
  withTempFile,
} from "../_node/_runtimes.ts";

const durable = new URL("../../src/durable/mod.ts", import.meta.url).href;
const dedup = new URL("../../src/dedup/postgres.ts", import.meta.url).href;

// Port 1 on loopback: nothing listens; were pg-boss loaded, the connection
// would be refused (a database failure).
const probe = `
import { openOutbox } from ${JSON.stringify(durable)};
import { PostgresDedupStore } from ${JSON.stringify(dedup)};
const show = (error) => ({
  name: error?.constructor?.name,
  code: error?.code,
  message: String(error?.message),
});
const url = "postgres://app:hunter2@127.0.0.1:1/db";
const outbox = await openOutbox({ connectionString: url, connectTimeout: 2000 })
  .then(() => ({ opened: true }), show);
const store = new PostgresDedupStore({ connectionString: url, reportError() {} });
const claim = await store.claim("msg_1", 60000, "token-1")
  .then(() => ({ claimed: true }), show);
console.log(JSON.stringify({ outbox, claim }));
`;

for (const runtime of ["node22", "bun"] as const) {
  Deno.test(`${runtime} running the sources: openOutbox() and PostgresDedupStore say that npm:pg-boss / npm:pg could not be loaded (a TypeError naming the bundle), not that the database failed`, async () => {
    const binary = runtime === "bun" ? await bunBinary() : await node22Binary();
    const out = await withTempFile(
      probe,
      (path) => run(binary, [path], 60_000),
      "probe.mts",
    );
    const line = out.stdout.trim().split("\n").at(-1) ?? "";
    assert.ok(line.startsWith("{"), `${out.stdout}\n${out.stderr}`);
    const { outbox, claim } = JSON.parse(line);
    assert.equal(outbox.name, "TypeError", line);
    assert.equal(outbox.code, undefined, line);
    assert.match(
      outbox.message,
      /^Cannot open outbox: npm:pg-boss@12\.38\.0 could not be loaded: .+ \(only Deno resolves npm: specifiers; on Node and Bun, run a bundle made by deno bundle --platform node\)$/,
    );
    assert.doesNotMatch(outbox.message, /hunter2|PostgreSQL at/);
    assert.equal(claim.name, "TypeError", line);
    assert.match(
      claim.message,
      /^PostgresDedupStore: npm:pg@8\.23\.1 could not be loaded: .+ \(only Deno resolves/,
    );
    assert.doesNotMatch(claim.message, /hunter2/);
  });
}

Deno.test({
  name:
    "Node 20 running the outbox from a bundle (deno bundle --platform node): stores, delivers and stops on PostgreSQL (it threw on Promise.withResolvers, which Node 20 lacks)",
  ignore: skipUnless(
    DATABASE_URL !== undefined,
    "TRIGGER_TEST_DATABASE_URL is not set (bash .ci/postgres.sh prints one)",
  ),
  async fn() {
    const ids: string[] = [];
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (request) => {
        await request.arrayBuffer();
        ids.push(request.headers.get("webhook-id") ?? "");
        return new Response(null, { status: 202 });
      },
    );
    const schema = `node20_outbox_${crypto.randomUUID().slice(0, 8)}`;
    try {
      const code = await bundle("./_node/outbox_entry.ts", "node");
      const out = await withTempFile(
        code,
        (path) =>
          run("node", [
            path,
            DATABASE_URL!,
            `http://127.0.0.1:${server.addr.port}/job`,
            schema,
          ], 90_000),
      );
      const line = out.stdout.split("\n").find((l) => l.includes("outbox"));
      assert.ok(line, `${out.stdout}\n${out.stderr}`);
      const { id, delivered } = JSON.parse(line).value;
      assert.equal(delivered, 1);
      assert.deepEqual(ids, [id]);
    } finally {
      await server.shutdown();
      await dropSchema(schema);
    }
  },
});

async function dropSchema(schema: string): Promise<void> {
  const { default: pg } = await import("npm:pg@8.23.1");
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}
