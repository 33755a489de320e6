// The dashboard in a real browser: Debian's chromium driven by
// puppeteer-core, against a seeded outbox on both engines (embedded PGlite
// and PostgreSQL at TRIGGER_TEST_DATABASE_URL). With DASHBOARD_SCREENSHOTS=1
// the embedded run also rewrites the screenshots in docs/dashboard-*.png.
import assert from "node:assert/strict";
import puppeteer, { type Browser, type Page } from "npm:puppeteer-core@25.16.0";
import { Hono } from "npm:hono@^4.13.19";
import { mount } from "npm:hono@^4.13.19/mount";
import { dashboard } from "../../src/durable/dashboard/mod.ts";
import type { Outbox } from "../../src/durable/mod.ts";
import { skipUnless } from "../_env.ts";
import {
  DATABASE_URL,
  freshOptions,
  openOutbox,
  seed,
  startTarget,
  XSS,
} from "./_seed.ts";
import { until, within } from "../_wait.ts";
import { csrfKey, csrfToken } from "../../src/durable/dashboard/_auth.ts";

const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
const TOKEN = "dashboard-test-token-0123456789";
const SHOTS = new URL("../../docs/", import.meta.url);
/** `DASHBOARD_SCREENSHOTS=1` rewrites docs/dashboard-*.png (embedded run). */
const UPDATE_SHOTS = Deno.env.get("DASHBOARD_SCREENSHOTS") === "1";

let chromiumFound = true;
try {
  await Deno.stat(CHROMIUM);
} catch {
  chromiumFound = false;
}
/** Ignored without chromium (a failure under CI=true; .ci/run installs it). */
const noBrowser = skipUnless(
  chromiumFound,
  `no chromium at ${CHROMIUM} for the dashboard's browser tests (apt-get install -y chromium, or set CHROMIUM_PATH)`,
);
if (DATABASE_URL === undefined) {
  console.log(
    "dashboard_test.ts: TRIGGER_TEST_DATABASE_URL is not set, skipping the PostgreSQL run",
  );
}

async function launch(): Promise<{ browser: Browser; close(): Promise<void> }> {
  const profile = await Deno.makeTempDir({ prefix: "chromium_profile_" });
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
    timeout: 30_000,
  });
  return {
    browser,
    async close() {
      await browser.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}

function serve(outbox: Outbox) {
  const app = new Hono();
  app.get("/", (c) => c.text("the user's own app"));
  const dash = dashboard(outbox, { token: TOKEN, path: "/outbox" });
  app.all(`${dash.path}/*`, (c) => dash.fetch(c.req.raw));
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    app.fetch,
  );
  return { url: `http://127.0.0.1:${server.addr.port}`, server };
}

async function text(page: Page, selector: string): Promise<string> {
  return await page.$eval(selector, (e) => e.textContent ?? "");
}

/** Clicks a submit button and waits for the page it leads to. */
async function submit(page: Page, selector: string): Promise<number> {
  const [response] = await Promise.all([
    page.waitForNavigation({ timeout: 20_000 }),
    page.click(selector),
  ]);
  return response?.status() ?? 0;
}

for (const engine of ["embedded", "postgres"] as const) {
  Deno.test({
    name:
      `dashboard (${engine}) in chromium: counts, XSS stays text, redrive delivers, discard, retry now, CSRF refused`,
    ignore: noBrowser ||
      (engine === "postgres" && DATABASE_URL === undefined),
    // puppeteer-core keeps its own pipes and timers to the browser.
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const target = startTarget();
      const { cleanup, ...options } = await freshOptions(engine);
      const outbox = await openOutbox(options);
      const { url, server } = serve(outbox);
      const chromium = await launch();
      try {
        const seeded = await seed(outbox, target, 3);
        const page = await chromium.browser.newPage();
        page.setDefaultTimeout(20_000);
        // Everything below works with the page's JavaScript off.
        await page.setJavaScriptEnabled(false);
        await page.setViewport({ width: 1180, height: 860 });
        const dialogs: string[] = [];
        page.on("dialog", async (dialog) => {
          dialogs.push(dialog.message());
          await dialog.dismiss();
        });
        // The browser's own login prompt, with the token as the password.
        await page.authenticate({ username: "oncall", password: TOKEN });

        // Overview: the seeded counts.
        const overview = await page.goto(`${url}/outbox`);
        assert.equal(overview?.status(), 200);
        // The style sheet applies (its CSP nonce matches, it parses).
        assert.equal(
          await page.$eval("body", (b) =>
            (globalThis as unknown as {
              getComputedStyle(e: unknown): { fontSize: string };
            }).getComputedStyle(b).fontSize),
          "14px",
        );
        const counts: Record<string, string> = {};
        for (
          const name of ["queued", "active", "retrying", "delivered", "dead"]
        ) {
          counts[name] = await text(page, `[data-count="${name}"] b`);
        }
        assert.deepEqual(counts, {
          queued: "0",
          active: "0",
          retrying: "1",
          delivered: "3",
          dead: "1",
        });
        const origin = await page.$$eval(
          "#origins tbody tr",
          (rows) => rows.map((r) => r.textContent?.replace(/\s+/g, " ").trim()),
        );
        assert.equal(origin.length, 1);
        assert.match(origin[0]!, new RegExp(`^${target.url} 0 0 1 3 1 `));
        assert.equal(
          await page.$$eval("svg.chart rect.bar", (r) => r.length),
          60,
        );
        assert.match(
          await page.$eval(
            "svg.chart",
            (e) => e.getAttribute("aria-label") ?? "",
          ),
          /3 delivered, 2 failed attempts/,
        );
        if (engine === "embedded" && UPDATE_SHOTS) {
          await page.screenshot({
            path: new URL("dashboard-overview.png", SHOTS).pathname,
            fullPage: true,
          });
        }

        // Dead letters: the XSS body is text, nothing ran.
        await page.goto(`${url}/outbox/dead`);
        const row = `tr[data-id="${seeded.deadId}"]`;
        assert.equal(await text(page, `${row} pre`), XSS);
        assert.equal(await page.$$eval("main script", (s) => s.length), 0);
        assert.match(await text(page, row), /HTTP_STATUS 404/);
        const html = await page.content();
        assert.ok(!html.includes("whsec_"), "a signing secret was rendered");
        if (engine === "embedded" && UPDATE_SHOTS) {
          await page.screenshot({
            path: new URL("dashboard-dead.png", SHOTS).pathname,
            fullPage: true,
          });
        }

        // A delivered job's page: the Authorization header is redacted.
        await page.goto(`${url}/outbox/jobs/${seeded.deliveredIds[0]}`);
        const jobHtml = await page.content();
        assert.ok(
          !jobHtml.includes("do-not-show-me"),
          "a header secret was rendered",
        );
        assert.match(
          await text(page, "#headers"),
          /authorization\s*\[redacted\]/,
        );
        assert.match(await text(page, "#state"), /completed/);

        // The form without its CSRF token is refused.
        await page.goto(`${url}/outbox/dead`);
        await page.$eval('input[name="_csrf"]', (e) => e.remove());
        assert.equal(
          await submit(page, `${row} button.primary[name="one"]`),
          403,
        );
        assert.match(
          await page.$eval("body", (b) => b.textContent ?? ""),
          /CSRF/,
        );
        assert.equal((await outbox.stats()).dead, 1);

        // Redrive by clicking: the dead letter is delivered.
        target.heal();
        await page.goto(`${url}/outbox/dead`);
        assert.equal(
          await submit(page, `${row} button.primary[name="one"]`),
          200,
        );
        assert.equal(await text(page, ".flash"), "Redriven: 1");
        await until(
          async () => {
            const stats = await outbox.stats();
            return stats.dead === 0 && stats.active === 0 &&
              (target.hits.get("/gone") ?? 0) >= 2;
          },
          "the redriven job's delivery",
          { interval: 100 },
        );
        await page.goto(`${url}/outbox/jobs/${seeded.deadId}`);
        assert.match(await text(page, "#state"), /completed/);
        const states = await page.$$eval(
          "#history tbody tr td:nth-child(3)",
          (cells) => cells.map((c) => c.textContent?.trim()),
        );
        // The dead letter copy is gone: pg-boss moved it back as a new job.
        assert.deepEqual(states, ["failed", "completed"]);
        if (engine === "embedded" && UPDATE_SHOTS) {
          await page.screenshot({
            path: new URL("dashboard-job.png", SHOTS).pathname,
            fullPage: true,
          });
        }

        // Discard one by its button, then two selected with checkboxes.
        const nope: string[] = [];
        for (let i = 0; i < 3; i++) {
          nope.push((await outbox.trigger(`${target.url}/nope`)).id);
        }
        await until(
          async () => (await outbox.stats()).dead === 3,
          "the 410s to be dead-lettered",
          { interval: 100 },
        );
        await page.goto(`${url}/outbox/dead`);
        assert.equal(
          await submit(page, `tr[data-id="${nope[0]}"] button.danger`),
          200,
        );
        assert.equal(await text(page, ".flash"), "Discarded: 1");
        await page.click(`tr[data-id="${nope[1]}"] input[type="checkbox"]`);
        await page.click(`tr[data-id="${nope[2]}"] input[type="checkbox"]`);
        assert.equal(
          await submit(page, ".actions button.danger"),
          200,
        );
        assert.equal(await text(page, ".flash"), "Discarded: 2");
        assert.equal((await outbox.stats()).dead, 0);

        // Retry now, from the overview.
        const before = target.hits.get("/flaky") ?? 0;
        await page.goto(`${url}/outbox`);
        assert.equal(
          await submit(page, `#retrying button[value="${seeded.retryingId}"]`),
          200,
        );
        assert.equal(await text(page, ".flash"), "Retried now: 1");
        await until(
          () => (target.hits.get("/flaky") ?? 0) > before,
          "the retried job's next attempt",
          { interval: 100 },
        );

        assert.deepEqual(dialogs, [], "a script ran in the page");
      } finally {
        await chromium.close();
        await outbox.stop({ timeout: 1000 });
        await server.shutdown();
        await target.close();
        await cleanup();
      }
    },
  });
}

Deno.test("dashboard: refuses requests without credentials or CSRF token, and creation without credentials", async () => {
  const { cleanup, ...options } = await freshOptions("embedded");
  const outbox = await openOutbox(options);
  const { url, server } = serve(outbox);
  try {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const none = await fetch(`${url}/outbox`);
    assert.equal(none.status, 401);
    assert.match(none.headers.get("www-authenticate") ?? "", /^Basic /);
    await none.body?.cancel();
    const wrong = await fetch(`${url}/outbox/dead`, {
      headers: { authorization: "Bearer not-the-token-0123456789" },
    });
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    const basicWrong = await fetch(`${url}/outbox`, {
      headers: { authorization: `Basic ${btoa(`x:${TOKEN}x`)}` },
    });
    assert.equal(basicWrong.status, 401);
    await basicWrong.body?.cancel();

    // A dead letter, so the dead letters page has its form and token.
    const target = startTarget();
    try {
      await outbox.trigger(`${target.url}/nope`);
      outbox.start({ pollInterval: 100 });
      await until(
        async () => (await outbox.stats()).dead === 1,
        "a dead letter",
        { interval: 100 },
      );
    } finally {
      await target.close();
    }
    const page = await (await fetch(`${url}/outbox/dead`, { headers: auth }))
      .text();
    // A flash names only what the dashboard did, not an inherited key.
    const inherited = await (await fetch(
      `${url}/outbox/dead?done=constructor&n=1`,
      { headers: auth },
    )).text();
    assert.doesNotMatch(inherited, /native code|function Object/);
    const csrf = page.match(/name="_csrf" value="([^"]+)"/)?.[1];
    assert.ok(csrf);
    const post = (body: string, headers: Record<string, string> = {}) =>
      fetch(`${url}/outbox/dead/redrive`, {
        method: "POST",
        headers: {
          ...auth,
          "content-type": "application/x-www-form-urlencoded",
          ...headers,
        },
        body,
        redirect: "manual",
      });
    for (
      const [body, headers, status] of [
        ["all=1", {}, 403],
        ["all=1&_csrf=forged", {}, 403],
        [`all=1&_csrf=${csrf}`, { "sec-fetch-site": "cross-site" }, 403],
        [`all=1&_csrf=${csrf}`, { "sec-fetch-site": "same-site" }, 403],
        [`all=1&_csrf=${csrf}`, { "content-type": "text/plain" }, 403],
      ] as const
    ) {
      const response = await post(body, headers);
      assert.equal(response.status, status, body);
      await response.body?.cancel();
    }
    const noAuth = await fetch(`${url}/outbox/dead/redrive`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "all=1",
    });
    assert.equal(noAuth.status, 401);
    await noAuth.body?.cancel();
    assert.equal(
      (await outbox.stats()).dead,
      1,
      "a refused POST changed something",
    );
    const ok = await post(`_csrf=${encodeURIComponent(csrf)}`);
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.get("location"), "/outbox/dead?done=redriven&n=0");
    await ok.body?.cancel();

    assert.throws(() => dashboard(outbox), /give a token or basic credentials/);
    assert.throws(() => dashboard(outbox, { token: "short" }), /at least 16/);
    assert.throws(
      () => dashboard(outbox, { basic: { username: "a", password: "short" } }),
      /at least 12/,
    );
    assert.throws(() => dashboard({} as Outbox, { token: TOKEN }), TypeError);
    const local = dashboard(outbox, { localDevelopment: true });
    const get = (path: string) =>
      local.fetch(new Request(`http://127.0.0.1${path}`));
    assert.equal(local.path, "");
    assert.equal((await get("/")).status, 200);
    assert.throws(
      () => dashboard(outbox, { token: TOKEN, path: "outbox" }),
      /path must start with "\/"/,
    );
    assert.throws(
      () => dashboard(outbox, { token: TOKEN, path: "/a/*" }),
      TypeError,
    );

    // A closed outbox: an error page, not a crash.
    await outbox.stop();
    const closed = await get("/dead");
    assert.equal(closed.status, 500);
    assert.match(await closed.text(), /The outbox could not be read/);
  } finally {
    await outbox.stop();
    await server.shutdown();
    await cleanup();
  }
});

Deno.test("dashboard: a chunked POST body over 256 KiB gets 413 before it ends (a real socket); a chunked form under it still works", async () => {
  const { cleanup, ...options } = await freshOptions("embedded");
  const outbox = await openOutbox(options);
  const { url, server } = serve(outbox);
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
  });
  const encoder = new TextEncoder();
  let answered = false;
  // Chunks of 16 KiB, at most 1 MiB in all, and never the last chunk: a
  // server that reads the whole body never answers.
  const writing = (async () => {
    await conn.write(encoder.encode(
      "POST /outbox/dead/redrive HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
        `Authorization: Bearer ${TOKEN}\r\n` +
        "Content-Type: application/x-www-form-urlencoded\r\n" +
        "Transfer-Encoding: chunked\r\n\r\n",
    ));
    const data = `id=${"a".repeat(16 * 1024 - 3)}`;
    const chunk = encoder.encode(
      `${data.length.toString(16)}\r\n${data}\r\n`,
    );
    for (let i = 0; i < 64 && !answered; i++) {
      await conn.write(chunk);
    }
  })().catch(() => {}); // the server may close the connection under it
  try {
    const head = await within(
      (async () => {
        const bytes: number[] = [];
        const buffer = new Uint8Array(4096);
        for (;;) {
          const text = new TextDecoder().decode(new Uint8Array(bytes));
          const end = text.indexOf("\r\n\r\n");
          if (end >= 0) {
            const length = Number(/content-length: (\d+)/i.exec(text)?.[1]);
            if (bytes.length >= end + 4 + length) return text;
          }
          const n = await conn.read(buffer);
          if (n === null) return text;
          bytes.push(...buffer.subarray(0, n));
        }
      })(),
      "an answer to a chunked body that never ends (the dashboard buffered it without bound)",
      20_000,
    );
    answered = true;
    assert.match(head, /^HTTP\/1\.1 413 /, head);
    // The receiving side's answer, with the dashboard's headers.
    assert.match(head, /Request body exceeds 262144 bytes/);
    assert.match(head, /\r\ncontent-security-policy: default-src 'none'/i);
    assert.match(head, /\r\ncache-control: no-store/i);
  } finally {
    answered = true;
    conn.close();
    await writing;
  }

  try {
    // The same route still takes a chunked form within the bound.
    const token = await csrfToken(await csrfKey({ token: TOKEN }));
    const parts = [`_csrf=${encodeURIComponent(token)}`, "&id=", "missing"];
    const small = await fetch(`${url}/outbox/dead/redrive`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${TOKEN}`,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: ReadableStream.from(parts.map((p) => encoder.encode(p))),
      redirect: "manual",
    });
    assert.equal(small.status, 303);
    assert.equal(
      small.headers.get("location"),
      "/outbox/dead?done=redriven&n=0",
    );
    await small.body?.cancel();
  } finally {
    await outbox.stop();
    await server.shutdown();
    await cleanup();
  }
});

/** Reads one whole answer (head and Content-Length body) from `conn`. */
async function answerOf(conn: Deno.Conn): Promise<string> {
  const bytes: number[] = [];
  const buffer = new Uint8Array(4096);
  for (;;) {
    const text = new TextDecoder().decode(new Uint8Array(bytes));
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      const length = Number(/content-length: (\d+)/i.exec(text)?.[1]);
      if (bytes.length >= end + 4 + length) return text;
    }
    const n = await conn.read(buffer);
    if (n === null) return text;
    bytes.push(...buffer.subarray(0, n));
  }
}

Deno.test("dashboard: a form that stops arriving gets 408 after 10 s; forms being read hold at most 16 × 256 KiB together (then 503 + Retry-After); a form's copy never reads request.signal", async () => {
  const { cleanup, ...options } = await freshOptions("embedded");
  const outbox = await openOutbox(options);
  const { server } = serve(outbox);
  const encoder = new TextEncoder();
  const conns: Deno.Conn[] = [];
  try {
    // Sixteen forms declared at the largest size, each stalled before its
    // last byte: together they hold the whole budget (taken by the bytes
    // that arrive: a declared length alone holds nothing).
    const post = async (declared: number, sent = 3) => {
      const conn = await Deno.connect({
        hostname: "127.0.0.1",
        port: server.addr.port,
      });
      conns.push(conn);
      await conn.write(encoder.encode(
        "POST /outbox/dead/redrive HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
          `Authorization: Bearer ${TOKEN}\r\n` +
          "Content-Type: application/x-www-form-urlencoded\r\n" +
          `Content-Length: ${declared}\r\n\r\nid=` + "a".repeat(sent - 3),
      ));
      return conn;
    };
    const stalled = [];
    for (let i = 0; i < 16; i++) {
      stalled.push(await post(256 * 1024, 256 * 1024 - 1));
    }
    // Until the server reads them all, a whole form still fits (403 for
    // its missing CSRF token); then it is refused. Probed, not slept on: a
    // loaded machine may take longer than any fixed delay.
    let refused = "";
    await until(
      async () => {
        refused = await within(
          answerOf(await post(1024, 1024)),
          "an answer to a form over the shared budget",
          20_000,
        );
        assert.match(refused, /^HTTP\/1\.1 (503|403) /, refused);
        return refused.startsWith("HTTP/1.1 503 ");
      },
      "a form refused with 503 once 16 stalled forms hold the budget",
      { timeout: 20_000, interval: 50 },
    );
    assert.match(refused, /retry-after: 5/i);
    assert.match(refused, /Too many request bodies in memory; retry later/);
    const late = await within(
      answerOf(stalled[0]),
      "an answer to a form that stopped arriving (no read timeout)",
      25_000,
    );
    assert.match(late, /^HTTP\/1\.1 408 /, late);
    assert.match(late, /Request body not received within 10000 ms/);
    // Every stalled form gave its share of the budget back: a form now is
    // read (403 for its missing CSRF token), not refused with 503.
    for (const conn of stalled.slice(1)) {
      await within(answerOf(conn), "the other stalled forms' 408", 25_000);
    }
    const after = await post(3);
    await after.write(encoder.encode("abc"));
    const answer = await within(
      answerOf(after),
      "a form after the 408s",
      20_000,
    );
    assert.match(answer, /^HTTP\/1\.1 403 /, answer);
  } finally {
    for (const conn of conns) conn.close();
  }

  try {
    // Read in-process: nothing reads the request's signal (reading it makes
    // Deno 2.9 warn about its legacy abort, which the dashboard does not use).
    let touched = false;
    class Watched extends Request {
      override get signal(): AbortSignal {
        touched = true;
        return super.signal;
      }
    }
    const dash = dashboard(outbox, { token: TOKEN, path: "/outbox" });
    const token = await csrfToken(await csrfKey({ token: TOKEN }));
    const response = await dash.fetch(
      new Watched("http://dash.test/outbox/dead/redrive", {
        method: "POST",
        headers: {
          authorization: `Bearer ${TOKEN}`,
          "content-type": "application/x-www-form-urlencoded",
        },
        body: `_csrf=${encodeURIComponent(token)}&id=missing`,
      }),
    );
    assert.equal(response.status, 303);
    await response.body?.cancel();
    assert.equal(touched, false, "request.signal was read");
  } finally {
    await outbox.stop();
    await server.shutdown();
    await cleanup();
  }
});

Deno.test("dashboard: mounted under a sub-path (app.all with the path kept, hono/mount with it stripped) or served alone, links and redirects follow the path", async () => {
  const { cleanup, ...options } = await freshOptions("embedded");
  const outbox = await openOutbox(options);
  const target = startTarget();
  const auth = { authorization: `Bearer ${TOKEN}` };
  try {
    await outbox.trigger(`${target.url}/nope`);
    outbox.start({ pollInterval: 100 });
    await until(
      async () => (await outbox.stats()).dead === 1,
      "a dead letter",
      { interval: 100 },
    );

    const dash = dashboard(outbox, { token: TOKEN, path: "/ops/outbox/" });
    assert.equal(dash.path, "/ops/outbox");
    const kept = new Hono();
    kept.get("/", (c) => c.text("own"));
    kept.all(`${dash.path}/*`, (c) => dash.fetch(c.req.raw));
    const stripped = new Hono();
    stripped.get("/", (c) => c.text("own"));
    stripped.all(`${dash.path}/*`, mount(dash.fetch));
    const alone = dashboard(outbox, { token: TOKEN });

    for (
      const [name, app, base] of [
        ["app.all (path kept)", kept, "/ops/outbox"],
        ["hono/mount (path stripped)", stripped, "/ops/outbox"],
        ["served alone", {
          request: (p: string, i?: RequestInit) =>
            alone.fetch(new Request(`http://127.0.0.1${p}`, i)),
        }, ""],
      ] as const
    ) {
      const overview = await app.request(`${base}` || "/", { headers: auth });
      assert.equal(overview.status, 200, name);
      const html = await overview.text();
      assert.match(html, /By target origin/, name);
      assert.ok(
        html.includes(`href="${base}/dead"`),
        `${name}: links under ${base || "/"}`,
      );
      assert.ok(
        !/href="\/(?!ops\/outbox)[a-z]/.test(base ? html : ""),
        `${name}: a link outside ${base}`,
      );
      // "/ops/outbox/" goes to "/ops/outbox"; hono/mount hands both on as
      // "/", so there the overview answers at once (its links are absolute);
      // served alone, "/" is the overview.
      const slash = await app.request(`${base}/`, { headers: auth });
      if (app === stripped || base === "") {
        assert.equal(slash.status, 200, name);
        await slash.body?.cancel();
      } else {
        assert.equal(slash.status, 308, name);
        assert.equal(
          new URL(slash.headers.get("location")!, "http://x").pathname,
          base || "/",
          name,
        );
      }
      const deadPage = await app.request(`${base}/dead`, { headers: auth });
      assert.equal(deadPage.status, 200, name);
      const page = await deadPage.text();
      assert.ok(
        page.includes(`action="${base}/dead/redrive"`),
        `${name}: form action`,
      );
      const csrf = page.match(/name="_csrf" value="([^"]+)"/)?.[1];
      assert.ok(csrf, name);
      // An empty selection: a POST that changes nothing, answered with a
      // redirect under the path.
      const posted = await app.request(`${base}/dead/redrive`, {
        method: "POST",
        headers: {
          ...auth,
          "content-type": "application/x-www-form-urlencoded",
        },
        body: `_csrf=${encodeURIComponent(csrf)}`,
      });
      assert.equal(posted.status, 303, name);
      assert.equal(
        posted.headers.get("location"),
        `${base}/dead?done=redriven&n=0`,
        name,
      );
    }
    assert.equal(await (await kept.request("/")).text(), "own");
    assert.equal(await (await stripped.request("/")).text(), "own");
    assert.equal((await kept.request("/ops/outbox")).status, 401);
    assert.equal(
      (await kept.request("/ops/outbox/jobs/x", { headers: auth })).status,
      404,
    );
    assert.equal((await outbox.stats()).dead, 1, "nothing was redriven");
  } finally {
    await outbox.stop({ timeout: 1000 });
    await target.close();
    await cleanup();
  }
});

Deno.test("dashboard: a path with leading slashes or backslashes redirects to a path on the same host, never to //another.host", async () => {
  const { cleanup, ...options } = await freshOptions("embedded");
  const outbox = await openOutbox(options);
  const auth = { authorization: `Bearer ${TOKEN}` };
  try {
    const alone = dashboard(outbox, { token: TOKEN });
    for (
      const [path, expected] of [
        ["//evil.example/", "/evil.example"],
        ["//evil.example/x/", "/evil.example/x"],
        ["/\\evil.example/", "/evil.example"],
        ["/\\/\\evil.example/?q=1", "/evil.example?q=1"],
        // Percent-encoded: Hono's c.req.path decodes %09 to a tab and %5C
        // to "\", and a browser drops a tab from a Location, reading
        // "/\t/evil.example" as "//evil.example" (found by review: it did).
        ["/%09/evil.example/", "/evil.example"],
        ["/%09%5Cevil.example/", "/evil.example"],
        ["/%2F%2Fevil.example/", "/evil.example"],
        ["/%5c%0D%0a/evil.example/x/?q=1", "/evil.example/x?q=1"],
        ["/%09/", "/"],
        ["/dead/", "/dead"],
        ["/dead%09/", "/dead%09"],
      ]
    ) {
      // A URL parser reads "\" as "/" in an http: URL; both are checked.
      const response = await alone.fetch(
        new Request(`http://dash.test${path}`, { headers: auth }),
      );
      assert.equal(response.status, 308, path);
      const location = response.headers.get("location")!;
      assert.equal(location, expected, path);
      assert.ok(/^\/(?![/\\])/.test(location), `${path}: Location ${location}`);
      // Where a browser goes: the WHATWG URL parser, as browsers read a
      // Location (tabs and line breaks dropped, "\" as "/").
      assert.equal(
        new URL(location, "http://dash.test").host,
        "dash.test",
        `${path}: Location ${JSON.stringify(location)}`,
      );
      await response.body?.cancel();
    }
  } finally {
    await outbox.stop();
    await cleanup();
  }
});

Deno.test({
  name:
    "dashboard: /dead takes a whole offset up to 2^53 - 1 (a huge one is past the last page, not a database error); an error page does not show where the database is",
  ignore: DATABASE_URL === undefined,
}, async () => {
  const schema = `s22_dash_${crypto.randomUUID().slice(0, 8)}`;
  const outbox = await openOutbox({ connectionString: DATABASE_URL, schema });
  const { default: pg } = await import("npm:pg@8.23.1");
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  const auth = { authorization: `Bearer ${TOKEN}` };
  const dash = dashboard(outbox, { token: TOKEN });
  const get = (path: string) =>
    dash.fetch(new Request(`http://127.0.0.1${path}`, { headers: auth }));
  const server = new URL(DATABASE_URL!);
  try {
    for (
      const offset of ["9".repeat(400), "9007199254740993", "1e400", "-5", "x"]
    ) {
      const response = await get(`/dead?offset=${offset}`);
      const html = await response.text();
      assert.equal(response.status, 200, `offset=${offset}: ${html}`);
      assert.match(html, /Dead letters/, offset);
    }
    // The database fails under the dashboard: its schema is gone.
    await client.query(`DROP SCHEMA ${schema} CASCADE`);
    const logged: unknown[][] = [];
    const log = console.error;
    console.error = (...args: unknown[]) => logged.push(args);
    let failed: Response;
    try {
      failed = await get("/dead");
    } finally {
      console.error = log;
    }
    const html = await failed.text();
    assert.equal(failed.status, 500, html);
    assert.match(html, /The outbox could not be read/);
    // What kind of failure (the class, the outbox's code, the SQLSTATE:
    // 42P01, undefined table), not the message.
    assert.match(html, /\(OutboxError DATABASE, 42P01\)/, html);
    assert.ok(!html.includes(schema), "the error page shows the schema");
    for (
      const where of [
        server.hostname,
        `:${server.port}`,
        `${server.port}${server.pathname}`,
      ]
    ) {
      assert.ok(!html.includes(where), `the error page shows ${where}`);
    }
    // The server's log has the whole error.
    assert.equal(logged.length, 1, Deno.inspect(logged));
    assert.match(String(logged[0][0]), /fire-trigger dashboard: GET \/dead/);
    const error = logged[0][1] as Error;
    assert.match(error.message, /PostgreSQL at .* failed/);
    assert.ok(error.message.includes(schema), error.message);
  } finally {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
    await outbox.stop();
  }
});
