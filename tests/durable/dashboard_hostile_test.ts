// The dashboard against what a hostile page, a stale link or an odd id
// sends (hunt F): each case answered 500, leaked a secret or served a
// stranger before.
import assert from "node:assert/strict";
import { dashboard } from "../../src/durable/dashboard/mod.ts";
import {
  DATABASE_URL,
  freshOptions,
  openOutbox,
  startTarget,
} from "./_seed.ts";
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
    // A client on the network chooses its Host header: where the server
    // says who is calling (Deno.serve's info, Hono's c.env on
    // @hono/node-server or Bun), only this machine gets in.
    const from = async (info: unknown) => {
      const response = await local.fetch(
        new Request("http://localhost:8000/dead"),
        info,
      );
      const text = await response.text();
      return response.status === 403
        ? "refused"
        : text.includes("_csrf") && response.status;
    };
    const deno = (hostname: string) => ({
      remoteAddr: { transport: "tcp", hostname, port: 50_000 },
    });
    assert.equal(await from(deno("10.0.0.5")), "refused");
    assert.equal(await from(deno("fe80::1")), "refused");
    assert.equal(await from(deno("::ffff:192.168.1.9")), "refused");
    assert.equal(
      await from({ incoming: { socket: { remoteAddress: "192.168.1.9" } } }),
      "refused",
    );
    assert.equal(
      await from({ requestIP: () => ({ address: "10.1.1.1", port: 1 }) }),
      "refused",
    );
    for (
      const address of ["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"]
    ) {
      assert.equal(await from(deno(address)), 200, address);
    }
    // Bun's requestIP() knows only the request the server made: asked
    // before a mounted dashboard rebuilds it (its path put back).
    const mounted = dashboard(outbox, { localDevelopment: true, path: "/ops" });
    const stripped = new Request("http://localhost:8000/dead");
    const bun = {
      requestIP: (request: Request) =>
        request === stripped ? { address: "10.1.1.1", port: 1 } : null,
    };
    const viaMount = await mounted.fetch(stripped, bun);
    assert.equal(viaMount.status, 403);
    await viaMount.body?.cancel();
    // Nothing said (a unix socket, info not passed): the Host header alone.
    assert.equal(await from(undefined), 200);
    assert.equal(
      await from({ remoteAddr: { transport: "unix", path: "/s" } }),
      200,
    );
    // Served by Deno.serve itself, which passes its info.
    const served = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      local.fetch,
    );
    try {
      const response = await fetch(`http://localhost:${served.addr.port}/`);
      assert.equal(response.status, 200);
      await response.body?.cancel();
    } finally {
      await served.shutdown();
    }

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

Deno.test("dashboard: the dead letters are listed oldest first; the pager's 'older' goes back to them, 'newer' on", async () => {
  const { cleanup, ...options } = await freshOptions("embedded");
  const outbox = await openOutbox({ ...options, retry: { limit: 0 } });
  const target = startTarget();
  try {
    outbox.start({ pollInterval: 50 });
    // One at a time: each is dead before the next is stored.
    for (let n = 1; n <= 3; n++) {
      await outbox.trigger(`${target.url}/nope?n=${n}`);
      await until(
        async () => (await outbox.stats()).dead === n,
        `dead letter ${n}`,
        { interval: 50 },
      );
    }
    const dash = dashboard(outbox, { token: TOKEN, pageSize: 1 });
    const page = async (offset: number) =>
      await (await dash.fetch(
        new Request(`http://127.0.0.1/dead?offset=${offset}`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        }),
      )).text();
    const middle = await page(1);
    assert.match(middle, /\/nope\?n=2/);
    assert.match(middle, /2–2 of 3, oldest first/);
    assert.match(middle, /href="\/dead\?offset=0">older</);
    assert.match(middle, /href="\/dead\?offset=2">newer</);
    assert.match(await page(0), /\/nope\?n=1/);
    assert.match(await page(2), /\/nope\?n=3/);
  } finally {
    await outbox.stop();
    await target.close();
    await cleanup();
  }
});

Deno.test({
  name:
    "dashboard: a trigger's page reads its last 100 rows without their bodies but the last one's head, and says how many more; another producer's dead letter is shown under the id it was found by",
  ignore: DATABASE_URL === undefined,
}, async () => {
  const { cleanup, ...options } = await freshOptions("postgres");
  const outbox = await openOutbox({ ...options, retry: { limit: 0 } });
  const target = startTarget();
  const dead = `${options.queue}_dead`;
  const { default: pg } = await import("npm:pg@8.23.1");
  const db = new pg.Client({ connectionString: DATABASE_URL });
  await db.connect();
  try {
    const text = "begin-" + "x".repeat(200_000);
    const { id } = await outbox.trigger(`${target.url}/nope`, {
      body: text,
      headers: { "content-type": "text/plain" },
    });
    outbox.start({ pollInterval: 50 });
    await until(
      async () => (await outbox.stats()).dead === 1,
      "a dead letter",
      { interval: 100 },
    );
    // 120 more rows of the same trigger (as many redrives would leave),
    // and a dead letter of another producer's job: no id of ours in it.
    // 120 later rows of the same trigger, delivered (as an id reused by
    // many triggers leaves): its waiting dead letter is older than the last
    // 100. And jobs another producer put in the queue: no id of ours in
    // them, bodies of another shape.
    await db.query(
      `INSERT INTO pgboss.job (id, name, data, state, retry_limit,
         retry_delay, retry_backoff, expire_seconds, keep_until, policy,
         created_on)
       SELECT gen_random_uuid(), $2, data, 'completed', retry_limit,
         retry_delay, retry_backoff, expire_seconds, keep_until, policy,
         created_on + interval '1 second' * n
       FROM pgboss.job, generate_series(1, 120) AS n
       WHERE name = $1 AND data->>'id' = $3`,
      [dead, options.queue, id],
    );
    const foreign = (name: string, data: unknown, state: string) => {
      const sourceId = crypto.randomUUID();
      return db.query(
        `INSERT INTO pgboss.job (id, name, data, state, retry_limit,
           retry_delay, retry_backoff, expire_seconds, keep_until, policy,
           source_id, start_after)
         SELECT $4::uuid, $1, $2::jsonb, $3::pgboss.job_state, retry_limit,
           retry_delay, retry_backoff, expire_seconds, keep_until, policy,
           $4::uuid, now() + interval '1 hour'
         FROM pgboss.job WHERE name = $5 LIMIT 1`,
        [name, JSON.stringify(data), state, sourceId, dead],
      ).then(() => sourceId);
    };
    const shaped = await foreign(dead, {
      task: "resize",
      body: { w: 100 },
    }, "created");
    const notBase64 = await foreign(dead, { body: "hello world" }, "created");
    const waiting = await foreign(options.queue!, { task: "later" }, "retry");

    const dash = dashboard(outbox, { token: TOKEN });
    const get = async (path: string) => {
      const response = await dash.fetch(
        new Request(`http://127.0.0.1${path}`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        }),
      );
      return { status: response.status, html: await response.text() };
    };
    const page = await get(`/jobs/${id}`);
    assert.equal(page.status, 200, page.html.slice(0, 2_000));
    // Its first attempt, its dead letter and the 120 later rows.
    const more = page.html.match(/The last \d+ of \d+ rows\./)?.[0];
    assert.equal(more, "The last 100 of 122 rows.");
    // The dead letter is not among the rows shown; its actions are.
    assert.ok(page.html.includes(">Redrive</button>"), "Redrive offered");
    const history = page.html.slice(page.html.indexOf('id="history"'));
    assert.equal(history.split("<tr>").length - 1, 1 + 100, "head + 100 rows");
    assert.ok(page.html.includes("<pre>begin-xxxx"), "the body's head");
    assert.ok(page.html.includes("200006 bytes"), "the body's size");

    for (const other of [shaped, notBase64]) {
      const { status, html } = await get(`/jobs/${other}`);
      assert.equal(status, 200, html.slice(0, 2_000));
      assert.match(html, new RegExp(`Trigger <code>${other}</code>`));
      assert.match(html, new RegExp(`name="one" value="${other}"`));
      assert.doesNotMatch(html, /undefined/);
    }
    assert.equal((await get("/dead")).status, 200);
    // Another producer's retrying job: "Retry now" moves it.
    const later = await get(`/jobs/${waiting}`);
    assert.ok(later.html.includes(">Retry now</button>"), "Retry now offered");
    const csrf = later.html.match(/name="_csrf" value="([^"]+)"/)?.[1];
    assert.ok(csrf);
    const retried = await dash.fetch(
      new Request("http://127.0.0.1/retry", {
        method: "POST",
        headers: {
          authorization: `Bearer ${TOKEN}`,
          "content-type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams({ _csrf: csrf, return: "job", one: waiting }),
      }),
    );
    assert.equal(retried.status, 303);
    assert.match(retried.headers.get("location") ?? "", /n=1$/);
  } finally {
    await db.end();
    await outbox.stop();
    await target.close();
    await cleanup();
  }
});
