// Standard Webhooks signing internals (private): secret and header parsing,
// key import, the signed content. The public helpers are in sign.ts.

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
/** More entries than this in one `webhook-signature` header is malformed. */
export const MAX_SIGNATURES = 8;
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
        typeof id === "string"
          ? JSON.stringify(id.length > 80 ? id.slice(0, 77) + "..." : id)
          : typeof id
      }`,
    );
  }
  if (
    typeof timestamp !== "number" || !Number.isSafeInteger(timestamp) ||
    timestamp < 0
  ) {
    throw new TypeError(
      `${what}timestamp must be a whole number of unix seconds >= 0, received ${
        String(timestamp)
      }`,
    );
  }
}

/**
 * The decoded `v1` signatures of a `webhook-signature` header (entries of
 * other versions are skipped), or undefined when it is malformed: no entry,
 * an entry without `version,`, bad base64, not 32 bytes, too many entries.
 */
export function parseSignatures(header: string): Uint8Array[] | undefined {
  const entries = header.split(" ").filter((entry) => entry !== "");
  if (entries.length === 0 || entries.length > MAX_SIGNATURES) return undefined;
  const signatures: Uint8Array[] = [];
  for (const entry of entries) {
    const comma = entry.indexOf(",");
    if (comma <= 0) return undefined;
    if (entry.slice(0, comma) !== "v1") continue;
    try {
      const bytes = fromBase64(entry.slice(comma + 1));
      if (bytes.length !== 32) return undefined;
      signatures.push(bytes);
    } catch {
      return undefined;
    }
  }
  return signatures;
}

/** Imports HMAC-SHA256 key bytes. */
export function importKey(
  key: Uint8Array,
  usage: "sign" | "verify",
): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    [usage],
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
 * Whether one of `signatures` is the HMAC of the message under one of the
 * ("verify") keys. `crypto.subtle.verify` compares in constant time.
 */
export async function verify(
  keys: readonly CryptoKey[],
  signatures: readonly Uint8Array[],
  message: SignedMessage,
): Promise<boolean> {
  if (signatures.length === 0) return false;
  const data = signedContent(message);
  for (const key of keys) {
    for (const signature of signatures) {
      if (
        await crypto.subtle.verify(
          "HMAC",
          key,
          signature as Uint8Array<ArrayBuffer>,
          data,
        )
      ) return true;
    }
  }
  return false;
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

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Strict base64: the standard alphabet, padding optional. */
function fromBase64(text: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) {
    throw new TypeError("Not base64");
  }
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
