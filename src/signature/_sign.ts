// Standard Webhooks signing internals (private): secret and header parsing,
// key import, the signed content. The public helpers are in sign.ts.
import { show } from "../_show.ts";

/** What a signature covers: `{id}.{timestamp}.{body}`. */
export interface SignedMessage {
  /** The `webhook-id`: unique per message, the same on every retry of it. */
  id: string;
  /** The `webhook-timestamp`: unix seconds. */
  timestamp: number;
  /** The raw body bytes (a string is taken as its UTF-8 bytes). */
  body: Uint8Array | string;
}

const SECRET_PREFIX = "whsec_";
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;
const SECRET_FORMAT =
  `"whsec_" followed by the base64 of ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} bytes`;
/** A webhook-id: 1–256 visible ASCII characters other than ".". */
const ID = /^[\x21-\x2D\x2F-\x7E]{1,256}$/;
/** A webhook-timestamp: unix seconds, digits only. */
export const TIMESTAMP = /^[0-9]{1,15}$/;
/** The largest timestamp {@linkcode TIMESTAMP} takes. */
const MAX_TIMESTAMP = 999_999_999_999_999;
const encoder = new TextEncoder();

/**
 * Decodes a `whsec_<base64>` secret. The secret never appears in an error.
 *
 * @throws {TypeError} When it is not `whsec_` and the base64 of 24 to 64 bytes.
 */
export function parseSecret(secret: unknown, what: string): Uint8Array {
  if (typeof secret !== "string") {
    throw new TypeError(
      `${what} must be a string, ${SECRET_FORMAT}, received ${
        secret === null ? "null" : typeof secret
      }`,
    );
  }
  if (!secret.startsWith(SECRET_PREFIX)) {
    throw new TypeError(
      `${what} must be ${SECRET_FORMAT}; it does not start with "whsec_" (the value is not shown)`,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(secret.slice(SECRET_PREFIX.length));
  } catch {
    throw new TypeError(
      `${what} must be ${SECRET_FORMAT}; what follows "whsec_" is not base64 (the value is not shown)`,
    );
  }
  if (bytes.length < MIN_SECRET_BYTES || bytes.length > MAX_SECRET_BYTES) {
    throw new TypeError(
      `${what} must be ${SECRET_FORMAT}; it decodes to ${bytes.length} bytes (the value is not shown)`,
    );
  }
  return bytes;
}

/** A new secret: `whsec_` and the base64 of 32 random bytes. */
export function newSecret(): string {
  return SECRET_PREFIX + toBase64(crypto.getRandomValues(new Uint8Array(32)));
}

/** A unique `webhook-id`: `msg_` and 32 random hex digits. */
export function newMessageId(): string {
  return "msg_" + crypto.randomUUID().replaceAll("-", "");
}

/**
 * Whether `id` is a usable `webhook-id`: 1 to 256 visible ASCII characters
 * other than `.` (a dot would make `{id}.{timestamp}.{body}` ambiguous).
 */
export function isMessageId(id: unknown): id is string {
  return typeof id === "string" && ID.test(id);
}

/** Checks a message's id and timestamp; the TypeError names the bad one. */
export function checkMessage(
  id: unknown,
  timestamp: unknown,
  what: string,
): void {
  if (!isMessageId(id)) {
    throw new TypeError(
      `${what}id must be 1 to 256 visible ASCII characters other than ".", received ${
        typeof id === "string" ? show(id) : typeof id
      }`,
    );
  }
  // At most the 15 digits a receiver takes (TIMESTAMP): a signature over
  // a longer one is refused by every verifyTrigger().
  if (
    typeof timestamp !== "number" || !Number.isSafeInteger(timestamp) ||
    timestamp < 0 || timestamp > MAX_TIMESTAMP
  ) {
    throw new TypeError(
      `${what}timestamp must be a whole number of unix seconds from 0 to ${MAX_TIMESTAMP}, received ${
        show(timestamp)
      }`,
    );
  }
}

/**
 * Checks a message's body: a string (signed as its UTF-8 bytes) or the raw
 * bytes as a `Uint8Array` (not another view: a `Uint16Array`'s values would
 * be cut to bytes).
 *
 * @throws {TypeError} Naming what it received.
 */
export function checkBody(body: unknown, what: string): void {
  if (typeof body === "string" || body instanceof Uint8Array) return;
  throw new TypeError(
    `${what}body must be a string or a Uint8Array, received ${show(body)}`,
  );
}

/** The padded base64 of 32 bytes, in its one spelling: the last character
 * before "=" carries 4 bits and two zero bits. */
const SIGNATURE_TEXT = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/**
 * The well-formed `v1` signatures of a `webhook-signature` header, as text,
 * read as the reference libraries (standardwebhooks, svix) read it:
 * space-separated `version,signature` entries; entries of other versions,
 * malformed ones (no comma, not the padded base64 of 32 bytes) and empty ones
 * are skipped; what follows a second comma is ignored, so a trailing comma
 * and two header lines joined by fetch (`v1,a, v1,b`) still work. The
 * references compare a signature's text: only the one spelling of 32 bytes
 * in padded base64 is taken (not an unpadded one, nor one whose unused low
 * bits differ). Every entry counts, as it does for them: the work is bounded
 * by the header's length (a pattern test per entry, nothing decoded).
 */
export function parseSignatures(header: string): string[] {
  const signatures: string[] = [];
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(" ", start);
    if (end === -1) end = header.length;
    // "v1," and 44 characters, maybe a second comma and more after them.
    if (
      end - start >= 47 && header.startsWith("v1,", start) &&
      (end - start === 47 || header.charCodeAt(start + 47) === 44)
    ) {
      const value = header.slice(start + 3, start + 47);
      if (SIGNATURE_TEXT.test(value)) signatures.push(value);
    }
    start = end + 1;
  }
  return signatures;
}

/**
 * Imports HMAC-SHA256 key bytes. A "verify" key can sign too: `verify()`
 * computes the HMAC once and compares each candidate with it.
 */
export function importKey(
  key: Uint8Array,
  usage: "sign" | "verify",
): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    usage === "verify" ? ["sign", "verify"] : ["sign"],
  );
}

/** `v1,<base64 HMAC>` of the message under `key` (a "sign" key). */
export async function sign(
  key: CryptoKey,
  message: SignedMessage,
): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", key, signedContent(message));
  return "v1," + toBase64(new Uint8Array(mac));
}

/**
 * The index of the first of the ("verify") `keys` under which one of
 * `signatures` (base64 texts, from {@linkcode parseSignatures}) is the HMAC
 * of the message; -1 when none. The HMAC is computed once per key, whatever
 * the number of candidates, and its base64 compared with each in constant
 * time; every key is tried.
 */
export async function verify(
  keys: readonly CryptoKey[],
  signatures: readonly string[],
  message: SignedMessage,
): Promise<number> {
  if (signatures.length === 0) return -1;
  const data = signedContent(message);
  let found = -1;
  for (let i = 0; i < keys.length; i++) {
    const mac = toBase64(
      new Uint8Array(await crypto.subtle.sign("HMAC", keys[i], data)),
    );
    for (const signature of signatures) {
      if (sameText(mac, signature) && found === -1) found = i;
    }
  }
  return found;
}

/** Constant-time equality of two strings of the same length. */
function sameText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** The bytes of `{id}.{timestamp}.{body}`. */
function signedContent(message: SignedMessage): Uint8Array<ArrayBuffer> {
  const { id, timestamp, body } = message;
  const prefix = encoder.encode(`${id}.${timestamp}.`);
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  const data = new Uint8Array(prefix.length + bytes.length);
  data.set(prefix);
  data.set(bytes, prefix.length);
  return data;
}

/** Base64 of `bytes` (standard alphabet, padded). */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Strict base64: the standard alphabet, padding optional. */
export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) {
    throw new TypeError("Not base64");
  }
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
