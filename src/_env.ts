// Environment variables, read the same way on every runtime (private).

interface DenoEnv {
  env?: { get(name: string): string | undefined };
  permissions?: {
    querySync?(d: { name: "env"; variable: string }): { state: string };
  };
}

/**
 * The environment variable `name`, or undefined when it is unset or cannot be
 * read without asking: on Deno only where env access to it is granted (never
 * a permission prompt, never a throw), `process.env` on Node and Bun,
 * nothing where there is no environment (Workers, edge-runtime).
 */
export function readEnv(name: string): string | undefined {
  try {
    const deno = (globalThis as { Deno?: DenoEnv }).Deno;
    if (deno !== undefined) {
      // A runtime without permissions (an edge runtime's build) has no
      // prompt; one with permissions but no query might prompt: not read.
      const permissions = deno.permissions;
      if (
        permissions !== undefined &&
        (typeof permissions.querySync !== "function" ||
          permissions.querySync({ name: "env", variable: name }).state !==
            "granted")
      ) return undefined;
      const value = deno.env?.get(name);
      return typeof value === "string" ? value : undefined;
    }
    const value = (globalThis as {
      process?: { env?: Record<string, unknown> };
    }).process?.env?.[name];
    return typeof value === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}
