// What a network failure's message says it was, for both transports: the
// same failure gets the same TriggerError code whether a raw socket or fetch
// met it. Messages differ per runtime (Deno, Node, Bun, workerd), so the
// patterns cover each one's wording.

/** A host name that could not be resolved. */
const DNS =
  /lookup address|name or service|nodename nor servname|dns|no such host|enotfound|eai_again|resolve/i;
/** A TLS handshake or certificate failure. */
const TLS = /certificate|tls|ssl|handshake/i;
/** A connection that could not be opened ("connect", not "connection":
 * workerd's fetch says "Network connection lost." for a request the server
 * read and then reset, which is no CONNECT; it says the same for a refused
 * port, which is then NETWORK, never a CONNECT that is not one). */
const CONNECT = /refused|unreachable|connect(?!ion)/i;

/**
 * The code for a failure met before any answer, from its message:
 * `"DNS"`, `"TLS"` or `"CONNECT"`, else `undefined`. `host`, which messages
 * often quote, is left out first: a host named `ssl-api…` or `dns1…` says
 * nothing about the failure.
 */
export function networkCode(
  message: string,
  host?: string,
): "DNS" | "TLS" | "CONNECT" | undefined {
  if (host) message = message.split(host).join("");
  if (TLS.test(message)) return "TLS";
  if (DNS.test(message)) return "DNS";
  if (CONNECT.test(message)) return "CONNECT";
  return undefined;
}
