// What outbox.trigger() does with a request's head: Standard Webhooks
// headers of the caller's go out as given when nothing signs (they were
// dropped) and are refused where the outbox signs; a URL and headers over
// 64 KiB are refused at the call (one such row failed every other caller's
// group commit). On the embedded engine.
import assert from "node:assert/strict";
import { openOutbox, type OutboxEvent } from "../../src/durable/mod.ts";
import { createSecret, verifyPayload } from "../../mod.ts";
import { until } from "../_wait.ts";

async function embedded() {
  const dir = await Deno.makeTempDir({ prefix: "outbox_headers_" });
  return { dir, cleanup: () => Deno.remove(dir, { recursive: true }) };
}

Deno.test("outbox without sign: a caller's webhook-timestamp and webhook-signature go out as given, with the trigger's webhook-id", async () => {
  const seen: Headers[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      await request.arrayBuffer();
      seen.push(request.headers);
      return new Response(null, { status: 204 });
    },
  );
  const { dir, cleanup } = await embedded();
  const events: OutboxEvent[] = [];
  const outbox = await openOutbox({
    dir,
    onEvent: (event) => events.push(event),
  });
  try {
    const { id } = await outbox.trigger(
      `http://127.0.0.1:${server.addr.port}/hook`,
      {
        json: { a: 1 },
        headers: {
          "webhook-id": "msg_own",
          "webhook-timestamp": "1700000000",
          "webhook-signature": "v1,c2lnbmVkIGJ5IHRoZSBjYWxsZXI=",
        },
      },
    );
    assert.equal(id, "msg_own");
    outbox.start({ pollInterval: 50 });
    await until(
      () => events.some((event) => event.type === "delivered"),
      "the delivery",
    );
    assert.equal(seen.length, 1);
    assert.equal(seen[0].get("webhook-id"), "msg_own");
    assert.equal(seen[0].get("webhook-timestamp"), "1700000000");
    assert.equal(
      seen[0].get("webhook-signature"),
      "v1,c2lnbmVkIGJ5IHRoZSBjYWxsZXI=",
    );
  } finally {
    await outbox.stop();
    await server.shutdown();
    await cleanup();
  }
});

Deno.test("outbox.trigger() refuses what it would drop or cannot store whole: signing headers under the outbox's sign, sign.timestamp, a head over 64 KiB; the others in the same group commit are stored", async () => {
  const { dir, cleanup } = await embedded();
  const outbox = await openOutbox({
    dir,
    sign: { secret: createSecret() },
    onEvent() {},
  });
  try {
    for (
      const name of ["webhook-id", "Webhook-Timestamp", "webhook-signature"]
    ) {
      assert.throws(
        () =>
          outbox.trigger("http://127.0.0.1:9/x", { headers: { [name]: "1" } }),
        {
          name: "TypeError",
          message: new RegExp(`header "${name}" is set by the outbox's sign`),
        },
      );
    }
    assert.throws(
      () =>
        outbox.trigger("http://127.0.0.1:9/x", {
          sign: { secret: createSecret(), timestamp: 1_700_000_000 },
        }),
      { name: "TypeError", message: /sign\.timestamp cannot be given/ },
    );
    const big = "x".repeat(70_000);
    const innocent = Array.from(
      { length: 5 },
      (_, i) => outbox.trigger(`http://127.0.0.1:9/${i}`),
    );
    assert.throws(
      () =>
        outbox.trigger("http://127.0.0.1:9/x", { headers: { "x-big": big } }),
      { name: "RangeError", message: /URL and headers take 700\d\d bytes/ },
    );
    assert.throws(
      () => outbox.trigger(`http://127.0.0.1:9/x?q=${big}`),
      { name: "RangeError", message: /at most 65536 are stored/ },
    );
    // Under the bound: stored, alongside the others.
    innocent.push(
      outbox.trigger("http://127.0.0.1:9/y", {
        headers: { "x-big": big.slice(0, 60_000) },
      }),
    );
    const stored = await Promise.all(innocent);
    assert.equal(new Set(stored.map((s) => s.id)).size, 6);
    assert.equal((await outbox.stats()).queued, 6);
  } finally {
    await outbox.stop();
    await cleanup();
  }
});

Deno.test("outbox without sign: a webhook-id header no signer could sign is refused at the call (it was stored, then dead at once under a dispatcher with sign)", async () => {
  const { dir, cleanup } = await embedded();
  const outbox = await openOutbox({ dir, onEvent() {} });
  try {
    for (const id of ["order.42", "ordér-43", "a b", "", "x".repeat(257)]) {
      assert.throws(
        () =>
          outbox.trigger("http://127.0.0.1:9/hook", {
            headers: { "Webhook-Id": id },
          }),
        (error) =>
          error instanceof TypeError &&
          error.message.includes(
            `header "Webhook-Id" must be 1 to 256 visible ASCII characters other than "."`,
          ),
        JSON.stringify(id),
      );
    }
    assert.equal((await outbox.stats()).queued, 0);
    // The longest and the widest a signer takes are stored.
    const widest = "!~" + "x".repeat(254);
    assert.deepEqual(
      await outbox.trigger("http://127.0.0.1:9/hook", {
        headers: { "webhook-id": widest },
      }),
      { id: widest },
    );
  } finally {
    await outbox.stop();
    await cleanup();
  }
});

Deno.test("outbox.trigger() stores the sign option as it was at the call: one options object reused for the next tenant signs each with its own secret", async () => {
  const seen: { path: string; headers: Headers; body: string }[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      seen.push({
        path: new URL(request.url).pathname,
        headers: request.headers,
        body: await request.text(),
      });
      return new Response(null, { status: 204 });
    },
  );
  const { dir, cleanup } = await embedded();
  const events: OutboxEvent[] = [];
  const outbox = await openOutbox({
    dir,
    onEvent: (event) => events.push(event),
  });
  const secrets = { a: createSecret(), b: createSecret() };
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const options = { json: { tenant: "a" }, sign: { secret: secrets.a } };
    const stored = [outbox.trigger(`${base}/a`, options)];
    options.json = { tenant: "b" };
    options.sign.secret = secrets.b;
    stored.push(outbox.trigger(`${base}/b`, options));
    await Promise.all(stored);
    outbox.start({ pollInterval: 50 });
    await until(
      () => events.filter((event) => event.type === "delivered").length === 2,
      "both deliveries",
    );
    for (const { path, headers, body } of seen) {
      const tenant = path.slice(1) as "a" | "b";
      assert.equal(body, JSON.stringify({ tenant }), path);
      const check = {
        id: headers.get("webhook-id")!,
        timestamp: Number(headers.get("webhook-timestamp")),
        body,
        signature: headers.get("webhook-signature")!,
      };
      assert.equal(
        await verifyPayload(secrets[tenant], check),
        true,
        `${path}: signed with its own secret`,
      );
    }
  } finally {
    await outbox.stop();
    await server.shutdown();
    await cleanup();
  }
});

Deno.test("outbox.trigger() reads a sign option as trigger() does: a secret behind a getter is stored", async () => {
  const { dir, cleanup } = await embedded();
  const outbox = await openOutbox({ dir, onEvent() {} });
  try {
    const secret = createSecret();
    class Signer {
      get secret() {
        return secret;
      }
    }
    const { id } = await outbox.trigger("http://127.0.0.1:9/x", {
      sign: new Signer() as { secret: string },
    });
    assert.equal(typeof id, "string");
  } finally {
    await outbox.stop();
    await cleanup();
  }
});
