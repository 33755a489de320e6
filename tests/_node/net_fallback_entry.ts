// Runs trigger() under Node where node:net may be out of reach, as in a
// webpack bundle (Next.js) whose dynamic import of it fails. Bundled by
// tests/platforms/node_bun_test.ts; a --import preload decides what fails.
// argv[2]: a Deno.serve URL answering 202. Prints one JSON line per step.
import { drainTriggers, trigger } from "../../mod.ts";
import { print, summary } from "./_report.ts";

declare const process: {
  argv: string[];
  getBuiltinModule?: unknown;
};

const url = process.argv[2];

print("getBuiltinModule", typeof process.getBuiltinModule === "function");
// The first auto trigger: node:net may still be loading.
print(
  "auto-first",
  summary(await trigger(`${url}/auto-first`, { wait: "accepted" })),
);
// Later ones: the load has succeeded or failed by now.
print(
  "auto-later",
  summary(await trigger(`${url}/auto-later`, { wait: "accepted" })),
);
// Asked for the socket by name: a typed failure saying why, when it cannot.
print(
  "socket",
  summary(
    await trigger(`${url}/socket`, { wait: "accepted", transport: "socket" }),
  ),
);
print("drain", await drainTriggers({ timeout: 10_000 }));
