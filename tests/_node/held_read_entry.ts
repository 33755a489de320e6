// Runs under Node or Bun (bundled by tests/platforms/node_bun_test.ts): opens
// a NodeConn to port argv[2] (a server that writes a few bytes and waits;
// over TLS when argv[3] is a certificate to trust), waits
// until those bytes are held by Node, then counts the microtask turns read()
// takes to hand them over. trigger()'s look for a stray answer after one that
// filled a read waits only a few turns: bytes that are here must come within.
import { connectNode } from "../../src/transport/_conn_node.ts";
import { print } from "./_report.ts";

declare const process: { argv: string[]; exit(code: number): never };

const port = Number(process.argv[2]);
const cert = process.argv[3];
const conn = await connectNode(
  {
    hostname: "127.0.0.1",
    port,
    tls: cert !== undefined,
    caCerts: cert === undefined ? undefined : [cert],
    signal: new AbortController().signal,
  },
  () => {},
);
let held = false;
for (let wait = 0; wait < 400 && !held; wait++) {
  await new Promise((resolve) => setTimeout(resolve, 5));
  held = conn.mayHoldMore?.() ?? false;
}
let settled = false;
const read = conn.read().then((chunk) => {
  settled = true;
  return chunk;
});
let turns = 0;
while (!settled && turns < 100) {
  await undefined;
  turns++;
}
const within = settled ? turns : null;
const chunk = await read;
print("held read", {
  held,
  turns: within,
  text: chunk === null ? null : new TextDecoder().decode(chunk),
});
conn.close();
process.exit(0);
