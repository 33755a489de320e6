// The suite's own rules: under CI=true a skipped test fails the run with its
// reason (tests/_env.ts); elsewhere it is ignored and the reason printed.
import assert from "node:assert/strict";
import { findExecutable, NGINX } from "../_env.ts";
import { output } from "../_wait.ts";

const decoder = new TextDecoder();

/** Runs `deno test` on a file that skips one test, with the given env. */
async function runSkipping(env: Record<string, string>) {
  const dir = await Deno.makeTempDir({ prefix: "trigger-env-" });
  try {
    const file = `${dir}/skip_test.ts`;
    await Deno.writeTextFile(
      file,
      `import { skipUnless } from ${
        JSON.stringify(new URL("../_env.ts", import.meta.url).href)
      };
Deno.test({ name: "needs a unicorn", ignore: skipUnless(false, "no unicorn here"), fn() {} });
Deno.test({ name: "needs nothing", ignore: skipUnless(true, "never shown"), fn() {} });
`,
    );
    const result = await output(Deno.execPath(), {
      args: [
        "test",
        "--no-config",
        "--no-lock",
        "--allow-env",
        "--allow-read",
        file,
      ],
      env: { NO_COLOR: "1", ...env },
      timeout: 60_000,
    });
    return {
      code: result.code,
      text: decoder.decode(result.stdout) + decoder.decode(result.stderr),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("skipUnless(): ignored with the reason printed outside CI", async () => {
  const { code, text } = await runSkipping({ CI: "false" });
  assert.equal(code, 0, text);
  assert.match(text, /skipped: no unicorn here/);
  assert.match(text, /needs a unicorn \.\.\. ignored/);
  assert.match(text, /needs nothing \.\.\. ok/);
  assert.doesNotMatch(text, /never shown/);
});

Deno.test("skipUnless(): under CI=true the run fails, naming the reason", async () => {
  const { code, text } = await runSkipping({ CI: "true" });
  assert.notEqual(code, 0, text);
  assert.match(text, /CI=true forbids skipping: no unicorn here \.\.\. FAILED/);
  assert.match(text, /needs nothing \.\.\. ok/);
});

Deno.test("findExecutable() looks on PATH, then at the given paths", () => {
  const deno = findExecutable("deno");
  assert.ok(deno === undefined || deno.endsWith("/deno"));
  assert.equal(findExecutable("no-such-program-here"), undefined);
  assert.equal(
    findExecutable("no-such-program-here", [Deno.execPath()]),
    Deno.execPath(),
  );
  // Not executable: a plain file is passed over.
  assert.equal(
    findExecutable("x", [new URL(import.meta.url).pathname]),
    undefined,
  );
  if (NGINX !== undefined) assert.match(NGINX, /nginx$/);
});
