// Standard Webhooks signatures (https://www.standardwebhooks.com), the
// helpers both sides share: trigger()'s `sign` option uses signPayload(),
// verifyTrigger() uses the same checks as verifyPayload(). WebCrypto only.
import {
  checkBody,
  checkMessage,
  importKey,
  newSecret,
  parseSecret,
  parseSignatures,
  sign,
  type SignedMessage,
  verify,
} from "./_sign.ts";

export type { SignedMessage } from "./_sign.ts";

/** A {@linkcode SignedMessage} and the `webhook-signature` header to check. */
export interface SignatureCheck extends SignedMessage {
  /** The `webhook-signature` header: space-separated `v1,<base64>` entries. */
  signature: string;
}

/**
 * Creates a random secret in the Standard Webhooks form `whsec_<base64>`
 * (32 random bytes), for `trigger()`'s `sign` option and `verifyTrigger()`.
 *
 * @returns A new secret.
 *
 * @example Usage
 * ```ts
 * import { createSecret } from "./sign.ts";
 * import assert from "node:assert/strict";
 *
 * const secret = createSecret();
 * assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
 * ```
 */
export function createSecret(): string {
  return newSecret();
}

/**
 * Signs a message the Standard Webhooks way: `v1,` and the base64 of the
 * HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with the secret's bytes.
 *
 * @param secret The secret, `whsec_<base64>` (24 to 64 bytes).
 * @param message The id, timestamp (unix seconds) and raw body.
 * @returns The `webhook-signature` header value.
 * @throws {TypeError} (as a rejection) For a malformed secret, id,
 *   timestamp or body (a string or a `Uint8Array`); the secret is never
 *   shown.
 *
 * @example Usage (the specification's published example)
 * ```ts
 * import { signPayload } from "./sign.ts";
 * import assert from "node:assert/strict";
 *
 * const signature = await signPayload("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", {
 *   id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
 *   timestamp: 1614265330,
 *   body: '{"test": 2432232314}',
 * });
 * assert.equal(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
 * ```
 */
export async function signPayload(
  secret: string,
  message: SignedMessage,
): Promise<string> {
  const bytes = parseSecret(secret, "Cannot sign: secret");
  checkMessage(message?.id, message?.timestamp, "Cannot sign: ");
  checkBody(message.body, "Cannot sign: ");
  return await sign(await importKey(bytes, "sign"), message);
}

/**
 * Checks a `webhook-signature` header against one secret or several (during
 * a rotation), in constant time. Entries of other versions than `v1` and
 * malformed entries are skipped, as the reference libraries skip them. It
 * does not look at the clock: check the timestamp's age yourself
 * (`verifyTrigger()` in `./hono` does, and deduplicates by id).
 *
 * @param secret A secret, or several accepted at once (as `verifyTrigger()`'s
 *   `secret` option).
 * @param check The id, timestamp, raw body and the header's value.
 * @returns Whether one `v1` entry matches under one secret; `false` for a
 *   malformed header, id or timestamp.
 * @throws {TypeError} (as a rejection) For a malformed secret, never shown,
 *   or a body that is neither a string nor a `Uint8Array`.
 *
 * @example Usage
 * ```ts
 * import { verifyPayload } from "./sign.ts";
 * import assert from "node:assert/strict";
 *
 * const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
 * const check = {
 *   id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
 *   timestamp: 1614265330,
 *   body: '{"test": 2432232314}',
 *   signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
 * };
 * assert.equal(await verifyPayload(secret, check), true);
 * assert.equal(await verifyPayload(secret, { ...check, timestamp: 1614265331 }), false);
 * ```
 */
export async function verifyPayload(
  secret: string | readonly string[],
  check: SignatureCheck,
): Promise<boolean> {
  const list: readonly string[] = typeof secret === "string"
    ? [secret]
    : secret;
  if (!Array.isArray(list) || list.length === 0) {
    throw new TypeError(
      "Cannot verify: secret must be a secret or a non-empty array of them",
    );
  }
  const keys = list.map((secret, i) =>
    parseSecret(secret, `Cannot verify: secret ${i}`)
  );
  checkBody(check?.body, "Cannot verify: ");
  try {
    checkMessage(check?.id, check?.timestamp, "");
  } catch {
    return false;
  }
  if (typeof check.signature !== "string") return false;
  const signatures = parseSignatures(check.signature);
  return await verify(
    await Promise.all(keys.map((key) => importKey(key, "verify"))),
    signatures,
    check,
  ) !== -1;
}
