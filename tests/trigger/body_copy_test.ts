// A byte body is copied at the call: what the caller does with its array
// afterwards is never sent, on every path the bytes take (a reused
// connection, a new one, a wait for a place, a signature, the fetch
// transport), and copies made one after the other never share bytes.
import assert from "node:assert/strict";
import {
  closeIdleConnections,
  trigger,
  type TriggerResult,
} from "../../mod.ts";
import { denoRecorder } from "../_servers.ts";
import { snapshot } from "../../src/trigger/_snapshot.ts";

/** `length` bytes, each `fill`. */
const filled = (length: number, fill: number) =>
  new Uint8Array(length).fill(fill);

Deno.test("byte bodies: each trigger sends the bytes its call was given, the array reused and changed at once after each call", async () => {
  const target = denoRecorder({ delay: 5 });
  try {
    // One array, refilled after every call: 40 small bodies (slab copies),
    // 3 over the shared size, queued behind maxConnections: 2 (the bytes
    // are written only once a place frees up), on new and reused
    // connections alike.
    for (const length of [1_000, 3_000]) {
      const array = new Uint8Array(length);
      const results: Promise<TriggerResult>[] = [];
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
        assert.deepEqual(
          seen.get(`/${length}/${i + 1}`),
          filled(length, i + 1),
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

Deno.test("byte bodies: the fetch transport is given the bytes of the call, not the caller's array", async () => {
  const array = filled(100, 1);
  const given: Uint8Array[] = [];
  const pending = trigger("https://app.example/hook", {
    body: array,
    wait: "accepted",
    fetch: async (_url, init) => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      given.push(new Uint8Array(await new Response(init.body).arrayBuffer()));
      return new Response(null, { status: 202 });
    },
  });
  array.fill(0xee);
  const result = await pending;
  assert.equal(result.ok, true, result.error?.message);
  assert.deepEqual(given, [filled(100, 1)]);
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
});

Deno.test("snapshot(): small copies share a slab without overlapping; large ones and a full slab get new buffers", () => {
  const copies = Array.from(
    { length: 100 },
    (_, i) => snapshot(filled(i % 7 === 0 ? 2_049 : 300 + i, i)),
  );
  copies.forEach((copy, i) => {
    assert.deepEqual(
      copy,
      filled(i % 7 === 0 ? 2_049 : 300 + i, i),
      `copy ${i}`,
    );
    // Changed once checked: a copy sharing bytes with the next one would
    // fail the next check.
    copy.fill(0xff);
  });
  // Large bodies own their buffer; small ones are views of a shared one.
  assert.equal(snapshot(filled(2_049, 1)).byteLength, 2_049);
  assert.equal(snapshot(filled(2_049, 1)).buffer.byteLength, 2_049);
  const small = [snapshot(filled(10, 1)), snapshot(filled(10, 2))];
  assert.equal(small[0].buffer, small[1].buffer);
  assert.notEqual(small[0].byteOffset, small[1].byteOffset);
  // Empty bodies are fine anywhere.
  assert.equal(snapshot(new Uint8Array(0)).length, 0);
});
