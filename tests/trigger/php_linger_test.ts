// In "sent" mode trigger() keeps the connection open in the background only
// up to `timeout`. Behind nginx + php-fpm (the seed's own setup) a PHP job
// longer than that sees its caller leave: nginx logs 499 and closes the
// FastCGI connection, `connection_status()` becomes 1 (ABORTED), and a script
// that does not ignore aborts is ended at its first output after that. A job
// shorter than `timeout` sees 0 (NORMAL) and runs to its end. A job that
// acknowledges first (fastcgi_finish_request(), triggered with wait:
// "accepted") gives its caller a 202, and then needs ignore_user_abort(true)
// to run past its next output: PHP treats a finished request as an aborted
// one. Real nginx and php-fpm; the PHP script writes what it saw to a file.
import assert from "node:assert/strict";
import { trigger } from "../../mod.ts";
import type { TriggerOutcome } from "../../mod.ts";
import { NGINX, skipUnless } from "../_env.ts";
import { PHP_FPM, PHP_MISSING, startPhp } from "../_php.ts";
import { until, within } from "../_wait.ts";

/** trigger()'s timeout, and the two job lengths either side of it. */
const TIMEOUT = 300;
const LONG_JOB = 1500;
const SHORT_JOB = 50;

// Logs each stage as a JSON line: started; woke (after the sleep and one
// flushed line of output); end (after a second one); and, from a shutdown
// function, connection_status() when the script stops, however it stops.
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
if (isset($_GET['ack'])) {
  // Acknowledge first: answer 202 and end the request, then work.
  http_response_code(202);
  fastcgi_finish_request();
}
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

interface Run {
  outcome: TriggerOutcome;
  /** "<stage> <connection_status()>", in order. */
  seen: string[];
}

/** What PHP's shutdown function sees when a script ran to its end. */
const RAN_THROUGH = (
  status: number,
) => ["started 0", `woke ${status}`, `end ${status}`, `shutdown ${status}`];
/** A script ended at its first output after the caller left. */
const KILLED = ["started 0", "shutdown 1"];

Deno.test({
  name:
    "trigger() behind nginx + php-fpm: a job longer than 'sent' mode's timeout sees its caller leave; one that acknowledges first had its 202",
  ignore: skipUnless(NGINX !== undefined && PHP_FPM !== undefined, PHP_MISSING),
  async fn() {
    const php = await startPhp({ "job.php": JOB });
    try {
      const stages = async (id: string) =>
        (await Deno.readTextFile(`${php.dir}/jobs.log`).catch(() => ""))
          .split("\n").filter(Boolean).map((l) => JSON.parse(l) as Stage)
          .filter((s) => s.id === id);
      const run = async (
        id: string,
        query: string,
        wait: "sent" | "accepted" = "sent",
      ): Promise<Run> => {
        const result = await trigger(
          `${php.origin}/job.php?id=${id}&${query}`,
          { method: "POST", body: "job", timeout: TIMEOUT, wait },
        );
        assert.equal(result.ok, true, `${id}: trigger() ok`);
        const outcome = await within(result.outcome, `${id}: outcome`);
        // The script has stopped once its shutdown function wrote.
        await until(
          async () => (await stages(id)).some((s) => s.stage === "shutdown"),
          `${id}: the PHP script to stop`,
          { timeout: 10_000, interval: 20 },
        );
        return {
          outcome,
          seen: (await stages(id)).map((s) => `${s.stage} ${s.status}`),
        };
      };
      const [short, long, ignoring, acked, ackedOnly] = await Promise.all([
        run("short", `ms=${SHORT_JOB}`),
        run("long", `ms=${LONG_JOB}`),
        run("ignoring", `ms=${LONG_JOB}&ignore=1`),
        run("acked", `ms=${LONG_JOB}&ack=1&ignore=1`, "accepted"),
        run("ackedOnly", `ms=${LONG_JOB}&ack=1`, "accepted"),
      ]);

      // Shorter than timeout: the caller is still there, status 0 throughout.
      assert.equal(short.outcome.ok, true, "short: outcome ok");
      assert.equal(short.outcome.status, 200, "short: answered 200");
      assert.deepEqual(
        short.seen,
        RAN_THROUGH(0),
        "short: a job shorter than timeout sees status 0 and runs to its end",
      );

      // Longer than timeout: trigger() closed at `timeout`, nginx dropped the
      // FastCGI connection, and the first output after that ended the script.
      assert.equal(long.outcome.error?.code, "TIMEOUT", "long: TIMEOUT");
      assert.deepEqual(
        long.seen,
        KILLED,
        "long: ended at its first output after the caller left, status 1",
      );

      // The same job with ignore_user_abort(true) runs to its end, status 1.
      assert.equal(
        ignoring.outcome.error?.code,
        "TIMEOUT",
        "ignoring: TIMEOUT",
      );
      assert.deepEqual(
        ignoring.seen,
        RAN_THROUGH(1),
        "ignoring: runs to its end and sees status 1 (ABORTED)",
      );

      // Acknowledged first and triggered with wait: "accepted": the caller
      // had its 202 within timeout. PHP treats output after
      // fastcgi_finish_request() as output to a gone caller: with
      // ignore_user_abort(true) the job runs to its end, without it the job
      // ends at its first output.
      for (const [label, r] of [["acked", acked], ["ackedOnly", ackedOnly]]) {
        const { outcome } = r as Run;
        assert.equal(outcome.ok, true, `${label}: outcome ok`);
        assert.equal(outcome.status, 202, `${label}: answered 202`);
      }
      assert.deepEqual(acked.seen, RAN_THROUGH(1), "acked + ignoring: ran");
      assert.deepEqual(ackedOnly.seen, KILLED, "acked, not ignoring: ended");

      // nginx logged the callers that left as 499, the others' answers.
      const statusOf = async (id: string) =>
        (await php.accessLog()).split("\n")
          .find((line) => line.includes(`id=${id}&`))
          ?.match(/" (\d{3}) /)?.[1];
      const expected = {
        short: "200",
        long: "499",
        ignoring: "499",
        acked: "202",
        ackedOnly: "202",
      };
      await until(
        async () =>
          (await Promise.all(Object.keys(expected).map(statusOf)))
            .every(Boolean),
        "nginx to log the five requests",
        { timeout: 10_000, interval: 20 },
      );
      for (const [id, status] of Object.entries(expected)) {
        assert.equal(await statusOf(id), status, `${id}: nginx logged`);
      }
    } finally {
      await php.stop();
    }
  },
});
