// The outbox command line as a subprocess (`deno run -A src/durable/cli.ts`)
// against a seeded embedded directory and a seeded PostgreSQL queue.
import assert from "node:assert/strict";
import {
  type CliRun as Run,
  DATABASE_URL,
  freshOptions,
  openOutbox,
  runCli as run,
  seed,
  type Seeded,
  startTarget,
  XSS,
} from "./_seed.ts";
import { until } from "../_wait.ts";
import { ADMIN, type Administered } from "../../src/durable/_admin_queries.ts";

const CLI = new URL("../../src/durable/cli.ts", import.meta.url).pathname;
const PASSWORD = "pw-that-must-not-print";

if (DATABASE_URL === undefined) {
  console.log(
    "cli_test.ts: TRIGGER_TEST_DATABASE_URL is not set, skipping the PostgreSQL tests",
  );
}

/** The seeded outbox closed again, with the CLI arguments that reach it. */
async function seeded(engine: "embedded" | "postgres") {
  const target = startTarget();
  const { cleanup, ...options } = await freshOptions(engine);
  const outbox = await openOutbox(options);
  let ids: Seeded & { nope: string };
  try {
    const base = await seed(outbox, target, 3);
    const { id: nope } = await outbox.trigger(`${target.url}/nope`);
    await until(
      async () => (await outbox.stats()).dead === 2,
      "a second dead letter",
      { interval: 100 },
    );
    ids = { ...base, nope };
  } finally {
    await outbox.stop({ timeout: 1000 });
  }
  const args = engine === "embedded"
    ? ["--dir", options.dir!]
    : ["--queue", options.queue!];
  const env: Record<string, string> = engine === "postgres"
    ? { DATABASE_URL: withPassword(DATABASE_URL!) }
    : {};
  return { ids, args, env, target, options, cleanup };
}

/** The test server trusts local connections, so any password works; it
 * is there to be kept out of the output. */
function withPassword(url: string): string {
  const u = new URL(url);
  u.password = PASSWORD;
  return u.href;
}

function assertNoSecrets(result: Run): void {
  const all = result.stdout + result.stderr;
  assert.ok(!all.includes(PASSWORD), `password printed:\n${all}`);
  assert.ok(!all.includes("whsec_"), `signing secret printed:\n${all}`);
  assert.ok(!all.includes("do-not-show-me"), `header secret printed:\n${all}`);
}

for (const engine of ["embedded", "postgres"] as const) {
  Deno.test({
    name:
      `cli (${engine}): stats, dead, show, redrive, discard, retry, tail; --json`,
    ignore: engine === "postgres" && DATABASE_URL === undefined,
    async fn() {
      const { ids, args, env, target, cleanup } = await seeded(engine);
      try {
        // stats, human and JSON.
        const human = await run(["stats", ...args], env);
        assert.equal(human.code, 0, human.stderr);
        assertNoSecrets(human);
        const line = human.stdout.split("\n").find((l) =>
          l.startsWith(target.url)
        );
        assert.match(line ?? "", /^\S+\s+0\s+0\s+1\s+3\s+2\s+\d+ s$/);
        const json = await run(["stats", "--json", ...args], env);
        assert.equal(json.code, 0, json.stderr);
        const stats = JSON.parse(json.stdout);
        assert.deepEqual(stats.totals, {
          queued: 0,
          active: 0,
          retrying: 1,
          delivered: 3,
          dead: 2,
        });
        assert.equal(stats.lastHour.delivered, 3);
        assert.equal(stats.lastHour.failed, 3);
        assert.equal(typeof stats.oldestQueuedMs, "number");

        // dead letters.
        const dead = await run(["dead", ...args], env);
        assert.equal(dead.code, 0, dead.stderr);
        assert.match(
          dead.stdout,
          new RegExp(`${ids.deadId}\\s+1\\s+HTTP_STATUS 404`),
        );
        assert.match(
          dead.stdout,
          new RegExp(`${ids.nope}\\s+1\\s+HTTP_STATUS 410`),
        );
        assertNoSecrets(dead);
        const deadJson = JSON.parse(
          (await run(["dead", "--json", ...args], env)).stdout,
        );
        assert.equal(deadJson.total, 2);
        // --offset: past the first (oldest) one; past them all.
        const second = await run(
          ["dead", "--limit", "1", "--offset", "1", ...args],
          env,
        );
        assert.equal(second.code, 0, second.stderr);
        assert.match(second.stdout, /^2–2 of 2 shown \(--limit, --offset\)$/m);
        const secondJson = JSON.parse(
          (await run(["dead", "--json", "--offset", "1", ...args], env))
            .stdout,
        );
        assert.equal(secondJson.total, 2);
        assert.deepEqual(
          secondJson.letters.map((l: { id: string }) => l.id),
          [deadJson.letters[1].id],
        );
        assert.ok(second.stdout.includes(deadJson.letters[1].id));
        assert.ok(!second.stdout.includes(deadJson.letters[0].id));
        const past = await run(["dead", "--offset", "5", ...args], env);
        assert.equal(past.code, 0, past.stderr);
        assert.equal(
          past.stdout.trim(),
          "No dead letters past the first 5 (2 in all).",
        );
        assert.equal(
          deadJson.letters.find((l: { id: string }) => l.id === ids.deadId)
            .body,
          XSS,
        );

        // show.
        const shown = await run(["show", ids.deliveredIds[0], ...args], env);
        assert.equal(shown.code, 0, shown.stderr);
        assert.match(shown.stdout, /authorization: \[redacted\]/);
        assertNoSecrets(shown);
        assert.equal((await run(["show", "no-such-id", ...args], env)).code, 1);

        // redrive one (then delivered), discard one.
        target.heal();
        // An id given twice is one id: found, so exit 0.
        const redrive = await run(
          ["redrive", ids.deadId, ids.deadId, "--json", ...args],
          env,
        );
        assert.equal(redrive.code, 0, redrive.stderr);
        assert.deepEqual(JSON.parse(redrive.stdout), { redriven: 1 });
        const discard = await run(["discard", ids.nope, ...args], env);
        assert.equal(discard.code, 0, discard.stderr);
        assert.equal(discard.stdout.trim(), "1 discarded");
        const again = await run(["discard", ids.nope, ...args], env);
        assert.equal(again.code, 1, "a discard that found nothing exits 1");
        assert.equal(again.stdout.trim(), "0 discarded");

        // retry now: the job's next attempt moves to now.
        const retry = await run(["retry", ids.retryingId, ...args], env);
        assert.equal(retry.code, 0, retry.stderr);
        assert.equal(retry.stdout.trim(), "1 retried now");

        // Deliver what was redriven and retried, then tail what happened.
        const reopen = engine === "embedded"
          ? { dir: args[1] }
          : { connectionString: DATABASE_URL, queue: args[1] };
        const outbox = await openOutbox(reopen);
        const flaky = target.hits.get("/flaky") ?? 0;
        try {
          outbox.start({ pollInterval: 100 });
          await until(
            async () => {
              const s = await outbox.stats();
              return s.active === 0 && s.dead === 0 &&
                (target.hits.get("/gone") ?? 0) >= 2 &&
                (target.hits.get("/flaky") ?? 0) > flaky;
            },
            "the redriven delivery and the retry",
            { interval: 100 },
          );
        } finally {
          await outbox.stop({ timeout: 1000 });
        }
        const tail = await tailFor(
          ["tail", "--since", "1h", "--json", "--interval", "200", ...args],
          env,
          (events) => events.filter((e) => e.type === "delivered").length >= 4,
        ).done;
        const types = tail.events.map((e) => e.type);
        assert.equal(types.filter((t) => t === "delivered").length, 4);
        assert.ok(types.includes("dead"));
        assert.ok(types.includes("retry"));
        assert.equal(tail.code, 0, tail.stderr);
        assertNoSecrets(tail);
        // Further back than 1970 (2,738 years): from the epoch, the same
        // history. Before: PostgreSQL refused the start ("time zone
        // displacement out of range"), exit 1.
        const all = await tailFor(
          [
            "tail",
            "--since",
            "1000000d",
            "--json",
            "--interval",
            "200",
            ...args,
          ],
          env,
          (events) => events.filter((e) => e.type === "delivered").length >= 4,
        ).done;
        assert.equal(all.code, 0, all.stderr);
        assert.match(all.stderr, /from 1970-01-01T00:00:\d\d\.\d{3}Z/);
        const allTypes = all.events.map((e) => e.type);
        assert.equal(allTypes.filter((t) => t === "delivered").length, 4);
        assert.ok(allTypes.includes("dead"));
        assert.ok(allTypes.includes("retry"));
      } finally {
        await target.close();
        await cleanup();
      }
    },
  });
}

interface Event {
  type: string;
  id: string;
}

/** Runs `tail` until `enough(events)` (bounded), then stops it with
 * SIGTERM (a child of `deno test` may inherit SIGINT as ignored). `ready`
 * resolves when tail says, on stderr, that it follows. */
function tailFor(
  args: string[],
  env: Record<string, string>,
  enough: (events: Event[]) => boolean,
  timeout = 60_000,
): { ready: Promise<void>; done: Promise<Run & { events: Event[] }> } {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const deadline = setTimeout(() => child.kill("SIGKILL"), timeout);
  const following = Promise.withResolvers<void>();
  let stderr = "";
  const errors = (async () => {
    for await (
      const text of child.stderr.pipeThrough(new TextDecoderStream())
    ) {
      stderr += text;
      if (stderr.includes("Following ")) following.resolve();
    }
    following.reject(new Error(`tail never started:\n${stderr}`));
  })();
  following.promise.catch(() => {});
  const done = (async () => {
    const events: Event[] = [];
    let stdout = "";
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    try {
      let buffered = "";
      while (!enough(events)) {
        const { value, done } = await reader.read();
        if (done) break;
        stdout += value;
        buffered += value;
        const lines = buffered.split("\n");
        buffered = lines.pop()!;
        for (const line of lines) {
          if (line.trim()) events.push(JSON.parse(line));
        }
      }
      if (!enough(events)) {
        await errors;
        throw new Error(`tail ended early:\n${stdout}\n${stderr}`);
      }
      child.kill("SIGTERM");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        stdout += value;
      }
      const { code } = await child.status;
      await errors;
      return { code, stdout, stderr, events };
    } finally {
      clearTimeout(deadline);
    }
  })();
  return { ready: following.promise, done };
}

Deno.test({
  name:
    "cli (postgres): tail follows deliveries live; DATABASE_URL and --database-url",
  ignore: DATABASE_URL === undefined,
  async fn() {
    const target = startTarget();
    const { cleanup, ...options } = await freshOptions("postgres");
    const outbox = await openOutbox(options);
    try {
      // Triggers once tail follows: the delivery is news to it.
      const tailing = tailFor(
        ["tail", "--json", "--interval", "200", "--queue", options.queue!],
        { DATABASE_URL: withPassword(DATABASE_URL!) },
        (events) => events.some((e) => e.type === "delivered"),
      );
      await tailing.ready;
      const { id } = await outbox.trigger(`${target.url}/ok`);
      outbox.start({ pollInterval: 100 });
      const result = await tailing.done;
      assert.match(result.stderr, /^Following d_\w+ \(postgres\) from /);
      assert.deepEqual(
        result.events.map((e) => [e.type, e.id]),
        [["delivered", id]],
      );
      assert.equal(result.code, 0, result.stderr);
      assertNoSecrets(result);

      const flag = await run([
        "stats",
        "--json",
        "--queue",
        options.queue!,
        "--database-url",
        withPassword(DATABASE_URL!),
      ]);
      assert.equal(flag.code, 0, flag.stderr);
      assert.equal(JSON.parse(flag.stdout).totals.delivered, 1);
      assertNoSecrets(flag);
    } finally {
      await outbox.stop({ timeout: 1000 });
      await target.close();
      await cleanup();
    }
  },
});

for (const engine of ["embedded", "postgres"] as const) {
  Deno.test({
    name:
      `cli (${engine}): a mistyped --schema or --queue exits 2 naming it and creates nothing, for every command; the right names work`,
    ignore: engine === "postgres" && DATABASE_URL === undefined,
    async fn() {
      const { cleanup, ...options } = await freshOptions(engine);
      const queue = options.queue ?? "trigger_outbox";
      const suffix = crypto.randomUUID().slice(0, 8);
      const typoSchema = `pgbos_${suffix}`;
      const typoQueue = `${queue}_typo_${suffix}`;
      let outbox = await openOutbox(options);
      const { id } = await outbox.trigger("http://127.0.0.1:9/later", {
        delay: 3_600_000,
      });
      await outbox.stop();
      const args = engine === "embedded"
        ? ["--dir", options.dir!]
        : ["--queue", queue];
      const env: Record<string, string> = engine === "postgres"
        ? { DATABASE_URL: withPassword(DATABASE_URL!) }
        : {};
      const commands = [
        ["stats"],
        ["dead"],
        ["show", id],
        ["tail"],
        ["redrive"],
        ["discard", id],
        ["retry", id],
      ];
      try {
        for (const command of commands) {
          const result = await run(
            [...command, ...args, "--schema", typoSchema],
            env,
          );
          const what = `${command[0]} --schema ${typoSchema}`;
          assert.equal(result.code, 2, `${what}: ${result.stderr}`);
          assert.equal(result.stdout, "", what);
          assert.match(
            result.stderr,
            new RegExp(
              `^outbox: Cannot open outbox: .* has no schema "${typoSchema}" .*outbox schemas there: .*"pgboss"\nCheck --schema, --queue`,
            ),
            what,
          );
          assertNoSecrets(result);
        }
        for (const command of [["stats"], ["tail"], ["redrive"]]) {
          const result = await run(
            [
              ...command,
              ...args.filter((a) => a !== queue && a !== "--queue"),
              "--queue",
              typoQueue,
            ],
            env,
          );
          const what = `${command[0]} --queue ${typoQueue}`;
          assert.equal(result.code, 2, `${what}: ${result.stderr}`);
          assert.equal(result.stdout, "", what);
          assert.match(
            result.stderr,
            new RegExp(
              `^outbox: Cannot open outbox: no queue "${typoQueue}" in schema "pgboss" `,
            ),
            what,
          );
          assertNoSecrets(result);
        }

        const right = await run(["stats", "--json", ...args], env);
        assert.equal(right.code, 0, right.stderr);
        assert.equal(JSON.parse(right.stdout).totals.queued, 1);

        outbox = await openOutbox(options);
        const sql = (outbox as unknown as Administered)[ADMIN]().db;
        const { rows: schemas } = await sql.executeSql(
          `SELECT nspname FROM pg_namespace WHERE nspname = $1`,
          [typoSchema],
        );
        assert.deepEqual(schemas, [], "no schema created");
        const { rows: queues } = await sql.executeSql(
          `SELECT name FROM pgboss.queue WHERE name = ANY($1)`,
          [[typoQueue, `${typoQueue}_dead`]],
        );
        assert.deepEqual(queues, [], "no queue created");
        await outbox.stop();
      } finally {
        await outbox.stop().catch(() => {});
        await cleanup();
      }
    },
  });
}

Deno.test("cli: exit code 2 for bad arguments and unreachable databases, no password printed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cli_empty_" });
  try {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [[], {}, /give a command/],
      [["bogus"], {}, /unknown command "bogus"/],
      [["stats", "--nope"], {}, /Unknown option '--nope'/],
      [
        ["dead", "--limit", "ten", "--dir", dir],
        {},
        /--limit must be a whole number/,
      ],
      [
        ["dead", "--offset", "1.5", "--dir", dir],
        {},
        /--offset must be a whole number from 0/,
      ],
      [
        ["tail", "--since", "soon", "--dir", dir],
        {},
        /--since must be a duration/,
      ],
      // Before: "Invalid time value", exit 1.
      [
        ["tail", "--since", "9999999999999d", "--dir", dir],
        {},
        /--since must be at most 8640000000000000 ms .*"9999999999999d"/,
      ],
      [
        ["tail", "--since", "9".repeat(400), "--dir", dir],
        {},
        /--since must be at most 8640000000000000 ms/,
      ],
      [["discard", "--dir", dir], {}, /discard needs at least one id/],
      [["show", "a", "a", "--dir", dir], {}, /show needs exactly one id/],
      [
        ["stats", "--dir", dir, "--database-url", "postgres://x@y/z"],
        {},
        /not both/,
      ],
      [["stats", "--dir", `${dir}/missing`], {}, /no embedded outbox in/],
      [
        [
          "stats",
          "--database-url",
          `postgres://app:${PASSWORD}@127.0.0.1:1/db`,
        ],
        {},
        /Cannot open outbox: PostgreSQL at 127\.0\.0\.1:1\/db failed/,
      ],
      [
        ["stats"],
        { DATABASE_URL: `postgres://app:${PASSWORD}@127.0.0.1:1/db` },
        /ECONNREFUSED|failed/,
      ],
      [["stats", "--database-url", "not a url"], {}, /must be a URL/],
    ];
    for (const [args, env, message] of cases) {
      const result = await run(args, env);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, message, args.join(" "));
      assert.equal(result.stdout, "", args.join(" "));
      assertNoSecrets(result);
    }
    const help = await run(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage:/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "cli (postgres): the exit status of redrive/discard names the ids no dead letter has, whatever the rows one id moved; --json escapes C1 controls",
  ignore: DATABASE_URL === undefined,
  async fn() {
    const target = startTarget();
    const { cleanup, ...options } = await freshOptions("postgres");
    const csi = "c1\u009b31mX";
    try {
      const outbox = await openOutbox({ ...options, retry: { limit: 0 } });
      try {
        // One webhook-id given to two triggers: two dead letters, one id.
        for (const id of ["dup-1", "dup-1", "c1-before"]) {
          await outbox.trigger(`${target.url}/nope`, {
            headers: { "webhook-id": id },
          });
        }
        outbox.start({ pollInterval: 20 });
        await until(
          async () => (await outbox.stats()).dead === 3,
          "three dead letters",
          { interval: 100 },
        );
      } finally {
        await outbox.stop({ timeout: 1000 });
      }
      const args = ["--queue", options.queue!];
      const env = { DATABASE_URL: DATABASE_URL! };
      const { default: pg } = await import("npm:pg@8.23.1");
      // An id with a C1 control, as stored before a header's id was
      // checked (refused at the call now): made by changing a stored one.
      const update = new pg.Client({ connectionString: DATABASE_URL });
      await update.connect();
      try {
        const { rowCount } = await update.query(
          `UPDATE pgboss.job SET data = jsonb_set(data, '{id}', to_jsonb($1::text))
            WHERE name = $2 AND data->>'id' = 'c1-before'`,
          [csi, `${options.queue}_dead`],
        );
        assert.equal(rowCount, 1);
      } finally {
        await update.end();
      }

      const dead = await run(["dead", "--json", ...args], env);
      assert.equal(dead.code, 0, dead.stderr);
      assert.ok(!dead.stdout.includes("\u009b"), "a raw CSI in --json");
      assert.ok(dead.stdout.includes("c1\\u009b31mX"), dead.stdout);
      assert.ok(
        JSON.parse(dead.stdout).letters.some((l: { id: string }) =>
          l.id === csi
        ),
      );

      // A dead letter no queue of ours made (another producer's): listed,
      // but a redrive does not move it back.
      const db = new pg.Client({ connectionString: DATABASE_URL });
      await db.connect();
      try {
        await db.query(
          `INSERT INTO pgboss.job (id, name, data, state, retry_limit,
             retry_delay, retry_backoff, expire_seconds, keep_until, policy)
           SELECT gen_random_uuid(), name, jsonb_build_object('id', 'foreign'),
             'created', retry_limit, retry_delay, retry_backoff,
             expire_seconds, keep_until, policy
           FROM pgboss.job WHERE name = $1 LIMIT 1`,
          [`${options.queue}_dead`],
        );
      } finally {
        await db.end();
      }

      // Two rows moved for three ids given: two of them moved nothing.
      const redrive = await run(
        ["redrive", "dup-1", "no-such-id", "foreign", ...args],
        env,
      );
      assert.equal(redrive.stdout.trim(), "2 redriven");
      assert.match(
        redrive.stderr,
        /not found \(or not one a redrive moves back: discard it\): no-such-id, foreign$/m,
      );
      assert.equal(redrive.code, 1);
      const again = await run(["discard", "dup-1", ...args], env);
      assert.equal(again.stdout.trim(), "0 discarded");
      assert.match(again.stderr, /not found: dup-1$/m);
      assert.equal(again.code, 1);
      const found = await run(["discard", csi, ...args], env);
      assert.equal(found.stdout.trim(), "1 discarded");
      assert.equal(found.stderr, "");
      assert.equal(found.code, 0);
    } finally {
      await target.close();
      await cleanup();
    }
  },
});
