// The dispatcher's memory while a few deliveries hang: it must not grow with
// the deliveries that pass meanwhile (its loop raced every delivery under
// way on each pass, leaving a reaction on each hung one per pass: ~45 bytes
// per delivery, held until the hung ones timed out). Measured in its own
// process, after full GCs (`_hang_heap_entry.ts`).
import assert from "node:assert/strict";
import { output } from "../_wait.ts";

Deno.test("8 deliveries hanging (timeout 10 min) while 20,000 others pass: the heap does not grow with them (before: +0.8–1.0 MB, ~45 bytes a delivery)", async () => {
  const { success, stdout, stderr } = await output(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--v8-flags=--expose-gc",
      new URL("./_hang_heap_entry.ts", import.meta.url).pathname,
      "23000",
    ],
    stdout: "piped",
    stderr: "piped",
    timeout: 180_000,
    what: "the hung-delivery heap probe",
  });
  const text = new TextDecoder().decode(stdout);
  assert.ok(success, `${text}\n${new TextDecoder().decode(stderr)}`);
  const { before, after, delivered, hung } = JSON.parse(
    text.trim().split("\n").at(-1)!,
  );
  assert.equal(hung, 8, "the 8 hung deliveries were under way");
  assert.equal(delivered, 23_000);
  // 20,000 deliveries at ~45 bytes each were ~900 KB; now the heap moves by
  // tens of KB either way.
  assert.ok(
    after - before < 300 * 1024,
    `heap grew by ${
      ((after - before) / 1024).toFixed(0)
    } KB over 20,000 deliveries`,
  );
});
