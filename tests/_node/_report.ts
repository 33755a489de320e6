// How the Node/Bun entry files report back to the Deno test: one JSON line
// per step, and a trigger() result reduced to what the test checks.
import type { TriggerResult } from "../../mod.ts";

/** Prints one `{ name, value }` JSON line for the test to parse. */
export function print(name: string, value: unknown): void {
  console.log(JSON.stringify({ name, value }));
}

/** What the caller saw of a trigger() result. */
export function summary(result: TriggerResult): {
  ok: boolean;
  status: number | undefined;
  code: string | undefined;
  retryAfter: number | undefined;
  message: string | undefined;
  transport: TriggerResult["transport"];
} {
  return {
    ok: result.ok,
    status: result.status,
    code: result.error?.code,
    retryAfter: result.error?.retryAfter,
    message: result.error?.message,
    transport: result.transport,
  };
}
