// The example README points Hono users to does what its comments say: the
// order is answered, and the report job behind the 202 runs all its steps
// and finishes within its time limit (a `setTimeLimit(10)` left from when
// durations were seconds made it run out of time after 10 ms).
import assert from "node:assert/strict";
import { output } from "../_wait.ts";

Deno.test("examples/hono_app.ts: the order is answered and its report job finishes", async () => {
  const result = await output(Deno.execPath(), {
    args: ["run", "--allow-net=127.0.0.1", "examples/hono_app.ts"],
    cwd: new URL("../..", import.meta.url).pathname,
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    timeout: 60_000,
    what: "examples/hono_app.ts",
  });
  const stdout = new TextDecoder().decode(result.stdout);
  assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
  assert.match(stdout, /^user: .*report: "started"/m);
  for (let step = 1; step <= 5; step++) {
    assert.match(stdout, new RegExp(`^job: order 42, step ${step}/5$`, "m"));
  }
  assert.match(stdout, /^job: report for order 42 finished after \d+ ms$/m);
});
