// What an operator may see of a stored job: URLs without credentials,
// headers without secrets, messages without embedded credentials. The
// dashboard and the command line show jobs only through these.

/** Header names whose value is never shown. */
const SECRET_HEADER =
  /^(authorization|proxy-authorization|cookie|set-cookie)$|secret|token|passw|api[-_]?key|signature|auth|session|credential/i;
/** Query parameter names whose value is never shown. */
const SECRET_PARAM =
  /secret|token|passw|api[-_]?key|signature|sig$|^key$|auth|session|credential/i;
/** `scheme://user:password@` anywhere in a text. */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]+@/gi;

/** Shown instead of a secret. */
export const REDACTED = "[redacted]";

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
    if (SECRET_PARAM.test(name)) url.searchParams.set(name, REDACTED);
  }
  return url.href;
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
    SECRET_HEADER.test(name) ? REDACTED : redactText(value),
  ]);
}

/** A text (an error message) with URL credentials removed. */
export function redactText(text: string): string {
  return text.replace(URL_CREDENTIALS, `$1${REDACTED}@`);
}
