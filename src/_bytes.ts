// Byte helpers shared by the entry points (private; a leaf: any module can
// take it without pulling in another product's code).

/** `chunks` (`size` bytes in all) as one array: the only chunk itself, or a
 * copy of them all in order. */
export function concatBytes(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
