// Bounded waits for the tests: every wait fails with a message naming what
// did not happen, never hangs the run (Deno's test runner has no timeout).
// Bounds are generous (a 2-core machine shared by several runs is slow); they
// exist to turn a hang into a failure, not to measure anything.

/** How long a test waits for something that should arrive, by default. */
export const WAIT_TIMEOUT = 30_000;

/**
 * Resolves as `promise` does, or rejects after `timeout` ms with an error
 * saying that `what` did not happen. The timer is cleared either way.
 */
export async function within<T>(
  promise: Promise<T>,
  what: string,
  timeout: number = WAIT_TIMEOUT,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: not within ${timeout} ms`)),
      timeout,
    );
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits until `condition()` holds, checking every `interval` ms, for at most
 * `timeout` ms; then rejects saying that `what` never became true. Use it
 * instead of a sleep when a test needs some state before going on.
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  { timeout = WAIT_TIMEOUT, interval = 5 }: {
    timeout?: number;
    interval?: number;
  } = {},
): Promise<void> {
  const end = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() >= end) {
      throw new Error(`${what}: still not true after ${timeout} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/**
 * Runs `command` to its end like `Deno.Command#output()`, killing it (SIGTERM)
 * after `timeout` ms and then rejecting with a message naming it and what it
 * wrote to stderr, if piped.
 */
export async function output(
  program: string | URL,
  options: Deno.CommandOptions & { timeout?: number; what?: string },
): Promise<Deno.CommandOutput> {
  const { timeout = 120_000, what, ...rest } = options;
  const name = what ?? `${program} ${(rest.args ?? []).join(" ")}`.trim();
  const signal = AbortSignal.timeout(timeout);
  const result = await new Deno.Command(program, {
    ...rest,
    signal: rest.signal ? AbortSignal.any([rest.signal, signal]) : signal,
  }).output();
  if (signal.aborted) {
    const stderr = (rest.stderr ?? "piped") === "piped"
      ? `: ${new TextDecoder().decode(result.stderr).slice(-2000)}`
      : "";
    throw new Error(
      `${name.slice(0, 200)}: killed after ${timeout} ms${stderr}`,
    );
  }
  return result;
}
