import assert from "node:assert/strict";
import {
  drainTriggers,
  trigger,
  TriggerError,
  type TriggerOptions,
} from "../../mod.ts";
import { USER_AGENT } from "../../src/trigger/_request.ts";
import {
  deadPort,
  denoRecorder,
  latin1Text,
  makeCert,
  misbehaving,
  nodeRecorder,
  rawCapture,
  type Recorder,
  silent,
  tlsRecorder,
} from "../_servers.ts";
import { output, within } from "../_wait.ts";

const decoder = new TextDecoder();

/** Splits a raw request into head lines and body, asserting its framing. */
function parseRaw(raw: Uint8Array) {
  const text = latin1Text(raw);
  const end = text.indexOf("\r\n\r\n");
  assert.ok(end > 0, `no blank line after the head in ${JSON.stringify(text)}`);
  const lines = text.slice(0, end).split("\r\n");
  const [requestLine, ...headerLines] = lines;
  const headers = new Map<string, string>();
  for (const line of headerLines) {
    assert.match(
      line,
      /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+: \S/,
      `bad header line ${JSON.stringify(line)}`,
    );
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).toLowerCase();
    assert.ok(!headers.has(name), `header ${name} sent twice`);
    headers.set(name, line.slice(colon + 2));
  }
  const body = raw.subarray(end + 4);
  const length = headers.get("content-length");
  assert.equal(
    body.length,
    length === undefined ? 0 : Number(length),
    "Content-Length matches the body bytes",
  );
  return { requestLine, headers, body };
}

Deno.test("trigger() writes a GET with its query as one valid HTTP/1.1 request", async () => {
  const target = rawCapture();
  try {
    const result = await trigger(
      `${target.origin}/jobs/report?id=7&name=a b&x=é#frag`,
      { wait: "accepted" },
    );
    assert.equal(result.ok, true);
    assert.equal(result.status, 204);
    const { requestLine, headers, body } = parseRaw(
      await target.requests.take(),
    );
    assert.equal(
      requestLine,
      "GET /jobs/report?id=7&name=a%20b&x=%C3%A9 HTTP/1.1",
    );
    assert.equal(headers.get("host"), `127.0.0.1:${target.port}`);
    assert.equal(headers.get("user-agent"), USER_AGENT);
    // Kept alive by default (HTTP/1.1): no Connection header.
    assert.equal(headers.has("connection"), false);
    assert.equal(headers.has("content-length"), false);
    assert.equal(body.length, 0);
    await within(result.done, "trigger()'s done");
  } finally {
    await target.close();
  }
});

Deno.test("trigger() uses / for an empty path and sends the target as the URL parser left it (as fetch)", async () => {
  const target = rawCapture();
  try {
    await within(
      (await trigger(`${target.origin}`, { wait: "accepted" })).done,
      "trigger()'s done",
    );
    assert.equal(
      parseRaw(await target.requests.take()).requestLine,
      "GET / HTTP/1.1",
    );
    await within(
      (await trigger(`${target.origin}/a{b}|c^?q=\`x\``, {
        wait: "accepted",
      })).done,
      "trigger()'s done",
    );
    assert.equal(
      parseRaw(await target.requests.take()).requestLine,
      "GET /a%7Bb%7D|c^?q=`x` HTTP/1.1",
    );
  } finally {
    await target.close();
  }
});

Deno.test("trigger() sends a form body URL-encoded with its byte length", async () => {
  const target = rawCapture();
  try {
    const form = { text: "héllo wörld & a=b", emoji: "🎉", n: 3, yes: true };
    const result = await trigger(`${target.origin}/form`, {
      form,
      wait: "accepted",
    });
    assert.equal(result.ok, true);
    const { requestLine, headers, body } = parseRaw(
      await target.requests.take(),
    );
    assert.equal(requestLine, "POST /form HTTP/1.1");
    assert.equal(
      headers.get("content-type"),
      "application/x-www-form-urlencoded;charset=UTF-8",
    );
    const expected = new URLSearchParams({
      text: form.text,
      emoji: form.emoji,
      n: "3",
      yes: "true",
    });
    assert.equal(decoder.decode(body), expected.toString());
    assert.equal(
      Number(headers.get("content-length")),
      new TextEncoder().encode(expected.toString()).length,
    );
    assert.deepEqual(
      Object.fromEntries(new URLSearchParams(decoder.decode(body))),
      {
        text: form.text,
        emoji: form.emoji,
        n: "3",
        yes: "true",
      },
    );
  } finally {
    await target.close();
  }
});

Deno.test("trigger() sends JSON, binary and FormData bodies intact", async () => {
  const target = rawCapture();
  try {
    await trigger(`${target.origin}/json`, {
      json: { a: [1, "ü"], b: null },
      wait: "accepted",
    });
    let raw = parseRaw(await target.requests.take());
    assert.equal(raw.headers.get("content-type"), "application/json");
    assert.deepEqual(JSON.parse(decoder.decode(raw.body)), {
      a: [1, "ü"],
      b: null,
    });

    const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
    await trigger(`${target.origin}/bin`, {
      body: binary,
      method: "PUT",
      wait: "accepted",
    });
    raw = parseRaw(await target.requests.take());
    assert.equal(raw.requestLine, "PUT /bin HTTP/1.1");
    assert.equal(raw.headers.has("content-type"), false);
    assert.deepEqual(raw.body, binary);

    const data = new FormData();
    data.append("name", "a & b");
    data.append(
      "file",
      new Blob([binary], { type: "application/octet-stream" }),
      "x.bin",
    );
    await trigger(`${target.origin}/multipart`, {
      body: data,
      wait: "accepted",
    });
    raw = parseRaw(await target.requests.take());
    assert.match(
      raw.headers.get("content-type")!,
      /^multipart\/form-data; ?boundary=/,
    );
    const parsed = await new Request("http://x/", {
      method: "POST",
      body: raw.body.slice(),
      headers: { "content-type": raw.headers.get("content-type")! },
    }).formData();
    assert.equal(parsed.get("name"), "a & b");
    const file = parsed.get("file") as File;
    assert.equal(file.name, "x.bin");
    assert.deepEqual(new Uint8Array(await file.arrayBuffer()), binary);

    const stream = ReadableStream.from([
      new Uint8Array([1, 2]),
      new Uint8Array([3]),
    ]);
    await trigger(`${target.origin}/stream`, {
      body: stream,
      wait: "accepted",
    });
    raw = parseRaw(await target.requests.take());
    assert.deepEqual(raw.body, new Uint8Array([1, 2, 3]));
  } finally {
    await target.close();
  }
});

Deno.test("trigger() sends cookies as one percent-encoded Cookie header and custom headers as byte strings", async () => {
  const target = rawCapture();
  try {
    await trigger(`${target.origin}/c`, {
      cookies: { session: "a b;c=d", theme: "dark", name: "Zoë" },
      headers: { "X-Trace": "  café  ", "X-Tab": "a\tb", Cookie: "pre=1" },
      wait: "accepted",
    });
    const raw = await target.requests.take();
    const { headers } = parseRaw(raw);
    assert.equal(
      headers.get("cookie"),
      "pre=1; session=a%20b%3Bc%3Dd; theme=dark; name=Zo%C3%AB",
    );
    assert.equal(headers.get("x-trace"), "café");
    assert.equal(headers.get("x-tab"), "a\tb");
    // é went out as the single byte 0xE9.
    const text = latin1Text(raw);
    assert.ok(raw.includes(0xe9));
    assert.ok(text.includes("X-Trace: caf\xe9\r\n"));
  } finally {
    await target.close();
  }
});

/** The cases both real parsers must read back field for field. */
function parseBackCases(): Array<
  {
    name: string;
    path: string;
    options: TriggerOptions;
    expect: (
      seen: {
        method: string;
        url: string;
        headers: Record<string, string>;
        body: Uint8Array;
      },
    ) => void | Promise<void>;
  }
> {
  const binary = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) % 256);
  return [
    {
      name: "GET with query",
      path: "/q?id=7&name=a%20b&u=%C3%BC",
      options: {},
      expect(seen) {
        assert.equal(seen.method, "GET");
        assert.equal(seen.url, "/q?id=7&name=a%20b&u=%C3%BC");
        assert.equal(seen.body.length, 0);
      },
    },
    {
      name: "form",
      path: "/form",
      options: { form: { text: "héllo wörld & a=b", emoji: "🎉", n: 1 } },
      expect(seen) {
        assert.equal(seen.method, "POST");
        assert.equal(
          seen.headers["content-type"],
          "application/x-www-form-urlencoded;charset=UTF-8",
        );
        assert.deepEqual(
          Object.fromEntries(new URLSearchParams(decoder.decode(seen.body))),
          {
            text: "héllo wörld & a=b",
            emoji: "🎉",
            n: "1",
          },
        );
      },
    },
    {
      name: "json",
      path: "/json",
      options: { json: { nested: { list: [1, 2, "três"] } }, method: "PATCH" },
      expect(seen) {
        assert.equal(seen.method, "PATCH");
        assert.deepEqual(JSON.parse(decoder.decode(seen.body)), {
          nested: { list: [1, 2, "três"] },
        });
      },
    },
    {
      name: "binary",
      path: "/bin",
      options: { body: binary.buffer as ArrayBuffer },
      expect(seen) {
        assert.deepEqual(seen.body, binary);
      },
    },
    {
      name: "cookies and custom headers",
      path: "/h",
      options: {
        cookies: { a: "1 2", b: "ä" },
        headers: [["X-One", "café"], ["X-Two", "v"]],
        method: "delete",
      },
      expect(seen) {
        assert.equal(seen.method, "DELETE");
        assert.equal(seen.headers["cookie"], "a=1%202; b=%C3%A4");
        assert.equal(seen.headers["x-one"], "café");
        assert.equal(seen.headers["x-two"], "v");
        assert.equal(seen.headers["user-agent"], USER_AGENT);
      },
    },
    {
      name: "FormData",
      path: "/fd",
      options: (() => {
        const data = new FormData();
        data.append("field", "välue");
        data.append(
          "file",
          new Blob(["hello"], { type: "text/plain" }),
          "hello.txt",
        );
        return { body: data };
      })(),
      async expect(seen) {
        const parsed = await new Request("http://x/", {
          method: "POST",
          body: seen.body.slice(),
          headers: { "content-type": seen.headers["content-type"] },
        }).formData();
        assert.equal(parsed.get("field"), "välue");
        assert.equal(await (parsed.get("file") as File).text(), "hello");
      },
    },
  ];
}

async function checkParseBack(recorder: Recorder) {
  for (const { name, path, options, expect } of parseBackCases()) {
    const result = await trigger(recorder.origin + path, {
      ...options,
      wait: "accepted",
    });
    assert.equal(result.ok, true, `${name}: ${result.error?.message}`);
    assert.equal(result.status, 202);
    const seen = await recorder.seen.take();
    assert.equal(seen.headers["host"], new URL(recorder.origin).host, name);
    await expect(seen);
  }
}

Deno.test("Deno.serve parses every request trigger() writes back field for field", async () => {
  const recorder = denoRecorder();
  try {
    await checkParseBack(recorder);
  } finally {
    await recorder.close();
  }
});

Deno.test("Node's http parses every request trigger() writes back field for field", async () => {
  const recorder = await nodeRecorder();
  try {
    await checkParseBack(recorder);
  } finally {
    await recorder.close();
  }
});

Deno.test("trigger() returns long before a slow handler ends, and the hit arrives with its body", async () => {
  const recorder = denoRecorder({ delay: 2_000 });
  try {
    const started = performance.now();
    const result = await trigger(`${recorder.origin}/slow`, {
      json: { job: "report" },
    });
    assert.equal(result.ok, true);
    assert.equal(result.status, undefined);
    // An order, not a duration: the handler records the hit only after its
    // 2 s, and it has not yet when trigger() has returned.
    assert.equal(recorder.seen.size, 0, "returned before the handler ended");
    const seen = await recorder.seen.take();
    const finishedAfter = performance.now() - started;
    assert.ok(
      finishedAfter >= 1_900,
      `handler ended after ${finishedAfter} ms`,
    );
    assert.deepEqual(JSON.parse(decoder.decode(seen.body)), { job: "report" });
    await within(result.done, "trigger()'s done");
  } finally {
    await recorder.close();
  }
});

Deno.test("200 default triggers with 1 KB form bodies all arrive intact at Deno.serve", async () => {
  const recorder = denoRecorder();
  try {
    const results = await Promise.all(
      Array.from(
        { length: 200 },
        (_, i) =>
          trigger(`${recorder.origin}/bulk`, {
            form: { i, pad: String(i % 10).repeat(1024) },
          }),
      ),
    );
    assert.ok(results.every((r) => r.ok));
    const got = new Set<number>();
    for (let n = 0; n < 200; n++) {
      const seen = await recorder.seen.take();
      const form = new URLSearchParams(decoder.decode(seen.body));
      const i = Number(form.get("i"));
      assert.equal(form.get("pad"), String(i % 10).repeat(1024));
      got.add(i);
    }
    assert.equal(got.size, 200);
    await within(
      Promise.all(results.map((r) => r.done)),
      "every trigger()'s done",
    );
  } finally {
    await recorder.close();
  }
});

Deno.test("trigger() reaches an https target with a private CA and reports an untrusted one as TLS", async () => {
  const cert = await makeCert();
  const recorder = tlsRecorder(cert);
  try {
    const url = `${recorder.origin}/secure?x=1`;
    const ok = await trigger(url, {
      json: { s: 1 },
      caCerts: [cert.cert],
      wait: "accepted",
    });
    assert.equal(ok.ok, true, ok.error?.message);
    const seen = await recorder.seen.take();
    assert.equal(seen.url, "/secure?x=1");
    assert.deepEqual(JSON.parse(decoder.decode(seen.body)), { s: 1 });

    const sent = await trigger(url, { json: { s: 2 }, caCerts: [cert.cert] });
    assert.equal(sent.ok, true);
    assert.deepEqual(
      JSON.parse(decoder.decode((await recorder.seen.take()).body)),
      { s: 2 },
    );
    await within(sent.done, "trigger()'s done");

    const localhost = await trigger(url.replace("127.0.0.1", "localhost"), {
      caCerts: [cert.cert],
      wait: "accepted",
    });
    assert.equal(localhost.ok, true, localhost.error?.message);
    await recorder.seen.take();

    for (const transport of ["socket", "fetch"] as const) {
      // "sent" on the socket: the handshake fails before anything is written.
      const wait = transport === "socket" ? "sent" : "accepted";
      const untrusted = await trigger(url, { transport, wait, timeout: 5_000 });
      assert.equal(untrusted.ok, false);
      assert.equal(untrusted.error?.code, "TLS", untrusted.error?.message);
      await within(untrusted.done, "trigger()'s done");
    }
    // A PEM that cannot be loaded: TLS with the runtime's reason, on both
    // transports (fetch's client used to throw a bare TypeError, no code).
    const badPem =
      "-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n";
    for (const transport of ["socket", "fetch"] as const) {
      const bad = await trigger(url, {
        transport,
        caCerts: [badPem],
        wait: "accepted",
        timeout: 5_000,
      });
      assert.equal(bad.ok, false);
      assert.ok(bad.error instanceof TriggerError, String(bad.error));
      assert.equal(bad.error.code, "TLS", bad.error.message);
      await within(bad.done, "trigger()'s done");
    }
    const viaFetch = await trigger(url, {
      transport: "fetch",
      caCerts: [cert.cert],
      json: { s: 3 },
      wait: "accepted",
    });
    assert.equal(viaFetch.ok, true, viaFetch.error?.message);
    assert.deepEqual(
      JSON.parse(decoder.decode((await recorder.seen.take()).body)),
      { s: 3 },
    );
  } finally {
    await recorder.close();
  }
});

Deno.test("failures resolve with ok: false and a code, never reject", async (t) => {
  await t.step("refused port → CONNECT", async () => {
    const result = await trigger(`http://127.0.0.1:${deadPort()}/`, {
      timeout: 5_000,
    });
    assert.equal(result.ok, false);
    assert.ok(result.error instanceof TriggerError);
    assert.equal(result.error.code, "CONNECT");
    assert.ok(result.error.cause instanceof Error);
    assert.match(result.error.message, /GET http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  await t.step("unresolvable host → DNS", async () => {
    const result = await trigger("http://no-such-host.invalid/", {
      timeout: 10_000,
    });
    assert.equal(result.ok, false);
    assert.equal(result.error?.code, "DNS", result.error?.message);
  });

  await t.step(
    "a server that accepts and never answers → TIMEOUT in accepted mode",
    async () => {
      // The server holds every connection until the test ends: whatever
      // settles before that settled on trigger()'s own timeout.
      const hold = Promise.withResolvers<void>();
      const server = misbehaving(async (conn) => {
        await conn.read(new Uint8Array(1024));
        await hold.promise;
      });
      try {
        const result = await within(
          trigger(server.origin, { wait: "accepted", timeout: 300 }),
          "a 300 ms trigger to a silent server",
        );
        assert.equal(result.ok, false);
        assert.equal(result.error?.code, "TIMEOUT");
        assert.equal(
          (result.error?.cause as DOMException).name,
          "TimeoutError",
        );
        // Timeouts of a second or more share one sweeper: still on time.
        const long = await trigger(server.origin, {
          wait: "accepted",
          timeout: 1_200,
        });
        assert.equal(long.error?.code, "TIMEOUT");
        assert.ok(long.elapsed >= 1_150, `gave up after ${long.elapsed} ms`);
        // In sent mode the write succeeds and the background wait ends at the timeout.
        const sent = await trigger(server.origin, { timeout: 300 });
        assert.equal(sent.ok, true);
        await within(sent.done, "done after a 300 ms sent-mode timeout");
      } finally {
        hold.resolve();
        await server.close();
      }
    },
  );

  await t.step("a server that closes without answering → CLOSED", async () => {
    const server = misbehaving(async (conn) => {
      await conn.read(new Uint8Array(1024));
    });
    try {
      const result = await trigger(server.origin, {
        wait: "accepted",
        timeout: 5_000,
      });
      assert.equal(result.ok, false);
      assert.equal(result.error?.code, "CLOSED");
    } finally {
      await server.close();
    }
  });

  await t.step(
    "a server closing mid-status-line → CLOSED; garbage → PROTOCOL",
    async () => {
      const half = misbehaving(async (conn) => {
        await conn.read(new Uint8Array(1024));
        await conn.write(new TextEncoder().encode("HTTP/1.1 20"));
      });
      const garbage = misbehaving(async (conn) => {
        await conn.read(new Uint8Array(1024));
        await conn.write(new TextEncoder().encode("SSH-2.0-OpenSSH\r\n"));
      });
      try {
        const a = await trigger(half.origin, {
          wait: "accepted",
          timeout: 5_000,
        });
        assert.equal(a.error?.code, "CLOSED");
        const b = await trigger(garbage.origin, {
          wait: "accepted",
          timeout: 5_000,
        });
        assert.equal(b.error?.code, "PROTOCOL");
        assert.match(b.error!.message, /SSH-2/);
      } finally {
        await half.close();
        await garbage.close();
      }
    },
  );

  await t.step(
    "interim 1xx responses are skipped to the final status",
    async () => {
      const server = misbehaving(async (conn) => {
        await conn.read(new Uint8Array(1024));
        await conn.write(
          new TextEncoder().encode(
            "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\n\r\n",
          ),
        );
      });
      try {
        const result = await trigger(server.origin, {
          wait: "accepted",
          timeout: 5_000,
        });
        assert.equal(result.status, 201);
        assert.equal(result.ok, true);
      } finally {
        await server.close();
      }
    },
  );

  await t.step(
    "non-2xx in accepted mode → HTTP_STATUS with the status",
    async () => {
      const recorder = denoRecorder({ status: 500 });
      try {
        const result = await trigger(recorder.origin, { wait: "accepted" });
        assert.equal(result.ok, false);
        assert.equal(result.status, 500);
        assert.equal(result.error?.code, "HTTP_STATUS");
        assert.equal(result.error?.status, 500);
        await recorder.seen.take();
      } finally {
        await recorder.close();
      }
    },
  );

  await t.step(
    "an aborted signal → ABORTED, before or during the wait",
    async () => {
      const before = await trigger(`http://127.0.0.1:${deadPort()}/`, {
        signal: AbortSignal.abort(),
      });
      assert.equal(before.error?.code, "ABORTED");

      // The server reads the request and holds the connection until the
      // test ends; the caller aborts once the request has arrived.
      const hold = Promise.withResolvers<void>();
      const arrived = Promise.withResolvers<void>();
      const server = misbehaving(async (conn) => {
        await conn.read(new Uint8Array(1024));
        arrived.resolve();
        await hold.promise;
      });
      try {
        const controller = new AbortController();
        within(arrived.promise, "the request at the server").then(
          () => controller.abort(new Error("user gave up")),
          (error) => controller.abort(error),
        );
        const during = await trigger(server.origin, {
          wait: "accepted",
          signal: controller.signal,
        });
        assert.equal(during.error?.code, "ABORTED");
        assert.equal((during.error?.cause as Error).message, "user gave up");
        const timed = await trigger(server.origin, {
          wait: "accepted",
          signal: AbortSignal.timeout(50),
        });
        assert.equal(timed.error?.code, "TIMEOUT");
      } finally {
        hold.resolve();
        await server.close();
      }
    },
  );

  await t.step("a body stream that errors → BODY", async () => {
    const stream = new ReadableStream({
      pull(controller) {
        controller.error(new Error("disk gone"));
      },
    });
    const result = await trigger(`http://127.0.0.1:${deadPort()}/`, {
      body: stream,
    });
    assert.equal(result.error?.code, "BODY");
  });
});

Deno.test("a failing trigger() that nobody awaits does not crash the process", async () => {
  const port = deadPort();
  const script = `
    import { trigger } from ${
    JSON.stringify(new URL("../../mod.ts", import.meta.url).href)
  };
    trigger("http://127.0.0.1:${port}/", { wait: "accepted" });
    trigger("http://no-such-host.invalid/");
    trigger("http://127.0.0.1:${port}/", { transport: "fetch" });
    setTimeout(() => console.log("still alive"), 500);
  `;
  const { code, stdout, stderr } = await output(Deno.execPath(), {
    args: ["eval", "--no-config", script],
    stdout: "piped",
    stderr: "piped",
    timeout: 60_000,
    what: "a script with un-awaited failing triggers",
  });
  assert.equal(code, 0, decoder.decode(stderr));
  assert.equal(decoder.decode(stdout).trim(), "still alive");
});

Deno.test("bad input throws TypeError synchronously and connects nothing", async () => {
  const target = rawCapture();
  const url = `${target.origin}/x`;
  const cases: Array<[string, () => unknown, RegExp]> = [
    ["unparsable URL", () => trigger("not a url"), /invalid URL "not a url"/],
    ["ftp scheme", () => trigger("ftp://example.test/"), /received "ftp:"/],
    [
      "file URL object",
      () => trigger(new URL("file:///etc/passwd")),
      /"file:"/,
    ],
    [
      "method with space",
      () => trigger(url, { method: "GE T" }),
      /method must be an HTTP token, received "GE T"/,
    ],
    ["method with CRLF", () => trigger(url, { method: "GET\r\n" }), /method/],
    ["CONNECT", () => trigger(url, { method: "CONNECT" }), /not supported/],
    [
      "header name with colon",
      () => trigger(url, { headers: { "x:y": "1" } }),
      /header name must be an HTTP token, received "x:y"/,
    ],
    [
      "header name with space",
      () => trigger(url, { headers: [["x y", "1"]] }),
      /"x y"/,
    ],
    [
      "header value with CRLF",
      () => trigger(url, { headers: { "x-a": "1\r\nx-b: 2" } }),
      /control character \(U\+000D\)/,
    ],
    [
      "header value with LF",
      () => trigger(url, { headers: { "x-a": "1\nx" } }),
      /U\+000A/,
    ],
    [
      "header value with NUL",
      () => trigger(url, { headers: { "x-a": "a\0b" } }),
      /U\+0000/,
    ],
    [
      "header value with DEL",
      () => trigger(url, { headers: { "x-a": "a\x7fb" } }),
      /U\+007F/,
    ],
    [
      "header value above U+00FF",
      () => trigger(url, { headers: { "x-a": "€" } }),
      /above U\+00FF \(U\+20AC\)/,
    ],
    [
      "Content-Length header",
      () => trigger(url, { headers: { "Content-Length": "5" } }),
      /set by trigger\(\)/,
    ],
    [
      "Host header",
      () => trigger(url, { headers: { host: "evil" } }),
      /"host"/,
    ],
    [
      "Transfer-Encoding header",
      () => trigger(url, { headers: { "transfer-encoding": "chunked" } }),
      /set by trigger/,
    ],
    [
      "cookie with CR",
      () => trigger(url, { cookies: { a: "x\ry" } }),
      /cookie "a" contains a control character/,
    ],
    [
      "cookie above U+00FF",
      () => trigger(url, { cookies: { a: "😀" } }),
      /above U\+00FF/,
    ],
    [
      "cookie name not a token",
      () => trigger(url, { cookies: { "a=b": "1" } }),
      /cookie name/,
    ],
    [
      "two body options",
      () => trigger(url, { json: {}, form: {} }),
      /form and json/,
    ],
    [
      "body on GET",
      () => trigger(url, { method: "GET", body: "x" }),
      /GET request cannot have a body/,
    ],
    [
      "body on HEAD",
      () => trigger(url, { method: "head", json: 1 }),
      /HEAD request/,
    ],
    [
      "form field object",
      () => trigger(url, { form: { a: {} as unknown as string } }),
      /form field "a"/,
    ],
    [
      "json undefined-ish",
      () => trigger(url, { json: () => 1 }),
      /json must be a JSON value/,
    ],
    [
      "json BigInt",
      () => trigger(url, { json: 1n }),
      /json cannot be serialised/,
    ],
    [
      "json whose toJSON throws a string",
      () =>
        trigger(url, {
          json: {
            toJSON() {
              throw "no";
            },
          },
        }),
      /json cannot be serialised: it threw "no"/,
    ],
    ["json cycle", () => {
      const a: Record<string, unknown> = {};
      a.a = a;
      return trigger(url, { json: a });
    }, /json cannot be serialised/],
    [
      "body of unknown kind",
      () => trigger(url, { body: 42 as unknown as string }),
      /body must be/,
    ],
    [
      "wait typo",
      () => trigger(url, { wait: "acepted" as "accepted" }),
      /wait must be "sent" or "accepted", received "acepted"/,
    ],
    [
      "transport typo",
      () => trigger(url, { transport: "tcp" as "socket" }),
      /transport must be/,
    ],
    [
      "signal not a signal",
      () => trigger(url, { signal: {} as AbortSignal }),
      /signal must be an AbortSignal/,
    ],
    [
      "waitUntil not a function",
      () => trigger(url, { waitUntil: 1 as unknown as () => void }),
      /waitUntil must be a function/,
    ],
    [
      "caCerts not strings",
      () => trigger(url, { caCerts: [1 as unknown as string] }),
      /caCerts/,
    ],
  ];
  try {
    for (const [name, call, message] of cases) {
      assert.throws(call, (error: unknown) => {
        assert.ok(error instanceof TypeError, `${name}: ${error}`);
        assert.match(error.message, /^Cannot trigger request: /, name);
        assert.match(error.message, message, name);
        return true;
      }, name);
    }
    for (
      const timeout of [
        0,
        0.5,
        -1,
        NaN,
        Infinity,
        2 ** 31,
        "5" as unknown as number,
      ]
    ) {
      assert.throws(() => trigger(url, { timeout }), {
        name: "RangeError",
        message:
          /^Cannot trigger request: timeout must be a number of milliseconds from 1 to 2147483647, received /,
      });
    }
    // A good request after them: had a bad one connected, its connection
    // would have been accepted first.
    await within(
      (await trigger(url, { wait: "accepted" })).done,
      "trigger()'s done",
    );
    assert.equal(target.connections(), 1, "only the good request connected");
  } finally {
    await target.close();
  }
});

Deno.test("credentials in the URL become Basic auth and never reach the request line", async () => {
  const target = rawCapture();
  try {
    await trigger(`http://us%C3%A9r:p%40ss@127.0.0.1:${target.port}/a`, {
      wait: "accepted",
    });
    const { requestLine, headers } = parseRaw(await target.requests.take());
    assert.equal(requestLine, "GET /a HTTP/1.1");
    const decoded = new TextDecoder().decode(
      Uint8Array.from(
        atob(headers.get("authorization")!.slice(6)),
        (c) => c.charCodeAt(0),
      ),
    );
    assert.equal(decoded, "usér:p@ss");
  } finally {
    await target.close();
  }
});

Deno.test("the fetch transport delivers and hands its background to waitUntil", async (t) => {
  const recorder = denoRecorder({ delay: 300 });
  const g = globalThis as Record<string | symbol, unknown>;
  try {
    await t.step("explicit waitUntil", async () => {
      const kept: Promise<unknown>[] = [];
      const result = await trigger(`${recorder.origin}/f`, {
        transport: "fetch",
        json: { via: "fetch" },
        waitUntil: (p) => kept.push(p),
      });
      assert.equal(result.ok, true);
      assert.equal(result.transport, "fetch");
      assert.equal(kept.length, 1);
      assert.equal(kept[0], result.done);
      const seen = await recorder.seen.take();
      assert.deepEqual(JSON.parse(decoder.decode(seen.body)), { via: "fetch" });
      await Promise.all(kept);
    });

    await t.step("accepted mode reports the status", async () => {
      const result = await trigger(`${recorder.origin}/f2`, {
        transport: "fetch",
        wait: "accepted",
        form: { a: 1 },
      });
      assert.equal(result.status, 202);
      assert.equal(result.ok, true);
      await recorder.seen.take();
    });

    await t.step("Supabase's EdgeRuntime.waitUntil is discovered", async () => {
      const kept: Promise<unknown>[] = [];
      g.EdgeRuntime = { waitUntil: (p: Promise<unknown>) => kept.push(p) };
      try {
        const result = await trigger(`${recorder.origin}/supabase`, {
          transport: "fetch",
          body: "hi",
        });
        assert.equal(kept.length, 1);
        assert.equal(decoder.decode((await recorder.seen.take()).body), "hi");
        await within(result.done, "trigger()'s done");
      } finally {
        delete g.EdgeRuntime;
      }
    });

    await t.step(
      "Vercel's request context waitUntil is discovered",
      async () => {
        const kept: Promise<unknown>[] = [];
        const key = Symbol.for("@vercel/request-context");
        g[key] = {
          get: () => ({ waitUntil: (p: Promise<unknown>) => kept.push(p) }),
        };
        try {
          const result = await trigger(`${recorder.origin}/vercel`, {
            transport: "fetch",
            json: [1],
          });
          assert.equal(kept.length, 1);
          assert.deepEqual(
            JSON.parse(decoder.decode((await recorder.seen.take()).body)),
            [1],
          );
          await within(result.done, "trigger()'s done");
        } finally {
          delete g[key];
        }
      },
    );

    await t.step(
      "a Vercel request context whose get() throws: the trigger goes on, nothing thrown, nothing left in flight",
      async () => {
        const key = Symbol.for("@vercel/request-context");
        g[key] = {
          get: () => {
            throw new Error("no request context here");
          },
        };
        try {
          const result = await trigger(`${recorder.origin}/vercel-throws`, {
            transport: "fetch",
            json: [2],
          });
          assert.equal(result.ok, true);
          await recorder.seen.take();
          await within(result.done, "trigger()'s done");
          assert.equal(await drainTriggers({ timeout: 5_000 }), true);
        } finally {
          delete g[key];
        }
      },
    );

    await t.step("failures are typed, never thrown", async () => {
      const result = await trigger(`http://127.0.0.1:${deadPort()}/`, {
        transport: "fetch",
        wait: "accepted",
      });
      assert.equal(result.ok, false);
      assert.equal(result.error?.code, "CONNECT", result.error?.message);
      const dns = await trigger("http://no-such-host.invalid/", {
        transport: "fetch",
        wait: "accepted",
        timeout: 10_000,
      });
      assert.equal(dns.error?.code, "DNS", dns.error?.message);
    });
  } finally {
    await recorder.close();
  }
});

Deno.test("the socket transport's background part also goes to waitUntil", async () => {
  const recorder = denoRecorder();
  try {
    const kept: Promise<unknown>[] = [];
    const result = await trigger(recorder.origin, {
      waitUntil: (p) => kept.push(p),
    });
    assert.equal(result.transport, "socket");
    assert.deepEqual(kept, [result.done]);
    await recorder.seen.take();
    await within(result.done, "trigger()'s done");
  } finally {
    await recorder.close();
  }
});

Deno.test("errors about credentials name the bad character, never the value", () => {
  const token = "Bearer sk_live_0123456789";
  const cases: TriggerOptions[] = [
    { headers: { Authorization: token + "\n" } },
    {
      headers: [["proxy-authorization", token + "\r"]] as [string, string][],
    },
    { cookies: { session: token + "\0" } },
    { headers: { cookie: "a=" + token + "\x01" } },
  ];
  for (const options of cases) {
    assert.throws(
      () => trigger("http://example.test/", options),
      (error: Error) => {
        assert.ok(error instanceof TypeError);
        assert.match(
          error.message,
          /control character \(U\+00(0A|0D|00|01)\) at index \d+/,
        );
        assert.match(error.message, /characters \(not shown\)/);
        assert.ok(!error.message.includes("sk_live"), error.message);
        return true;
      },
    );
  }
});

Deno.test("an error about a long header value shows the stretch around the bad character's index", () => {
  const cases: Array<[string, number, RegExp]> = [
    // At the start, in the middle, near the end of 200 characters.
    ["\n" + "a".repeat(199), 0, /received "\\na{76}\.\.\."$/],
    [
      "a".repeat(120) + "\r" + "b".repeat(79),
      120,
      /"\.\.\.a{37}\\rb{36}\.\.\."$/,
    ],
    [
      "a".repeat(190) + "\x01" + "b".repeat(9),
      190,
      /"\.\.\.a{67}\\u0001b{9}"$/,
    ],
  ];
  for (const [value, index, shown] of cases) {
    assert.throws(
      () => trigger("http://example.test/", { headers: { "x-note": value } }),
      (error: Error) => {
        assert.ok(error instanceof TypeError);
        assert.match(error.message, new RegExp(`at index ${index},`));
        assert.match(error.message, shown);
        return true;
      },
    );
  }
});

Deno.test("a stalled body stream ends at the trigger's timeout, short or long", async () => {
  for (const timeout of [300, 1_200]) {
    const stalled = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array([1, 2, 3])); // then nothing, ever
      },
    });
    const result = await trigger(`http://127.0.0.1:${deadPort()}/`, {
      body: stalled,
      timeout,
    });
    assert.equal(result.ok, false);
    assert.equal(result.error?.code, "TIMEOUT", result.error?.message);
    assert.ok(result.elapsed >= timeout - 50, `${result.elapsed} ms`);
    await within(result.done, "trigger()'s done");
    await stalled.cancel().catch(() => {});
  }
});

Deno.test("a short timeout never ends a trigger before it has passed, counted from the call: socket and fetch", async () => {
  const server = silent(); // never answers
  try {
    for (const transport of ["socket", "fetch"] as const) {
      for (const timeout of [2, 5]) {
        for (let i = 0; i < 20; i++) {
          const result = await trigger(server.origin, {
            wait: "accepted",
            transport,
            timeout,
          });
          assert.equal(result.error?.code, "TIMEOUT", result.error?.message);
          // Not early: Deno cuts a fractional timer delay down to whole ms.
          assert.ok(
            result.elapsed >= timeout,
            `${transport}, ${timeout} ms: ended after ${result.elapsed} ms`,
          );
          await within(result.done, "trigger()'s done");
        }
      }
    }
  } finally {
    await server.close();
  }
});

Deno.test('"accepted" with a connection that will not be reused stops reading at the status', async () => {
  const hold = Promise.withResolvers<void>();
  const server = misbehaving(async (conn) => {
    await conn.read(new Uint8Array(4096));
    await conn.write(
      new TextEncoder().encode(
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 10\r\n\r\nabc",
      ),
    );
    await hold.promise; // the rest never comes while the test runs
  });
  try {
    const result = await trigger(server.origin, { wait: "accepted" });
    assert.equal(result.status, 200);
    // The server still holds the connection: done settles only if trigger()
    // stopped reading at the status instead of waiting for the body.
    await within(result.done, "done with the body's rest never coming");
  } finally {
    hold.resolve();
    await server.close();
  }
});
