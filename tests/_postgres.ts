// A PostgreSQL of a test's own: initdb into a temporary directory, started on
// a free loopback port with pg_ctl. For the tests that SIGSTOP a server: they
// must never stop the shared one. Every child process is bounded (output()).
import { findExecutable } from "./_env.ts";
import { deadPort } from "./_servers.ts";
import { output } from "./_wait.ts";

const PG_BIN = "/usr/lib/postgresql/15/bin";
const INITDB = findExecutable("initdb", [`${PG_BIN}/initdb`]);
const PG_CTL = findExecutable("pg_ctl", [`${PG_BIN}/pg_ctl`]);
const IS_ROOT = Deno.uid?.() === 0;

/** The postgres user's uid, when there is one (root runs the server as it). */
function postgresUid(): number | undefined {
  const line = Deno.readTextFileSync("/etc/passwd").split("\n")
    .find((l) => l.startsWith("postgres:"));
  return line === undefined ? undefined : Number(line.split(":")[2]);
}

/**
 * Whether {@linkcode ThrowawayPostgres.start} can work here: initdb and pg_ctl
 * exist and, as root (PostgreSQL refuses to run as root), a postgres user.
 */
export const CAN_START_POSTGRES: boolean = INITDB !== undefined &&
  PG_CTL !== undefined && (!IS_ROOT || postgresUid() !== undefined);

/** Runs a PostgreSQL tool (as the postgres user when root), bounded. */
async function run(program: string, args: string[]): Promise<void> {
  const [command, ...rest] = IS_ROOT
    ? ["runuser", "-u", "postgres", "--", program, ...args]
    : [program, ...args];
  const { code, stderr } = await output(command, {
    args: rest,
    stdout: "null",
    stderr: "piped",
    timeout: 60_000,
    what: program,
  });
  if (code !== 0) {
    throw new Error(`${program} failed: ${new TextDecoder().decode(stderr)}`);
  }
}

/** A throwaway PostgreSQL server (trust authentication, fsync off). */
export class ThrowawayPostgres {
  /** The loopback port it listens on. */
  readonly port: number;
  readonly #dir: string;
  private constructor(dir: string, port: number) {
    this.#dir = dir;
    this.port = port;
  }

  /** initdb and start one; needs {@linkcode CAN_START_POSTGRES}. */
  static async start(prefix = "throwaway_pg_"): Promise<ThrowawayPostgres> {
    if (!CAN_START_POSTGRES) throw new Error("cannot start a PostgreSQL here");
    const dir = await Deno.makeTempDir({ dir: "/tmp", prefix });
    if (IS_ROOT) await Deno.chown(dir, postgresUid()!, null);
    await run(INITDB!, [
      "-D",
      `${dir}/data`,
      "-A",
      "trust",
      "-U",
      "postgres",
      "--no-sync",
    ]);
    const port = deadPort();
    await run(PG_CTL!, [
      "-D",
      `${dir}/data`,
      "-l",
      `${dir}/log`,
      "-w",
      "-t",
      "30",
      "-o",
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      "start",
    ]);
    return new ThrowawayPostgres(dir, port);
  }

  /** Its connection URL, for user postgres (any password: trust). */
  url(password?: string): string {
    const secret = password === undefined
      ? ""
      : `:${encodeURIComponent(password)}`;
    return `postgres://postgres${secret}@127.0.0.1:${this.port}/postgres`;
  }

  /** The postmaster and every backend it forked. */
  async pids(): Promise<number[]> {
    const text = await Deno.readTextFile(`${this.#dir}/data/postmaster.pid`);
    const main = Number(text.split("\n")[0]);
    const children: number[] = [];
    for await (const entry of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
        const ppid = Number(
          stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1],
        );
        if (ppid === main) children.push(Number(entry.name));
      } catch {
        // Gone meanwhile.
      }
    }
    return [main, ...children];
  }

  /** Sends `signal` to every process of this server. */
  async signal(signal: "SIGSTOP" | "SIGCONT"): Promise<void> {
    for (const pid of await this.pids()) {
      try {
        Deno.kill(pid, signal);
      } catch {
        // Exited meanwhile.
      }
    }
  }

  /** Resumes it, stops it (immediate) and removes its directory. */
  async stop(): Promise<void> {
    try {
      await this.signal("SIGCONT");
      await run(PG_CTL!, [
        "-D",
        `${this.#dir}/data`,
        "-m",
        "immediate",
        "-w",
        "stop",
      ]);
    } finally {
      await Deno.remove(this.#dir, { recursive: true });
    }
  }
}
