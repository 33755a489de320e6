// A process's exit, for the lines trigger() and connection() write when
// work is cut short by it (private; a leaf any module can take, so the
// receiving side needs none of the transport's runtime code).

interface DenoLike {
  stderr?: { writeSync?(bytes: Uint8Array): number };
}
interface ProcessLike {
  on?(event: "exit", listener: () => void): unknown;
  stderr?: { write?(text: string): unknown };
}

/**
 * Calls `listener` once when the process exits (Deno's `unload` event, Node
 * and Bun's `exit`), with a function that writes a line to stderr
 * synchronously. Returns false where there is no process to exit (Workers,
 * edge runtimes).
 */
export function onProcessExit(
  listener: (writeError: (line: string) => void) => void,
): boolean {
  const deno = (globalThis as { Deno?: DenoLike }).Deno;
  if (typeof deno?.stderr?.writeSync === "function") {
    const encoder = new TextEncoder();
    const write = (line: string) =>
      void deno.stderr!.writeSync!(encoder.encode(line + "\n"));
    try {
      // A Deno-like runtime may lack the event or refuse the listener.
      globalThis.addEventListener("unload", () => listener(write));
      return true;
    } catch {
      return false;
    }
  }
  const process = (globalThis as { process?: ProcessLike }).process;
  if (typeof process?.on === "function") {
    const write = (line: string) => void process.stderr?.write?.(line + "\n");
    try {
      process.on("exit", () => listener(write));
      return true;
    } catch {
      return false;
    }
  }
  return false;
}
