// A wait with a bound, shared by the entry points (private; a leaf apart
// from its constant: any module can take it without pulling in another
// product's code).
import { MAX_TIMER_MS } from "./_options.ts";

/** Whether `timer` keeps the process alive: Node's and Bun's timers have
 * `ref()`/`unref()`, Deno's are numbers for `Deno.refTimer()`; elsewhere
 * (Workers, edge runtimes) nothing to do. */
export function holdTimer(
  timer: ReturnType<typeof setTimeout>,
  on: boolean,
): void {
  const method = (timer as { ref?: () => void; unref?: () => void })[
    on ? "ref" : "unref"
  ];
  if (typeof method === "function") return method.call(timer);
  const deno = (globalThis as {
    Deno?: { refTimer?(id: number): void; unrefTimer?(id: number): void };
  }).Deno;
  deno?.[on ? "refTimer" : "unrefTimer"]?.(timer as unknown as number);
}

/**
 * `fn()`'s result, or a rejection with `expired()` once `ms` pass (capped at
 * a timer's range). A synchronous throw in `fn` rejects too; the timer is
 * cleared either way.
 */
export function bounded<T>(
  ms: number,
  fn: () => T | PromiseLike<T>,
  expired: () => unknown,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(expired()),
      Math.min(ms, MAX_TIMER_MS),
    );
    Promise.resolve().then(fn).then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
