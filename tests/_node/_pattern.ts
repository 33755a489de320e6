// Deterministic bytes covering every value, so a corrupted body shows; the
// entries running on Node and Bun and the Deno side generate the same ones.

/** `size` bytes from a xorshift generator with a fixed seed. */
export function pattern(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let x = 0x12345678;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}
