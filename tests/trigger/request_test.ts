// Request validation and normalisation, network-free (`deno task test:quick`):
// what trigger() refuses synchronously, and what prepare() makes of the rest.
// The wire itself is checked in trigger_test.ts, wire_parity_test.ts and
// fuzz_test.ts.
import assert from "node:assert/strict";
import {
  closeIdleConnections,
  trigger,
  type TriggerOptions,
} from "../../mod.ts";
import { siteOf } from "../../src/transport/_http1.ts";
import { prepare } from "../../src/trigger/_request.ts";

/** Nothing listens here and nothing may connect: every call must throw. */
const URL_ = "http://127.0.0.1:9/x";

/** The framing headers trigger() owns (README "Bad input throws"). */
const REFUSED_HEADERS = [
  "Connection",
  "Keep-Alive",
  "Proxy-Connection",
  "Upgrade",
  "TE",
  "Trailer",
  "Expect",
  "Content-Length",
  "Host",
  "Transfer-Encoding",
];

for (const name of REFUSED_HEADERS) {
  Deno.test(`the ${name} header is refused synchronously, in any spelling and form`, () => {
    const forms: Array<[string, HeadersInit]> = [
      [name, { [name]: "1" }],
      [name.toLowerCase(), [[name.toLowerCase(), "1"]]],
      [name.toUpperCase(), new Headers({ [name.toUpperCase()]: "1" })],
      [`${name} after a good one`, [["x-ok", "1"], [name, "1"]]],
    ];
    for (const [spelling, headers] of forms) {
      for (const call of [trigger, prepare]) {
        assert.throws(
          () => call(URL_, { headers, body: "x" }),
          (error: unknown) => {
            assert.ok(error instanceof TypeError, `${spelling}: ${error}`);
            assert.match(
              error.message,
              /^Cannot trigger request: header "[^"]+" is set by trigger\(\) itself and cannot be given$/,
            );
            assert.ok(
              error.message.toLowerCase().includes(`"${name.toLowerCase()}"`),
              error.message,
            );
            return true;
          },
          `${call.name}: ${spelling}`,
        );
      }
    }
  });
}

Deno.test("headers close to a refused name are sent", () => {
  const headers: Array<[string, string]> = [
    ["X-Connection", "1"],
    ["Content-Lengths", "1"],
    ["Hosts", "1"],
    ["TE2", "1"],
    ["Upgrade-Insecure-Requests", "1"],
    ["Expect-CT", "1"],
  ];
  const prepared = prepare(URL_, { headers });
  for (const [name] of headers) {
    assert.ok(prepared.headers.some(([n]) => n === name), name);
  }
});

Deno.test("methods: fetch's six are upper-cased, others go out as given, CONNECT/TRACE/TRACK are refused", () => {
  const cases: Array<[string, string]> = [
    ["get", "GET"],
    ["Head", "HEAD"],
    ["post", "POST"],
    ["put", "PUT"],
    ["delete", "DELETE"],
    ["options", "OPTIONS"],
    ["patch", "patch"],
    ["Patch", "Patch"],
    ["PATCH", "PATCH"],
    ["purge", "purge"],
    ["M-SEARCH", "M-SEARCH"],
  ];
  for (const [given, sent] of cases) {
    assert.equal(prepare(URL_, { method: given }).method, sent, given);
  }
  assert.equal(prepare(URL_).method, "GET");
  assert.equal(prepare(URL_, { body: "x" }).method, "POST");
  for (const method of ["CONNECT", "trace", "Track"]) {
    assert.throws(() => trigger(URL_, { method }), /is not supported/, method);
  }
  for (const method of ["GE T", "", "GET\r\n", "é"]) {
    assert.throws(() => trigger(URL_, { method }), /an HTTP token/, method);
  }
});

Deno.test("a form is encoded byte for byte as URLSearchParams encodes it", () => {
  const decoder = new TextDecoder();
  let every = "";
  for (let c = 0; c < 0x100; c++) every += String.fromCharCode(c);
  const forms: Array<Record<string, string | number | boolean>> = [
    { id: 7, text: "x".repeat(1_000), ok: true },
    { "a b": "c d", "!'()~*-._": "€ 😀 ü", empty: "" },
    { every, [every]: "key" },
    { lone: "a\uD800b", low: "\uDC00" }, // lone surrogates become U+FFFD
  ];
  // Short names and values are checked char by char: each char up to
  // U+00FF, and some beyond, alone in one.
  for (let c = 0; c < 0x100; c++) {
    forms.push({
      [`k${String.fromCharCode(c)}`]: `${String.fromCharCode(c)}v`,
    });
  }
  for (const c of ["\u0100", "\u20ac", "\uD83D\uDE00", "\uFFFF"]) {
    forms.push({ [c]: `a${c}` });
  }
  // Long values are checked four bytes at a time: one char that must be
  // encoded, at each byte of a word or in a tail of one to three bytes, at
  // the edges of the lengths checked that way (64 to 16 KiB).
  const safe = "aZ09*-._";
  for (
    const length of [63, 64, 65, 66, 67, 1_000, 1_001, 1_002, 16_384, 16_385]
  ) {
    const base = Array.from({ length }, (_, i) => safe[i % 8]).join("");
    forms.push({ [base]: base });
    for (const odd of [" ", "~", "+", "é", "\uD800", "\x7f", "%"]) {
      for (const at of [0, 1, 2, 3, length - 3, length - 2, length - 1]) {
        forms.push({ v: base.slice(0, at) + odd + base.slice(at + 1) });
      }
    }
  }
  for (const form of forms) {
    const expected = new URLSearchParams(
      Object.entries(form).map(([k, v]) => [k, String(v)]),
    ).toString();
    const { body } = prepare("http://example.test/", { form });
    assert.equal(decoder.decode(body as Uint8Array), expected);
  }
  const { body } = prepare("http://example.test/", { json: { a: "é😀" } });
  assert.equal(decoder.decode(body as Uint8Array), '{"a":"é😀"}');
  const text = prepare("http://example.test/", { body: "ascii only" });
  assert.equal(decoder.decode(text.body as Uint8Array), "ascii only");
});

Deno.test("a form is read as Object.entries reads it: own enumerable fields, each read once, one a getter deleted meanwhile left out", () => {
  const read: string[] = [];
  const proto = { b: "inherited" };
  const form = Object.create(proto, {
    a: {
      enumerable: true,
      get() {
        read.push("a");
        delete form.b;
        return "1";
      },
    },
    b: { enumerable: true, configurable: true, value: "2" },
    hidden: { enumerable: false, value: "x" },
  });
  assert.equal(prepare("http://example.test/", { form }).text, "a=1");
  assert.deepEqual(read, ["a"]);
});

Deno.test("a URL string prepared again gives the same target; credentials are taken out every time", () => {
  const plain = "http://example.test/a?b=1";
  const first = prepare(plain);
  const second = prepare(plain);
  assert.equal(second.url.href, "http://example.test/a?b=1");
  assert.equal(first.href, second.href);
  const secret = "http://user:pa%20ss@example.test/";
  for (let i = 0; i < 2; i++) {
    const req = prepare(secret);
    assert.equal(req.href, "http://example.test/");
    const auth = req.headers.find(([name]) => name === "Authorization");
    assert.equal(auth?.[1], `Basic ${btoa("user:pa ss")}`);
  }
});

Deno.test("prepare(): requests that set no headers share one frozen list per body type; any header of their own, cookie or credential gives a list of their own", () => {
  const url = "http://example.test/jobs";
  assert.equal(prepare(url).headers, prepare(url).headers, "one shared list");
  assert.ok(Object.isFrozen(prepare(url, { json: {} }).headers));
  assert.notEqual(prepare(url, { json: {} }).headers, prepare(url).headers);
  for (
    const options of [
      { headers: { "x-a": "1" } },
      { headers: { Authorization: "Bearer t" } },
      { cookies: { session: "s" } },
    ] as TriggerOptions[]
  ) {
    assert.ok(!Object.isFrozen(prepare(url, options).headers));
  }
  assert.ok(!Object.isFrozen(prepare("http://user:pw@example.test/").headers));
});

Deno.test("the socket transport keeps the encoded head of a request with no headers of its own, never one with the caller's headers or credentials", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(null, { status: 204 }),
  );
  const url = `http://127.0.0.1:${server.addr.port}/keep`;
  try {
    const decoder = new TextDecoder("latin1");
    const kept = () =>
      [...siteOf(prepare(url).url).heads.values()].map((head) =>
        decoder.decode(head.bytes)
      );
    for (
      const options of [
        { headers: { Authorization: "Bearer s3cret" } },
        { cookies: { session: "s3cret" } },
        { headers: { "x-api-key": "s3cret" } },
        { json: { plain: true } },
      ] as TriggerOptions[]
    ) {
      const result = await trigger(url, { ...options, wait: "accepted" });
      assert.equal(result.status, 204);
      await result.done;
    }
    assert.ok(kept().some((head) => head.includes("application/json")));
    assert.ok(
      !kept().some((head) => head.includes("s3cret")),
      "no secret kept",
    );
  } finally {
    await closeIdleConnections();
    await server.shutdown();
  }
});

Deno.test("a URL object prepared again shares the kept copy of its href; changing the caller's object later changes nothing sent", () => {
  const given = new URL("http://example.test/a?b=1");
  const first = prepare(given);
  assert.notEqual(first.url, given, "a copy, not the caller's object");
  assert.equal(prepare(new URL(given.href)).url, first.url);
  given.pathname = "/changed";
  assert.equal(first.url.href, "http://example.test/a?b=1");
  assert.equal(prepare(given).url.href, "http://example.test/changed?b=1");
  const secret = new URL("http://user:pw@example.test/");
  const withAuth = prepare(secret);
  assert.equal(withAuth.href, "http://example.test/");
  assert.equal(secret.password, "pw", "the caller's URL keeps its password");
});

Deno.test("the same request with a body given as text or as bytes: the same fields, body aside", () => {
  const signal = new AbortController().signal;
  const waitUntil = () => {};
  const given = {
    headers: { "x-a": "1" },
    sign: { secret: "whsec_" + btoa("0123456789abcdef0123456789abcdef") },
    signal,
    waitUntil,
    timeout: 1_234,
    reuse: false,
    resend: false,
    maxConnections: 3,
    wait: "accepted" as const,
    method: "PUT",
  };
  const text = prepare(URL_, { ...given, body: "abc" });
  const bytes = prepare(URL_, {
    ...given,
    headers: { ...given.headers, "content-type": "text/plain;charset=UTF-8" },
    body: new TextEncoder().encode("abc"),
  });
  const fields = (req: object) =>
    Object.fromEntries(
      Object.entries(req).filter(([key]) =>
        key !== "body" && key !== "headers" && key !== "text" &&
        key !== "sign" && key !== "borrowed"
      ),
    );
  assert.deepEqual(fields(text), fields(bytes));
  assert.equal(text.signal, signal);
  assert.equal(text.waitUntil, waitUntil);
  assert.equal(text.timeout, 1_234);
  assert.equal(text.maxConnections, 3);
  assert.equal(text.reuse, false);
  assert.equal(text.resend, false);
  assert.equal(text.method, "PUT");
  assert.deepEqual(text.sign?.key, bytes.sign?.key);
  assert.deepEqual(text.body, bytes.body);
  // Bytes stay the caller's until copied (see body_copy_test.ts); a text
  // never is.
  assert.equal(bytes.borrowed, true);
  assert.equal(text.borrowed, undefined);
  // Every other field of a plain request is one of a text request's too.
  for (const key of Object.keys(bytes)) {
    if (key === "borrowed") continue;
    assert.ok(key in text, `${key} is kept for a text body`);
  }
});

Deno.test("a stream body read from before is refused at the call, naming it", async () => {
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new Uint8Array([1]));
      controller.enqueue(new Uint8Array([2]));
    },
  });
  const reader = stream.getReader();
  await reader.read();
  reader.releaseLock();
  assert.throws(() => prepare(URL_, { body: stream }), {
    name: "TypeError",
    message:
      /^Cannot trigger request: body is a ReadableStream that was already read from or cancelled/,
  });
});

Deno.test("prepare(): cookies as an array is refused, naming cookies (it sent Cookie: 0=a)", () => {
  assert.throws(
    () => prepare("http://example.test/", { cookies: ["a"] as never }),
    (error: unknown) =>
      error instanceof TypeError &&
      /cookies must be a record/.test(error.message),
  );
});

Deno.test("prepare(): form or cookies given as a FormData, Map, Headers or other iterable are refused, naming them (they went out empty, ok: true); records, null-prototype records and URLSearchParams are taken", () => {
  const fields = new FormData();
  fields.set("a", "1");
  const notRecords: Array<[string, unknown, RegExp]> = [
    [
      "form",
      fields,
      /form must be a record or URLSearchParams, received FormData \(a multipart body is given as body\)/,
    ],
    [
      "form",
      new Map([["a", "1"]]),
      /form must be a record or URLSearchParams, received Map/,
    ],
    [
      "form",
      new Headers({ a: "1" }),
      /form must be a record or URLSearchParams, received Headers/,
    ],
    [
      "cookies",
      new Map([["a", "1"]]),
      /cookies must be a record of strings, received Map/,
    ],
    ["cookies", new Headers({ a: "1" }), /cookies must be a record of strings/],
    [
      "cookies",
      new Set(["a"]),
      /cookies must be a record of strings, received Set/,
    ],
  ];
  for (const [option, value, message] of notRecords) {
    assert.throws(
      () => prepare(URL_, { [option]: value }),
      { name: "TypeError", message },
      `${option}: ${Object.prototype.toString.call(value)}`,
    );
  }
  const bare = Object.assign(Object.create(null), { a: "1" });
  const decode = (body: unknown) =>
    body instanceof Uint8Array ? new TextDecoder().decode(body) : body;
  for (const form of [{ a: "1" }, bare, new URLSearchParams({ a: "1" })]) {
    const req = prepare(URL_, { form });
    assert.equal(decode(req.body ?? req.text), "a=1");
  }
  const cookie = prepare(URL_, { cookies: bare }).headers.find(([name]) =>
    name.toLowerCase() === "cookie"
  );
  assert.deepEqual(cookie?.[1], "a=1");
});

Deno.test("prepare(): a bad value of a header named like a key, token or signature is never shown in the error", () => {
  for (const name of ["x-api-key", "X-Auth-Token", "x-webhook-secret"]) {
    assert.throws(
      () =>
        prepare("http://example.test/", {
          headers: { [name]: "s3cret-value\n" },
        }),
      (error: unknown) =>
        error instanceof TypeError && /not shown/.test(error.message) &&
        !error.message.includes("s3cret"),
      name,
    );
  }
  // Others are shown, quoted.
  assert.throws(
    () => prepare("http://example.test/", { headers: { "x-a": "plain\n" } }),
    (error: unknown) =>
      error instanceof TypeError && error.message.includes('"plain\\n"'),
  );
});

Deno.test("a bad value in a message shows DEL and C1 controls escaped, as JSON shows C0 ones", () => {
  assert.throws(
    () => prepare("http://127.0.0.1:9/", { headers: { "x-a": "a\x7Fb\x1B" } }),
    (error) =>
      error instanceof TypeError &&
      error.message.endsWith(String.raw`received "a\u007fb\u001b"`),
  );
  assert.throws(
    () => prepare("http://127.0.0.1:9/", { method: "G\x9B31mET" }),
    (error) =>
      error instanceof TypeError &&
      error.message.endsWith(String.raw`received "G\u009b31mET"`) &&
      !/[\x7F-\x9F]/.test(error.message),
  );
});

Deno.test("prepare() keeps a copy of caCerts: a trigger that waits (or is stored) uses the certificates given at the call", () => {
  const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  const certs = [pem];
  const req = prepare("https://example.test/", { caCerts: certs });
  certs[0] = "changed after the call";
  certs.push("\0");
  assert.deepEqual(req.caCerts, [pem]);
});
