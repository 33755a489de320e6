import assert from "node:assert/strict";
import { findStatus, latin1, requestHead } from "../src/_http1.ts";

const bytes = (text: string) => latin1(text);

Deno.test("requestHead() puts the port in Host only when it is not the default", () => {
  const cases: Array<[string, string, string]> = [
    ["http://example.test/a?b=1", "GET /a?b=1 HTTP/1.1", "example.test"],
    ["http://example.test:80/", "GET / HTTP/1.1", "example.test"],
    ["https://example.test:443", "GET / HTTP/1.1", "example.test"],
    ["https://example.test:8443/x", "GET /x HTTP/1.1", "example.test:8443"],
    ["http://[::1]:8080/v6", "GET /v6 HTTP/1.1", "[::1]:8080"],
    ["http://[2001:db8::1]/", "GET / HTTP/1.1", "[2001:db8::1]"],
    ["http://bücher.example/", "GET / HTTP/1.1", "xn--bcher-kva.example"],
    ["http://EXAMPLE.test/Path", "GET /Path HTTP/1.1", "example.test"],
  ];
  for (const [url, line, host] of cases) {
    const head = requestHead("GET", new URL(url), [], null);
    const [requestLine, hostLine] = head.split("\r\n");
    assert.equal(requestLine, line, url);
    assert.equal(hostLine, `Host: ${host}`, url);
    assert.ok(head.endsWith("\r\nConnection: close\r\n\r\n"), url);
  }
});

Deno.test("requestHead() frames bodies with Content-Length, and POST without one with 0", () => {
  const url = new URL("http://h.test/");
  assert.match(requestHead("POST", url, [], 12), /\r\nContent-Length: 12\r\n/);
  assert.match(requestHead("POST", url, [], null), /\r\nContent-Length: 0\r\n/);
  assert.doesNotMatch(requestHead("GET", url, [], null), /Content-Length/);
  assert.equal(
    requestHead("PUT", url, [["X-A", "1"]], 3),
    "PUT / HTTP/1.1\r\nHost: h.test\r\nX-A: 1\r\nContent-Length: 3\r\nConnection: close\r\n\r\n",
  );
});

Deno.test("findStatus() reads the final status line and skips interim responses", () => {
  const scan = (text: string) => findStatus(bytes(text), text.length);
  assert.deepEqual(scan(""), { kind: "more" });
  assert.deepEqual(scan("HTTP/1.1 20"), { kind: "more" });
  assert.deepEqual(scan("HTTP/1.1 202 Accepted\r\n"), {
    kind: "status",
    status: 202,
  });
  assert.deepEqual(scan("HTTP/1.0 500\r\n"), { kind: "status", status: 500 });
  assert.deepEqual(scan("HTTP/1.1 100 Continue\r\n\r\n"), { kind: "more" });
  assert.deepEqual(
    scan("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n"),
    { kind: "status", status: 204 },
  );
  assert.deepEqual(scan("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n"), {
    kind: "more",
  });
  assert.equal(scan("SSH-2.0").kind, "invalid");
  assert.equal(scan("HTTP/2 200\r\n").kind, "invalid");
  assert.equal(scan("HTTP/1.1 2000 x\r\n").kind, "invalid");
});

Deno.test("latin1() writes one byte per char", () => {
  assert.deepEqual(latin1("aé\xff"), new Uint8Array([0x61, 0xe9, 0xff]));
  assert.equal(latin1("ab", 3).length, 5);
});
