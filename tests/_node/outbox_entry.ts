// Runs under Node (bundled by tests/platforms/npm_load_test.ts with
// `deno bundle --platform node`, as docs/platforms-node-bun.md tells Node
// users to): an outbox on PostgreSQL argv[2] (schema argv[4]) stores one
// trigger to argv[3], delivers it, and stops.
import { openOutbox } from "../../src/durable/mod.ts";
import { print } from "./_report.ts";

declare const process: { argv: string[] };

const [, , connectionString, target, schema] = process.argv;
const outbox = await openOutbox({ connectionString, schema });
try {
  const { id } = await outbox.trigger(target, { json: { n: 1 } });
  outbox.start({ pollInterval: 50 });
  const start = Date.now();
  let delivered = 0;
  while (delivered === 0 && Date.now() - start < 20_000) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    delivered = (await outbox.stats()).delivered;
  }
  print("outbox", { id, delivered });
} finally {
  await outbox.stop();
}
