import assert from "node:assert/strict";
import {
  createSecret,
  signPayload,
  trigger,
  verifyPayload,
} from "../../mod.ts";
import { deadPort, denoRecorder, rawCapture, type Seen } from "../_servers.ts";
import { within } from "../_wait.ts";
import { oneByteChanges, VECTOR } from "../_vector.ts";

Deno.test("signPayload() and verifyPayload() agree with the specification's example", async () => {
  assert.equal(await signPayload(VECTOR.secret, VECTOR), VECTOR.signature);
  assert.equal(await verifyPayload(VECTOR.secret, VECTOR), true);
  // Bytes as well as strings.
  assert.equal(
    await verifyPayload(VECTOR.secret, {
      ...VECTOR,
      body: new TextEncoder().encode(VECTOR.body),
    }),
    true,
  );
  // Several signatures and other versions in one header; several secrets.
  assert.equal(
    await verifyPayload([createSecret(), VECTOR.secret], {
      ...VECTOR,
      signature: `v2,abc v1,${"A".repeat(43)}= ${VECTOR.signature}`,
    }),
    true,
  );
});

Deno.test("one changed byte in the secret, id, timestamp, body or signature fails", async () => {
  let checked = 0;
  for (const body of oneByteChanges(VECTOR.body)) {
    assert.equal(
      await verifyPayload(VECTOR.secret, { ...VECTOR, body }),
      false,
    );
    checked++;
  }
  for (const id of oneByteChanges(VECTOR.id)) {
    assert.equal(await verifyPayload(VECTOR.secret, { ...VECTOR, id }), false);
    checked++;
  }
  for (const stamp of oneByteChanges(String(VECTOR.timestamp))) {
    const timestamp = Number(stamp);
    if (!Number.isSafeInteger(timestamp)) continue;
    assert.equal(
      await verifyPayload(VECTOR.secret, { ...VECTOR, timestamp }),
      false,
    );
    checked++;
  }
  // The base64 part of the secret and of the signature ("whsec_" and "v1,"
  // kept: changing those is a malformed secret or an ignored version).
  for (const secret of oneByteChanges(VECTOR.secret).slice(6)) {
    let ok: boolean;
    try {
      ok = await verifyPayload(secret, VECTOR);
    } catch (error) {
      assert.ok(error instanceof TypeError); // no longer base64
      ok = false;
    }
    assert.equal(ok, false, secret);
    checked++;
  }
  for (const signature of oneByteChanges(VECTOR.signature).slice(3)) {
    assert.equal(
      await verifyPayload(VECTOR.secret, { ...VECTOR, signature }),
      false,
      signature,
    );
    checked++;
  }
  assert.ok(checked > 120, `${checked} changes checked`);
  // The same through signPayload: every change gives another signature.
  for (const body of oneByteChanges(VECTOR.body)) {
    assert.notEqual(
      await signPayload(VECTOR.secret, { ...VECTOR, body }),
      VECTOR.signature,
    );
  }
});

Deno.test("malformed secrets are refused without showing them", async () => {
  const bad = [
    "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", // no prefix
    "whsec_not base64!",
    "whsec_c2hvcnQ=", // 5 bytes
    "whsec_" + btoa("x".repeat(65)),
  ];
  for (const secret of bad) {
    await assert.rejects(
      signPayload(secret, VECTOR),
      (error: Error) => {
        assert.ok(error instanceof TypeError);
        assert.ok(!error.message.includes(secret.slice(6, 20)), error.message);
        return true;
      },
    );
    assert.throws(
      () => trigger("http://127.0.0.1:1/", { sign: { secret } }),
      (error: Error) => {
        assert.ok(error instanceof TypeError);
        assert.match(error.message, /^Cannot trigger request: sign\.secret /);
        assert.ok(!error.message.includes(secret.slice(6, 20)), error.message);
        return true;
      },
    );
  }
  await assert.rejects(
    signPayload(VECTOR.secret, { ...VECTOR, id: "a.b" }),
    TypeError,
  );
  assert.equal(
    await verifyPayload(VECTOR.secret, { ...VECTOR, signature: "v1,%%%" }),
    false,
  );
});

Deno.test("trigger() refuses bad sign options synchronously and connects nothing", async () => {
  const target = rawCapture();
  try {
    const url = target.origin + "/";
    const secret = createSecret();
    const bad: unknown[] = [
      null,
      "whsec_x",
      {},
      { secret: 42 },
      { secret, id: "" },
      { secret, id: "a.b" },
      { secret, id: "a b" },
      { secret, id: "x".repeat(257) },
      { secret, id: 7 },
      { secret, timestamp: -1 },
      { secret, timestamp: 1.5 },
      { secret, timestamp: "1614265330" },
      // 16 digits: over the 15 verifyTrigger() takes (it was signed, and
      // refused by every receiver).
      { secret, timestamp: 1e15 },
      { secret, timestamp: Number.MAX_SAFE_INTEGER },
    ];
    for (const sign of bad) {
      assert.throws(
        // deno-lint-ignore no-explicit-any
        () => trigger(url, { sign: sign as any }),
        TypeError,
        JSON.stringify(sign),
      );
    }
    assert.throws(
      () =>
        trigger(url, {
          sign: { secret },
          headers: { "Webhook-Signature": "v1,x" },
        }),
      /set by the sign option/,
    );
    // Without sign, such headers are the caller's own business.
    await within(
      (await trigger(url, {
        headers: { "webhook-id": "mine" },
        wait: "accepted",
      })).done,
      "trigger()'s done",
    );
    await target.requests.take();
    assert.equal(target.connections(), 1);
  } finally {
    await target.close();
  }
});

Deno.test("trigger() signs on both transports, with fresh ids unless given", async (t) => {
  const secret = createSecret();
  const recorder = denoRecorder();
  const form = new FormData();
  form.append("file", new Blob(["hello"]), "a.txt");
  const bodies: Array<[string, () => Record<string, unknown>]> = [
    ["json", () => ({ json: { a: 1, é: "ü" } })],
    ["none (GET)", () => ({})],
    ["FormData (read before signing)", () => ({ body: form })],
    [
      "stream",
      () => ({ body: new Blob([new Uint8Array(100_000).fill(7)]).stream() }),
    ],
  ];
  try {
    for (const transport of ["socket", "fetch"] as const) {
      await t.step(transport, async () => {
        const ids = new Set<string>();
        for (const [name, options] of bodies) {
          const before = Math.floor(Date.now() / 1000);
          const result = await trigger(recorder.origin + "/s", {
            ...options(),
            transport,
            sign: { secret },
            wait: "accepted",
          });
          assert.equal(result.ok, true, `${name}: ${result.error?.message}`);
          const seen = await recorder.seen.take();
          const id = seen.headers["webhook-id"];
          const timestamp = Number(seen.headers["webhook-timestamp"]);
          assert.match(id, /^msg_[0-9a-f]{32}$/);
          assert.ok(!ids.has(id));
          ids.add(id);
          assert.ok(timestamp >= before && timestamp <= before + 2);
          assert.equal(
            await verifyPayload(secret, {
              id,
              timestamp,
              body: seen.body,
              signature: seen.headers["webhook-signature"],
            }),
            true,
            name,
          );
        }
        // A fixed id and timestamp, as an outbox resends them.
        const result = await trigger(recorder.origin + "/s", {
          body: VECTOR.body,
          transport,
          sign: {
            secret: VECTOR.secret,
            id: VECTOR.id,
            timestamp: VECTOR.timestamp,
          },
          wait: "accepted",
        });
        assert.equal(result.ok, true);
        const seen = await recorder.seen.take();
        assert.equal(seen.headers["webhook-id"], VECTOR.id);
        assert.equal(seen.headers["webhook-timestamp"], "1614265330");
        assert.equal(seen.headers["webhook-signature"], VECTOR.signature);
      });
    }
  } finally {
    await recorder.close();
  }
});

Deno.test("a signed trigger whose body cannot be read resolves BODY, never rejects", async () => {
  const stream = new ReadableStream({
    pull(controller) {
      controller.error(new Error("disk gone"));
    },
  });
  const result = await trigger(`http://127.0.0.1:${deadPort()}/`, {
    body: stream,
    sign: { secret: createSecret() },
  });
  assert.equal(result.ok, false);
  assert.equal(result.error?.code, "BODY");
  // An aborted signed trigger is ABORTED as any other.
  const aborted = await trigger(`http://127.0.0.1:${deadPort()}/`, {
    json: 1,
    sign: { secret: createSecret() },
    signal: AbortSignal.abort(),
  });
  assert.equal(aborted.error?.code, "ABORTED");
});

Deno.test("signPayload() takes a timestamp of up to 15 digits, what verifyTrigger() takes, and refuses a longer one naming it", async () => {
  const secret = createSecret();
  const message = { id: "msg_1", timestamp: 999_999_999_999_999, body: "" };
  const signature = await signPayload(secret, message);
  assert.equal(
    await verifyPayload(secret, { ...message, signature }),
    true,
  );
  await assert.rejects(
    async () => await signPayload(secret, { ...message, timestamp: 1e15 }),
    { name: "TypeError", message: /timestamp .* received 1000000000000000/ },
  );
});

Deno.test("signPayload() and verifyPayload() refuse a body that is neither a string nor a Uint8Array, naming it (a Uint16Array was signed cut to bytes)", async () => {
  const secret = VECTOR.secret;
  for (
    const body of [
      new Uint16Array([0x141, 2]),
      new ArrayBuffer(2),
      null,
      42,
      undefined,
    ]
  ) {
    const message = { id: "msg_1", timestamp: 1, body } as never;
    await assert.rejects(
      () => signPayload(secret, message),
      (error: unknown) =>
        error instanceof TypeError && /body/.test(error.message),
    );
    await assert.rejects(
      () =>
        verifyPayload(secret, {
          ...(message as object),
          signature: "v1,x",
        } as never),
      (error: unknown) =>
        error instanceof TypeError && /body/.test(error.message),
    );
  }
});

Deno.test("a signed trigger that waits for a connection is signed when it is sent, not when it was called", async () => {
  const secret = createSecret();
  const arrivals: Array<{ timestamp: number; at: number; seen: Seen }> = [];
  let release!: () => void;
  const held = new Promise<void>((resolve) => release = resolve);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const body = new Uint8Array(await request.arrayBuffer());
      if (new URL(request.url).pathname === "/slow") {
        await held;
        return new Response(null, { status: 202 });
      }
      arrivals.push({
        timestamp: Number(request.headers.get("webhook-timestamp")),
        at: Date.now() / 1000,
        seen: {
          method: request.method,
          url: request.url,
          headers: Object.fromEntries(request.headers),
          body,
        },
      });
      return new Response(null, { status: 202 });
    },
  );
  const origin = `http://127.0.0.1:${server.addr.port}`;
  try {
    // The one connection the origin may have is held 3 s: the signed
    // trigger waits its turn that long.
    const slow = await trigger(`${origin}/slow`, { maxConnections: 1 });
    assert.equal(slow.ok, true);
    setTimeout(release, 3_000);
    const called = Date.now() / 1000;
    const result = await trigger(`${origin}/s`, {
      json: { a: 1 },
      sign: { secret },
      maxConnections: 1,
      wait: "accepted",
    });
    assert.equal(result.ok, true, result.error?.message);
    await slow.done;
    assert.equal(arrivals.length, 1);
    const [{ timestamp, at, seen }] = arrivals;
    assert.ok(at - called >= 2.5, "the trigger waited for its turn");
    // Whole seconds: sent within a second of arriving, not 3 s before.
    assert.ok(
      at - timestamp <= 1.5,
      `timestamp ${timestamp}, arrived at ${at}`,
    );
    assert.equal(
      await verifyPayload(secret, {
        id: seen.headers["webhook-id"],
        timestamp,
        body: seen.body,
        signature: seen.headers["webhook-signature"],
      }),
      true,
    );
    // One of each header, not the first signing's beside the second's.
    assert.doesNotMatch(seen.headers["webhook-signature"], /,.*,/);
  } finally {
    release();
    await server.shutdown();
  }
});
