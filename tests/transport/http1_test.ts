import assert from "node:assert/strict";
import {
  latin1,
  requestBytes,
  requestHead,
  requestInto,
  requestTarget,
  siteOf,
  utf8,
} from "../../src/transport/_http1.ts";
import {
  MAX_DRAIN_BYTES,
  MAX_HEAD_BYTES,
  ResponseProtocolError,
  ResponseReader,
} from "../../src/transport/_response.ts";

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

Deno.test("requestTarget() is the path and query as the URL parser left them, never the fragment", () => {
  const cases: Array<[string, string]> = [
    ["http://h.test", "/"],
    ["http://h.test?", "/?"],
    ["http://h.test/x?#f", "/x?"],
    ["http://u:p%2F@h.test:8080/x#f?", "/x"],
    ["http://h.test/a|b^c[d]e?q=|^`{}[]\\", "/a|b^c[d]e?q=|^`{}[]\\"],
    ["http://h.test/a{b}`c\\d?x#frag", "/a%7Bb%7D%60c/d?x"],
    [
      "http://h.test/a b/é?q=a b&r=é\"'<>",
      "/a%20b/%C3%A9?q=a%20b&r=%C3%A9%22%27%3C%3E",
    ],
    ["http://h.test/%7C%zz?%7c", "/%7C%zz?%7c"],
  ];
  for (const [url, target] of cases) {
    assert.equal(requestTarget(new URL(url)), target, url);
    assert.match(target, /^[!-~]+$/, "visible ASCII only");
  }
});

Deno.test("requestHead() frames bodies with Content-Length, and only POST and PUT without one with 0 (as fetch)", () => {
  const url = new URL("http://h.test/");
  assert.match(requestHead("POST", url, [], 12), /\r\nContent-Length: 12\r\n/);
  for (const method of ["POST", "PUT"]) {
    assert.match(
      requestHead(method, url, [], null),
      /\r\nContent-Length: 0\r\n/,
      method,
    );
  }
  for (const method of ["GET", "HEAD", "DELETE", "OPTIONS", "PATCH", "patch"]) {
    assert.doesNotMatch(
      requestHead(method, url, [], null),
      /Content-Length/,
      method,
    );
    // An empty body is still a body: its length is sent.
    assert.match(
      requestHead(method, url, [], 0),
      /\r\nContent-Length: 0\r\n/,
      method,
    );
  }
  assert.equal(
    requestHead("PUT", url, [["X-A", "1"]], 3),
    "PUT / HTTP/1.1\r\nHost: h.test\r\nX-A: 1\r\nContent-Length: 3\r\nConnection: close\r\n\r\n",
  );
});

Deno.test("ResponseReader finds the final status, skipping interim responses, byte by byte too", () => {
  const cases: Array<[string, string, number | undefined, boolean]> = [
    ["GET", "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", 202, true],
    [
      "GET",
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
      204,
      true,
    ],
    [
      "GET",
      "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 500 Oops\r\nContent-Length: 2\r\n\r\nno",
      500,
      true,
    ],
    [
      "GET",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      200,
      true,
    ],
    ["HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", 200, true],
    [
      "GET",
      "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
      200,
      false,
    ],
    ["GET", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 200, false],
    ["GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 200, false],
    [
      "GET",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      200,
      false,
    ],
  ];
  for (const [method, text, status, reusable] of cases) {
    for (const step of [text.length, 1]) {
      const reader = new ResponseReader(method);
      for (let i = 0; i < text.length; i += step) {
        reader.push(bytes(text.slice(i, i + step)));
      }
      assert.equal(reader.status, status, text);
      assert.equal(reader.reusable, reusable, text);
    }
  }
});

Deno.test("ResponseReader reads Keep-Alive timeouts and rejects what is not HTTP/1.x", () => {
  const reader = new ResponseReader("GET");
  reader.push(
    bytes("HTTP/1.1 204 No Content\r\nKeep-Alive: timeout=5, max=100\r\n\r\n"),
  );
  assert.equal(reader.keepAliveMs, 5_000);
  for (
    const text of ["SSH-2.0-x\r\n", "HTTP/2 200\r\n", "HTTP/1.1 2000 x\r\n"]
  ) {
    assert.throws(
      () => new ResponseReader("GET").push(bytes(text)),
      ResponseProtocolError,
      text,
    );
  }
  const partial = new ResponseReader("GET");
  partial.push(bytes("HTTP/1.1 20"));
  assert.equal(partial.status, undefined);
  const closed = new ResponseReader("GET");
  closed.push(bytes("HTTP/1.1 201 Created\r\n"));
  closed.end();
  assert.equal(closed.status, 201);
  assert.equal(closed.reusable, false);
});

Deno.test("latin1() writes one byte per char", () => {
  assert.deepEqual(latin1("aé\xff"), new Uint8Array([0x61, 0xe9, 0xff]));
  assert.equal(latin1("ab", 3).length, 5);
});

Deno.test("ResponseReader counts every byte after the head against the read bound, framing included", () => {
  const head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  // [what follows the head once, what then repeats]
  const cases: Array<[string, string]> = [
    ["", `1;ext=${"e".repeat(4000)}\r\nx\r\n`], // 1 body byte per 4 KB
    ["0\r\n", "x-t: t\r\n".repeat(500)], // trailers, endless
  ];
  for (const [once, unit] of cases) {
    const reader = new ResponseReader("GET");
    reader.push(bytes(head + once));
    assert.equal(reader.status, 200);
    const chunk = bytes(unit);
    let pushed = 0;
    while (!reader.giveUp && pushed < 4 * MAX_DRAIN_BYTES) {
      reader.push(chunk);
      pushed += chunk.length;
    }
    assert.ok(reader.giveUp, "gave up");
    assert.ok(pushed <= MAX_DRAIN_BYTES + chunk.length, `${pushed} bytes`);
    assert.equal(reader.reusable, false);
  }
});

Deno.test("ResponseReader bounds all heads together, interim 1xx heads included", () => {
  const reader = new ResponseReader("GET");
  const interim = bytes(
    "HTTP/1.1 100 Continue\r\nX-Pad: " + "p".repeat(1000) + "\r\n\r\n",
  );
  assert.throws(() => {
    for (let i = 0; i < 1_000; i++) reader.push(interim);
  }, ResponseProtocolError);
  assert.ok(reader.received <= MAX_HEAD_BYTES + interim.length);
});

Deno.test("requestBytes: the head requestHead() gives, then the body; heads of shared (frozen) header lists kept per site", () => {
  const decoder = new TextDecoder("latin1");
  const url = new URL("http://127.0.0.1:8080/a/b?c=d");
  const site = siteOf(url);
  assert.equal(siteOf(url), site, "one site per URL object");
  assert.equal(site.key, "http://127.0.0.1:8080");
  const ua: [string, string] = ["User-Agent", "t"];
  const cases: Array<
    [string, Array<[string, string]>, Uint8Array | null, boolean]
  > = [
    ["GET", [ua], null, true],
    ["GET", [ua], null, false],
    ["POST", [ua], null, true], // Content-Length: 0
    ["POST", [["X", "\xe9"], ua], utf8("id=7&text=" + "x".repeat(1_000)), true],
    ["POST", [...Array(200).fill(["X", "y"]), ua], utf8("a=1"), true], // no room
    ["POST", [ua], utf8("é😀"), false], // not ASCII: encoded apart
    ["PUT", [ua], new Uint8Array([1, 2, 3]), true],
    ["DELETE", [ua], new Uint8Array(0), true],
  ];
  for (const frozen of [true, false]) {
    for (const [method, list, body, keep] of cases) {
      const headers = frozen ? Object.freeze([...list]) : [...list];
      const head = requestHead(
        method,
        url,
        headers,
        body?.length ?? null,
        keep,
      );
      const copy = body?.slice();
      for (let twice = 0; twice < 2; twice++) {
        const length = body?.length ?? null;
        const bytes = requestBytes(site, method, headers, body, length, keep);
        assert.equal(decoder.decode(bytes.subarray(0, head.length)), head);
        assert.deepEqual(bytes.subarray(head.length), copy ?? new Uint8Array());
        // The body's own view is left as it was.
        if (body) assert.deepEqual(body, copy);
        const alone = requestBytes(site, method, headers, false, length, keep);
        assert.equal(decoder.decode(alone), head);
      }
    }
  }
  // A kept GET of a shared list is the same buffer each time; a list of one
  // request's own is encoded each time.
  const shared = Object.freeze([ua]);
  const get = requestBytes(site, "GET", shared, null, null, true);
  assert.equal(requestBytes(site, "GET", shared, null, null, true), get);
  const own = requestBytes(site, "GET", [ua], null, null, true);
  assert.notEqual(requestBytes(site, "GET", [ua], null, null, true), own);
  const other = requestBytes(
    site,
    "GET",
    Object.freeze([["User-Agent", "u"] as const]),
    null,
    null,
    true,
  );
  assert.match(decoder.decode(other), /User-Agent: u\r\n/);
  // Many shared lists or methods: each right, and only a few kept.
  for (let i = 0; i < 100; i++) {
    const list = Object.freeze([["X-Id", `${i}`] as const]);
    const bytes = requestBytes(site, `M${i}`, list, null, null, true);
    assert.equal(
      decoder.decode(bytes),
      requestHead(`M${i}`, url, list, null, true),
    );
  }
  assert.ok(site.heads.size <= 16, `${site.heads.size} heads kept`);
  assert.deepEqual(utf8("é😀"), new TextEncoder().encode("é😀"));
});

Deno.test("requestBytes: a head too long for a body's room goes into a buffer of its own; the room is left as it was", () => {
  const site = siteOf(new URL("http://127.0.0.1:8080/"));
  const body = utf8("a=1");
  const room = new Uint8Array(body.buffer, 0, body.byteOffset);
  const headers: Array<[string, string]> = [["X", "y".repeat(700)]];
  const bytes = requestBytes(site, "POST", headers, body, 3, true);
  assert.ok(room.every((byte) => byte === 0), "nothing written in the room");
  assert.notEqual(bytes.buffer, body.buffer);
  assert.equal(
    new TextDecoder("latin1").decode(bytes),
    requestHead("POST", new URL("http://127.0.0.1:8080/"), headers, 3, true) +
      "a=1",
  );
});

Deno.test("requestInto: the bytes requestBytes() gives, a text body encoded, a byte body copied or none, into the caller's buffer, reused request after request", () => {
  const url = new URL("http://127.0.0.1:8080/a?b");
  const site = siteOf(url);
  const ua: [string, string] = ["User-Agent", "t"];
  let buffer = new Uint8Array(0);
  const sizes: number[] = [];
  const into = (size: number) => {
    sizes.push(size);
    if (buffer.length < size) buffer = new Uint8Array(size);
    return buffer;
  };
  const bodies: Array<string | Uint8Array> = [
    "id=7&text=" + "x".repeat(1_000),
    "é😀 not ASCII",
    "",
    new Uint8Array([0, 1, 2, 255, 13, 10]),
    new Uint8Array(0),
    new TextEncoder().encode("y".repeat(3_000)),
    "short",
  ];
  for (const frozen of [true, false]) {
    for (const method of ["POST", "PUT", "PATCH"]) {
      for (const keep of [true, false]) {
        for (const body of bodies) {
          const headers = frozen ? Object.freeze([ua]) : [ua];
          const bytes = typeof body === "string"
            ? new TextEncoder().encode(body)
            : body;
          const copy = bytes.slice();
          const expected = requestBytes(
            site,
            method,
            headers,
            bytes,
            bytes.length,
            keep,
          ).slice();
          const got = requestInto(site, method, headers, body, keep, into);
          assert.equal(got.buffer, buffer.buffer, "a view of the given buffer");
          // Room for the longest framing tail (64 bytes) and, for a text,
          // its longest UTF-8 (3 bytes a unit); no more.
          const room = typeof body === "string" ? 3 * body.length : body.length;
          assert.equal(
            sizes.at(-1),
            expected.length - bytes.length + (64 - framingLength(expected)) +
              room,
          );
          assert.deepEqual(got, expected, `${method} ${keep} ${body.length}`);
          assert.deepEqual(bytes, copy, "the body left as it was");
        }
        // No body: the framing requestBytes() gives a request without one
        // (Content-Length: 0 for POST and PUT only), and room for no more.
        for (const other of [method, "GET", "DELETE", "HEAD"]) {
          const headers = frozen ? Object.freeze([ua]) : [ua];
          const expected = requestBytes(site, other, headers, null, null, keep)
            .slice();
          const got = requestInto(site, other, headers, null, keep, into);
          assert.equal(got.buffer, buffer.buffer, "a view of the given buffer");
          // The head up to the framing headers (after the last given one),
          // then room for the longest framing tail.
          const text = new TextDecoder("latin1").decode(expected);
          const start = text.indexOf("User-Agent: t\r\n") + 15;
          assert.equal(sizes.at(-1), start + 64);
          assert.deepEqual(got, expected, `${other} ${keep} no body`);
        }
      }
    }
  }
});

/** The length of a request's framing headers and blank line (what
 * `requestInto` leaves 64 bytes of room for). */
function framingLength(request: Uint8Array): number {
  const head = new TextDecoder("latin1").decode(request);
  const end = head.indexOf("\r\n\r\n") + 4;
  const start = head.search(/\r\nContent-Length: /) + 2;
  return end - start;
}

Deno.test("siteOf: the host to connect to, its port and the request line", () => {
  const v6 = siteOf(new URL("https://[::1]/x#frag"));
  assert.deepEqual(
    [v6.key, v6.hostname, v6.port, v6.tls, v6.line],
    ["https://::1:443", "::1", 443, true, " /x HTTP/1.1\r\nHost: [::1]\r\n"],
  );
  const plain = siteOf(new URL("http://example.test:80/?"));
  assert.deepEqual(
    [plain.key, plain.port, plain.tls, plain.line],
    [
      "http://example.test:80",
      80,
      false,
      " /? HTTP/1.1\r\nHost: example.test\r\n",
    ],
  );
});

Deno.test("ResponseReader: a head in pieces reads as the same head whole, bytes 0x80-0x9F included", () => {
  const pad = "X-Pad: " + "p".repeat(5_000) + "\r\n";
  const heads = [
    `HTTP/1.1 200 OK\r\n${pad}Content-Length: 5\x89\r\n\r\nhello`,
    `HTTP/1.1 200 OK\r\n${pad}Content-Length\x9b 0\r\nConnection: close\r\n\r\n`,
    `HTTP/1.1 200 OK\r\n${pad}Connection: \x86close\r\nContent-Length: 0\r\n\r\n`,
  ];
  const read = (bytes: Uint8Array, at: number[]) => {
    const reader = new ResponseReader("GET");
    let from = 0;
    for (const to of [...at, bytes.length]) {
      reader.push(bytes.subarray(from, to));
      from = to;
    }
    return [reader.status, reader.keepAlive, reader.complete, reader.giveUp];
  };
  for (const head of heads) {
    const bytes = Uint8Array.from(head, (c) => c.charCodeAt(0));
    const whole = read(bytes, []);
    for (const at of [[10], [4_100], [10, 4_200], [2_000, 4_096, 5_030]]) {
      assert.deepEqual(
        read(bytes, at),
        whole,
        `${JSON.stringify(head.slice(-40))} split at ${at}`,
      );
    }
  }
});
