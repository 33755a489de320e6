// Who may see the dashboard (a token or Basic credentials, compared in
// constant time) and the CSRF token its forms carry.

/** The credentials a dashboard accepts, already validated. */
export interface Credentials {
  token?: string;
  basic?: { username: string; password: string };
}

const encoder = new TextEncoder();

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.digest("SHA-256", encoder.encode(text)),
  );
}

/** Equal texts, in a time that does not depend on where they differ. */
async function same(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([digest(given), digest(expected)]);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function decodeBasic(value: string): [string, string] | null {
  try {
    const bytes = Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
    const text = new TextDecoder().decode(bytes);
    const colon = text.indexOf(":");
    return colon < 0 ? null : [text.slice(0, colon), text.slice(colon + 1)];
  } catch {
    return null;
  }
}

/**
 * Checks an `Authorization` header. A token is accepted as
 * `Bearer <token>`, or as the password of Basic credentials (any user name),
 * so a browser's own login prompt works.
 *
 * @returns Whether the header carries the credentials.
 */
export async function authorized(
  header: string | null,
  credentials: Credentials,
): Promise<boolean> {
  if (header === null) return false;
  const space = header.indexOf(" ");
  if (space < 0) return false;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === "bearer" && credentials.token !== undefined) {
    return await same(value, credentials.token);
  }
  if (scheme !== "basic") return false;
  const pair = decodeBasic(value);
  if (pair === null) return false;
  const [username, password] = pair;
  let ok = false;
  if (credentials.token !== undefined) {
    ok = await same(password, credentials.token) || ok;
  }
  if (credentials.basic !== undefined) {
    const user = await same(username, credentials.basic.username);
    const pass = await same(password, credentials.basic.password);
    ok = (user && pass) || ok;
  }
  return ok;
}

/**
 * The CSRF token every form carries: an HMAC of a fixed text under a key
 * derived from the credentials, so every instance behind a load balancer
 * agrees, and only someone holding the credentials (or reading a page) has
 * it. Without credentials (local development) the key is random per app.
 */
export async function csrfKey(credentials: Credentials): Promise<CryptoKey> {
  const material = credentials.token !== undefined ||
      credentials.basic !== undefined
    ? await digest(
      `fire-trigger dashboard csrf\0${credentials.token ?? ""}\0${
        credentials.basic?.username ?? ""
      }\0${credentials.basic?.password ?? ""}`,
    )
    : crypto.getRandomValues(new Uint8Array(32));
  return await crypto.subtle.importKey(
    "raw",
    material as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
}

/** The token for forms. */
export async function csrfToken(key: CryptoKey): Promise<string> {
  const mac = new Uint8Array(
    await crypto.subtle.sign("HMAC", key, encoder.encode("csrf v1")),
  );
  return btoa(String.fromCharCode(...mac)).replaceAll("+", "-")
    .replaceAll("/", "_").replace(/=+$/, "");
}

/** Whether a submitted token is the right one. */
export async function csrfValid(
  key: CryptoKey,
  given: unknown,
): Promise<boolean> {
  if (typeof given !== "string" || given === "") return false;
  return await same(given, await csrfToken(key));
}
