// Standard Webhooks headers for a test request, signed by this library's
// signer: shared by the receiving side's tests.
import { signPayload } from "../mod.ts";

let counter = 0;

/**
 * The three `webhook-*` headers for `body`, signed with `secret`: a fresh
 * id and the current time unless given.
 */
export async function signedHeaders(
  secret: string,
  body: string,
  options: { id?: string; timestamp?: number } = {},
): Promise<Record<string, string>> {
  const id = options.id ??
    `msg_test_${++counter}_${crypto.randomUUID().slice(0, 8)}`;
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": await signPayload(secret, { id, timestamp, body }),
  };
}
