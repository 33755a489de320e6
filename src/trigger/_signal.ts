// One "abort" listener per caller's signal, however many triggers share it.
//
// A server passes one long-lived signal (a shutdown controller's) to every
// trigger. A listener each made Node warn of a leak that was not there
// (`MaxListenersExceededWarning` from the 11th trigger in flight: Node
// counts listeners per AbortSignal), and cost each trigger an add and a
// remove on the signal.

interface Fan {
  /** The triggers to tell, in the order they started listening. */
  told: Set<() => void>;
  /** The one listener on the signal. */
  fire: () => void;
}

const fans = new WeakMap<AbortSignal, Fan>();

/**
 * Calls `onAbort` when `signal` aborts, until {@linkcode unlisten}. The first
 * listener on a signal is added to it, and throws what its
 * `addEventListener` throws.
 */
export function listen(signal: AbortSignal, onAbort: () => void): void {
  const fan = fans.get(signal);
  if (fan !== undefined) {
    fan.told.add(onAbort);
    return;
  }
  const told = new Set([onAbort]);
  const fire = () => {
    fans.delete(signal);
    // Every one is told, whatever one of them throws (thrown after, as a
    // listener's own would be).
    let thrown: { error: unknown } | undefined;
    for (const tell of told) {
      try {
        tell();
      } catch (error) {
        thrown ??= { error };
      }
    }
    if (thrown) throw thrown.error;
  };
  signal.addEventListener("abort", fire, { once: true });
  fans.set(signal, { told, fire });
}

/**
 * Stops calling `onAbort`; the signal's listener goes with the last one (a
 * signal left with a listener can be kept alive by it: Node holds an
 * `AbortSignal.timeout()` with listeners until it fires). May throw what the
 * signal's `removeEventListener` throws.
 */
export function unlisten(signal: AbortSignal, onAbort: () => void): void {
  const fan = fans.get(signal);
  if (fan === undefined || !fan.told.delete(onAbort)) return;
  if (fan.told.size > 0) return;
  fans.delete(signal);
  signal.removeEventListener("abort", fan.fire);
}
