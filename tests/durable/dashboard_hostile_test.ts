// The dashboard against what a hostile page, a stale link or an odd id
// sends (hunt F): each case answered 500, leaked a secret or served a
// stranger before.
import assert from "node:assert/strict";
import { dashboard } from "../../src/durable/dashboard/mod.ts";
import { freshOptions, openOutbox, startTarget } from "./_seed.ts";
import { until } from "../_wait.ts";

const TOKEN = "dashboard-hostile-token-0123456789";

Deno.test("dashboard: a non-Latin-1 title, a rebound host, a NUL id, a page past the end, HEAD on a slash, a token in a stored error", async () => {
  const { cleanup, ...options } = await freshOptions("embedded");
  const outbox = await openOutbox({ ...options, retry: { limit: 0 } });
  const target = startTarget();
  try {
    // A dead letter whose URL (and so its stored error) carries a token.
    await outbox.trigger(`${target.url}/nope?token=abc-secret-123&page=2`);
    outbox.start({ pollInterval: 50 });
    await until(
      async () => (await outbox.stats()).dead === 1,
      "a dead letter",
      { interval: 100 },
    );

    // A title a header cannot carry: every request without credentials was
    // a 500 (no login prompt), the page showing the title and the queue.
    const titled = dashboard(outbox, { token: TOKEN, title: "Outbox — prod" });
    const prompt = await titled.fetch(new Request("http://127.0.0.1/"));
    assert.equal(prompt.status, 401);
    assert.equal(
      prompt.headers.get("www-authenticate"),
      'Basic realm="Outbox  prod", charset="UTF-8", Bearer realm="outbox"',
    );
    await prompt.body?.cancel();
    const auth = { authorization: `Bearer ${TOKEN}` };
    const shown = await titled.fetch(
      new Request("http://127.0.0.1/", { headers: auth }),
    );
    assert.equal(shown.status, 200);
    assert.match(await shown.text(), /Outbox — prod/);

    // Without credentials, only loopback names: a site whose name was
    // pointed at 127.0.0.1 read the CSRF token and discarded letters.
    const local = dashboard(outbox, { localDevelopment: true });
    for (
      const host of [
        "localhost",
        "127.0.0.1",
        "[::1]",
        "app.localhost",
        "0.0.0.0",
      ]
    ) {
      const response = await local.fetch(new Request(`http://${host}:8000/`));
      assert.equal(response.status, 200, host);
      await response.body?.cancel();
    }
    const rebound = await local.fetch(
      new Request("http://attacker.example:8000/dead", {
        headers: { "sec-fetch-site": "same-origin" },
      }),
    );
    assert.equal(rebound.status, 403);
    assert.doesNotMatch(await rebound.text(), /_csrf/);

    const dash = dashboard(outbox, { token: TOKEN, path: "/ops" });
    const get = (path: string, init: RequestInit = {}) =>
      dash.fetch(
        new Request(`http://127.0.0.1${path}`, {
          ...init,
          headers: { ...auth, ...init.headers },
          redirect: "manual",
        }),
      );

    // A token in the stored error is hidden as in the URL column.
    const deadPage = await (await get("/ops/dead")).text();
    assert.doesNotMatch(deadPage, /abc-secret-123/);
    assert.match(deadPage, /token=\[redacted\]/);

    // NUL in an id: PostgreSQL refused the query, a 500.
    const nul = await get("/ops/jobs/a%00b");
    assert.equal(nul.status, 404);
    await nul.body?.cancel();
    const csrf = deadPage.match(/name="_csrf" value="([^"]+)"/)?.[1];
    assert.ok(csrf);
    const discard = await get("/ops/dead/discard", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `_csrf=${encodeURIComponent(csrf)}&one=a%00b`,
    });
    assert.equal(discard.status, 303);
    assert.equal(
      discard.headers.get("location"),
      "/ops/dead?done=discarded&n=0",
    );

    // A page past the end (a stale link): the last page, not "2–1 of 1".
    const past = await (await get("/ops/dead?offset=9007199254740991")).text();
    assert.match(past, /1–1 of 1/);
    assert.match(past, /\/nope/);

    // HEAD follows GET's redirect of a trailing slash.
    const head = await get("/ops/", { method: "HEAD" });
    assert.equal(head.status, 308);
    assert.equal(head.headers.get("location"), "/ops");
  } finally {
    await outbox.stop();
    await target.close();
    await cleanup();
  }
});
