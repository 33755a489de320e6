// Which requests the runtime's fetch sends through a proxy the environment
// names, as Deno's fetch decides it (checked against Deno 2.9.6 and Bun 1.4.5
// with a loopback proxy: docs/runtime-behaviour.md): `transport: "auto"` takes
// fetch for those.
import assert from "node:assert/strict";
import { proxyRule } from "../../src/transport/_proxy.ts";

function rule(env: Record<string, string>) {
  return proxyRule((name) => env[name]);
}

const proxy = "http://127.0.0.1:3128";

Deno.test("proxyRule: HTTP_PROXY is for http: URLs, HTTPS_PROXY for https:, ALL_PROXY for both; either case", () => {
  const http = rule({ HTTP_PROXY: proxy });
  assert.equal(http(new URL("http://example.com/")), true);
  assert.equal(http(new URL("https://example.com/")), false);
  const https = rule({ HTTPS_PROXY: proxy });
  assert.equal(https(new URL("http://example.com/")), false);
  assert.equal(https(new URL("https://example.com/")), true);
  for (const name of ["ALL_PROXY", "all_proxy"]) {
    const all = rule({ [name]: proxy });
    assert.equal(all(new URL("http://example.com/")), true, name);
    assert.equal(all(new URL("https://example.com/")), true, name);
  }
  assert.equal(rule({ http_proxy: proxy })(new URL("http://a.test/")), true);
  assert.equal(rule({ https_proxy: proxy })(new URL("https://a.test/")), true);
  // Nothing set, or set empty: no proxy.
  assert.equal(rule({})(new URL("http://a.test/")), false);
  assert.equal(rule({ HTTP_PROXY: "" })(new URL("http://a.test/")), false);
});

Deno.test("proxyRule: a proxy fetch cannot use is no proxy (and an unusable upper-case one gives way to the lower-case one)", () => {
  const url = new URL("http://a.test/");
  assert.equal(rule({ HTTP_PROXY: "ftp://127.0.0.1:21" })(url), false);
  assert.equal(rule({ HTTP_PROXY: "127.0.0.1:3128" })(url), true);
  assert.equal(rule({ HTTP_PROXY: "socks5://127.0.0.1:1080" })(url), true);
  assert.equal(rule({ HTTP_PROXY: "", http_proxy: proxy })(url), true);
});

Deno.test("proxyRule: in a CGI script (REQUEST_METHOD set) HTTP_PROXY is a request header, not a setting", () => {
  const url = new URL("http://a.test/");
  assert.equal(rule({ HTTP_PROXY: proxy, REQUEST_METHOD: "GET" })(url), false);
  assert.equal(
    rule({ HTTPS_PROXY: proxy, REQUEST_METHOD: "GET" })(
      new URL("https://a.test/"),
    ),
    true,
  );
});

Deno.test("proxyRule: NO_PROXY exempts hosts, their subdomains, addresses and networks; * every host; ports are not matched", () => {
  const exempt = (noProxy: string, url: string) =>
    !rule({ HTTP_PROXY: proxy, NO_PROXY: noProxy })(new URL(url));
  assert.equal(exempt("example.com", "http://example.com/"), true);
  assert.equal(exempt("example.com", "http://api.example.com/"), true);
  assert.equal(exempt(".example.com", "http://example.com/"), true);
  assert.equal(exempt(".example.com", "http://api.example.com/"), true);
  assert.equal(exempt("example.com", "http://notexample.com/"), false);
  assert.equal(
    exempt(" other.test , Example.COM ", "http://EXAMPLE.com/"),
    true,
  );
  assert.equal(exempt("*", "http://anything.test/"), true);
  assert.equal(exempt("127.0.0.1", "http://127.0.0.1:8080/"), true);
  assert.equal(exempt("127.0.0.0/8", "http://127.1.2.3/"), true);
  assert.equal(exempt("10.0.0.0/8", "http://127.0.0.1/"), false);
  assert.equal(exempt("192.168.1.0/24", "http://192.168.1.42/"), true);
  assert.equal(exempt("192.168.1.0/24", "http://192.168.2.42/"), false);
  assert.equal(exempt("::1", "http://[::1]:8080/"), true);
  assert.equal(exempt("[::1]", "http://[0:0::1]/"), true);
  assert.equal(exempt("fd00::/8", "http://[fd12:3456::1]/"), true);
  assert.equal(exempt("fd00::/8", "http://[fe80::1]/"), false);
  assert.equal(exempt("0.0.0.0/0", "http://[::1]/"), false);
  // A name is not its address, nor the reverse (as Deno: no DNS lookup).
  assert.equal(exempt("localhost", "http://127.0.0.1/"), false);
  assert.equal(exempt("127.0.0.1", "http://localhost/"), false);
  // As Deno and Bun: an entry with a port matches nothing.
  assert.equal(exempt("127.0.0.1:8080", "http://127.0.0.1:8080/"), false);
  // The lower-case variable, when the upper-case one is unset.
  assert.equal(
    rule({ HTTP_PROXY: proxy, no_proxy: "a.test" })(new URL("http://a.test/")),
    false,
  );
});
