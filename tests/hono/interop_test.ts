// verifyTrigger() against the Standard Webhooks reference libraries: what
// standardwebhooks@1.1.1 and svix@2.5.0 accept, it accepts; what they
// refuse, it refuses. Signature headers as real senders write them.
import assert from "node:assert/strict";
import { Hono } from "hono";
import { Webhook } from "npm:standardwebhooks@1.1.1";
import { Webhook as SvixWebhook } from "npm:svix@2.5.0";
import { verifyTrigger, type VerifyTriggerEnv } from "../../src/hono/mod.ts";
import { createSecret, signPayload, trigger } from "../../mod.ts";

const secret = createSecret();
const standard = new Webhook(secret);
const svix = new SvixWebhook(secret);
const body = JSON.stringify({ job: "report", month: "2024-05" });
let counter = 0;

/** A well-formed v1 entry that matches nothing. */
const wrongEntry = () =>
  "v1," + btoa(
    String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))),
  );

/** Signature headers as senders write them; `good` is a matching entry. */
const variants: Array<[string, (good: string) => string | string[]]> = [
  ["one entry", (good) => good],
  ["a malformed v1 entry first", (good) => `v1,bad ${good}`],
  ["garbage first", (good) => `garbage ${good}`],
  ["an empty version first", (good) => `,abc ${good}`],
  ["an unknown version first", (good) => `v2,xyz ${good}`],
  ["a trailing comma", (good) => `${good},`],
  ["double spaces", (good) => `  ${wrongEntry()}  ${good}  `],
  [
    "more than 8 entries",
    (good) => [...Array.from({ length: 12 }, wrongEntry), good].join(" "),
  ],
  // Entries the references skip do not count towards the entry cap.
  [
    "256 unknown-version entries first",
    (good) => `${"v2,x ".repeat(256)}${good}`,
  ],
  [
    "300 malformed v1 entries first",
    (good) => `${"v1,bad ".repeat(300)}${good}`,
  ],
  // Well-formed entries count for nothing either: no cap pushes the good one
  // out (one used to, after 256).
  [
    "300 well-formed wrong v1 entries first",
    (good) => [...Array.from({ length: 300 }, wrongEntry), good].join(" "),
  ],
  ["two header lines", (good) => [wrongEntry(), good]],
  ["two header lines, the good one first", (good) => [good, "v1,junk"]],
];

/** `v1,<base64>` spelled with the last character's unused low bits set:
 * the same 32 bytes once decoded, another text. */
function lowBitsSet(entry: string): string {
  const alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const at = entry.length - 2; // before the "=" of 32 bytes' base64
  const index = alphabet.indexOf(entry[at]);
  // 32 bytes leave 2 unused bits in the last character: set one.
  return entry.slice(0, at) + alphabet[index ^ 1] + entry.slice(at + 1);
}

/** The headers (webhook-* or svix-*) of a message signed by the reference. */
function headersFor(
  prefix: "webhook" | "svix",
  signature: (good: string) => string | string[],
): { headers: Headers; id: string } {
  const id = `msg_interop_${++counter}`;
  const now = new Date();
  const good = standard.sign(id, now, body);
  const headers = new Headers({
    [`${prefix}-id`]: id,
    [`${prefix}-timestamp`]: String(Math.floor(now.getTime() / 1000)),
  });
  const value = signature(good);
  for (const line of Array.isArray(value) ? value : [value]) {
    headers.append(`${prefix}-signature`, line); // fetch joins lines with ", "
  }
  return { headers, id };
}

function accepts(verify: () => unknown): boolean {
  try {
    verify();
    return true;
  } catch {
    return false;
  }
}

function app(ran: string[]): Hono<VerifyTriggerEnv> {
  const app = new Hono<VerifyTriggerEnv>();
  app.post("/hook", verifyTrigger({ secret }), (c) => {
    ran.push(c.var.trigger.id);
    return c.text("ran");
  });
  return app;
}

Deno.test("verifyTrigger() accepts what standardwebhooks@1.1.1 and svix@2.5.0 accept", async (t) => {
  const ran: string[] = [];
  const hono = app(ran);
  for (const prefix of ["webhook", "svix"] as const) {
    for (const [name, signature] of variants) {
      await t.step(`${prefix}-* headers: ${name}`, async () => {
        const { headers, id } = headersFor(prefix, signature);
        const plain = Object.fromEntries(headers);
        // The references, given the headers as fetch delivers them.
        if (prefix === "webhook") {
          assert.ok(accepts(() => standard.verify(body, plain)), "reference");
        }
        assert.ok(accepts(() => svix.verify(body, plain)), "svix");
        const response = await hono.request("/hook", {
          method: "POST",
          body,
          headers,
        });
        assert.equal(response.status, 200, await response.clone().text());
        assert.equal(await response.text(), "ran");
        assert.equal(ran.at(-1), id);
      });
    }
  }
});

Deno.test("verifyTrigger() refuses what the references refuse", async () => {
  const ran: string[] = [];
  const hono = app(ran);
  const refused: Array<[string, (good: string) => string | string[]]> = [
    ["only wrong entries", () => `${wrongEntry()} ${wrongEntry()}`],
    ["only malformed entries", () => "v1,bad garbage ,abc v1"],
    ["the good one under another version", (good) => good.replace("v1", "v2")],
    ["the good one cut short", (good) => good.slice(0, -2)],
    // The references compare the text: one spelling of the 32 bytes only.
    ["the good one unpadded", (good) => good.replace(/=$/, "")],
    ["the good one with its unused low bits set", (good) => lowBitsSet(good)],
  ];
  for (const [name, signature] of refused) {
    const { headers } = headersFor("webhook", signature);
    const plain = Object.fromEntries(headers);
    assert.ok(!accepts(() => standard.verify(body, plain)), name);
    assert.ok(!accepts(() => svix.verify(body, plain)), name);
    const response = await hono.request("/hook", {
      method: "POST",
      body,
      headers,
    });
    assert.equal(response.status, 401, name);
    await response.body?.cancel();
  }
  assert.deepEqual(ran, []);
});

Deno.test("verifyTrigger() bounds the work of a long signature header: one HMAC per secret", async () => {
  const secrets = [secret, createSecret()];
  const hono = new Hono();
  hono.post("/hook", verifyTrigger({ secret: secrets }), (c) => c.text("ran"));
  const id = "msg_long_header";
  const timestamp = Math.floor(Date.now() / 1000);
  const good = await signPayload(secret, { id, timestamp, body });
  const entries = Array.from({ length: 200 }, wrongEntry);
  const subtle = crypto.subtle;
  const realSign = subtle.sign;
  let macs = 0;
  // Counts the HMACs computed; the real one runs.
  subtle.sign = function (...args: Parameters<SubtleCrypto["sign"]>) {
    macs++;
    return realSign.apply(subtle, args);
  } as SubtleCrypto["sign"];
  try {
    const response = await hono.request("/hook", {
      method: "POST",
      body,
      headers: {
        "webhook-id": id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": [...entries, good].join(" "),
      },
    });
    assert.equal(response.status, 200);
    await response.body?.cancel();
  } finally {
    subtle.sign = realSign;
  }
  // Not 201 entries x 2 secrets: the HMAC once per secret, then compares.
  assert.equal(macs, 2);
});

Deno.test("a body that is not UTF-8: trigger() and verifyTrigger() agree, the references cannot", async () => {
  // The references decode the payload as UTF-8 before signing it again, so
  // bytes that are not UTF-8 come out changed: documented in docs/receiving.md.
  const bytes = new Uint8Array([0xff, 0xfe, 0x00, 0x80, 0x41]);
  const ran: number[] = [];
  const hono = new Hono();
  hono.post("/hook", verifyTrigger({ secret }), async (c) => {
    ran.push((await c.req.arrayBuffer()).byteLength);
    return c.text("ran");
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      seen = request.headers;
      return hono.fetch(request);
    },
  );
  let seen: Headers | undefined;
  try {
    const result = await trigger(`http://127.0.0.1:${server.addr.port}/hook`, {
      body: bytes,
      sign: { secret },
      wait: "accepted",
    });
    assert.equal(result.status, 200);
  } finally {
    await server.shutdown();
  }
  assert.deepEqual(ran, [bytes.length]);
  const plain = Object.fromEntries(seen!);
  const decoded = new TextDecoder().decode(bytes);
  assert.ok(!accepts(() => standard.verify(decoded, plain)));
  assert.ok(!accepts(() => svix.verify(decoded, plain)));
});

Deno.test("verifyTrigger() takes a timestamp at the tolerance's edge as the references do: in whole seconds of its clock", async () => {
  const ran: string[] = [];
  const hono = app(ran);
  const realNow = Date.now;
  const second = Math.floor(realNow() / 1000);
  try {
    for (const ms of [0, 999]) {
      // The clock fixed inside one second, at its start and at its end.
      Date.now = () => second * 1000 + ms;
      for (const offset of [-301, -300, 300, 301]) {
        const id = `msg_edge_${++counter}`;
        const timestamp = second - offset;
        const signature = standard.sign(id, new Date(timestamp * 1000), body);
        const headers = {
          "webhook-id": id,
          "webhook-timestamp": String(timestamp),
          "webhook-signature": signature,
        };
        const reference = accepts(() => standard.verify(body, headers));
        assert.equal(
          accepts(() => svix.verify(body, headers)),
          reference,
          `svix, ${offset} s old at +${ms} ms`,
        );
        assert.equal(reference, Math.abs(offset) <= 300);
        const response = await hono.request("/hook", {
          method: "POST",
          body,
          headers,
        });
        assert.equal(
          response.status,
          reference ? 200 : 401,
          `${offset} s old at +${ms} ms: ${await response.text()}`,
        );
      }
    }
  } finally {
    Date.now = realNow;
  }
});
