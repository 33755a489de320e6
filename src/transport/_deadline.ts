// Trigger timeouts without a timer per trigger (private). A timer costs
// about as much as a reused trigger's own work, so timeouts of a second or
// more share one coarse sweeper (at most SWEEP_MS late, under 5 %); shorter
// ones get their own timer, where that precision matters. The sweeper is
// shared only on Deno: on Workers a timer belongs to the request that set it,
// so one trigger's clock must never run on another request's timer.
import { denoRuntime } from "./_runtime.ts";
import { holdTimer } from "../_bounded.ts";

const SWEEP_MS = 50;
const SHARED_FROM_MS = 1_000;

interface Deadline {
  at: number;
  fire: () => void;
}

const active = new Set<Deadline>();
let sweeper: ReturnType<typeof setInterval> | undefined;

function sweep(): void {
  const now = performance.now();
  for (const deadline of active) {
    if (deadline.at <= now) {
      active.delete(deadline);
      deadline.fire();
    }
  }
  // Idle for a whole sweep: stopped. (Not when the last deadline goes:
  // triggers in a row would then start a timer each.)
  if (active.size === 0 && sweeper !== undefined) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

/**
 * Calls `fire` once `ms` milliseconds have passed, unless the returned
 * function is called first. Like a timer of its own, the shared sweeper keeps
 * the process alive while a trigger is pending (a stalled body stream, say),
 * so the trigger always ends at its timeout; once none is pending it no
 * longer does (unref'd), and it stops at its next sweep. `ms` count from
 * `now`, the caller's `performance.now()` when it has one (a call costs
 * ~0.2 µs).
 */
export function startDeadline(
  ms: number,
  fire: () => void,
  now: number = performance.now(),
): () => void {
  if (ms < SHARED_FROM_MS || !denoRuntime()) {
    // Whole ms, rounded up: Deno truncates a fractional delay, which would
    // fire up to 1 ms early.
    const left = Math.ceil(ms - (performance.now() - now));
    const timer = setTimeout(fire, Math.max(0, left));
    return () => clearTimeout(timer);
  }
  const deadline: Deadline = { at: now + ms, fire };
  active.add(deadline);
  if (sweeper === undefined) sweeper = setInterval(sweep, SWEEP_MS);
  else if (active.size === 1) holdTimer(sweeper, true);
  return () => {
    if (active.delete(deadline) && active.size === 0 && sweeper !== undefined) {
      holdTimer(sweeper, false);
    }
  };
}
