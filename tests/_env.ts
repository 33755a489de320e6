// What the test environment provides, and what happens when it lacks
// something a test needs: on a developer's machine the test is ignored with
// the reason printed; under CI=true (set by .ci/run) the run fails with that
// reason instead, so CI never passes by skipping.

/** Whether this is a CI run (`CI=true`): nothing may be skipped. */
export const CI: boolean = Deno.env.get("CI") === "true";

/**
 * The value for a `Deno.test` `ignore` option: `false` when `condition` holds.
 * Otherwise, outside CI, prints `reason` and returns `true` (the test is
 * ignored); under CI=true, registers a failing test named after `reason` and
 * returns `true`, so the run fails and says why.
 *
 * ```ts
 * import { NGINX, skipUnless } from "./_env.ts";
 *
 * Deno.test({
 *   name: "example: a test that needs nginx",
 *   ignore: skipUnless(
 *     NGINX !== undefined,
 *     "nginx is not installed (apt-get install nginx-light)",
 *   ),
 *   fn() {
 *     if (!NGINX?.endsWith("nginx")) throw new Error(`odd path ${NGINX}`);
 *   },
 * });
 * ```
 */
export function skipUnless(condition: boolean, reason: string): boolean {
  if (condition) return false;
  if (CI) {
    Deno.test(`CI=true forbids skipping: ${reason}`, () => {
      throw new Error(
        `CI=true: a test would be skipped because ${reason}. Install what it needs (.ci/run does) or run without CI=true.`,
      );
    });
  } else {
    console.error(`skipped: ${reason}`);
  }
  return true;
}

/**
 * The path of an executable: `name` found on PATH (as `command -v` does), or
 * the first of `paths` that exists; `undefined` if none.
 */
export function findExecutable(
  name: string,
  paths: readonly string[] = [],
): string | undefined {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter(Boolean);
  for (const candidate of [...dirs.map((dir) => `${dir}/${name}`), ...paths]) {
    try {
      const info = Deno.statSync(candidate);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) {
        return candidate;
      }
    } catch {
      // not here
    }
  }
  return undefined;
}

/** nginx, wherever it is installed (Debian keeps it in /usr/sbin). */
export const NGINX: string | undefined = findExecutable("nginx", [
  "/usr/sbin/nginx",
  "/usr/local/sbin/nginx",
  "/usr/local/nginx/sbin/nginx",
  "/opt/homebrew/bin/nginx",
]);
