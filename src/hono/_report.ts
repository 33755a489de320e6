// The default reporter of both middlewares and a guard around user reporters.
import type { MiddlewareContext } from "./context.ts";

/** A `reportError` option. */
export type Reporter = (error: unknown, c: MiddlewareContext) => unknown;

/** The default `reportError`: `console.error` with the request and `what`. */
export function consoleReporter(what: string): Reporter {
  return (error, c) =>
    console.error(`${what}: ${c.req.method} ${c.req.url}`, error);
}

/** Hands an error to a reporter; a throw of the reporter itself is logged. */
export async function report(
  reporter: Reporter,
  error: unknown,
  c: MiddlewareContext,
  who: string,
): Promise<void> {
  try {
    await reporter(error, c);
  } catch (failure) {
    console.error(`${who}: reportError threw`, failure);
  }
}
