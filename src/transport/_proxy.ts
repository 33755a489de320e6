// Whether the runtime's fetch would send a request through a proxy named by
// the environment (private): `transport: "auto"` then takes fetch, so a
// trigger goes where the process's other requests go. Deno's and Bun's fetch
// read HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY (either case); Node's
// only under NODE_USE_ENV_PROXY=1 (`fetchReadsProxyEnv()`). The raw socket
// connects straight to the target.
import { readEnv } from "../_env.ts";
import { fetchReadsProxyEnv } from "./_runtime.ts";

interface NoProxy {
  all: boolean;
  domains: string[];
  /** Addresses and networks: 4 or 16 bytes and a prefix length in bits. */
  networks: Array<{ bytes: Uint8Array; bits: number }>;
}

/** Whether a request for a URL goes through a proxy. */
export type ProxyRule = (url: URL) => boolean;

/** undefined: not read yet. */
let rule: ProxyRule | undefined;

/**
 * Whether this runtime's fetch sends a request for `url` through a proxy the
 * environment names (and NO_PROXY does not exempt its host). The environment
 * is read at the first call; on Deno only variables env access is granted
 * for.
 */
export function fetchUsesProxy(url: URL): boolean {
  rule ??= fetchReadsProxyEnv() ? proxyRule(readEnv) : never;
  return rule(url);
}

const never: ProxyRule = () => false;

/**
 * The rule the variables `get` returns make, as Deno's fetch reads them:
 * ALL_PROXY, HTTPS_PROXY, HTTP_PROXY (upper case first, then lower case;
 * HTTP_PROXY not in a CGI script), NO_PROXY's hosts, domains, addresses and
 * networks exempted.
 */
export function proxyRule(
  get: (name: string) => string | undefined,
): ProxyRule {
  // Either case; an upper-case one fetch cannot use gives way to the other.
  const named = (upper: string) =>
    usable(get(upper)) || usable(get(upper.toLowerCase()));
  const all = named("ALL_PROXY");
  // As Deno: in a CGI script a request's `Proxy:` header becomes HTTP_PROXY,
  // so there it is not a proxy setting (httpoxy).
  const http = all ||
    (get("REQUEST_METHOD") === undefined &&
      named("HTTP_PROXY"));
  const https = all || named("HTTPS_PROXY");
  if (!http && !https) return never;
  const exempt = noProxy(get("NO_PROXY") ?? get("no_proxy"));
  return (url) =>
    (url.protocol === "https:" ? https : http) &&
    !exempted(exempt, url.hostname);
}

/** A proxy URL fetch can use: http(s) or socks5, or no scheme (http). */
function usable(value: string | undefined): boolean {
  if (value === undefined || value.trim() === "") return false;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(value.trim());
  return scheme === null ||
    /^(?:https?|socks5h?)$/i.test(scheme[1]);
}

function noProxy(value: string | undefined): NoProxy {
  const list: NoProxy = { all: false, domains: [], networks: [] };
  for (const raw of (value ?? "").split(",")) {
    const entry = raw.trim().toLowerCase();
    if (entry === "") continue;
    if (entry === "*") {
      list.all = true;
      continue;
    }
    const network = parseNetwork(entry);
    if (network !== undefined) list.networks.push(network);
    else list.domains.push(entry.startsWith(".") ? entry.slice(1) : entry);
  }
  return list;
}

function exempted(list: NoProxy, hostname: string): boolean {
  if (list.all) return true;
  const address = parseAddress(hostname);
  if (address !== undefined) {
    return list.networks.some((network) => contains(network, address));
  }
  // A domain and its subdomains, as curl and Deno match it.
  return list.domains.some((domain) =>
    hostname === domain || hostname.endsWith(`.${domain}`)
  );
}

function contains(
  network: { bytes: Uint8Array; bits: number },
  address: Uint8Array,
): boolean {
  if (network.bytes.length !== address.length) return false;
  let bits = network.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((network.bytes[i] & mask) !== (address[i] & mask)) return false;
  }
  return true;
}

/** An address or a network (`10.0.0.0/8`, `fd00::/8`), or undefined. */
function parseNetwork(
  entry: string,
): { bytes: Uint8Array; bits: number } | undefined {
  const slash = entry.indexOf("/");
  const bytes = parseAddress(slash < 0 ? entry : entry.slice(0, slash));
  if (bytes === undefined) return undefined;
  if (slash < 0) return { bytes, bits: bytes.length * 8 };
  const bits = entry.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > bytes.length * 8) {
    return undefined;
  }
  return { bytes, bits: Number(bits) };
}

/** The bytes of an IPv4 address (dotted) or an IPv6 one (bracketed or not),
 * or undefined for anything else (a domain). */
function parseAddress(text: string): Uint8Array | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4 !== null) {
    const bytes = v4.slice(1).map(Number);
    return bytes.every((b) => b <= 255) ? new Uint8Array(bytes) : undefined;
  }
  if (!text.includes(":")) return undefined;
  // The URL parser checks and normalises it (no dotted tail, "::" once).
  let host: string;
  try {
    const bare = text.startsWith("[") ? text.slice(1, -1) : text;
    host = new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  const [head, tail] = host.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = [
    ...left,
    ...Array(8 - left.length - right.length).fill("0"),
    ...right,
  ];
  const bytes = new Uint8Array(16);
  groups.forEach((group, i) => {
    const value = parseInt(group, 16);
    bytes[2 * i] = value >> 8;
    bytes[2 * i + 1] = value & 0xff;
  });
  return bytes;
}
