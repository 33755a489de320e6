// A byte body is the caller's until copied, within the call: into the
// request's bytes by the socket transport, or into a buffer of its own by
// whatever waits first. What the caller does with its array after the call
// is never sent, on the paths the bytes take here (a reused connection, a
// new one, a wait for a place, a signature, a fetch of the caller's own, a
// Node Buffer, a text's bytes passed back in), and a caller's fetch sees
// only its trigger's bytes.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  closeIdleConnections,
  trigger,
  type TriggerOptions,
  type TriggerResult,
} from "../../mod.ts";
import { denoRecorder, rawKeepAlive } from "../_servers.ts";
import { until } from "../_wait.ts";
import { connectionCounts } from "../../src/transport/_pool.ts";

/** `length` bytes, each `fill`. */
const filled = (length: number, fill: number) =>
  new Uint8Array(length).fill(fill);

/** Asserts `actual` holds `length` bytes, each `fill`, naming the first
 * that differs (node:assert's diff of two large arrays takes minutes). */
function assertFilled(
  actual: Uint8Array | undefined,
  length: number,
  fill: number,
  what: string,
) {
  assert.ok(actual !== undefined, `${what}: not received`);
  assert.equal(actual.length, length, `${what}: length`);
  const at = actual.findIndex((byte) => byte !== fill);
  assert.equal(at, -1, `${what}: byte ${at} is ${actual[at]}, not ${fill}`);
}

Deno.test("byte bodies: each trigger sends the bytes its call was given, the array reused and changed at once after each call", async () => {
  const target = denoRecorder({ delay: 5 });
  try {
    // One array, refilled after every call: 40 bodies of 1,000 bytes and 3
    // each of 3,000 and 70,000, queued behind maxConnections: 2 (the bytes are written only
    // once a place frees up), on new and reused connections alike.
    for (const length of [1_000, 3_000, 70_000]) {
      const array = new Uint8Array(length);
      const results: Promise<TriggerResult>[] = [];
      // 70,000 bytes: over 64 KiB, the body goes as a write of its own.
      const count = length === 1_000 ? 40 : 3;
      for (let i = 0; i < count; i++) {
        array.fill(i + 1);
        results.push(trigger(`${target.origin}/${length}/${i + 1}`, {
          body: array,
          maxConnections: 2,
          wait: "accepted",
        }));
        array.fill(0xee); // after the call: never sent
      }
      for (const result of await Promise.all(results)) {
        assert.equal(result.ok, true, result.error?.message);
      }
      const seen = new Map<string, Uint8Array>();
      for (let i = 0; i < count; i++) {
        const request = await target.seen.take();
        seen.set(request.url, request.body);
      }
      for (let i = 0; i < count; i++) {
        assertFilled(
          seen.get(`/${length}/${i + 1}`),
          length,
          i + 1,
          `body ${i + 1} of ${length} bytes`,
        );
      }
    }

    // An ArrayBuffer and a view into the middle of an array, then a signed body
    // (its bytes are read after an await), each changed after the call.
    const buffer = new ArrayBuffer(8);
    new Uint8Array(buffer).fill(7);
    const first = trigger(`${target.origin}/buffer`, {
      body: buffer,
      wait: "accepted",
    });
    new Uint8Array(buffer).fill(0xee);
    const wide = new Uint8Array(16).fill(9);
    const second = trigger(`${target.origin}/view`, {
      body: wide.subarray(4, 12),
      wait: "accepted",
    });
    wide.fill(0xee);
    const signed = filled(64, 5);
    const third = trigger(`${target.origin}/signed`, {
      body: signed,
      sign: { secret: "whsec_" + btoa("a".repeat(32)), id: "msg_1" },
      wait: "accepted",
    });
    signed.fill(0xee);
    for (const result of await Promise.all([first, second, third])) {
      assert.equal(result.ok, true, result.error?.message);
    }
    const bodies = new Map<string, Uint8Array>();
    for (let i = 0; i < 3; i++) {
      const request = await target.seen.take();
      bodies.set(request.url, request.body);
    }
    assert.deepEqual(bodies.get("/buffer"), filled(8, 7));
    assert.deepEqual(bodies.get("/view"), filled(8, 9));
    assert.deepEqual(bodies.get("/signed"), filled(64, 5));
  } finally {
    await closeIdleConnections();
    await target.close();
  }
});

Deno.test("byte bodies: a fetch of the caller's own is given the bytes of the call in a buffer of their own, which it may keep or transfer", async () => {
  const fetchUrl = "https://app.example/hook";
  const given: Uint8Array[] = [];
  const buffers: ArrayBuffer[] = [];
  const fetch = async (_url: string, init: RequestInit) => {
    const body = init.body as Uint8Array;
    // What a caller's fetch can reach: the body and all of its buffer.
    buffers.push(body.buffer as ArrayBuffer);
    given.push(new Uint8Array(body.buffer.slice(0)));
    await new Promise((resolve) => setTimeout(resolve, 10));
    // A fetch may transfer what it was given (as a worker postMessage does).
    structuredClone(body.buffer, { transfer: [body.buffer as ArrayBuffer] });
    return new Response(null, { status: 202 });
  };
  const secret = new TextEncoder().encode("sk_live_secret");
  const first = trigger(fetchUrl, { body: secret, wait: "accepted", fetch });
  const array = filled(100, 1);
  const second = trigger(fetchUrl, { body: array, wait: "accepted", fetch });
  array.fill(0xee); // after the call: never sent
  for (const result of await Promise.all([first, second])) {
    assert.equal(result.ok, true, result.error?.message);
  }
  // Each buffer holds its trigger's bytes and nothing else (no other
  // trigger's body, no spare room).
  assert.deepEqual(given, [secret, filled(100, 1)]);
  assert.equal(buffers[0].byteLength, 0, "transferred (detached) by then");

  // Transferred buffers take nothing from later triggers, on either
  // transport.
  const target = denoRecorder();
  try {
    const again = filled(50, 3);
    const viaFetch = await trigger(fetchUrl, {
      body: again,
      wait: "accepted",
      fetch,
    });
    assert.equal(viaFetch.ok, true, viaFetch.error?.message);
    const viaSocket = await trigger(`${target.origin}/after`, {
      body: again,
      wait: "accepted",
    });
    assert.equal(viaSocket.ok, true, viaSocket.error?.message);
    assert.deepEqual(given.at(-1), filled(50, 3));
    assert.deepEqual((await target.seen.take()).body, filled(50, 3));
  } finally {
    await closeIdleConnections();
    await target.close();
  }
});

Deno.test("byte bodies: a Node Buffer (whose slice() copies nothing) is copied too, on the paths that wait and for a caller's fetch", async () => {
  const target = denoRecorder({ delay: 5 });
  const seenByFetch: Uint8Array[] = [];
  const fetch = async (_url: string, init: RequestInit) => {
    const body = init.body as Uint8Array;
    // All a caller's fetch can reach: its body's whole buffer.
    seenByFetch.push(new Uint8Array(body.buffer.slice(0)));
    await new Promise((resolve) => setTimeout(resolve, 5));
    return new Response(null, { status: 202 });
  };
  try {
    // Buffer.from() of a short string takes a slice of Node's shared pool:
    // other data sits in the same ArrayBuffer.
    const other = Buffer.from("SECRET-OF-ANOTHER");
    const buffer = Buffer.from("hello-hello-hello");
    const results = [
      // Queued behind maxConnections: 1 (the first takes the place).
      trigger(`${target.origin}/q1`, { body: buffer, maxConnections: 1 }),
      trigger(`${target.origin}/q2`, { body: buffer, maxConnections: 1 }),
      trigger(`${target.origin}/signed`, {
        body: buffer,
        sign: { secret: "whsec_" + btoa("a".repeat(32)) },
      }),
      trigger("https://app.example/hook", { body: buffer, fetch }),
    ];
    buffer.fill(0x41); // after the calls: never sent
    other.fill(0x42);
    for (const result of await Promise.all(results)) {
      assert.equal(result.ok, true, result.error?.message);
      await result.done;
    }
    const bodies = new Map<string, string>();
    for (let i = 0; i < 3; i++) {
      const seen = await target.seen.take();
      bodies.set(seen.url, new TextDecoder().decode(seen.body));
    }
    for (const path of ["/q1", "/q2", "/signed"]) {
      assert.equal(bodies.get(path), "hello-hello-hello", path);
    }
    assert.deepEqual(
      seenByFetch.map((bytes) => new TextDecoder().decode(bytes)),
      ["hello-hello-hello"],
      "a buffer holding this trigger's bytes and nothing else",
    );
  } finally {
    await closeIdleConnections();
    await target.close();
  }
});

Deno.test("byte bodies: a text body's bytes a caller's fetch passes on to trigger() are sent as they are, each time, never written into", async () => {
  const target = denoRecorder();
  try {
    const relayed: Promise<unknown>[] = [];
    const fetch = (_url: string, init: RequestInit) => {
      const body = init.body as Uint8Array;
      // Passed on twice at once, then changed: each relay sends the text.
      for (const path of ["/a", "/b"]) {
        relayed.push(
          trigger(`${target.origin}${path}`, {
            body,
            method: "PUT",
            wait: "accepted",
          }),
        );
      }
      body.fill(0x41);
      return Promise.resolve(new Response(null, { status: 202 }));
    };
    const result = await trigger("https://app.example/hook", {
      json: { text: "relayed" },
      wait: "accepted",
      fetch,
    });
    assert.equal(result.ok, true, result.error?.message);
    for (const relay of await Promise.all(relayed)) {
      const { ok, status } = relay as { ok: boolean; status?: number };
      assert.equal(ok, true, `relay answered ${status}`);
    }
    const bodies = new Map<string, string>();
    for (let i = 0; i < 2; i++) {
      const seen = await target.seen.take();
      assert.equal(seen.method, "PUT");
      bodies.set(seen.url, new TextDecoder().decode(seen.body));
    }
    assert.equal(bodies.get("/a"), '{"text":"relayed"}');
    assert.equal(bodies.get("/b"), '{"text":"relayed"}');
  } finally {
    await closeIdleConnections();
    await target.close();
  }
});

Deno.test("byte bodies: a detached buffer is refused at the call, naming the body", () => {
  const array = new Uint8Array(10);
  structuredClone(array.buffer, { transfer: [array.buffer] });
  assert.throws(
    () => trigger("http://127.0.0.1:1/", { body: array }),
    (error: Error) =>
      error instanceof TypeError &&
      /body's ArrayBuffer is detached/.test(error.message),
  );
  const buffer = new ArrayBuffer(8);
  structuredClone(buffer, { transfer: [buffer] });
  assert.throws(
    () => trigger("http://127.0.0.1:1/", { body: buffer }),
    /body's ArrayBuffer is detached/,
  );
  // A typed array out of its shrunk buffer reads as empty: refused too, not
  // sent as an empty body.
  const resizable = new ArrayBuffer(32, { maxByteLength: 64 });
  const wide = new Float64Array(resizable, 8, 2);
  resizable.resize(8);
  assert.throws(
    () =>
      trigger("http://127.0.0.1:1/", { body: wide as unknown as Uint8Array }),
    /shrunk below the view/,
  );
});

Deno.test("byte bodies: a buffer the caller's own code detaches during the call (a getter) fails the trigger with BODY, on each path", async () => {
  const target = denoRecorder();
  try {
    // A reused connection first: the socket path copies at once.
    await (await trigger(target.origin, { wait: "accepted" })).done;
    await target.seen.take();
    const paths: Array<[string, Partial<TriggerOptions>]> = [
      ["socket", {}],
      ["signed", { sign: { secret: "whsec_" + btoa("a".repeat(32)) } }],
      ["a caller's fetch", {
        fetch: () => Promise.resolve(new Response(null, { status: 202 })),
      }],
    ];
    for (const [path, extra] of paths) {
      const body = new Uint8Array(10);
      const result = await trigger(target.origin, {
        body,
        wait: "accepted",
        ...extra,
        get headers() {
          if (body.buffer.byteLength > 0) {
            structuredClone(body.buffer, { transfer: [body.buffer] });
          }
          return { "x-a": "1" };
        },
      });
      assert.equal(result.ok, false, path);
      assert.equal(result.error?.code, "BODY", `${path}: ${result.error}`);
      assert.match(result.error!.message, /detached during the call/);
    }
    assert.equal(target.seen.size, 0, "nothing sent");
  } finally {
    await closeIdleConnections();
    await target.close();
  }
});

Deno.test("byte bodies: a trigger that fails with BODY before writing gives its place back, closing the connection it took", async () => {
  const target = rawKeepAlive(() =>
    "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
  );
  try {
    // An idle connection taken for the request, or a place to open one.
    for (const reused of [true, false]) {
      await closeIdleConnections();
      await until(
        () => target.openConnections() === 0,
        "the client closed its idle connections",
      );
      if (reused) {
        await (await trigger(target.url, {
          wait: "accepted",
          maxConnections: 1,
        })).done;
        await target.requests.take();
      }
      const accepted = target.connections();
      const body = new Uint8Array(10);
      const failed = await trigger(target.url, {
        body,
        wait: "accepted",
        maxConnections: 1,
        get headers() {
          if (body.buffer.byteLength > 0) {
            structuredClone(body.buffer, { transfer: [body.buffer] });
          }
          return { "x-a": "1" };
        },
      });
      assert.equal(failed.error?.code, "BODY", `${reused}: ${failed.error}`);
      await failed.done;
      assert.deepEqual(
        connectionCounts(),
        { open: 0, waiting: 0 },
        `${reused}: nothing counted open`,
      );
      // The connection it took is closed, not left open and unused.
      await until(
        () => target.openConnections() === 0,
        `${reused}: the taken connection closed`,
        { timeout: 10_000 },
      );
      assert.equal(target.connections(), accepted, "none opened for it");
      // With the only place given back, the next trigger goes out.
      const next = await trigger(target.url, {
        wait: "accepted",
        maxConnections: 1,
      });
      assert.equal(next.ok, true, `${reused}: ${next.error}`);
      await next.done;
      await target.requests.take();
    }
    assert.equal(target.requests.size, 0, "nothing else sent");
  } finally {
    await closeIdleConnections();
    await target.close();
  }
});

Deno.test("byte bodies: a resizable ArrayBuffer shrunk during the call fails with BODY, never sent shorter; a subclass's own getters are not used", async () => {
  const target = denoRecorder();
  try {
    await (await trigger(target.origin, { wait: "accepted" })).done;
    await target.seen.take();
    for (const path of ["socket", "a caller's fetch"]) {
      const buffer = new ArrayBuffer(3, { maxByteLength: 8 });
      new Uint8Array(buffer).set([1, 2, 3]);
      const result = await trigger(target.origin, {
        body: buffer,
        wait: "accepted",
        ...(path === "socket" ? {} : {
          fetch: () => Promise.resolve(new Response(null, { status: 202 })),
        }),
        get headers() {
          buffer.resize(0); // the caller's own code, during the call
          return { "x-a": "1" };
        },
      });
      assert.equal(result.ok, false, path);
      assert.equal(result.error?.code, "BODY", `${path}: ${result.error}`);
    }
    assert.equal(target.seen.size, 0, "nothing sent");

    // A view at offset 4 whose class says 0: its real bytes are sent.
    class Lying extends Uint8Array {
      override get byteOffset() {
        return 0;
      }
    }
    const lying = new Lying(new Uint8Array([9, 9, 9, 9, 1, 2]).buffer, 4, 2);
    const told = await trigger(`${target.origin}/lying`, {
      body: lying,
      wait: "accepted",
    });
    assert.equal(told.ok, true, told.error?.message);
    assert.deepEqual((await target.seen.take()).body, new Uint8Array([1, 2]));
  } finally {
    await closeIdleConnections();
    await target.close();
  }
});
