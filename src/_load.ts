// The error for an `npm:` module that could not be loaded.
import { describe } from "./_redact.ts";

/**
 * What a failed `import("npm:…")` is told as: Deno resolves `npm:`
 * specifiers (fetching the package on first use); Node and Bun running the
 * sources as they are do not, and only a bundle of the app (`deno bundle
 * --platform node`) carries the package to them.
 *
 * @param prefix What was being done (e.g. "Cannot open outbox: ").
 * @param specifier The module's `npm:` specifier.
 * @param cause What the import threw.
 */
export function loadFailed(
  prefix: string,
  specifier: string,
  cause: unknown,
): TypeError {
  // On Deno the package could not be fetched or read: no hint about
  // bundles, which is for Node and Bun.
  const onDeno = typeof (globalThis as { Deno?: { version?: unknown } }).Deno
    ?.version === "object";
  return new TypeError(
    `${prefix}${specifier} could not be loaded: ${describe(cause)}${
      onDeno
        ? ""
        : " (only Deno resolves npm: specifiers; on Node and Bun, run a bundle made by deno bundle --platform node)"
    }`,
    { cause },
  );
}
