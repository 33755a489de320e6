// Runs trigger() under Node (bundled): "auto" picks the raw socket through
// node:net. Prints the result as JSON. argv: target URL.
import { trigger } from "../../mod.ts";

const process = (globalThis as unknown as { process: { argv: string[] } })
  .process;
const target = process.argv[2];
const result = await trigger(target, { json: { from: "node" } });
const accepted = await trigger(target, {
  form: { from: "node", wait: "accepted" },
  wait: "accepted",
});
await result.done;
console.log(JSON.stringify({
  sent: { ok: result.ok, transport: result.transport },
  accepted: { ok: accepted.ok, status: accepted.status },
}));
