// A PgBouncer of a test's own in front of a PostgreSQL: the pooler Neon (by
// its documentation) and many self-hosted setups put before the database, in
// transaction pooling mode unless told otherwise, with its default refusal of
// startup parameters it does not know. Runs as the postgres user when root
// (PgBouncer refuses root), on a free loopback port.
import { findExecutable } from "./_env.ts";
import { deadPort } from "./_servers.ts";
import { until } from "./_wait.ts";

/** pgbouncer, wherever it is installed (Debian keeps it in /usr/sbin). */
export const PGBOUNCER: string | undefined = findExecutable("pgbouncer", [
  "/usr/sbin/pgbouncer",
]);
const IS_ROOT = Deno.uid?.() === 0;

function postgresIds(): { uid: number; gid: number } | undefined {
  const line = Deno.readTextFileSync("/etc/passwd").split("\n")
    .find((l) => l.startsWith("postgres:"));
  if (line === undefined) return undefined;
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

/** Whether {@linkcode PgBouncer.start} can work here. */
export const CAN_START_PGBOUNCER: boolean = PGBOUNCER !== undefined &&
  (!IS_ROOT || postgresIds() !== undefined);

/** A running PgBouncer. */
export class PgBouncer {
  readonly port: number;
  readonly #dir: string;
  readonly #database: URL;
  #process: Deno.ChildProcess;
  private constructor(
    dir: string,
    port: number,
    database: URL,
    process: Deno.ChildProcess,
  ) {
    this.#dir = dir;
    this.port = port;
    this.#database = database;
    this.#process = process;
  }

  /**
   * Starts one in front of `databaseUrl` (trust authentication, as the
   * tests' PostgreSQL), `mode` pooling, `poolSize` server connections.
   */
  static async start(
    databaseUrl: string,
    { mode = "transaction", poolSize = 5 }: {
      mode?: "transaction" | "session";
      poolSize?: number;
    } = {},
  ): Promise<PgBouncer> {
    if (!CAN_START_PGBOUNCER) throw new Error("cannot start PgBouncer here");
    const database = new URL(databaseUrl);
    const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "pgbouncer_" });
    const port = deadPort();
    const user = decodeURIComponent(database.username || "postgres");
    await Deno.writeTextFile(`${dir}/users.txt`, `"${user}" ""\n`);
    await Deno.writeTextFile(
      `${dir}/pgbouncer.ini`,
      [
        "[databases]",
        `* = host=${database.hostname} port=${database.port || 5432}`,
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        `listen_port = ${port}`,
        "unix_socket_dir =",
        "auth_type = trust",
        `auth_file = ${dir}/users.txt`,
        `pool_mode = ${mode}`,
        `default_pool_size = ${poolSize}`,
        "max_client_conn = 200",
        `logfile = ${dir}/pgbouncer.log`,
        `pidfile = ${dir}/pgbouncer.pid`,
        "",
      ].join("\n"),
    );
    if (IS_ROOT) {
      const { uid, gid } = postgresIds()!;
      for (const path of [dir, `${dir}/users.txt`, `${dir}/pgbouncer.ini`]) {
        await Deno.chown(path, uid, gid);
      }
    }
    const process = PgBouncer.#spawn(dir);
    const bouncer = new PgBouncer(dir, port, database, process);
    await bouncer.#listening();
    return bouncer;
  }

  static #spawn(dir: string): Deno.ChildProcess {
    const args = [`${dir}/pgbouncer.ini`];
    const [command, ...rest] = IS_ROOT
      ? ["runuser", "-u", "postgres", "--", PGBOUNCER!, ...args]
      : [PGBOUNCER!, ...args];
    return new Deno.Command(command, {
      args: rest,
      stdout: "null",
      stderr: "null",
    }).spawn();
  }

  async #listening(): Promise<void> {
    await until(async () => {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: this.port }))
          .close();
        return true;
      } catch {
        return false;
      }
    }, "PgBouncer listening");
  }

  /** The database's URL with PgBouncer's port in it. */
  url(): string {
    const url = new URL(this.#database);
    url.hostname = "127.0.0.1";
    url.port = String(this.port);
    return url.href;
  }

  /** Stops it and removes its directory. */
  async stop(): Promise<void> {
    try {
      // PgBouncer itself (runuser's child; SIGTERM: at once), then runuser
      // if still there.
      const pid = Number(await Deno.readTextFile(`${this.#dir}/pgbouncer.pid`));
      Deno.kill(pid, "SIGTERM");
    } catch {
      // Exited already, or never wrote its pid.
    }
    try {
      this.#process.kill("SIGTERM");
    } catch {
      // Exited already.
    }
    await this.#process.status;
    await Deno.remove(this.#dir, { recursive: true });
  }
}
