// Starts a bench helper in its own Deno process and reads the one line it
// prints when it is ready (a port, or a JSON report). Shared by the bench
// scripts; not a bench itself.

/** A child process started by {@linkcode spawnDeno}. */
export interface Child {
  /** The first line the child printed. */
  line: string;
  process: Deno.ChildProcess;
  /** The rest of the child's stdout, once it exits. */
  rest: Promise<string>;
}

/**
 * Runs `deno <args>` with piped stdout (stderr inherited) and `env` added to
 * its environment, and resolves with its first stdout line. Rejects when the
 * child exits before printing one, or prints none within 30 s.
 */
export function spawnDeno(
  args: string[],
  env: Record<string, string> = {},
): Promise<Child> {
  return spawnLine(Deno.execPath(), args, { NO_COLOR: "1", ...env });
}

/**
 * Runs `command <args>` as {@linkcode spawnDeno} runs deno: resolves with its
 * first stdout line; rejects (the child killed) when it exits before one or
 * prints none within `timeoutMs`.
 */
export async function spawnLine(
  command: string,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<Child> {
  const process = new Deno.Command(command, {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = process.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  const name = `${command} ${args.join(" ").slice(0, 60)}`;
  let text = "";
  const timer = setTimeout(() => {
    process.kill();
    reader.cancel().catch(() => {});
  }, timeoutMs);
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) {
        throw new Error(
          `${name} printed no line (exited, or not within ${timeoutMs} ms)`,
        );
      }
      text += value;
    }
  } finally {
    clearTimeout(timer);
  }
  const newline = text.indexOf("\n");
  const line = text.slice(0, newline);
  const rest = (async () => {
    let more = text.slice(newline + 1);
    while (true) {
      const { value, done } = await reader.read();
      if (done) return more;
      more += value;
    }
  })();
  return { line, process, rest };
}

/**
 * A fetch client that keeps no idle connection: control requests to a target
 * must not add a pooled socket to the fd count.
 */
const control = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });

/** A control request (no pooled connection left behind); returns the body. */
export async function controlRequest(
  url: string,
  method = "GET",
): Promise<string> {
  const response = await fetch(url, { method, client: control });
  return await response.text();
}

/** Starts bench/_hono_target.ts and returns its origin and a stop function. */
export async function startHonoTarget(): Promise<
  { origin: string; stop: () => Promise<void> }
> {
  const child = await spawnDeno([
    "run",
    "--allow-net=127.0.0.1",
    new URL("./_hono_target.ts", import.meta.url).pathname,
  ]);
  const origin = `http://127.0.0.1:${Number(child.line)}`;
  return {
    origin,
    async stop() {
      await controlRequest(`${origin}/shutdown`, "POST");
      await child.process.status;
      await child.rest;
    },
  };
}

/** Counts reported by the Hono target's `GET /count`. */
export interface HonoCounts {
  /** Requests the route acknowledged with 202. */
  acknowledged: number;
  /** Background runs that completed (body read, id recorded). */
  completed: number;
  /** Distinct ids among the completed runs. */
  distinct: number;
  /** Distinct client connections (remote ports) seen. */
  connections: number;
}

/** Waits for the target's background work, then reads its counts. */
export async function honoCounts(origin: string): Promise<HonoCounts> {
  return JSON.parse(await controlRequest(`${origin}/count`));
}

/** The value at quantile `q` (0–1) of `values` (sorted copy; nearest rank). */
export function quantile(values: number[], q: number): number {
  const sorted = values.slice().sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
}

/** The count of this process's open file descriptors (Linux). */
export function openFds(): number {
  let count = 0;
  for (const _ of Deno.readDirSync("/proc/self/fd")) count++;
  return count;
}

/** What each open fd of this process points at (Linux), by fd number. */
export function fdTargets(): Map<string, string> {
  const targets = new Map<string, string>();
  for (const { name } of Deno.readDirSync("/proc/self/fd")) {
    try {
      targets.set(name, Deno.readLinkSync(`/proc/self/fd/${name}`));
    } catch {
      // Closed since the listing (the listing's own fd).
    }
  }
  return targets;
}

/** This process's open TCP sockets (fds whose inode is in /proc/net/tcp*). */
export function tcpFds(): number {
  const inodes = new Set<string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    try {
      for (const line of Deno.readTextFileSync(file).split("\n").slice(1)) {
        const inode = line.trim().split(/\s+/)[9];
        if (inode) inodes.add(inode);
      }
    } catch {
      // No IPv6.
    }
  }
  let count = 0;
  for (const what of fdTargets().values()) {
    if (what.startsWith("socket:[") && inodes.has(what.slice(8, -1))) count++;
  }
  return count;
}
