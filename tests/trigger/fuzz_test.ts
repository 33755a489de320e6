// Hostile input into trigger(): a seeded, reproducible fuzz test. Every case
// either throws TypeError synchronously (nothing connected) or puts exactly
// one request on the wire, which a strict raw parser, Deno.serve and Node's
// http read back with exactly the given fields.
//
// Reproduce a run: FUZZ_SEED=<the printed seed> deno test -A tests/trigger/fuzz_test.ts
import assert from "node:assert/strict";
import { trigger } from "../../mod.ts";
import { prepare, USER_AGENT } from "../../src/trigger/_request.ts";
import { latin1, requestHead } from "../../src/transport/_http1.ts";
import {
  denoRecorder,
  latin1Text,
  nodeRecorder,
  rawCapture,
  type Recorder,
  type Seen,
} from "../_servers.ts";

const CASES = Number(Deno.env.get("FUZZ_CASES") ?? 10_000);
const SENT_RAW = 10_000; // loopback cases sent through trigger() to a raw socket server
const SENT_EACH = 10_000; // valid loopback cases sent to Deno.serve and to Node

// ---------------------------------------------------------------------------
// A tiny seeded PRNG (mulberry32).
// ---------------------------------------------------------------------------

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Deno.env.get("FUZZ_SEED") !== undefined
  ? Number(Deno.env.get("FUZZ_SEED"))
  : crypto.getRandomValues(new Uint32Array(1))[0];
const random = mulberry32(SEED);
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)];
const chance = (p: number) => random() < p;

// ---------------------------------------------------------------------------
// The generator.
// ---------------------------------------------------------------------------

const TCHAR =
  "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/** Characters that make trouble on the wire or in parsers. */
const HOSTILE = [
  "\r",
  "\n",
  "\r\n",
  "\0",
  "\t",
  " ",
  "\x01",
  "\x08",
  "\x0b",
  "\x0c",
  "\x1b",
  "\x1f",
  "\x7f",
  "\x80",
  "\x85",
  "\xa0",
  "\xe9",
  "\xff",
  "\u0100",
  "\u2028",
  "\u202e",
  "\ufeff",
  "\ud800", // a lone surrogate
  "😀",
  "é",
  "ü",
  "中",
  ":",
  ";",
  ",",
  "=",
  '"',
  "\\",
  "%",
  "%0d%0a",
  "%00",
  "?",
  "#",
  "/",
  "..",
  "@",
  "{",
  "|",
  "^",
  "`",
  "<",
  ">",
  "[",
  "]",
  "\r\nX-Injected: 1",
  "\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
  "\nContent-Length: 0",
  " HTTP/1.1\r\nHost: evil",
];
const PLAIN =
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~";

function plain(max: number): string {
  let text = "";
  const length = int(max + 1);
  for (let i = 0; i < length; i++) text += PLAIN[int(PLAIN.length)];
  return text;
}

/** A string mixing plain text with hostile pieces; now and then very long. */
function mixed(hostility: number, max = 12): string {
  let text = "";
  const parts = 1 + int(max);
  for (let i = 0; i < parts; i++) {
    text += chance(hostility) ? pick(HOSTILE) : plain(6);
  }
  if (chance(0.03)) text += "v".repeat(1_000 + int(20_000));
  return text;
}

function token(): string {
  let text = "";
  const length = 1 + int(12);
  for (let i = 0; i < length; i++) text += TCHAR[int(TCHAR.length)];
  return text;
}

const METHODS = [
  "GET",
  "POST",
  "PUT",
  "PATCH",
  "DELETE",
  "OPTIONS",
  "HEAD",
  "get",
  "post",
  "Patch",
  "PURGE",
  "PROPFIND",
  "REPORT",
  "X-CUSTOM",
  "CONNECT",
  "TRACE",
  "track",
];
/** Methods Node's llhttp knows (it refuses others with 400). */
const NODE_METHODS = new Set([
  "GET",
  "POST",
  "PUT",
  "PATCH",
  "DELETE",
  "OPTIONS",
  "HEAD",
  "PURGE",
  "PROPFIND",
  "REPORT",
]);

function method(): string | undefined {
  const r = random();
  if (r < 0.25) return undefined;
  if (r < 0.85) return pick(METHODS);
  if (r < 0.93) return token();
  return mixed(0.6, 3);
}

/** A header name in a random mix of upper and lower case. */
function spell(name: string): string {
  return [...name].map((c) => chance(0.5) ? c.toUpperCase() : c).join("");
}

/** A host: loopback spellings (sendable), or hostile / remote (never sent). */
function host(port: number): { text: string; loopback: boolean } {
  const r = random();
  if (r < 0.8) {
    const spelling = pick([
      "127.0.0.1",
      "127.1",
      "0x7f.0.0.1",
      "2130706433",
      "127.000.000.001",
    ]);
    return { text: `${spelling}:${port}`, loopback: true };
  }
  const text = pick([
    "example.test",
    "bücher.example",
    "EXAMPLE.test:8080",
    "[::1]:8080",
    "[::1",
    "a b.test",
    "a\r\nb.test",
    "a\tb.test",
    "a%0d%0ab.test",
    "a\0b.test",
    "xn--bcher-kva.example",
    "host:99999",
    "host:-1",
    "",
    "a<b.test",
    "a^b.test",
    "a|b.test",
    "😀.test",
    "h.test:80",
  ]) + (chance(0.2) ? mixed(0.5, 2) : "");
  return { text, loopback: false };
}

interface Case {
  n: number;
  url: string;
  loopback: boolean;
  method?: string;
  headers: Array<[string, string]>;
  cookies?: Record<string, string>;
  body?: string;
}

function makeCase(n: number, port: number): Case {
  const h = host(port);
  const path = chance(0.5) ? "/" + mixed(0.3, 6) : "/" + plain(10);
  const query = chance(0.5) ? "?" + mixed(0.3, 6) : "";
  const fragment = chance(0.1) ? "#" + mixed(0.3, 3) : "";
  const scheme = chance(0.97)
    ? "http"
    : pick(["ftp", "file", "ws", "javascript"]);
  const headers: Array<[string, string]> = [];
  const used = new Set(["x-case", "cookie", "user-agent", "content-type"]);
  const count = int(5);
  for (let i = 0; i < count; i++) {
    const r = random();
    const name = r < 0.75
      ? "x-" + token()
      : r < 0.85
      ? spell(pick([...FORBIDDEN]))
      : r < 0.95
      ? "x-" + mixed(0.7, 2)
      : pick(["", " ", "x a", "x:a", "é", "x\r\ny", "x\0"]);
    if (used.has(name.toLowerCase())) continue;
    used.add(name.toLowerCase());
    const value = chance(0.75)
      ? (chance(0.3) ? " \t" : "") + plain(20) + (chance(0.3) ? "\t " : "")
      : mixed(0.15, 8);
    headers.push([name, value]);
  }
  let cookies: Record<string, string> | undefined;
  if (chance(0.3)) {
    const entries: Array<[string, string]> = [];
    const count = int(4);
    for (let i = 0; i < count; i++) {
      entries.push([
        chance(0.9) ? token() : mixed(0.7, 2),
        chance(0.6) ? plain(10) : mixed(0.15, 5),
      ]);
    }
    cookies = Object.fromEntries(entries);
  }
  const body = chance(0.3) ? mixed(0.3, 5) : undefined;
  return {
    n,
    url: `${scheme}://${h.text}${path}${query}${fragment}`,
    loopback: h.loopback,
    method: method(),
    headers,
    cookies,
    body,
  };
}

// ---------------------------------------------------------------------------
// The oracle, written from the rules (README "Bad input throws"), not the code.
// ---------------------------------------------------------------------------

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const VALUE = /^[\t\x20-\x7E\x80-\xFF]*$/;
const FORBIDDEN = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "proxy-connection",
  "upgrade",
  "te",
  "trailer",
  "expect",
]);
/** What fetch upper-cases; any other method goes out as given. */
const NORMALISED = new Set([
  "DELETE",
  "GET",
  "HEAD",
  "OPTIONS",
  "POST",
  "PUT",
]);

interface Expected {
  method: string;
  target: string;
  host: string;
  headers: Map<string, string>;
  body: Uint8Array;
}

/** What must go on the wire, or undefined when trigger() must throw. */
function expected(c: Case): Expected | undefined {
  let url: URL;
  try {
    url = new URL(c.url);
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  let authorization: string | undefined;
  if (url.username !== "" || url.password !== "") {
    let credentials: string;
    try {
      credentials = decodeURIComponent(url.username) + ":" +
        decodeURIComponent(url.password);
    } catch {
      return undefined; // not valid percent-encoding
    }
    const bytes = new TextEncoder().encode(credentials);
    authorization = "Basic " + btoa(String.fromCharCode(...bytes));
    url.username = url.password = "";
  }
  let method = c.body !== undefined ? "POST" : "GET";
  if (c.method !== undefined) {
    if (!TOKEN.test(c.method)) return undefined;
    const upper = c.method.toUpperCase();
    if (["CONNECT", "TRACE", "TRACK"].includes(upper)) return undefined;
    method = NORMALISED.has(upper) ? upper : c.method;
  }
  if (c.body !== undefined && (method === "GET" || method === "HEAD")) {
    return undefined;
  }
  const headers = new Map<string, string>();
  for (const [name, value] of c.headers) {
    if (!TOKEN.test(name) || FORBIDDEN.has(name.toLowerCase())) {
      return undefined;
    }
    if (!VALUE.test(value)) return undefined;
    headers.set(name.toLowerCase(), value.replace(/^[\t ]+|[\t ]+$/g, ""));
  }
  if (c.cookies !== undefined) {
    const pairs: string[] = [];
    for (const [name, value] of Object.entries(c.cookies)) {
      if (!TOKEN.test(name) || !VALUE.test(value)) return undefined;
      pairs.push(`${name}=${encodeURIComponent(value)}`);
    }
    if (pairs.length > 0) headers.set("cookie", pairs.join("; "));
  }
  if (c.body !== undefined) {
    headers.set("content-type", "text/plain;charset=UTF-8");
  }
  if (authorization !== undefined) headers.set("authorization", authorization);
  headers.set("user-agent", USER_AGENT);
  const body = new TextEncoder().encode(c.body ?? "");
  // The path and query as the URL parser normalised them: what fetch sends.
  // (`search` is "" for an empty query, but "/x?" keeps its "?".)
  const target = url.pathname +
    (url.search || (url.href.split("#")[0].endsWith("?") ? "?" : ""));
  return { method, target, host: url.host, headers, body };
}

function options(c: Case, extra: Record<string, unknown> = {}) {
  return {
    method: c.method,
    headers: c.headers,
    cookies: c.cookies,
    body: c.body,
    ...extra,
  };
}

// ---------------------------------------------------------------------------
// A strict parser of one raw request.
// ---------------------------------------------------------------------------

/** Parses exactly one HTTP/1.1 request filling all of `raw`; throws otherwise. */
function parseOne(raw: Uint8Array) {
  const text = latin1Text(raw);
  const end = text.indexOf("\r\n\r\n");
  assert.ok(end > 0, "a blank line ends the head");
  const head = text.slice(0, end);
  // No bare CR or LF anywhere in the head: every line ends with CRLF.
  assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(head), "no bare CR or LF");
  const [requestLine, ...lines] = head.split("\r\n");
  const match = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([!-~]+) HTTP\/1\.1$/.exec(
    requestLine,
  );
  assert.ok(match, `request line ${JSON.stringify(requestLine.slice(0, 200))}`);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    assert.ok(
      colon > 0 && TOKEN.test(name),
      `header line ${JSON.stringify(line.slice(0, 100))}`,
    );
    const value = line.slice(colon + 1).replace(/^[\t ]+|[\t ]+$/g, "");
    assert.ok(VALUE.test(value), "header value bytes");
    const key = name.toLowerCase();
    assert.ok(!headers.has(key), `header ${key} once`);
    headers.set(key, value);
  }
  const length = Number(headers.get("content-length") ?? 0);
  assert.ok(!headers.has("transfer-encoding"), "no Transfer-Encoding");
  assert.equal(
    raw.length,
    end + 4 + length,
    "the bytes are exactly one request: nothing after its body",
  );
  return {
    method: match[1],
    target: match[2],
    headers,
    body: raw.subarray(end + 4),
  };
}

function checkParsed(
  c: Case,
  want: Expected,
  got: ReturnType<typeof parseOne>,
  port?: number,
) {
  assert.equal(got.method, want.method, "method");
  assert.equal(got.target, want.target, "target");
  const host = port === undefined ? want.host : `127.0.0.1:${port}`;
  assert.equal(got.headers.get("host"), host, "host");
  for (const [name, value] of want.headers) {
    assert.equal(got.headers.get(name), value, `header ${name}`);
  }
  const known = new Set([
    ...want.headers.keys(),
    "host",
    "content-length",
    "connection",
    "x-case",
  ]);
  for (const name of got.headers.keys()) {
    assert.ok(known.has(name), `unexpected header ${name} (case ${c.n})`);
  }
  assert.deepEqual(got.body, want.body, "body");
}

// ---------------------------------------------------------------------------
// The runs.
// ---------------------------------------------------------------------------

console.log(
  `fuzz seed ${SEED} (reproduce: FUZZ_SEED=${SEED} deno test -A tests/trigger/fuzz_test.ts)`,
);

Deno.test("the fuzz test's strict parser refuses smuggling and bad framing", () => {
  const enc = (text: string) => latin1(text);
  parseOne(enc("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  const bad = [
    "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\n\r\n", // a second request
    "GET / HTTP/1.1\r\nHost: a\nX-Injected: 1\r\n\r\n", // bare LF
    "GET / HTTP/1.1\r\nHost: a\rX: 1\r\n\r\n", // bare CR
    "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", // space in the target
    "POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nab", // body too long
    "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", // twice
    "GET / HTTP/1.1\r\nX\0: a\r\n\r\n", // NUL in a name
    "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", // NUL in a value
    "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
  ];
  for (const text of bad) {
    assert.throws(() => parseOne(enc(text)), JSON.stringify(text));
  }
});

Deno.test(`fuzz: ${CASES} hostile inputs: TypeError or one exact request (seed ${SEED})`, async (t) => {
  const raw = rawCapture();
  const deno = denoRecorder();
  const node = await nodeRecorder();
  const tally = {
    cases: 0,
    threw: 0,
    accepted: 0,
    framing: 0,
    rawSent: 0,
    rawThrew: 0,
    denoSent: 0,
    nodeSent: 0,
  };
  try {
    const cases = Array.from(
      { length: CASES },
      (_, n) => makeCase(n, raw.port),
    );
    const valid: Array<[Case, Expected]> = [];
    const framingNames = new Set<string>();

    await t.step("every case: validation and serialisation", () => {
      for (const c of cases) {
        tally.cases++;
        const refused = c.headers.filter(([name]) =>
          FORBIDDEN.has(name.toLowerCase())
        );
        if (refused.length > 0) tally.framing++;
        for (const [name] of refused) framingNames.add(name.toLowerCase());
        const want = expected(c);
        let prepared;
        try {
          prepared = prepare(c.url, options(c) as never);
        } catch (error) {
          if (want !== undefined) {
            throw new Error(
              `case ${c.n} threw but is valid: ${(error as Error).message}\n${
                JSON.stringify(c).slice(0, 500)
              }`,
            );
          }
          assert.ok(error instanceof TypeError, `case ${c.n}: ${error}`);
          assert.match(error.message, /^Cannot trigger request: /);
          tally.threw++;
          continue;
        }
        assert.ok(
          want !== undefined,
          `case ${c.n} was accepted but must throw: ${
            JSON.stringify(c).slice(0, 500)
          }`,
        );
        tally.accepted++;
        const body = prepared.body as Uint8Array;
        const head = latin1(
          requestHead(
            prepared.method,
            prepared.url,
            prepared.headers,
            body?.length ?? null,
          ),
          body?.length ?? 0,
        );
        if (body) head.set(body, head.length - body.length);
        try {
          checkParsed(c, want, parseOne(head));
        } catch (error) {
          throw new Error(
            `case ${c.n}: ${(error as Error).message}\n${
              JSON.stringify(c).slice(0, 500)
            }`,
          );
        }
        if (c.loopback) valid.push([c, want]);
      }
      assert.ok(tally.threw > CASES * 0.2, "enough hostile cases throw");
      // The framing-header branch runs (each such case must throw: checked
      // above against the oracle).
      assert.ok(
        tally.framing > CASES * 0.05,
        `framing headers in ${tally.framing} of ${CASES} cases`,
      );
      if (CASES >= 1000) {
        assert.deepEqual(
          [...framingNames].sort(),
          [...FORBIDDEN].sort(),
          "every refused name was tried",
        );
      }
      assert.ok(tally.accepted > CASES * 0.2, "enough cases are valid");
    });

    await t.step(
      "loopback cases through trigger() to a raw socket server",
      async () => {
        const loopback = cases.filter((c) => c.loopback).slice(0, SENT_RAW);
        const before = raw.connections();
        for (let i = 0; i < loopback.length; i += 50) {
          const batch = loopback.slice(i, i + 50);
          const sent: Array<Promise<unknown>> = [];
          for (const c of batch) {
            const want = expected(c);
            const connections = raw.connections();
            let promise;
            try {
              promise = trigger(
                c.url,
                options(c, {
                  wait: "accepted",
                  reuse: false,
                  timeout: 10_000,
                }) as never,
              );
            } catch (error) {
              assert.equal(want, undefined, `case ${c.n} threw: ${error}`);
              assert.ok(error instanceof TypeError);
              assert.equal(raw.connections(), connections, "nothing connected");
              tally.rawThrew++;
              continue;
            }
            assert.ok(want !== undefined, `case ${c.n} must throw`);
            tally.rawSent++;
            sent.push(promise.then((result) => {
              assert.equal(
                result.ok,
                true,
                `case ${c.n}: ${result.error?.message}`,
              );
              assert.equal(result.status, 204);
            }));
          }
          await Promise.all(sent);
        }
        assert.equal(
          raw.connections() - before,
          tally.rawSent,
          "one connection per request",
        );
        assert.equal(
          raw.requests.size,
          tally.rawSent,
          "one capture per connection",
        );
        // Captures arrive in connection order, which is not send order: match
        // each to its case by the target and headers.
        const pending = loopback.map((c) => [c, expected(c)] as const).filter((
          [, w],
        ) => w);
        const byKey = new Map<string, Array<readonly [Case, Expected]>>();
        const key = (
          method: string,
          target: string,
          headers: Map<string, string>,
        ) =>
          `${method} ${target} ${
            [...headers].filter(([k]) =>
              k !== "host" && k !== "content-length" && k !== "connection"
            ).sort().join("|")
          }`;
        for (const entry of pending) {
          const k = key(entry[1]!.method, entry[1]!.target, entry[1]!.headers);
          byKey.set(k, [
            ...(byKey.get(k) ?? []),
            entry as readonly [Case, Expected],
          ]);
        }
        for (let i = 0; i < tally.rawSent; i++) {
          const bytes = await raw.requests.take();
          const got = parseOne(bytes);
          const list = byKey.get(key(got.method, got.target, got.headers));
          assert.ok(
            list && list.length > 0,
            `a capture matching no case: ${latin1Text(bytes).slice(0, 300)}`,
          );
          const [c, want] = list.shift()!;
          checkParsed(c, want, got, raw.port);
        }
      },
    );

    const sendable = valid.filter(([c, want]) => {
      // Node refuses heads over 16 KB and methods it does not know.
      const size = c.url.length + [...want.headers].reduce(
        (sum, [k, v]) => sum + k.length + v.length + 4,
        0,
      );
      return size < 12_000;
    });

    const sendTo = async (
      recorder: Recorder,
      list: Array<[Case, Expected]>,
      port: number,
    ): Promise<number> => {
      const origin = new URL(recorder.origin);
      let sent = 0;
      for (let i = 0; i < list.length; i += 50) {
        const batch = list.slice(i, i + 50);
        await Promise.all(batch.map(async ([c]) => {
          const result = await trigger(
            c.url.replace(`:${port}`, `:${origin.port}`),
            options(c, {
              wait: "accepted",
              timeout: 10_000,
              headers: [...c.headers, ["x-case", String(c.n)]],
            }) as never,
          );
          assert.equal(
            result.ok,
            true,
            `case ${c.n}: ${result.error?.message}`,
          );
          assert.equal(result.status, 202);
          sent++;
        }));
      }
      const seen = new Map<string, Seen>();
      for (let i = 0; i < sent; i++) {
        const s = await recorder.seen.take();
        assert.ok(!seen.has(s.headers["x-case"]), "one request per case");
        seen.set(s.headers["x-case"], s);
      }
      assert.equal(recorder.seen.size, 0, "no smuggled request");
      for (const [c, want] of list) {
        const s = seen.get(String(c.n));
        assert.ok(s, `case ${c.n} arrived`);
        try {
          assert.equal(s.method, want.method, "method");
          assert.equal(s.url, want.target, "target");
          assert.equal(s.headers["host"], origin.host, "host");
          for (const [name, value] of want.headers) {
            assert.equal(s.headers[name], value, `header ${name}`);
          }
          assert.deepEqual(s.body, want.body, "body");
        } catch (error) {
          throw new Error(
            `case ${c.n}: ${(error as Error).message}\n${
              JSON.stringify(c).slice(0, 500)
            }`,
          );
        }
      }
      return sent;
    };

    await t.step(
      "valid cases to Deno.serve, parsed back field for field",
      async () => {
        tally.denoSent = await sendTo(
          deno,
          sendable.slice(0, SENT_EACH),
          raw.port,
        );
      },
    );

    await t.step(
      "valid cases to Node's http, parsed back field for field",
      async () => {
        const list = sendable.filter(([, want]) =>
          NODE_METHODS.has(want.method)
        );
        tally.nodeSent = await sendTo(node, list.slice(0, SENT_EACH), raw.port);
      },
    );
  } finally {
    await raw.close();
    await deno.close();
    await node.close();
  }
  console.log(`fuzz seed ${SEED}:`, tally);
  assert.ok(tally.cases >= 10_000 || Deno.env.get("FUZZ_CASES") !== undefined);
});

Deno.test("bad percent-encoding in URL credentials is a TypeError that does not show them (found by the fuzz test)", () => {
  assert.throws(
    () => trigger("http://user:%zzsecret@127.0.0.1:1/"),
    (error: Error) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /^Cannot trigger request: the credentials/);
      assert.ok(!error.message.includes("secret"));
      return true;
    },
  );
});
