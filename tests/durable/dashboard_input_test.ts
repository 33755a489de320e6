// dashboard()'s path and page size: a value it could never serve is refused
// at the call. A path the URL parser percent-encodes ("/opérations", "/a<b>")
// or the router decodes ("/a%20b") was accepted and every request got 404; a
// pageSize of 1e21 passed Number.isInteger() and every /dead page was a 500.
import assert from "node:assert/strict";
import { Hono } from "npm:hono@^4.13.19";
import { mount } from "npm:hono@^4.13.19/mount";
import { dashboard } from "../../src/durable/dashboard/mod.ts";
import { freshOptions, openOutbox } from "./_seed.ts";

const TOKEN = "dashboard-input-token-0123456789";
const auth = { authorization: `Bearer ${TOKEN}` };

Deno.test('dashboard() throws a TypeError naming a path no request could reach: non-ASCII, percent-encoded, <, ", dot segments, empty', async () => {
  const { cleanup, ...options } = await freshOptions("embedded");
  const outbox = await openOutbox(options);
  try {
    for (
      const path of [
        "/opérations",
        "/a<b>",
        "/a%20b",
        '/a"b',
        "/a`b",
        "/a{b}",
        "/a|b",
        "/a^b",
        "/a[b]",
        "/a/./b",
        "/a/..",
        "/.",
        "",
        "/a//b",
        "/a/*",
        "/a b",
        "outbox",
      ]
    ) {
      assert.throws(
        () => dashboard(outbox, { token: TOKEN, path }),
        (error: unknown) =>
          error instanceof TypeError &&
          error.message.startsWith(
            'Cannot create dashboard: path must start with "/"',
          ) &&
          error.message.endsWith(`received ${JSON.stringify(path)}`),
        `path ${JSON.stringify(path)}`,
      );
    }
  } finally {
    await outbox.stop();
    await cleanup();
  }
});

Deno.test("dashboard() serves every path it accepts, with or without a trailing slash, mounted with the path kept or stripped", async () => {
  const { cleanup, ...options } = await freshOptions("embedded");
  const outbox = await openOutbox(options);
  try {
    for (
      const [path, mounted] of [
        ["/ops", "/ops"],
        ["/ops/outbox/", "/ops/outbox"],
        ["/", ""],
        ["/a-b_c.d~e!$&'()+,;=@f/..g", "/a-b_c.d~e!$&'()+,;=@f/..g"],
      ]
    ) {
      const dash = dashboard(outbox, { token: TOKEN, path });
      assert.equal(dash.path, mounted, path);
      const kept = new Hono();
      kept.all(`${dash.path}/*`, (c) => dash.fetch(c.req.raw));
      const stripped = new Hono();
      stripped.all(`${dash.path}/*`, mount(dash.fetch));
      const url = `http://127.0.0.1${mounted}/dead`;
      for (
        const [how, answer] of [
          ["kept", () => kept.request(url, { headers: auth })],
          ["stripped", () => stripped.request(url, { headers: auth })],
          ["alone", () => dash.fetch(new Request(url, { headers: auth }))],
        ] as const
      ) {
        const response = await answer();
        assert.equal(response.status, 200, `${path} (${how})`);
        await response.body?.cancel();
      }
    }
  } finally {
    await outbox.stop();
    await cleanup();
  }
});

Deno.test("dashboard() throws a RangeError for a pageSize or bodyPreview not a safe whole number above 0 (1e21 included); Number.MAX_SAFE_INTEGER serves /dead", async () => {
  const { cleanup, ...options } = await freshOptions("embedded");
  const outbox = await openOutbox(options);
  try {
    for (const name of ["pageSize", "bodyPreview"] as const) {
      for (const value of [1e21, 2 ** 53, 0, 1.5, Number.NaN]) {
        assert.throws(
          () => dashboard(outbox, { token: TOKEN, [name]: value }),
          (error: unknown) =>
            error instanceof RangeError &&
            error.message.startsWith(
              `Cannot create dashboard: ${name} must be a whole number`,
            ) &&
            error.message.endsWith(`received ${value}`),
          `${name} ${value}`,
        );
      }
    }
    const dash = dashboard(outbox, {
      token: TOKEN,
      pageSize: Number.MAX_SAFE_INTEGER,
      bodyPreview: Number.MAX_SAFE_INTEGER,
    });
    for (const path of ["/dead", "/dead?offset=9007199254740991"]) {
      const response = await dash.fetch(
        new Request(`http://127.0.0.1${path}`, { headers: auth }),
      );
      assert.equal(response.status, 200, path);
      await response.body?.cancel();
    }
  } finally {
    await outbox.stop();
    await cleanup();
  }
});
