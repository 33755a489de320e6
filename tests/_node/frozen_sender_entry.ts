// A sender process for tests/trigger/frozen_sender_test.ts, on Deno, Node
// (bundled) or Bun: fires `n` triggers at once to `url` (each `?i=<n>`),
// `wait: "accepted"`, then prints one JSON line with each trigger's outcome,
// in order.
import { trigger } from "../../mod.ts";

const runtime = globalThis as {
  Deno?: { args: string[] };
  process?: { argv: string[] };
};
const arg = runtime.Deno?.args[0] ?? runtime.process!.argv[2];
const { url, n, maxConnections, timeout } = JSON.parse(arg) as {
  url: string;
  n: number;
  maxConnections: number;
  timeout: number;
};
const pending = Array.from(
  { length: n },
  (_, i) =>
    trigger(`${url}?i=${i}`, { wait: "accepted", timeout, maxConnections }),
);
const outcomes = [];
for (const result of pending) {
  const { ok, error } = await result;
  outcomes.push({ ok, code: error?.code });
}
console.log(JSON.stringify(outcomes));
