// A sender process for frozen_sender_test.ts: fires `n` triggers at once to
// `url` (each `?i=<n>`), `wait: "accepted"`, prints "armed" once the first
// are written, then one JSON line with each trigger's outcome, in order.
import { trigger } from "../../mod.ts";

const { url, n, maxConnections, timeout } = JSON.parse(Deno.args[0]) as {
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
await new Promise((resolve) => setTimeout(resolve, 300));
console.log("armed");
const outcomes = [];
for (const result of pending) {
  const { ok, error } = await result;
  outcomes.push({ ok, code: error?.code });
}
console.log(JSON.stringify(outcomes));
