/**
 * The outbox from a terminal: counts, dead letters, redrive, discard, retry
 * now, one trigger's history, and a live feed of deliveries.
 *
 * ```sh
 * deno run -A <module>/src/durable/cli.ts stats              # ./.trigger-outbox
 * DATABASE_URL=postgres://… deno task outbox dead --json
 * deno task outbox redrive 0b6f…  # ids; no ids: every dead letter
 * deno task outbox tail --since 10m
 * ```
 *
 * Human-readable tables by default, `--json` for scripts (`tail`: one JSON
 * object per line). Exit code 0 on success, 1 when some of the given ids
 * were not found or a command failed, 2 for a bad argument or a database
 * that cannot be opened. It opens only an existing outbox and creates
 * nothing: a mistyped `--schema`, `--queue` or `--dir` exits with 2 and a
 * message naming it (an {@linkcode OutboxError} `"NOT_FOUND"`). Passwords
 * are never printed; job values are printed with control characters
 * escaped.
 *
 * @example Usage
 * ```ts
 * import { main } from "./cli.ts";
 * import assert from "node:assert/strict";
 *
 * const out: string[] = [];
 * const code = await main(["--help"], { print: (line) => out.push(line) });
 * assert.equal(code, 0);
 * assert.match(out.join("\n"), /Usage:/);
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { openOutbox, type Outbox, OutboxError } from "./mod.ts";
import { type Admin, adminOf } from "./_admin_queries.ts";
import { follow } from "./_tail.ts";
import { redact, redactText, secretsOf } from "../_redact.ts";

const USAGE = `Usage: deno task outbox <command> [options]
       deno run -A <module>/src/durable/cli.ts <command> [options]

Commands:
  stats              counts per target origin, the last hour, oldest queued
  dead               dead letters, oldest first (--limit, default 50; --offset)
  show <id>          one trigger: its request and every row it went through
  redrive [ids...]   move dead letters back to the queue (no ids: all)
  discard <ids...>   delete dead letters
  retry <ids...>     try retrying jobs now instead of at their next attempt
  tail               print deliveries as they happen, until Ctrl-C

Options:
  --dir <path>           the embedded outbox (default ./.trigger-outbox)
  --database-url <url>   PostgreSQL instead (default: $DATABASE_URL)
  --queue <name>         default trigger_outbox
  --schema <name>        default pgboss
  --json                 JSON output (tail: one object per line)
  --limit <n>            rows for dead (default 50)
  --offset <n>           dead: skip the n oldest (default 0)
  --since <duration>     tail: start this far back (30s, 10m, 2h, 1d; default 0;
                         further back than 1970 starts there)
  --interval <ms>        tail: milliseconds between polls (default 1000)
  -h, --help             this text

Exit codes: 0 done, 1 some ids not found or a command failed,
2 bad argument or the database cannot be opened; an outbox that does not
exist (a mistyped --schema, --queue or --dir) is never created: exit 2.`;

const COMMANDS = new Set([
  "stats",
  "dead",
  "show",
  "redrive",
  "discard",
  "retry",
  "tail",
]);

/** Where {@linkcode main} writes; the defaults are stdout and stderr. */
export interface CliIo {
  /** Writes one line of output. */
  print?: (line: string) => void;
  /** Writes one line of diagnostics. */
  error?: (line: string) => void;
  /** Ends `tail` when aborted (the command line aborts it on Ctrl-C). */
  signal?: AbortSignal;
  /** The environment's `DATABASE_URL`. Default: read from `Deno.env`. */
  databaseUrl?: string;
}

class UsageError extends Error {}

/**
 * Runs the command line.
 *
 * @param args The arguments after the program name.
 * @param io Where output goes; how `tail` ends.
 * @returns The exit code: 0, 1 or 2.
 */
export async function main(args: string[], io: CliIo = {}): Promise<number> {
  const print = io.print ?? ((line: string) => console.log(line));
  let secrets: string[] = [];
  const scrub = (text: string) => redact(redactText(text), secrets);
  const error = (line: string) =>
    (io.error ?? ((l: string) => console.error(l)))(scrub(line));

  let parsed;
  try {
    parsed = parse(args);
  } catch (cause) {
    error(`outbox: ${(cause as Error).message}`);
    error("Run with --help for usage.");
    return 2;
  }
  if (parsed.help) {
    print(USAGE);
    return 0;
  }
  const databaseUrl = parsed.databaseUrl ??
    (parsed.dir === undefined ? io.databaseUrl ?? envDatabaseUrl() : undefined);
  if (databaseUrl !== undefined) {
    secrets = secretsOf(databaseUrl);
    try {
      new URL(databaseUrl);
    } catch {
      // Not through error(): its scrubbing would mask the example's
      // credentials, and the line holds nothing of the given URL.
      (io.error ?? ((l: string) => console.error(l)))(
        "outbox: --database-url / DATABASE_URL must be a URL like postgres://user:password@host:5432/db",
      );
      return 2;
    }
  }
  const dir = parsed.dir ?? "./.trigger-outbox";
  if (databaseUrl === undefined) {
    try {
      await Deno.stat(`${dir}/pgdata`);
    } catch {
      error(
        `outbox: no embedded outbox in ${
          JSON.stringify(dir)
        } (give --dir, or --database-url / DATABASE_URL for PostgreSQL)`,
      );
      return 2;
    }
  }

  let outbox: Outbox;
  try {
    outbox = await openOutbox({
      ...(databaseUrl !== undefined
        ? { connectionString: databaseUrl, connectTimeout: 5_000 }
        : { dir }),
      queue: parsed.queue,
      schema: parsed.schema,
      // Never creates: a mistyped --schema or --queue is an error, not a
      // new empty outbox (for the writing commands too).
      create: false,
      onEvent(event) {
        // Outbox errors are already redacted; the string check is a second
        // line, as for every message this tool prints.
        if (event.type === "error") {
          error(`outbox: ${(event.error as Error)?.message ?? event.error}`);
        }
      },
    });
  } catch (cause) {
    if (cause instanceof OutboxError || cause instanceof TypeError) {
      error(`outbox: ${cause.message}`);
      if (cause instanceof OutboxError && cause.code === "NOT_FOUND") {
        error(
          "Check --schema, --queue and --dir / --database-url: this tool opens only an existing outbox and creates nothing.",
        );
      }
      return 2;
    }
    error(`outbox: ${(cause as Error)?.message ?? cause}`);
    return 2;
  }

  try {
    const admin = adminOf(outbox);
    const out = new Output(print, parsed.json);
    switch (parsed.command) {
      case "stats":
        await stats(admin, out);
        return 0;
      case "dead":
        await dead(admin, out, parsed.limit, parsed.offset);
        return 0;
      case "show":
        return await show(admin, out, parsed.ids[0]);
      // An id may name several rows (one webhook-id given to several
      // triggers): the rows moved are not the ids found. Those no row has
      // are looked up first, and named.
      case "redrive": {
        const ids = parsed.ids.length === 0 ? undefined : parsed.ids;
        const unknown = ids === undefined
          ? []
          : await admin.unknownIds(ids, "redrivable");
        const moved = await outbox.redrive(ids).catch((cause) => {
          partly(out, cause, "redriven");
          notFound(unknown, false, error, NOT_REDRIVABLE);
          throw cause;
        });
        out.result({ redriven: moved }, `${moved} redriven`);
        return notFound(
          unknown,
          ids !== undefined && moved === 0,
          error,
          NOT_REDRIVABLE,
        );
      }
      case "discard": {
        const unknown = await admin.unknownIds(parsed.ids, "dead");
        const gone = await outbox.discard(parsed.ids).catch((cause) => {
          partly(out, cause, "discarded");
          notFound(unknown, false, error);
          throw cause;
        });
        out.result({ discarded: gone }, `${gone} discarded`);
        return notFound(unknown, gone === 0, error);
      }
      case "retry": {
        const unknown = await admin.unknownIds(parsed.ids, "retrying");
        const moved = await admin.retryNow(parsed.ids);
        out.result({ retried: moved }, `${moved} retried now`);
        return notFound(unknown, moved === 0, error);
      }
      case "tail":
        await tail(
          admin,
          out,
          parsed.since,
          parsed.interval,
          error,
          io.signal,
        );
        return 0;
    }
    return 2;
  } catch (cause) {
    error(`outbox: ${(cause as Error)?.message ?? cause}`);
    return 1;
  } finally {
    await outbox.stop({ timeout: 1_000 }).catch(() => {});
  }
}

function envDatabaseUrl(): string | undefined {
  try {
    return Deno.env.get("DATABASE_URL") || undefined;
  } catch {
    return undefined;
  }
}

interface Parsed {
  command: string;
  ids: string[];
  help: boolean;
  json: boolean;
  dir?: string;
  databaseUrl?: string;
  queue?: string;
  schema?: string;
  limit: number;
  offset: number;
  since: number;
  interval: number;
}

function parse(args: string[]): Parsed {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: "boolean", short: "h" },
        json: { type: "boolean" },
        dir: { type: "string" },
        "database-url": { type: "string" },
        queue: { type: "string" },
        schema: { type: "string" },
        limit: { type: "string" },
        offset: { type: "string" },
        since: { type: "string" },
        interval: { type: "string" },
      },
    }));
  } catch (cause) {
    throw new UsageError((cause as Error).message);
  }
  const [command, ...given] = positionals;
  // An id given twice is one id: `redrive a a` found every id it was given.
  const ids = [...new Set(given)];
  if (values.help) {
    return {
      command: "",
      ids,
      help: true,
      json: false,
      limit: 0,
      offset: 0,
      since: 0,
      interval: 0,
    };
  }
  if (command === undefined) throw new UsageError("give a command");
  if (!COMMANDS.has(command)) {
    throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
  if (values.dir !== undefined && values["database-url"] !== undefined) {
    throw new UsageError("give --dir or --database-url, not both");
  }
  if ((command === "discard" || command === "retry") && ids.length === 0) {
    throw new UsageError(`${command} needs at least one id`);
  }
  if (command === "show" && given.length !== 1) {
    throw new UsageError("show needs exactly one id");
  }
  if (
    (command === "stats" || command === "dead" || command === "tail") &&
    ids.length > 0
  ) {
    throw new UsageError(`${command} takes no ids`);
  }
  return {
    command,
    ids,
    help: false,
    json: values.json ?? false,
    dir: values.dir,
    databaseUrl: values["database-url"],
    queue: values.queue,
    schema: values.schema,
    limit: whole(values.limit, "--limit", 50, 1, 10_000),
    offset: whole(
      values.offset,
      "--offset",
      0,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    since: duration(values.since),
    interval: whole(values.interval, "--interval", 1_000, 50, 3_600_000),
  };
}

function whole(
  text: string | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) {
    throw new UsageError(
      `${name} must be a whole number from ${min} to ${max}, received ${
        JSON.stringify(text)
      }`,
    );
  }
  return n;
}

/** "90s", "10m", "2h", "1d" or milliseconds, in milliseconds. */
function duration(text: string | undefined): number {
  if (text === undefined) return 0;
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text);
  if (match === null) {
    throw new UsageError(
      `--since must be a duration like 30s, 10m, 2h or 1d, received ${
        JSON.stringify(text)
      }`,
    );
  }
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    (match[2] ?? "ms") as "ms"
  ];
  const ms = Number(match[1]) * unit;
  // Further back than a date can be: the start would be an invalid date.
  if (ms > MAX_SINCE) {
    throw new UsageError(
      `--since must be at most ${MAX_SINCE} ms (the range of a date), received ${
        JSON.stringify(text)
      }`,
    );
  }
  return ms;
}

/** The longest `--since`: a date's range (100,000,000 days either side of
 * 1970), so that now minus it is still a date. */
const MAX_SINCE = 8_640_000_000_000_000;

/** Control characters (a job's URL or error could carry terminal escapes)
 * shown as `\xNN`. */
function safe(value: unknown): string {
  return String(value).replace(
    // deno-lint-ignore no-control-regex
    /[\u0000-\u001f\u007f-\u009f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

/** JSON on one line with DEL and the C1 controls escaped as well (JSON
 * escapes only C0): a stored id or URL with `\u009b` (CSI) could drive a
 * terminal that shows the output. */
function jsonLine(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** What `redrive <ids>` says of the ids it could not move. */
const NOT_REDRIVABLE =
  "not found (or not one a redrive moves back: discard it)";

/** For a redrive or discard that failed partway: what its batches before
 * the failure did (committed), on stdout (`"failed": true` in JSON). */
function partly(out: Output, cause: unknown, verb: string): void {
  if (cause instanceof OutboxError && cause.done) {
    out.result(
      { [verb]: cause.done, failed: true },
      `${cause.done} ${verb} before the failure`,
    );
  }
}

/** The exit status of an action on given ids: 1, naming them, when some
 * matched no row (or nothing was done at all), else 0. */
function notFound(
  unknown: string[],
  none: boolean,
  error: (line: string) => void,
  what = "not found",
): number {
  if (unknown.length > 0) {
    error(`outbox: ${what}: ${unknown.map((id) => safe(id)).join(", ")}`);
  }
  return unknown.length > 0 || none ? 1 : 0;
}

class Output {
  readonly print: (line: string) => void;
  readonly json: boolean;
  constructor(print: (line: string) => void, json: boolean) {
    this.print = print;
    this.json = json;
  }

  result(value: unknown, text: string): void {
    this.print(this.json ? jsonLine(value) : text);
  }

  table(head: string[], rows: unknown[][], right = new Set<number>()): void {
    const cells = rows.map((row) => row.map(safe));
    const widths = head.map((h, i) =>
      Math.max(h.length, ...cells.map((row) => row[i].length))
    );
    const line = (row: string[]) =>
      row.map((cell, i) =>
        i === row.length - 1
          ? cell
          : right.has(i)
          ? cell.padStart(widths[i])
          : cell.padEnd(widths[i])
      ).join("  ").trimEnd();
    this.print(line(head));
    for (const row of cells) this.print(line(row));
  }
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  return h < 24
    ? (m % 60 === 0 ? `${h} h` : `${h} h ${m % 60} min`)
    : `${Math.floor(h / 24)} d ${h % 24} h`;
}

function outcome(
  o: { code?: string; status?: number; message?: string } | null,
): string {
  if (o === null) return "";
  return [o.code, o.status].filter((x) => x !== undefined).join(" ");
}

async function stats(admin: Admin, out: Output): Promise<void> {
  const [origins, minutes, now] = await Promise.all([
    admin.origins(),
    admin.lastHour(),
    admin.now(),
  ]);
  const keys = ["queued", "active", "retrying", "delivered", "dead"] as const;
  const totals = Object.fromEntries(
    keys.map((k) => [k, origins.reduce((s, o) => s + o[k], 0)]),
  ) as Record<typeof keys[number], number>;
  const oldest = origins.reduce<Date | null>(
    (min, o) =>
      o.oldestQueued !== null && (min === null || o.oldestQueued < min)
        ? o.oldestQueued
        : min,
    null,
  );
  const delivered = minutes.reduce((s, m) => s + m.delivered, 0);
  const failed = minutes.reduce((s, m) => s + m.failed, 0);
  const failureRate = delivered + failed === 0
    ? 0
    : failed / (delivered + failed);
  const oldestMs = oldest === null ? null : now.getTime() - oldest.getTime();
  if (out.json) {
    out.print(jsonLine({
      queue: admin.queue,
      engine: admin.engine,
      totals,
      oldestQueuedMs: oldestMs,
      lastHour: { delivered, failed, failureRate, minutes },
      origins,
    }));
    return;
  }
  out.print(`Outbox ${safe(admin.queue)} (${admin.engine})`);
  out.table(
    [
      "ORIGIN",
      "QUEUED",
      "ACTIVE",
      "RETRYING",
      "DELIVERED",
      "DEAD",
      "OLDEST QUEUED",
    ],
    [
      ...origins.map((o) => [
        o.origin,
        ...keys.map((k) => o[k]),
        o.oldestQueued === null
          ? "-"
          : age(now.getTime() - o.oldestQueued.getTime()),
      ]),
      [
        "TOTAL",
        ...keys.map((k) => totals[k]),
        oldestMs === null ? "-" : age(oldestMs),
      ],
    ],
    new Set([1, 2, 3, 4, 5]),
  );
  out.print(
    `Last hour: ${delivered} delivered, ${failed} failed attempts (${
      Math.round(failureRate * 1000) / 10
    } %)`,
  );
}

async function dead(
  admin: Admin,
  out: Output,
  limit: number,
  offset: number,
): Promise<void> {
  const [{ total, letters }, now] = await Promise.all([
    admin.deadLetters({ limit, offset, bodyLimit: out.json ? 2_000 : 0 }),
    admin.now(),
  ]);
  if (out.json) {
    out.print(jsonLine({ total, letters }));
    return;
  }
  if (total === 0) {
    out.print("No dead letters.");
    return;
  }
  if (letters.length === 0) {
    out.print(`No dead letters past the first ${offset} (${total} in all).`);
    return;
  }
  out.table(
    ["ID", "ATTEMPTS", "ERROR", "DEAD SINCE", "REQUEST"],
    letters.map((d) => [
      d.id,
      d.attempts,
      outcome(d.error),
      `${age(now.getTime() - d.deadAt.getTime())} ago`,
      `${d.method} ${d.url}`,
    ]),
    new Set([1]),
  );
  if (letters.length < total) {
    out.print(
      offset === 0
        ? `${letters.length} of ${total} shown (--limit, --offset)`
        : `${offset + 1}–${
          offset + letters.length
        } of ${total} shown (--limit, --offset)`,
    );
  }
}

async function show(admin: Admin, out: Output, id: string): Promise<number> {
  const found = await admin.history(id);
  if (found === null) {
    if (out.json) out.print("null");
    else out.print(`No trigger with id ${safe(id)}.`);
    return 1;
  }
  if (out.json) {
    out.print(jsonLine(found));
    return 0;
  }
  const { job, rows, total } = found;
  out.print(`Trigger ${safe(job.id)} (webhook-id)`);
  out.print(`  ${safe(job.method)} ${safe(job.url)}`);
  for (const [name, value] of job.headers) {
    out.print(`  ${safe(name)}: ${safe(value)}`);
  }
  out.print(
    `  body: ${
      job.body === null
        ? job.bodyBinary ? `${job.bodySize} bytes, binary` : "none"
        : `${job.bodySize} bytes`
    }; signing: ${
      job.ownSecret ? "its own secret (not shown)" : "the outbox's"
    }`,
  );
  out.table(
    ["JOB", "QUEUE", "STATE", "ATTEMPTS", "STORED", "NEXT ATTEMPT", "OUTCOME"],
    rows.map((r) => [
      r.jobId,
      r.queue,
      r.state,
      r.attempts,
      r.createdOn.toISOString(),
      r.nextAttempt?.toISOString() ?? "-",
      `${outcome(r.outcome)}${
        r.outcome?.message ? ` ${r.outcome.message}` : ""
      }`,
    ]),
    new Set([3]),
  );
  if (total > rows.length) {
    out.print(`The last ${rows.length} of ${total} rows.`);
  }
  return 0;
}

async function tail(
  admin: Admin,
  out: Output,
  since: number,
  interval: number,
  ready: (line: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  // Nothing in the outbox is older than 1970: a start further back is the
  // epoch (a start before year 1 failed in PostgreSQL, "time zone
  // displacement out of range", exit 1).
  since = Math.min(since, (await admin.now()).getTime());
  await follow(
    admin,
    { since, interval, signal },
    // On stderr, so `--json` output stays one event per line.
    (start) =>
      ready(
        `Following ${
          safe(admin.queue)
        } (${admin.engine}) from ${start.toISOString()}; Ctrl-C to stop.`,
      ),
    (e) => {
      if (out.json) out.print(jsonLine(e));
      else {
        out.print(
          [
            e.at.toISOString(),
            e.type.padEnd(9),
            `attempt ${e.attempt}`,
            outcome(e.outcome).padEnd(16),
            `${e.method} ${e.url}`,
            e.id,
          ].map(safe).join("  "),
        );
      }
    },
  );
}

if (import.meta.main) {
  const stop = new AbortController();
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM"];
  const onSignal = () => stop.abort();
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  const code = await main(Deno.args, { signal: stop.signal });
  for (const s of signals) Deno.removeSignalListener(s, onSignal);
  Deno.exit(code);
}
