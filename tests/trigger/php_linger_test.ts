// In "sent" mode trigger() keeps the connection open in the background only
// up to `timeout`. Behind nginx + php-fpm (the seed's own setup) a PHP job
// longer than that sees its caller leave: nginx logs 499 and closes the
// FastCGI connection, `connection_status()` becomes 1 (ABORTED), and a script
// that does not ignore aborts is ended at its first output after that. A job
// shorter than `timeout` sees 0 (NORMAL) and runs to its end. Real nginx and
// php-fpm; the PHP script writes what it saw to a file.
import assert from "node:assert/strict";
import { trigger } from "../../mod.ts";
import { NGINX, skipUnless } from "../_env.ts";
import { PHP_FPM, PHP_MISSING, startPhp } from "../_php.ts";
import { until, within } from "../_wait.ts";

/** trigger()'s timeout, and the two job lengths either side of it. */
const TIMEOUT = 300;
const LONG_JOB = 1500;
const SHORT_JOB = 50;

// Logs each stage as a JSON line: started, woke (after the sleep and one
// flushed output), end; and, from a shutdown function, connection_status()
// when the script stops, however it stops.
const JOB = `<?php
$id = $_GET['id'];
$log = function (array $fields) use ($id) {
  file_put_contents(__DIR__ . '/jobs.log',
    json_encode(['id' => $id] + $fields) . "\\n", FILE_APPEND | LOCK_EX);
};
if (isset($_GET['ignore'])) ignore_user_abort(true);
register_shutdown_function(function () use ($log) {
  $log(['stage' => 'shutdown', 'status' => connection_status()]);
});
$log(['stage' => 'started', 'status' => connection_status()]);
usleep((int) $_GET['ms'] * 1000);
echo "working\\n";
flush();
$log(['stage' => 'woke', 'status' => connection_status()]);
echo "done\\n";
flush();
$log(['stage' => 'end', 'status' => connection_status()]);
`;

interface Stage {
  id: string;
  stage: "started" | "woke" | "end" | "shutdown";
  status: number;
}

Deno.test({
  name:
    "trigger() 'sent' behind nginx + php-fpm: a job longer than timeout sees its caller leave",
  ignore: skipUnless(NGINX !== undefined && PHP_FPM !== undefined, PHP_MISSING),
  async fn() {
    const php = await startPhp({ "job.php": JOB });
    try {
      const stages = async (id: string) =>
        (await Deno.readTextFile(`${php.dir}/jobs.log`).catch(() => ""))
          .split("\n").filter(Boolean).map((l) => JSON.parse(l) as Stage)
          .filter((s) => s.id === id);
      const run = async (id: string, query: string) => {
        const result = await trigger(
          `${php.origin}/job.php?id=${id}&${query}`,
          { method: "POST", body: "job", timeout: TIMEOUT },
        );
        assert.equal(result.ok, true, `${id}: trigger() ok`);
        const outcome = await within(result.outcome, `${id}: outcome`);
        // The script has stopped once its shutdown function wrote.
        await until(
          async () => (await stages(id)).some((s) => s.stage === "shutdown"),
          `${id}: the PHP script to stop`,
          { timeout: 10_000, interval: 20 },
        );
        return { outcome, stages: await stages(id) };
      };
      const [long, ignoring, short] = await Promise.all([
        run("long", `ms=${LONG_JOB}`),
        run("ignoring", `ms=${LONG_JOB}&ignore=1`),
        run("short", `ms=${SHORT_JOB}`),
      ]);
      const seen = (r: { stages: Stage[] }) =>
        r.stages.map((s) => `${s.stage} ${s.status}`);

      // Shorter than timeout: the caller is still there, status 0 throughout.
      assert.equal(short.outcome.ok, true, "short: outcome ok");
      assert.equal(short.outcome.status, 200, "short: answered 200");
      assert.deepEqual(
        seen(short),
        ["started 0", "woke 0", "end 0", "shutdown 0"],
        "short: a job shorter than timeout sees status 0 and runs to its end",
      );

      // Longer than timeout: trigger() closed at `timeout`, nginx dropped the
      // FastCGI connection, and the first output after that ended the script.
      assert.equal(long.outcome.ok, false, "long: outcome not ok");
      assert.equal(long.outcome.error?.code, "TIMEOUT", "long: TIMEOUT");
      assert.deepEqual(
        seen(long),
        ["started 0", "shutdown 1"],
        "long: killed at its first output after the caller left, status 1 (ABORTED)",
      );

      // The same job with ignore_user_abort(true) runs to its end, status 1.
      assert.equal(
        ignoring.outcome.error?.code,
        "TIMEOUT",
        "ignoring: TIMEOUT",
      );
      assert.deepEqual(
        seen(ignoring),
        ["started 0", "woke 1", "end 1", "shutdown 1"],
        "ignoring: runs to its end and sees status 1 (ABORTED)",
      );

      // nginx logged the callers that left as 499.
      const statusOf = async (id: string) =>
        (await php.accessLog()).split("\n")
          .find((line) => line.includes(`id=${id}&`))
          ?.match(/" (\d{3}) /)?.[1];
      await until(
        async () =>
          (await Promise.all(["long", "ignoring", "short"].map(statusOf)))
            .every(Boolean),
        "nginx to log the three requests",
        { timeout: 10_000, interval: 20 },
      );
      assert.equal(await statusOf("long"), "499", "long: nginx logged 499");
      assert.equal(await statusOf("ignoring"), "499", "ignoring: nginx 499");
      assert.equal(await statusOf("short"), "200", "short: nginx logged 200");
    } finally {
      await php.stop();
    }
  },
});
