// Runs under Node or Bun (bundled by tests/trigger/shared_signal_test.ts):
// 40 triggers in flight to argv[2] (a server that never answers), all given
// one AbortController's signal, then aborted. Node warns on stderr when a
// signal has more than 10 "abort" listeners (MaxListenersExceededWarning).
import { trigger } from "../../mod.ts";
import { print } from "./_report.ts";

declare const process: { argv: string[] };

const url = process.argv[2];
const controller = new AbortController();
const pending = Array.from(
  { length: 40 },
  () =>
    trigger(url, {
      wait: "accepted",
      signal: controller.signal,
      timeout: 20_000,
    }),
);
// Under way: connected, request written.
await new Promise((resolve) => setTimeout(resolve, 300));
controller.abort();
const results = await Promise.all(pending);
await Promise.all(results.map((result) => result.done));
// A warning is printed on a later turn of the event loop.
await new Promise((resolve) => setTimeout(resolve, 100));
print("codes", [...new Set(results.map((result) => result.error?.code))]);
