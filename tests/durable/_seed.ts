// A seeded outbox for the dashboard, CLI and admin query tests: deliveries
// to a local target, one job retrying (503, next attempt an hour away) and
// one dead letter (404) whose body is an XSS payload. `/gone` answers 200
// once `target.heal()` is called, so a redriven dead letter gets delivered.
import {
  openOutbox,
  type Outbox,
  type OutboxOptions,
} from "../../src/durable/mod.ts";
import { openEngine } from "../../src/durable/_engine.ts";
import { checkOpenOptions } from "../../src/durable/_validate.ts";

export const XSS = "<script>alert(1)</script>";
export const DATABASE_URL = Deno.env.get("TRIGGER_TEST_DATABASE_URL");

export interface Target {
  url: string;
  /** Requests per path. */
  hits: Map<string, number>;
  heal(): void;
  close(): Promise<void>;
}

export function startTarget(): Target {
  const hits = new Map<string, number>();
  let healed = false;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      await request.arrayBuffer();
      const path = new URL(request.url).pathname;
      hits.set(path, (hits.get(path) ?? 0) + 1);
      if (path === "/flaky") return new Response(null, { status: 503 });
      if (path === "/nope") return new Response(null, { status: 410 });
      if (path === "/gone" && !healed) {
        return new Response(null, { status: 404 });
      }
      return new Response(null, { status: 200 });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    hits,
    heal() {
      healed = true;
    },
    close: () => server.shutdown(),
  };
}

/** Deletes a queue and its dead letter queue (and their jobs) from the
 * shared test database: the queue first, since it names the other as its
 * dead letter queue. Every run of every test uses this database. */
export async function dropQueue(queue: string): Promise<void> {
  // A cleanup that fails warns: it must not hide the test's own outcome.
  try {
    const db = await openEngine(
      checkOpenOptions({ connectionString: DATABASE_URL, queue }),
      () => {},
    );
    try {
      await db.boss.deleteQueue(queue);
      await db.boss.deleteQueue(`${queue}_dead`);
    } finally {
      await db.close();
    }
  } catch (error) {
    console.warn(`test cleanup: queue ${queue} left behind:`, error);
  }
}

/** Drops a dedup store's table from the shared test database. */
export async function dropTable(table: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new TypeError(table);
  try {
    const { default: pg } = await import("npm:pg@8.23.1");
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    try {
      await client.query(`DROP TABLE IF EXISTS ${table}`);
    } finally {
      await client.end();
    }
  } catch (error) {
    console.warn(`test cleanup: table ${table} left behind:`, error);
  }
}

/** Options for a fresh outbox on each engine. On PostgreSQL, `cleanup()`
 * deletes `queue` (a fresh `d_` name unless given) and its dead letters. */
export async function freshOptions(
  engine: "embedded" | "postgres",
  { queue = `d_${crypto.randomUUID().slice(0, 8)}` }: { queue?: string } = {},
): Promise<OutboxOptions & { cleanup(): Promise<void> }> {
  if (engine === "postgres") {
    return {
      connectionString: DATABASE_URL,
      queue,
      cleanup: () => dropQueue(queue),
    };
  }
  const dir = await Deno.makeTempDir({ prefix: "outbox_dashboard_" });
  return { dir, cleanup: () => Deno.remove(dir, { recursive: true }) };
}

export interface Seeded {
  deliveredIds: string[];
  retryingId: string;
  deadId: string;
}

/** Stores `delivered` jobs to `/ok`, one to `/flaky` and one to `/gone`,
 * delivers them, and waits (bounded) until the counts are reached. */
export async function seed(
  outbox: Outbox,
  target: Target,
  delivered = 3,
): Promise<Seeded> {
  const deliveredIds: string[] = [];
  for (let i = 0; i < delivered; i++) {
    const { id } = await outbox.trigger(`${target.url}/ok`, {
      json: { n: i },
      headers: { authorization: "Bearer do-not-show-me" },
    });
    deliveredIds.push(id);
  }
  const { id: retryingId } = await outbox.trigger(`${target.url}/flaky`, {
    json: { flaky: true },
    retry: { limit: 5, delay: 3_600_000, backoff: false },
  });
  const { id: deadId } = await outbox.trigger(`${target.url}/gone`, {
    body: XSS,
    headers: { "content-type": "text/html" },
    sign: { secret: "whsec_c2VjcmV0LXRoYXQtbXVzdC1ub3Qtc2hvdw==" },
  });
  outbox.start({ concurrency: 4, pollInterval: 100 });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const stats = await outbox.stats();
    if (
      stats.dead === 1 && stats.active === 0 && stats.queued === 1 &&
      (target.hits.get("/ok") ?? 0) >= delivered &&
      (target.hits.get("/flaky") ?? 0) >= 1
    ) break;
    if (Date.now() > deadline) {
      throw new Error(`seed: timed out, stats ${JSON.stringify(stats)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { deliveredIds, retryingId, deadId };
}

export { openOutbox };

/** What a run of the command line printed, and its exit code. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

const CLI = new URL("../../src/durable/cli.ts", import.meta.url).pathname;

/** Runs `src/durable/cli.ts` with `args` in a subprocess (at most 60 s). */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<CliRun> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** `count` copies of each dead letter in `dead` (pg-boss's job table in
 * `schema`), written to `into` (default: `dead`), ids `${prefix}-n`, an hour
 * older (a redrive takes the oldest first), each a chain of its own: what a
 * redrive moves back. */
export async function copyDeadLetters(
  sql: { query(text: string, values?: unknown[]): Promise<unknown> },
  schema: string,
  dead: string,
  prefix: string,
  { count = 1_000, into = dead }: { count?: number; into?: string } = {},
): Promise<void> {
  await sql.query(
    `INSERT INTO ${schema}.job
     SELECT (jsonb_populate_record(j, jsonb_build_object(
       'id', gen_random_uuid(), 'name', $3::text,
       'data', jsonb_set(j.data, '{id}', to_jsonb($2 || '-' || n)),
       'source_id', gen_random_uuid(),
       'source_root_id', null,
       'created_on', j.created_on - interval '1 hour'))).*
     FROM ${schema}.job AS j, generate_series(1, $4::int) AS n
     WHERE j.name = $1`,
    [dead, prefix, into, count],
  );
}
