// nginx for one test or benchmark: in the foreground, every file (config,
// pid, logs, temp paths) in a directory the caller owns, with the caller's
// server blocks. Shared by tests/_php.ts and tests/hono/connection_test.ts.
import { NGINX } from "./_env.ts";
import { until } from "./_wait.ts";

/** A running nginx started by {@linkcode startNginx}. */
export interface Nginx {
  /** nginx's access log (one line per request nginx is done with). */
  accessLog(): Promise<string>;
  /** nginx's error log. */
  errorLog(): Promise<string>;
  /** Ends nginx (SIGTERM) and waits for it; `dir` stays. */
  stop(): Promise<void>;
}

/** The text of the file at `path`, or "" if it cannot be read. */
export async function readOr(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return "";
  }
}

/**
 * Starts nginx with `servers` (the `server { … }` blocks of its `http`
 * block) and its files in `dir`, and waits (bounded) until every one of
 * `ports` on 127.0.0.1 accepts connections. `dir` must be writable by
 * nginx's workers (they run as nobody when we are root).
 */
export async function startNginx(
  dir: string,
  servers: string,
  ports: number[],
): Promise<Nginx> {
  if (!NGINX) throw new Error("nginx is not installed");
  const conf = `${dir}/nginx.conf`;
  const errorLog = `${dir}/nginx-error.log`;
  await Deno.writeTextFile(
    conf,
    `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${errorLog} warn;
events { worker_connections 2048; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${servers}
}
`,
  );
  const child = new Deno.Command(NGINX, {
    args: ["-p", dir, "-c", conf, "-e", errorLog],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already ended
    }
    await child.status;
  };
  try {
    await until(
      async () => {
        try {
          for (const port of ports) {
            (await Deno.connect({ hostname: "127.0.0.1", port })).close();
          }
          return true;
        } catch {
          return false;
        }
      },
      "nginx to accept connections",
      { timeout: 10_000, interval: 20 },
    );
  } catch (error) {
    await stop();
    throw new Error(
      `${(error as Error).message}\n${await readOr(errorLog)}`,
      { cause: error },
    );
  }
  return {
    accessLog: () => readOr(`${dir}/access.log`),
    errorLog: () => readOr(errorLog),
    stop,
  };
}
