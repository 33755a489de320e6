// The trigger span against the OpenTelemetry HTTP client conventions
// (docs/http/http-spans.md, v1.47), seen through a minimal @opentelemetry/api
// 1.x registry installed in the global slot for each test: the span's name,
// status and attributes, url.full, the known-methods override.
import assert from "node:assert/strict";
import { trigger } from "../../src/trigger/trigger.ts";
import { readKnownMethods } from "../../src/trigger/_telemetry.ts";
import { otel, redact, urlFull } from "../../src/telemetry/_otel.ts";
import { closeIdleConnections } from "../../src/transport/_pool.ts";

const REGISTRY = Symbol.for("opentelemetry.js.api.1");
const SPAN_KEY = Symbol.for("OpenTelemetry Context Key SPAN");

interface FakeSpan {
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  events: Array<{ name: string; attributes?: Record<string, unknown> }>;
  status?: { code: number; message?: string };
  ended: boolean;
  /** How many times end() was called. */
  ends: number;
}

class Ctx {
  #values: Map<symbol, unknown>;
  constructor(values = new Map<symbol, unknown>()) {
    this.#values = values;
  }
  getValue(key: symbol): unknown {
    return this.#values.get(key);
  }
  setValue(key: symbol, value: unknown): Ctx {
    return new Ctx(new Map(this.#values).set(key, value));
  }
  deleteValue(key: symbol): Ctx {
    const values = new Map(this.#values);
    values.delete(key);
    return new Ctx(values);
  }
}

/** Installs a registry recording spans; `inject` throws when asked to. */
function install(
  options: { injectThrows?: boolean; setAttributesThrows?: boolean } = {},
): FakeSpan[] {
  const spans: FakeSpan[] = [];
  let ids = 0;
  (globalThis as Record<symbol, unknown>)[REGISTRY] = {
    version: "1.9.0",
    trace: {
      getTracer: () => ({
        startSpan(
          name: string,
          o: { kind: number; attributes?: Record<string, unknown> },
        ) {
          const id = (++ids).toString(16).padStart(16, "0");
          const span: FakeSpan & Record<string, unknown> = {
            name,
            kind: o.kind,
            attributes: { ...o.attributes },
            events: [],
            ended: false,
            ends: 0,
            spanContext: () => ({
              traceId: "0af7651916cd43dd8448eb211c80319c",
              spanId: id,
              traceFlags: 1,
            }),
            setAttribute(key: string, value: unknown) {
              span.attributes[key] = value;
            },
            setAttributes(attributes: Record<string, unknown>) {
              if (options.setAttributesThrows) {
                throw new Error("setAttributes failed");
              }
              Object.assign(span.attributes, attributes);
            },
            addEvent(name: string, attributes?: Record<string, unknown>) {
              span.events.push({ name, attributes });
            },
            setStatus(status: { code: number; message?: string }) {
              span.status = status;
            },
            end() {
              span.ended = true;
              span.ends++;
            },
            isRecording: () => true,
          };
          spans.push(span);
          return span;
        },
      }),
    },
    context: {
      active: () => new Ctx(),
      with: (_c: Ctx, fn: () => unknown) => fn(),
    },
    propagation: {
      inject(
        context: Ctx,
        carrier: Record<string, string>,
        setter: { set(c: unknown, k: string, v: string): void },
      ) {
        if (options.injectThrows) throw new Error("inject failed");
        const span = context.getValue(SPAN_KEY) as
          | { spanContext(): { traceId: string; spanId: string } }
          | undefined;
        if (span === undefined) return;
        const { traceId, spanId } = span.spanContext();
        setter.set(carrier, "traceparent", `00-${traceId}-${spanId}-01`);
      },
    },
  };
  return spans;
}

function uninstall(): void {
  delete (globalThis as Record<symbol, unknown>)[REGISTRY];
}

/** A server answering `?s=<status>` with that status; the traceparents seen. */
function serve(): {
  base: string;
  seen: Array<string | null>;
  server: Deno.HttpServer<Deno.NetAddr>;
} {
  const seen: Array<string | null> = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      seen.push(req.headers.get("traceparent"));
      await req.arrayBuffer();
      const status = Number(new URL(req.url).searchParams.get("s") ?? 200);
      return new Response(null, {
        status,
        headers: status === 302 ? { location: "/" } : {},
      });
    },
  );
  return { base: `http://127.0.0.1:${server.addr.port}`, seen, server };
}

/** A loopback port nothing listens on. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function fire(
  spans: FakeSpan[],
  url: string,
  init: Parameters<typeof trigger>[1],
): Promise<FakeSpan> {
  const before = spans.length;
  const result = await trigger(url, init);
  await result.done;
  const span = spans.slice(before).find((s) => s.kind === 2);
  assert.ok(span, `a CLIENT span for ${url}`);
  assert.ok(span.ended, "the span ended");
  return span;
}

for (const transport of ["socket", "fetch"] as const) {
  Deno.test(`semconv (${transport}): the query url.full redacts is nowhere in the span, a 500's status has no description`, async () => {
    const spans = install();
    const { base, server } = serve();
    try {
      const failed = await fire(spans, `${base}/p?s=500&sig=secret`, {
        transport,
        wait: "accepted",
        body: "x",
      });
      assert.equal(failed.attributes["http.response.status_code"], 500);
      assert.equal(failed.attributes["error.type"], "HTTP_STATUS");
      assert.deepEqual(failed.status, { code: 2 });
      assert.equal(
        failed.attributes["url.full"],
        `${base}/p?s=500&sig=REDACTED`,
      );
      assert.ok(
        !JSON.stringify(failed).includes("secret"),
        JSON.stringify(failed),
      );

      const target = `http://127.0.0.1:${closedPort()}/p?sig=secret`;
      const refused = await fire(
        spans,
        target,
        { transport, wait: "accepted", body: "x" },
      );
      assert.equal(refused.attributes["error.type"], "CONNECT");
      assert.equal(refused.status?.code, 2);
      assert.equal(typeof refused.status?.message, "string");
      assert.ok(refused.status!.message!.length > 0);
      // Not the "METHOD URL" TriggerError appends (fetch's own message,
      // quoted in it, may name the URL: redacted like url.full).
      assert.ok(
        !refused.status!.message!.endsWith(`POST ${target}`) &&
          !refused.status!.message!.endsWith("POST " + urlFull(target)),
        `no appended URL in the description: ${refused.status!.message}`,
      );
      assert.ok(
        !JSON.stringify(refused).includes("secret"),
        JSON.stringify(refused),
      );
    } finally {
      uninstall();
      await closeIdleConnections();
      await server.shutdown();
    }
  });

  Deno.test(`semconv (${transport}): a 302 leaves the span status unset; error.type stays`, async () => {
    const spans = install();
    const { base, server } = serve();
    try {
      const span = await fire(spans, `${base}/r?s=302`, {
        transport,
        wait: "accepted",
        body: "x",
      });
      assert.equal(span.attributes["http.response.status_code"], 302);
      assert.equal(span.attributes["error.type"], "HTTP_STATUS");
      assert.equal(span.status, undefined);
    } finally {
      uninstall();
      await closeIdleConnections();
      await server.shutdown();
    }
  });

  Deno.test(`semconv (${transport}): an unknown method (PROPFIND) is _OTHER on a span named HTTP; QUERY is known`, async () => {
    const spans = install();
    const { base, server } = serve();
    try {
      for (const method of ["PROPFIND"]) {
        const span = await fire(spans, `${base}/m`, {
          transport,
          method,
          wait: "accepted",
          body: "x",
        });
        assert.equal(span.name, "HTTP");
        assert.equal(span.attributes["http.request.method"], "_OTHER");
        assert.equal(span.attributes["http.request.method_original"], method);
      }
      const post = await fire(spans, `${base}/m`, {
        transport,
        wait: "accepted",
        body: "x",
      });
      assert.equal(post.name, "POST");
      assert.equal(post.attributes["http.request.method_original"], undefined);
      // QUERY (RFC 10008) is in the conventions' known methods.
      const query = await fire(spans, `${base}/m`, {
        transport,
        method: "QUERY",
        wait: "accepted",
        body: "x",
      });
      assert.equal(query.name, "QUERY");
      assert.equal(query.attributes["http.request.method"], "QUERY");
    } finally {
      uninstall();
      await closeIdleConnections();
      await server.shutdown();
    }
  });
}

Deno.test("semconv: an SDK whose setAttributes() throws: the span is still ended, once", async () => {
  const spans = install({ setAttributesThrows: true });
  const { base, server } = serve();
  try {
    const result = await trigger(`${base}/a`, {
      transport: "socket",
      wait: "accepted",
    });
    await result.done;
    assert.equal(result.ok, true);
    assert.equal(spans.length, 1);
    assert.equal(spans[0].ends, 1);
  } finally {
    uninstall();
    await closeIdleConnections();
    await server.shutdown();
  }
});

Deno.test("semconv: a propagator whose inject() throws: the trigger is sent, its span ended", async () => {
  const spans = install({ injectThrows: true });
  const { base, seen, server } = serve();
  try {
    const result = await trigger(`${base}/i`, {
      transport: "socket",
      wait: "accepted",
      body: "x",
    });
    await result.done;
    assert.equal(result.ok, true);
    assert.deepEqual(seen, [null]);
    assert.equal(spans.length, 1);
    assert.equal(
      spans[0].ends,
      1,
      "the span started before inject() ended, once",
    );
  } finally {
    uninstall();
    await closeIdleConnections();
    await server.shutdown();
  }
});

Deno.test("semconv: null or a non-object in the registry slot is OpenTelemetry off, nothing thrown", async () => {
  const { base, seen, server } = serve();
  try {
    for (const value of [null, 5, "1.9.0", true]) {
      (globalThis as Record<symbol, unknown>)[REGISTRY] = value;
      assert.equal(otel(), undefined, String(value));
      const result = await trigger(`${base}/n`, {
        wait: "accepted",
        body: "x",
      });
      assert.equal(result.ok, true, String(value));
    }
    assert.deepEqual(seen, [null, null, null, null]);
  } finally {
    uninstall();
    await closeIdleConnections();
    await server.shutdown();
  }
});

Deno.test("semconv: url.full redacts only the sensitive values, the rest byte for byte", () => {
  const cases: Array<[string, string]> = [
    ["https://h/p?q=a%20b", "https://h/p?q=a%20b"],
    ["https://h/p?flag", "https://h/p?flag"],
    ["https://h/p?a=1&a=2&flag&b=", "https://h/p?a=1&a=2&flag&b="],
    [
      "https://h/p?q=a%20b&sig=abc&flag&sig=def&x=~%27*",
      "https://h/p?q=a%20b&sig=REDACTED&flag&sig=REDACTED&x=~%27*",
    ],
    [
      "https://h/p?AWSAccessKeyId=K&Signature=S&X-Goog-Signature=G&Expires=1",
      "https://h/p?AWSAccessKeyId=REDACTED&Signature=REDACTED&X-Goog-Signature=REDACTED&Expires=1",
    ],
    // A name that only starts like a sensitive one, and a value mentioning
    // one (a name ending in "sig" reads as a signature: redacted).
    ["https://h/p?signal=1&a=sig=2", "https://h/p?signal=1&a=sig=2"],
    ["https://h/p?mysig=1", "https://h/p?mysig=REDACTED"],
    // `auth` anywhere in a name but in `author…` (`authorization` is one).
    [
      "https://h/p?author=bob&coauthor=c&x-auth=a&auth_code=c&authKey=k&oauth=o&basicAuth=b&authorization=z",
      "https://h/p?author=bob&coauthor=c&x-auth=REDACTED&auth_code=REDACTED&authKey=REDACTED&oauth=REDACTED&basicAuth=REDACTED&authorization=REDACTED",
    ],
    // A fragment is never sent, but one written as parameters (an OAuth
    // implicit grant's `#access_token=`) is redacted as a query would be.
    ["https://h/p?sig=1#sig=2", "https://h/p?sig=REDACTED#sig=REDACTED"],
    [
      "https://h/cb#access_token=T&state=s&token_type=bearer",
      "https://h/cb#access_token=REDACTED&state=s&token_type=REDACTED",
    ],
    ["https://h/p?a=1#section-2", "https://h/p?a=1#section-2"],
    ["https://h/p#x?y=1&sig=2", "https://h/p#x?y=1&sig=REDACTED"],
    ["https://h/#/cb?code=c&n=1", "https://h/#/cb?code=REDACTED&n=1"],
    // In a query, a "?" belongs to the value it is in.
    ["https://h/p?a=b?sig=1&c=2", "https://h/p?a=b?sig=1&c=2"],
    // Keys, passwords and JWTs by their common names.
    [
      "https://h/p?private_key=K&privateKey=K&access_key=A&pass=P&pwd=W&jwt=J&id_jwt=J&primary=1&passage=2",
      "https://h/p?private_key=REDACTED&privateKey=REDACTED&access_key=REDACTED&pass=REDACTED&pwd=REDACTED&jwt=REDACTED&id_jwt=REDACTED&primary=1&passage=2",
    ],
    // A percent-encoded name is the name it decodes to.
    [
      "https://h/p?si%67=s&X%2DGoog%2DSignature=g",
      "https://h/p?si%67=REDACTED&X%2DGoog%2DSignature=REDACTED",
    ],
    // A value keeps what a quote would end: it is the URL's own.
    ["https://h/p?sig=a)b'c", "https://h/p?sig=REDACTED"],
    ["https://h/p", "https://h/p"],
  ];
  for (const [href, expected] of cases) assert.equal(urlFull(href), expected);
  // Linear in the URL's length: a query of 256 KiB of `a?` (no `=`), which
  // a pattern rescanning from every `?` takes tens of seconds over.
  const long = "https://h/p?" + "a?".repeat(131_072);
  const started = performance.now();
  assert.equal(urlFull(long), long);
  assert.equal(redact(long), long);
  assert.ok(performance.now() - started < 2_000, "linear, not quadratic");
  // In a message quoting a URL, the value ends where the quote does.
  assert.equal(
    redact("fetch failed (http://h/p?sig=secret): client error"),
    "fetch failed (http://h/p?sig=REDACTED): client error",
  );
  assert.equal(
    redact('"http://h/p?si%67=secret" refused'),
    '"http://h/p?si%67=REDACTED" refused',
  );
  assert.equal(
    redact("Server answered 503: POST http://h/cb?a=1#access_token=FRAG"),
    "Server answered 503: POST http://h/cb?a=1#access_token=REDACTED",
  );
  // A `)` inside the value is the URL's (its query keeps it unencoded).
  assert.equal(
    redact("GET http://h/p?sig=abc)TAIL1&x=1 (refused)"),
    "GET http://h/p?sig=REDACTED&x=1 (refused)",
  );
  // AWS SigV4 presigned URLs, and names that read as secrets.
  assert.equal(
    urlFull(
      "https://b.s3.test/k?X-Amz-Credential=C&X-Amz-Signature=S&X-Amz-Security-Token=T&X-Amz-Expires=60&token=t&api_key=k&page=2",
    ),
    "https://b.s3.test/k?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED&X-Amz-Expires=60&token=REDACTED&api_key=REDACTED&page=2",
  );
});

Deno.test("semconv: OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS replaces the known methods; without env permission, the default list", async () => {
  const defaults = [
    "CONNECT",
    "DELETE",
    "GET",
    "HEAD",
    "OPTIONS",
    "PATCH",
    "POST",
    "PUT",
    "QUERY",
    "TRACE",
  ];
  // Run here with -A and no variable set: the default list.
  if (Deno.env.get("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS") === undefined) {
    assert.deepEqual([...readKnownMethods()].sort(), defaults);
  }
  const module = new URL("../../src/trigger/_telemetry.ts", import.meta.url)
    .href;
  const code = `import { readKnownMethods } from ${JSON.stringify(module)};
console.log(JSON.stringify([...readKnownMethods()].sort()));`;
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(file, code);
  async function child(permission: string[]): Promise<string[]> {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", `--allow-read=${file}`, ...permission, file],
      env: { OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS: "GET, PROPFIND,POST" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    return JSON.parse(new TextDecoder().decode(output.stdout));
  }
  try {
    assert.deepEqual(
      await child(["--allow-env=OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS"]),
      ["GET", "POST", "PROPFIND"].sort(),
    );
    // No permission: no prompt, no throw, the default list.
    assert.deepEqual(await child([]), defaults);
    assert.deepEqual(
      await child(["--deny-env=OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS"]),
      defaults,
    );
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("semconv: the outbox's send span names a failed store by the error's code in error.type", async () => {
  const spans = install();
  try {
    const { traceEnqueue } = await import("../../src/durable/_trace.ts");
    const { OutboxError } = await import("../../src/durable/errors.ts");
    const trace = traceEnqueue("q", "job-1", "https://h/p?token=t");
    assert.ok(trace);
    await assert.rejects(
      trace.follow(Promise.reject(new OutboxError("DATABASE", "down"))),
      OutboxError,
    );
    const send = spans.find((s) => s.name === "send q");
    assert.ok(send?.ended);
    assert.equal(send.attributes["error.type"], "DATABASE");
    assert.equal(send.attributes["url.full"], "https://h/p?token=REDACTED");
  } finally {
    uninstall();
  }
});
