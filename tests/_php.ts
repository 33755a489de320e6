// nginx in front of php-fpm, the seed's own setup, started for one test or
// benchmark: php-fpm in the foreground on a unix socket with its own config
// (no php.ini, no system service), nginx with fastcgi_pass to it, both in one
// temporary directory that also holds the PHP scripts. Shared by
// tests/trigger/php_linger_test.ts and bench/loss.ts.
import { findExecutable, NGINX } from "./_env.ts";
import { type Nginx, readOr, startNginx } from "./_nginx.ts";
import { deadPort } from "./_servers.ts";
import { until } from "./_wait.ts";

/**
 * php-fpm, wherever it is installed: on PATH as `php-fpm`, or Debian's
 * versioned `/usr/sbin/php-fpm8.x`.
 */
export const PHP_FPM: string | undefined = findExecutable("php-fpm", [
  ...versioned("/usr/sbin"),
  "/usr/local/sbin/php-fpm",
  "/opt/homebrew/sbin/php-fpm",
]);

/** Why a test needing nginx and php-fpm cannot run here, for `skipUnless`. */
export const PHP_MISSING =
  "nginx or php-fpm is not installed (apt-get install nginx-light php-fpm php-cli)";

function versioned(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)]
      .map((entry) => entry.name)
      .filter((name) => /^php-fpm\d+(\.\d+)?$/.test(name))
      .sort()
      .reverse()
      .map((name) => `${dir}/${name}`);
  } catch {
    return [];
  }
}

/** A running nginx + php-fpm pair; `stop()` ends both and removes the directory. */
export interface PhpServer {
  /** `http://127.0.0.1:<port>`, nginx's address. */
  origin: string;
  /** The temporary directory: document root, logs, socket. */
  dir: string;
  /** nginx's access log (one line per request nginx is done with). */
  accessLog(): Promise<string>;
  /** Ends nginx, then php-fpm (each waited for), and removes `dir`. */
  stop(): Promise<void>;
}

/**
 * Starts php-fpm and nginx serving `scripts` (file name → PHP source) from a
 * new temporary directory. nginx keeps its defaults for FastCGI (notably
 * `fastcgi_ignore_client_abort off`): a client that leaves is logged 499 and
 * the FastCGI connection closed, as in the seed's setup.
 * Waits (bounded) until both accept connections.
 */
export async function startPhp(
  scripts: Record<string, string>,
  options: { children?: number } = {},
): Promise<PhpServer> {
  if (!NGINX || !PHP_FPM) throw new Error(PHP_MISSING);
  const { children = 4 } = options;
  const dir = await Deno.makeTempDir({ prefix: "fire_php_" });
  await Deno.chmod(dir, 0o777); // nginx workers run as nobody when we are root
  for (const [name, source] of Object.entries(scripts)) {
    await Deno.writeTextFile(`${dir}/${name}`, source);
  }
  const socket = `${dir}/php-fpm.sock`;
  const root = Deno.uid() === 0;
  await Deno.writeTextFile(
    `${dir}/php-fpm.conf`,
    `[global]
pid = ${dir}/php-fpm.pid
error_log = ${dir}/php-fpm.log
daemonize = no

[www]
${root ? "user = root\ngroup = root\n" : ""}listen = ${socket}
listen.mode = 0666
pm = static
pm.max_children = ${children}
catch_workers_output = yes
php_admin_value[output_buffering] = 0
php_admin_value[implicit_flush] = 0
php_admin_value[max_execution_time] = 30
php_admin_value[display_errors] = stderr
`,
  );
  const fpm = new Deno.Command(PHP_FPM, {
    // -n: no php.ini, only the settings above; -R: allow root (temp only).
    args: ["-n", "-F", "-y", `${dir}/php-fpm.conf`, ...(root ? ["-R"] : [])],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const port = deadPort();
  const stopFpm = async () => {
    try {
      fpm.kill("SIGTERM");
    } catch {
      // already ended
    }
    await fpm.status;
  };
  let nginx: Nginx;
  try {
    await until(
      async () => {
        try {
          await Deno.stat(socket);
          return true;
        } catch {
          return false;
        }
      },
      "php-fpm to listen",
      { timeout: 10_000, interval: 20 },
    );
    nginx = await startNginx(
      dir,
      `  server {
    listen 127.0.0.1:${port};
    root ${dir};
    location ~ \\.php$ {
      fastcgi_pass unix:${socket};
      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
      fastcgi_param QUERY_STRING $query_string;
      fastcgi_param REQUEST_METHOD $request_method;
      fastcgi_param CONTENT_TYPE $content_type;
      fastcgi_param CONTENT_LENGTH $content_length;
      fastcgi_param REQUEST_URI $request_uri;
      fastcgi_param SERVER_PROTOCOL $server_protocol;
    }
  }`,
      [port],
    );
  } catch (error) {
    await stopFpm();
    const logs = await readOr(`${dir}/php-fpm.log`);
    await Deno.remove(dir, { recursive: true });
    throw new Error(`${(error as Error).message}\n${logs}`, { cause: error });
  }
  const stop = async () => {
    await nginx.stop();
    await stopFpm();
    await Deno.remove(dir, { recursive: true });
  };
  return {
    origin: `http://127.0.0.1:${port}`,
    dir,
    accessLog: nginx.accessLog,
    stop,
  };
}
