// Trigger timeouts without a timer per trigger (private). A timer costs
// about as much as a reused trigger's own work, so timeouts of a second or
// more share one coarse sweeper (at most SWEEP_MS late, under 5 %); shorter
// ones get their own timer, where that precision matters. The sweeper is
// shared only on Deno, Node and Bun: on Workers a timer belongs to the
// request that set it, so one trigger's clock must never run on another
// request's timer.
import { sharedTimers } from "./_runtime.ts";

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
  // Nothing pending at a sweep: stopped, and so no longer keeping the
  // process alive. (Not when the last deadline goes: triggers in a row would
  // then start a timer each, or ref and unref it each.)
  if (active.size === 0 && sweeper !== undefined) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

/**
 * Calls `fire` once `ms` milliseconds have passed, unless the returned
 * function is called first. Like a timer of its own, the shared sweeper keeps
 * the process alive while a trigger is pending (a stalled body stream, say),
 * so the trigger always ends at its timeout; once none is pending it stops
 * at its next sweep (at most SWEEP_MS later).
 */
export function startDeadline(ms: number, fire: () => void): () => void {
  if (ms < SHARED_FROM_MS || !sharedTimers()) {
    const timer = setTimeout(fire, ms);
    return () => clearTimeout(timer);
  }
  const deadline: Deadline = { at: performance.now() + ms, fire };
  active.add(deadline);
  if (sweeper === undefined) sweeper = setInterval(sweep, SWEEP_MS);
  return () => {
    active.delete(deadline);
  };
}
