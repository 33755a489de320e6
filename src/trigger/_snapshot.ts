// Copies of the caller's byte bodies, taken at the call (private): what is
// sent is what was given, whatever the caller does with its array after.
//
// A copy of its own (`slice()`) costs a new ArrayBuffer: ~0.8 µs in a tight
// loop and 5–6 µs per trigger in a trigger loop with its waits (one CPU,
// 1 KB; docs/performance.md, eighth pass). Small bodies are copied into a
// shared slab instead, each into its own range, never reused: a slab is
// freed by the garbage collector once no copy in it is referenced, so a
// copy kept by a trigger still running keeps at most SLAB bytes alive.

/** Bodies up to this size share a slab; larger ones get their own copy. */
const SHARED_MAX = 2 * 1024;
/** A slab's size: at most this much kept alive by one small copy. */
const SLAB = 16 * 1024;

let slab: Uint8Array<ArrayBuffer> | undefined;
let used = 0;

/** A copy of `bytes` no later change to them reaches. */
export function snapshot(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const length = bytes.length;
  if (length > SHARED_MAX) return new Uint8Array(bytes);
  if (slab === undefined || used + length > SLAB) {
    slab = new Uint8Array(SLAB);
    used = 0;
  }
  const copy = slab.subarray(used, used + length);
  copy.set(bytes);
  used += length;
  return copy;
}
