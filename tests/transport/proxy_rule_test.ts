// Which requests each runtime's fetch sends through a proxy the environment
// names (probed against Deno 2.9.6, Bun 1.4.5 and Node 22.23.5 with a
// loopback proxy: docs/runtime-behaviour.md), as `transport: "auto"` reads
// them: it takes fetch for those. For Bun and Node only the exemptions both
// are sure to make count as direct.
import assert from "node:assert/strict";
import { proxyRule } from "../../src/transport/_proxy.ts";
import type { ProxyReader } from "../../src/transport/_runtime.ts";

function rule(env: Record<string, string>, reader: ProxyReader = "deno") {
  return proxyRule((name) => env[name], reader);
}

const proxy = "http://127.0.0.1:3128";
const proxied = (
  env: Record<string, string>,
  url: string,
  reader: ProxyReader = "deno",
) => rule(env, reader)(new URL(url));

Deno.test("proxyRule, Deno: HTTP_PROXY is for http: URLs, HTTPS_PROXY for https:, ALL_PROXY for both; either case", () => {
  assert.equal(proxied({ HTTP_PROXY: proxy }, "http://a.test/"), true);
  assert.equal(proxied({ HTTP_PROXY: proxy }, "https://a.test/"), false);
  assert.equal(proxied({ HTTPS_PROXY: proxy }, "http://a.test/"), false);
  assert.equal(proxied({ HTTPS_PROXY: proxy }, "https://a.test/"), true);
  for (const name of ["ALL_PROXY", "all_proxy"]) {
    assert.equal(proxied({ [name]: proxy }, "http://a.test/"), true, name);
    assert.equal(proxied({ [name]: proxy }, "https://a.test/"), true, name);
  }
  assert.equal(proxied({ http_proxy: proxy }, "http://a.test/"), true);
  assert.equal(proxied({ https_proxy: proxy }, "https://a.test/"), true);
  assert.equal(proxied({}, "http://a.test/"), false);
  assert.equal(proxied({ HTTP_PROXY: "" }, "http://a.test/"), false);
});

Deno.test("proxyRule: a proxy value the runtime's fetch cannot use is no proxy (fetch would fail or go direct); an unusable upper-case one gives way to the lower-case one", () => {
  const url = "http://a.test/";
  for (const value of ["ftp://127.0.0.1:21", "not a url", "http://", "   "]) {
    for (const reader of ["deno", "bun", "node"] as const) {
      assert.equal(proxied({ HTTP_PROXY: value }, url, reader), false, value);
    }
  }
  assert.equal(proxied({ HTTP_PROXY: ` ${proxy}` }, url), false);
  assert.equal(proxied({ HTTP_PROXY: "127.0.0.1:3128" }, url), true);
  assert.equal(proxied({ HTTP_PROXY: "http://u:p@127.0.0.1:3128" }, url), true);
  // Deno's fetch takes SOCKS proxies, Bun's refuses them.
  const socks = { HTTP_PROXY: "socks5://127.0.0.1:1080" };
  assert.equal(proxied(socks, url, "deno"), true);
  assert.equal(proxied(socks, url, "bun"), false);
  assert.equal(proxied({ HTTP_PROXY: "", http_proxy: proxy }, url), true);
  // Bun and Node read the lower-case one first, and fail on one they
  // cannot use.
  const both = { HTTP_PROXY: proxy, http_proxy: "not a url" };
  assert.equal(proxied(both, url, "deno"), true);
  assert.equal(proxied(both, url, "bun"), false);
  assert.equal(proxied(both, url, "node"), false);
  // Node trims the value; Deno does not.
  assert.equal(proxied({ HTTP_PROXY: ` ${proxy} ` }, url, "node"), true);
  assert.equal(proxied({ HTTP_PROXY: ` ${proxy} ` }, url, "deno"), false);
});

Deno.test("proxyRule: Node's fetch uses HTTP_PROXY for https: when HTTPS_PROXY is not set, and no ALL_PROXY", () => {
  assert.equal(
    proxied({ HTTP_PROXY: proxy }, "https://a.test/", "node"),
    true,
  );
  assert.equal(
    proxied({ HTTP_PROXY: proxy, HTTPS_PROXY: "" }, "https://a.test/", "node"),
    true,
  );
  assert.equal(proxied({ ALL_PROXY: proxy }, "http://a.test/", "node"), false);
  assert.equal(proxied({ HTTP_PROXY: proxy }, "https://a.test/", "bun"), false);
});

Deno.test("proxyRule: in a CGI script (REQUEST_METHOD set) Deno takes HTTP_PROXY for a request header, not a setting; Bun and Node still use it", () => {
  const env = { HTTP_PROXY: proxy, REQUEST_METHOD: "GET" };
  assert.equal(proxied(env, "http://a.test/", "deno"), false);
  assert.equal(proxied(env, "http://a.test/", "bun"), true);
  assert.equal(proxied(env, "http://a.test/", "node"), true);
  assert.equal(
    proxied({ HTTPS_PROXY: proxy, REQUEST_METHOD: "GET" }, "https://a.test/"),
    true,
  );
});

Deno.test("proxyRule, Deno: NO_PROXY as Deno's fetch matches it (hosts and subdomains as written, addresses, networks, * for names only; no ports, no brackets)", () => {
  const exempt = (noProxy: string, url: string) =>
    !proxied({ HTTP_PROXY: proxy, NO_PROXY: noProxy }, url);
  assert.equal(exempt("example.com", "http://example.com/"), true);
  assert.equal(exempt("example.com", "http://api.example.com/"), true);
  assert.equal(exempt(".example.com", "http://example.com/"), true);
  assert.equal(exempt(".example.com", "http://api.example.com/"), true);
  assert.equal(exempt("example.com", "http://notexample.com/"), false);
  assert.equal(
    exempt(" other.test , example.com ", "http://example.com/"),
    true,
  );
  // Deno compares as written; URL hosts are lower case.
  assert.equal(exempt("EXAMPLE.COM", "http://example.com/"), false);
  assert.equal(exempt("*", "http://anything.test/"), true);
  assert.equal(exempt("*", "http://127.0.0.1/"), false);
  assert.equal(exempt("127.0.0.1", "http://127.0.0.1:8080/"), true);
  assert.equal(exempt("127.0.0.0/8", "http://127.1.2.3/"), true);
  assert.equal(exempt("127.0.0.1/8", "http://127.0.0.1/"), true);
  assert.equal(exempt("10.0.0.0/8", "http://127.0.0.1/"), false);
  assert.equal(exempt("::1", "http://[::1]:8080/"), true);
  assert.equal(exempt("0:0::1", "http://[::1]/"), true);
  assert.equal(exempt("[::1]", "http://[::1]/"), false);
  assert.equal(exempt("fd00::/8", "http://[fd12:3456::1]/"), true);
  assert.equal(exempt("fd00::/8", "http://[fe80::1]/"), false);
  assert.equal(exempt("0.0.0.0/0", "http://[::1]/"), false);
  assert.equal(exempt("localhost", "http://127.0.0.1/"), false);
  assert.equal(exempt("127.0.0.1", "http://localhost/"), false);
  assert.equal(exempt("127.0.0.1:8080", "http://127.0.0.1:8080/"), false);
  // NO_PROXY first, then no_proxy.
  assert.equal(
    proxied({ HTTP_PROXY: proxy, no_proxy: "a.test" }, "http://a.test/"),
    false,
  );
  assert.equal(
    proxied(
      { HTTP_PROXY: proxy, NO_PROXY: "b.test", no_proxy: "a.test" },
      "http://a.test/",
    ),
    true,
  );
});

Deno.test("proxyRule, Bun and Node: only the NO_PROXY exemptions both make are direct (exact host, its port if given, .name and *.name for subdomains, *); no_proxy first", () => {
  for (const reader of ["bun", "node"] as const) {
    const exempt = (noProxy: string, url: string) =>
      !proxied({ HTTP_PROXY: proxy, NO_PROXY: noProxy }, url, reader);
    assert.equal(exempt("127.0.0.1", "http://127.0.0.1:8080/"), true, reader);
    assert.equal(exempt("127.0.0.1:8080", "http://127.0.0.1:8080/"), true);
    assert.equal(exempt("127.0.0.1:9", "http://127.0.0.1:8080/"), false);
    assert.equal(exempt("a.test:80", "http://a.test/"), true);
    assert.equal(exempt("foo localhost", "http://localhost:1/"), true);
    assert.equal(exempt("*", "http://127.0.0.1/"), true);
    assert.equal(exempt(".example.com", "http://a.example.com/"), true);
    assert.equal(exempt("*.example.com", "http://a.example.com/"), true);
    // Node matches these by other rules than Bun: taken as proxied.
    assert.equal(exempt("example.com", "http://a.example.com/"), false);
    assert.equal(exempt(".localhost", "http://localhost/"), false);
    assert.equal(exempt("127.0.0.0/8", "http://127.0.0.1/"), false);
    assert.equal(exempt("::1", "http://[::1]/"), false);
    assert.equal(exempt("[::1]", "http://[::1]/"), true);
    assert.equal(
      proxied(
        { HTTP_PROXY: proxy, NO_PROXY: "127.0.0.1", no_proxy: "other.test" },
        "http://127.0.0.1/",
        reader,
      ),
      true,
    );
  }
});

Deno.test("proxyRule: decisions kept per origin stay right past the cache's bound", () => {
  const check = proxyRule(
    (name) => ({ HTTP_PROXY: proxy, NO_PROXY: "b.test" })[name],
    "deno",
  );
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 600; i++) {
      assert.equal(check(new URL(`http://h${i}.test/`)), true);
      assert.equal(check(new URL(`http://x.b.test:${i + 1}/`)), false);
      assert.equal(check(new URL(`https://h${i}.test/`)), false);
    }
  }
});
