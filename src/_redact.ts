// Keeping secrets out of what the outbox and the PostgreSQL dedup store say
// and show, in one place (private; a leaf any module can take):
// - a connection string's password out of every error message (the strings
//   users pass are not always valid URLs: an unencoded "#" in the password,
//   a port out of range; and parsers quote their input in their errors);
// - what an operator may see of a stored job (the dashboard and the command
//   line show jobs only through these): URLs without credentials, headers
//   without secrets, messages without embedded credentials.

/** Shown instead of a secret. */
export const REDACTED = "[redacted]";

/** Header names whose value is never shown. */
const SECRET_HEADER =
  /^(authorization|proxy-authorization|cookie|set-cookie)$|secret|token|passw|api[-_]?key|(^|[-_])key($|[-_])|signature|hmac|jwt|passphrase|(^|[-_])pwd$|auth|session|credential/i;
/** Names {@linkcode SECRET_HEADER} takes that carry no secret. */
const PLAIN_HEADER = /idempotency[-_]key$/i;
/** Whether a header's value is never shown (credentials, keys, tokens,
 * signatures, sessions), in a stored job or in an error message. A name
 * with `key` as a word (`x-functions-key`, `Ocp-Apim-Subscription-Key`,
 * `X-Master-Key`) is a key's; `Idempotency-Key` is not. */
export function isSecretHeader(name: string): boolean {
  return SECRET_HEADER.test(name) && !PLAIN_HEADER.test(name);
}

/** Whether a query parameter's value is never shown, by its (decoded)
 * name: tokens (JWTs too), keys (`key`, `api_key`, `subscription-key`,
 * `private_key`…), signatures, passwords, sessions, credentials, and `code`
 * (an OAuth grant's, an Azure Functions key). */
export function isSecretParam(name: string): boolean {
  return SECRET_PARAM.test(name) || CAMEL_KEY.test(name);
}

/** Query parameter names whose value is never shown. */
const SECRET_PARAM =
  /secret|token|passw|passphrase|^pass$|^pwd$|api[-_]?key|private[-_]?key|(^|[-_])key($|[-_])|^code$|signature|sig$|hmac|jwt|auth(?!or(?!i[sz]ation))|session|credential/i;
/** A camelCase name ending in a key (`accessKey`, `subscriptionKey`,
 * `AWSAccessKeyId`): case matters here. */
const CAMEL_KEY = /[a-z]Key(Id)?$/;
/** `scheme://user:password@` anywhere in a text. */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]+@/gi;

/** A password's forms shorter than this are not masked in messages: one of
 * 1–3 characters would mask those letters in every word ("e" made
 * "auth[redacted]ntication fail[redacted]d"), and says little of it. */
const MIN_MASKED = 4;

/** The secrets in a connection string: the string itself, its password
 * (raw, percent-decoded, re-encoded as a URL parser quotes it, and the
 * pieces a parser cutting it at "#", "?" or "/" would show) and any
 * `password=` keyword value; each of at least {@linkcode MIN_MASKED}
 * characters but the string itself. */
export function secretsOf(connectionString: string | undefined): string[] {
  if (!connectionString) return [];
  const secrets = new Set<string>();
  const add = (text: string) => {
    if (text.length >= MIN_MASKED) secrets.add(text);
  };
  const reencoded = (text: string) => {
    try {
      add(encodeURI(text)); // "%" quoted back as "%25"
    } catch {
      // A lone surrogate: no parser prints it re-encoded.
    }
  };
  reencoded(connectionString);
  // scheme://user:password@host… — the password runs to the last "@".
  const url = /^[a-z][a-z0-9+.-]*:\/\/[^:/?#@]*:(.*)@[^@]*$/is.exec(
    connectionString,
  );
  if (url?.[1]) {
    add(url[1]);
    reencoded(url[1]);
    try {
      add(decodeURIComponent(url[1]));
    } catch {
      // Not percent-encoded: the raw form is enough.
    }
    for (const part of url[1].split(/[#?/]/)) add(part);
  }
  for (const match of connectionString.matchAll(/password=([^&\s]+)/gi)) {
    add(match[1]);
    try {
      add(decodeURIComponent(match[1]));
    } catch {
      // As above.
    }
  }
  secrets.add(connectionString);
  reencoded(connectionString);
  // Longest first, so the whole string goes before the password inside it.
  return [...secrets].sort((a, b) => b.length - a.length);
}

/** `text` with every secret replaced by {@linkcode REDACTED}. */
export function redact(text: string, secrets: readonly string[]): string {
  for (const secret of secrets) text = text.split(secret).join(REDACTED);
  return text;
}

/** An error safe to keep as `cause`: the original when no secret appears
 * in its message, stack, string properties (pg's `detail`, Node's
 * `ERR_INVALID_URL` `input`) or nested `cause`s, else a copy with them
 * masked. */
export function redactError(
  error: unknown,
  secrets: readonly string[],
): unknown {
  if (secrets.length === 0 || !leaks(error, secrets, 0)) return error;
  return cleanCopy(error, secrets, 0);
}

/** How deep a chain of causes is walked. */
const MAX_CAUSES = 8;

function texts(error: unknown): string[] {
  if (typeof error === "string") return [error];
  if (typeof error !== "object" || error === null) return [];
  const found = [describe(error)];
  if (error instanceof Error && error.stack) found.push(error.stack);
  for (const value of Object.values(error)) {
    if (typeof value === "string") found.push(value);
  }
  return found;
}

function leaks(
  error: unknown,
  secrets: readonly string[],
  depth: number,
): boolean {
  if (depth > MAX_CAUSES) return false;
  if (texts(error).some((text) => redact(text, secrets) !== text)) {
    return true;
  }
  const cause = (error as { cause?: unknown } | null)?.cause;
  return cause !== undefined && leaks(cause, secrets, depth + 1);
}

function cleanCopy(
  error: unknown,
  secrets: readonly string[],
  depth: number,
): unknown {
  if (typeof error === "string") return redact(error, secrets);
  if (typeof error !== "object" || error === null) return error;
  const message = redact(describe(error), secrets);
  const copy = new Error(message);
  copy.name = error instanceof Error ? error.name : "Error";
  const stack = error instanceof Error ? error.stack ?? "" : "";
  copy.stack = redact(stack, secrets) || `${copy.name}: ${message}`;
  // String properties masked; codes and numbers kept as they are.
  for (const [key, value] of Object.entries(error)) {
    if (key === "message" || key === "stack" || key === "cause") continue;
    if (typeof value === "string") {
      Object.assign(copy, { [key]: redact(value, secrets) });
    } else if (typeof value === "number" || typeof value === "boolean") {
      Object.assign(copy, { [key]: value });
    }
  }
  const code = (error as { code?: unknown }).code;
  if (code !== undefined && typeof code !== "string") {
    Object.assign(copy, { code });
  }
  const cause = (error as { cause?: unknown }).cause;
  if (cause !== undefined && depth < MAX_CAUSES) {
    copy.cause = cleanCopy(cause, secrets, depth + 1);
  }
  return copy;
}

/** A readable sentence for any thrown value: errors by message, PGlite's
 * and Emscripten's plain objects by their errno or code, never
 * "[object Object]". */
export function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === "object" && error !== null) {
    const { message, code, errno } = error as Record<string, unknown>;
    if (typeof message === "string" && message) return message;
    const name = typeof code === "string"
      ? code
      : typeof errno === "number"
      ? ERRNO[errno] ?? `errno ${errno}`
      : undefined;
    if (name !== undefined) return name;
    try {
      return JSON.stringify(error);
    } catch {
      return Object.prototype.toString.call(error);
    }
  }
  return String(error);
}

/** Emscripten's errno numbers (PGlite's file system) for the failures a
 * directory meets. */
const ERRNO: Record<number, string> = {
  2: "EACCES (permission denied)",
  44: "ENOENT (no such file or directory)",
  51: "ENOSPC (no space left on device)",
  63: "EPERM (operation not permitted)",
  69: "EROFS (read-only file system)",
};

/** A URL without its user name and password, and with the values of
 * secret-looking query parameters replaced. */
export function redactUrl(href: string): string {
  let url: URL;
  try {
    url = new URL(href);
  } catch {
    return redactText(href);
  }
  if (url.username !== "" || url.password !== "") {
    url.username = REDACTED;
    url.password = "";
  }
  for (const name of new Set(url.searchParams.keys())) {
    if (isSecretParam(name)) url.searchParams.set(name, REDACTED);
  }
  // A fragment written as parameters (an OAuth `#access_token=…`).
  if (url.hash.includes("=")) {
    url.hash = redactParameters(
      url.hash.slice(1),
      REDACTED,
      isSecretParam,
      true,
    );
  }
  return url.href;
}

/** `a=1&token=2` (a query or a fragment, without its `?` or `#`) with the
 * values of the parameters whose (decoded) names are `secret` replaced,
 * parameter by parameter (linear, exact): a value runs to the next `&`, or
 * in a `fragment` to the next `&` or `?` (a hash route's
 * `#/callback?code=…`). */
export function redactParameters(
  text: string,
  replacement: string,
  secret: (name: string) => boolean = isSecretParam,
  fragment = false,
): string {
  if (!text.includes("=")) return text;
  // With the separators kept, at the odd indexes.
  return text.split(fragment ? /([&?])/ : /(&)/).map((part, i) => {
    const equals = part.indexOf("=");
    if (i % 2 === 1 || equals === -1) return part;
    const name = part.slice(0, equals);
    return secret(decodedName(name)) ? `${name}=${replacement}` : part;
  }).join("");
}

/** The origin a job goes to (`scheme://host:port`), without credentials. */
export function originOf(href: string): string {
  try {
    const url = new URL(href);
    return url.origin === "null" ? `${url.protocol}` : url.origin;
  } catch {
    return "(invalid URL)";
  }
}

/** Headers with secret values replaced. */
export function redactHeaders(
  headers: ReadonlyArray<readonly [string, string]>,
): Array<[string, string]> {
  return headers.map(([name, value]) => [
    name,
    isSecretHeader(name) ? REDACTED : redactText(value),
  ]);
}

/** A percent-encoded query parameter name as `URLSearchParams` reads it
 * (`%74oken` is `token`), or as written when it is not valid. */
export function decodedName(name: string): string {
  try {
    return decodeURIComponent(name.replaceAll("+", " "));
  } catch {
    return name;
  }
}

/** `[?&#]name=value` in a text quoting a URL (a fragment's parameters
 * too: an OAuth `#access_token=`): the value up to `&`, `#`,
 * white space or what closes a quote (`"`, `'`, `>`, and a `)` that ends
 * the URL: one followed by white space, punctuation or the end; a URL's
 * query keeps `)` as it is, so `sig=abc)def` is one value). The name is
 * bounded and holds no `?`: no rescans (linear time). */
const QUOTED_PARAMETER =
  /([?&#])([^=&#\s?]{0,64})=((?:[^&#\s"'>)]|\)(?![\s:;,.!?"'>]|$))*)/g;

/** `text` with the values of the query parameters whose (decoded) names
 * `secret` tells, in the URLs it quotes, replaced by `replacement`;
 * everything else as it was. Shared by the outbox's views and telemetry. */
export function redactQueryValues(
  text: string,
  replacement: string,
  secret: (name: string) => boolean = isSecretParam,
): string {
  if (!text.includes("?") && !text.includes("&") && !text.includes("#")) {
    return text;
  }
  return text.replace(
    QUOTED_PARAMETER,
    (all, separator, name) =>
      secret(decodedName(name)) ? `${separator}${name}=${replacement}` : all,
  );
}

/** A text (an error message, a header's value) with URL credentials
 * removed, and the values of secret-looking query parameters of the URLs in
 * it (`Server answered 500: GET https://…/hook?token=…` showed the token
 * the URL column beside it hid). */
export function redactText(text: string): string {
  return redactQueryValues(
    text.replace(URL_CREDENTIALS, `$1${REDACTED}@`),
    REDACTED,
  );
}
