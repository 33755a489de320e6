// Whether the runtime's fetch would send a request through a proxy named by
// the environment (private): `transport: "auto"` then takes fetch, so a
// trigger goes where the process's other requests go. Each runtime reads the
// variables its own way (`fetchProxyReader()`); the raw socket connects
// straight to the target. Where this cannot be sure a request goes direct,
// it says "proxied": fetch then goes wherever the runtime's fetch goes (a
// wrong "direct" would skip the proxy). It says "direct" for a proxy value
// the runtime's fetch cannot use (it would fail where the socket works).
import { readEnv } from "../_env.ts";
import { fetchProxyReader, type ProxyReader } from "./_runtime.ts";

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
  if (rule === undefined) {
    const reader = fetchProxyReader();
    rule = reader === undefined ? never : proxyRule(readEnv, reader);
  }
  return rule(url);
}

const never: ProxyRule = () => false;
/** Decisions kept per origin (a proxy set: matching costs ~1–2 µs). */
const CACHE_MAX = 256;

/**
 * The rule the variables `get` returns make for `reader`'s fetch:
 * - Deno (its fetch's code, deno_fetch's proxy.rs): ALL_PROXY, HTTPS_PROXY,
 *   HTTP_PROXY (upper case, else lower; HTTP_PROXY not in a CGI script);
 *   NO_PROXY's entries (else no_proxy's) as hosts with their subdomains,
 *   case as written, addresses and networks, `*` for names;
 * - Bun: the same variables but no CGI rule, http(s) proxies only;
 * - Node (`NODE_USE_ENV_PROXY=1`): HTTP_PROXY, and HTTPS_PROXY or else
 *   HTTP_PROXY for https:, no ALL_PROXY.
 * For Bun and Node (no_proxy first) only exemptions both are sure to make:
 * the exact host (with the URL's port, if the entry has one), subdomains of
 * a `.name` or `*.name` entry, and `*`.
 */
export function proxyRule(
  get: (name: string) => string | undefined,
  reader: ProxyReader,
): ProxyRule {
  const usable = reader === "deno" ? denoUsable : reader === "node"
    // Node trims the value; Bun takes it as it is (and fails on a space).
    ? (value: string | undefined) => httpUsable(value?.trim())
    : httpUsable;
  // Either case. Deno: an upper-case one fetch cannot use gives way to the
  // other; Bun and Node take the lower-case one when set, usable or not.
  const named = (upper: string) => {
    if (reader !== "deno") {
      const lower = get(upper.toLowerCase());
      return usable(lower === undefined || lower === "" ? get(upper) : lower);
    }
    return usable(get(upper)) || usable(get(upper.toLowerCase()));
  };
  const all = reader !== "node" && named("ALL_PROXY");
  // Deno: in a CGI script a request's `Proxy:` header becomes HTTP_PROXY,
  // so there it is not a proxy setting (httpoxy).
  const http = all ||
    (!(reader === "deno" && get("REQUEST_METHOD") !== undefined) &&
      named("HTTP_PROXY"));
  const https = all || named("HTTPS_PROXY") ||
    (reader === "node" && named("HTTP_PROXY"));
  if (!http && !https) return never;
  const exempt = reader === "deno"
    ? denoExempt(get("NO_PROXY") ?? get("no_proxy"))
    : sureExempt(get("no_proxy") ?? get("NO_PROXY"));
  const cache = new Map<string, boolean>();
  return (url) => {
    const key = `${url.protocol}//${url.host}`;
    let proxied = cache.get(key);
    if (proxied === undefined) {
      proxied = (url.protocol === "https:" ? https : http) && !exempt(url);
      if (cache.size >= CACHE_MAX) cache.clear();
      cache.set(key, proxied);
    }
    return proxied;
  };
}

/** A proxy value Deno's fetch takes: a URI with an authority, scheme http,
 * https, socks5 or socks5h, or none (http); no spaces. */
function denoUsable(value: string | undefined): boolean {
  const parts = proxyUrl(value);
  return parts !== null &&
    (parts[1] === "" || /^(?:https?|socks5h?)$/i.test(parts[1]));
}

/** A proxy value Bun's and Node's fetch take: http or https (or none). */
function httpUsable(value: string | undefined): boolean {
  const parts = proxyUrl(value);
  return parts !== null &&
    (parts[1] === "" || /^https?$/i.test(parts[1]));
}

/** [scheme]://authority[/path], or authority alone (no "://" then); no
 * spaces, a host. Its first group is the scheme. */
function proxyUrl(value: string | undefined): RegExpExecArray | null {
  if (value === undefined) return null;
  return (value.includes("://") ? WITH_SCHEME : WITHOUT_SCHEME).exec(value);
}
const AUTHORITY = String.raw`(?:[^\s/?#@]*@)?[^\s/?#@:]+(?::\d+)?(?:/\S*)?$`;
const WITH_SCHEME = new RegExp(
  String.raw`^([A-Za-z][A-Za-z0-9+.-]*)://` + AUTHORITY,
);
const WITHOUT_SCHEME = new RegExp(`^()${AUTHORITY}`);

/** NO_PROXY as Deno's fetch matches it. */
function denoExempt(value: string | undefined): (url: URL) => boolean {
  if (value === undefined || value === "") return () => false;
  const domains: string[] = [];
  const networks: Network[] = [];
  for (const raw of value.split(",")) {
    const entry = raw.trim();
    // Deno parses no brackets in an entry: "[::1]" is a name there.
    const network = entry.startsWith("[") ? undefined : parseNetwork(entry);
    if (network !== undefined) networks.push(network);
    else domains.push(entry);
  }
  return (url) => {
    const host = url.hostname;
    const address = parseAddress(host);
    if (address !== undefined) {
      return networks.some((network) => contains(network, address));
    }
    return domains.some((d) =>
      d === host || (d.startsWith(".") && d.slice(1) === host) ||
      (host.endsWith(d) &&
        (d.startsWith(".") || host[host.length - d.length - 1] === ".")) ||
      d === "*"
    );
  };
}

/** NO_PROXY's exemptions that Bun's and Node's fetch both make. */
function sureExempt(value: string | undefined): (url: URL) => boolean {
  const entries = (value ?? "").split(/[\s,]+/).filter((e) => e !== "");
  if (entries.length === 0) return () => false;
  return (url) => {
    const host = url.hostname;
    const port = url.port ||
      (url.protocol === "https:" ? "443" : "80");
    return entries.some((entry) => {
      if (entry === "*") return true;
      const parts = /^(\[[^\]]*\]|[^:]+)(?::(\d+))?$/.exec(entry);
      if (parts === null) return false; // a bare IPv6 address: not sure
      const [, name, entryPort] = parts;
      if (entryPort !== undefined && entryPort !== port) return false;
      if (name === host) return true;
      const suffix = name.startsWith("*.")
        ? name.slice(1)
        : name.startsWith(".")
        ? name
        : undefined;
      return suffix !== undefined && suffix.length > 1 &&
        host.length > suffix.length && host.endsWith(suffix);
    });
  };
}

interface Network {
  /** 4 or 16 bytes. */
  bytes: Uint8Array;
  bits: number;
}

function contains(network: Network, address: Uint8Array): boolean {
  if (network.bytes.length !== address.length) return false;
  let bits = network.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((network.bytes[i] & mask) !== (address[i] & mask)) return false;
  }
  return true;
}

/** An address or a network (`10.0.0.0/8`, `fd00::/8`), or undefined. */
function parseNetwork(entry: string): Network | undefined {
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
