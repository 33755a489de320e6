// The example published in the Standard Webhooks specification, and a way to
// spoil it one byte at a time: shared by the signing and verifying tests.

/** The specification's example message and its signature. */
export const VECTOR = {
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
};

/** Every string with one byte changed at each position (printable changes). */
export function oneByteChanges(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const changed = code === 0x41 ? 0x42 : code === 0x30 ? 0x31 : code ^ 1;
    out.push(
      text.slice(0, i) + String.fromCharCode(changed) + text.slice(i + 1),
    );
  }
  return out;
}

/** The key `verifyTrigger()` keeps a delivery under in its store: the
 * first 8 bytes of the SHA-256 of the secret that verified it, in hex, a
 * colon, then the `webhook-id` (computed here from the secret's text). */
export async function storeKey(secret: string, id: string): Promise<string> {
  const bytes = Uint8Array.from(
    atob(secret.replace(/^whsec_/, "")),
    (char) => char.charCodeAt(0),
  );
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const hex = [...digest.subarray(0, 8)]
    .map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex}:${id}`;
}
