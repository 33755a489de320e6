// The dashboard's pages, rendered on the server. Every value from a job
// goes through `html`'s escaping (`raw` only for the constant style sheet,
// which `<style>` would not unescape); what a job may show was already
// stripped of secrets by ../_admin_queries.ts.
import { html, raw } from "npm:hono@^4.13.19/html";
import type {
  DeadView,
  History,
  JobView,
  Minute,
  OriginCounts,
  Outcome,
  RetryingView,
} from "../_admin_queries.ts";
import { chart } from "./_chart.ts";

type Html = ReturnType<typeof html>;

/** What every page needs besides its data. */
export interface Page {
  /** Where the dashboard is mounted, without a trailing slash. */
  base: string;
  csrf: string;
  /** The CSP nonce of the page's style sheet. */
  nonce: string;
  title: string;
  queue: string;
  engine: string;
  /** The database's clock, for ages. */
  now: Date;
  /** A confirmation after an action. */
  flash?: string;
}

const STYLE = `
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #5b6470; --line: #d6dbe1;
  --bg: #fff; --panel: #f5f7f9; --accent: #2764c5; --bad: #c62f2f; --warn: #b86e00; --ok: #2a7d3f; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e8eb; --muted: #9aa4b0; --line: #39414b;
  --bg: #15191e; --panel: #1d232a; --accent: #6aa0ff; --bad: #ff6b6b; --warn: #f0a43a; --ok: #5ccf7a; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Liberation Sans", system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1.5rem; align-items: baseline; padding: .8rem 1.5rem; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { font-size: 1.1rem; margin: 0; }
header .meta { color: var(--muted); }
nav a { margin-right: 1rem; color: var(--accent); text-decoration: none; }
nav a[aria-current] { font-weight: 600; text-decoration: underline; }
main { padding: 1rem 1.5rem 3rem; max-width: 1200px; }
h2 { font-size: 1rem; margin: 1.6rem 0 .6rem; }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .6rem .9rem; min-width: 8.5rem; background: var(--panel); }
.card b { display: block; font-size: 1.5rem; font-variant-numeric: tabular-nums; }
.card span { color: var(--muted); }
.card.bad b { color: var(--bad); } .card.warn b { color: var(--warn); } .card.ok b { color: var(--ok); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 500; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font: 12px/1.4 ui-monospace, "SF Mono", Menlo, Consolas, monospace; }
pre { margin: 0; white-space: pre-wrap; word-break: break-all; max-width: 28rem; max-height: 8rem; overflow: auto; background: var(--panel); padding: .3rem .45rem; border-radius: 4px; }
.url { word-break: break-all; }
.muted { color: var(--muted); }
.err { color: var(--bad); }
.flash { border: 1px solid var(--ok); color: var(--ok); padding: .45rem .8rem; border-radius: 6px; margin-bottom: 1rem; }
button { font: inherit; padding: .2rem .65rem; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); color: var(--fg); cursor: pointer; }
button.primary { border-color: var(--accent); color: var(--accent); }
button.danger { border-color: var(--bad); color: var(--bad); }
.actions { display: flex; gap: .5rem; margin: .7rem 0; flex-wrap: wrap; }
.chart { width: 100%; max-width: 720px; height: auto; border: 1px solid var(--line); border-radius: 6px; background: var(--panel); }
.chart .bar { fill: var(--accent); opacity: .75; } .chart .bar:hover { opacity: 1; }
.chart polyline.rate { fill: none; stroke: var(--bad); stroke-width: 1.8; }
.chart circle.rate { fill: var(--bad); }
.chart .axis, .chart .grid { stroke: var(--line); } .chart .label { fill: var(--muted); font-size: 11px; }
.legend span { margin-right: 1.2rem; } .legend .b { color: var(--accent); } .legend .r { color: var(--bad); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: 0; }
dt { color: var(--muted); } dd { margin: 0; }
`;

function layout(page: Page, current: string, body: Html): Html {
  const link = (path: string, label: string) =>
    html`
      <a href="${path === "/"
        ? page.base || "/"
        : page.base + path}" ${current === path
        ? html`
          aria-current="page"
        `
        : ""}>${label}</a>
    `;
  return html`
    <!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="no-referrer">
        <title>${page.title}</title>
        <style nonce="${page.nonce}">${raw(STYLE)}</style>
      </head>
      <body>
        <header>
          <h1>${page.title}</h1>
          <nav>${link("/", "Overview")}${link("/dead", "Dead letters")}</nav>
          <span class="meta">queue <code>${page.queue}</code> · ${page
            .engine}</span>
        </header>
        <main>
    ${page.flash ? html`<p class="flash" role="status">${page.flash}</p>` : ""}
    ${body}
        </main>
      </body>
    </html>
  `;
}

/** "3 min", "2 h 5 min", "4 d 1 h": an age or a wait. */
export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return (m % 60 === 0 ? `${h} h` : `${h} h ${m % 60} min`);
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

function when(date: Date | null, now: Date): Html {
  if (date === null) return html`<span class="muted">—</span>`;
  const diff = date.getTime() - now.getTime();
  const relative = diff > 0 ? `in ${age(diff)}` : `${age(-diff)} ago`;
  return html`<time datetime="${date.toISOString()}" title="${date.toISOString()}">${relative}</time>`;
}

function outcomeText(outcome: Outcome | null): Html {
  if (outcome === null) return html`<span class="muted">—</span>`;
  const head = [outcome.code, outcome.status].filter((x) => x !== undefined)
    .join(" ");
  return html`<span class="${
    outcome.code ? "err" : ""
  }"><code>${head}</code></span>${
    outcome.message
      ? html`
        <span class="muted">${outcome.message}</span>
      `
      : ""
  }`;
}

function jobLink(page: Page, id: string): Html {
  return html`<a href="${page.base}/jobs/${
    encodeURIComponent(id)
  }"><code>${id}</code></a>`;
}

function csrfField(page: Page): Html {
  return html`<input type="hidden" name="_csrf" value="${page.csrf}">`;
}

function body(job: JobView): Html {
  if (job.bodyBinary) {
    return html`<span class="muted">${job.bodySize} bytes, binary</span>`;
  }
  if (job.body === null) return html`<span class="muted">none</span>`;
  return html`<pre>${job.body}</pre>${
    job.bodyTruncated
      ? html`<span class="muted">first ${job.body.length} of ${job.bodySize} bytes</span>`
      : ""
  }`;
}

/** The overview: counts, the last hour, per origin, retrying jobs. */
export function overview(
  page: Page,
  data: {
    origins: OriginCounts[];
    minutes: Minute[];
    retrying: RetryingView[];
  },
): Html {
  const sum = (key: "queued" | "active" | "retrying" | "delivered" | "dead") =>
    data.origins.reduce((s, o) => s + o[key], 0);
  const oldest = data.origins.reduce<Date | null>(
    (min, o) =>
      o.oldestQueued !== null && (min === null || o.oldestQueued < min)
        ? o.oldestQueued
        : min,
    null,
  );
  const delivered = data.minutes.reduce((s, m) => s + m.delivered, 0);
  const failed = data.minutes.reduce((s, m) => s + m.failed, 0);
  const rate = delivered + failed === 0
    ? 0
    : Math.round((failed / (delivered + failed)) * 1000) / 10;
  const card = (label: string, value: string | number, tone = "") =>
    html`
      <div class="card ${tone}"
        data-count="${label}"><b>${value}</b><span>${label}</span></div>
    `;
  return layout(
    page,
    "/",
    html`
      <section class="cards" aria-label="Totals">
      ${card("queued", sum("queued"))}
      ${card("active", sum("active"))}
      ${card("retrying", sum("retrying"), sum("retrying") > 0 ? "warn" : "")}
      ${card("delivered", sum("delivered"), "ok")}
      ${card("dead", sum("dead"), sum("dead") > 0 ? "bad" : "")}
      ${card(
        "oldest queued",
        oldest === null ? "—" : age(page.now.getTime() - oldest.getTime()),
      )}
      </section>
      <h2>Last hour</h2>
      <p
        class="legend"><span class="b">■ deliveries per minute</span><span class="r">● failure rate</span>
      <span class="muted">${delivered} delivered, ${failed} failed attempts (${rate} %)</span></p>
      ${chart(data.minutes)}
      <h2>By target origin</h2>
      ${data.origins.length === 0
        ? html`<p class="muted">No jobs yet.</p>`
        : html`
          <table id="origins">
            <thead>
              <tr>
                <th>origin</th>
                <th class="n">queued</th>
                <th class="n">active</th>
                <th class="n">retrying</th>
                <th class="n">delivered</th>
                <th class="n">dead</th>
                <th>oldest queued</th>
              </tr>
            </thead>
            <tbody>${data.origins.map((o) =>
              html`
                <tr>
                  <td class="url"><code>${o.origin}</code></td>
                  <td class="n">${o.queued}</td>
                  <td class="n">${o.active}</td>
                  <td class="n">${o.retrying}</td>
                  <td class="n">${o.delivered}</td>
                  <td class="n">${o.dead}</td>
                  <td>${when(o.oldestQueued, page.now)}</td>
                </tr>
              `
            )}</tbody>
          </table>
        `}
      <p
        class="muted">Delivered counts the jobs pg-boss still keeps (7 days by default); the failure rate counts each job's latest failed attempt.</p>
      <h2>Retrying</h2>
      ${data.retrying.length === 0
        ? html`<p class="muted">Nothing is waiting for a retry.</p>`
        : html`
          <form method="post"
            action="${page.base}/retry">${csrfField(
              page,
            )}<input type="hidden" name="return" value="overview">
          <table id="retrying">
          <thead><tr><th>id</th><th>request</th><th class="n">attempts</th><th>last error</th><th>next attempt</th><th></th></tr></thead>
          <tbody>${data.retrying.map((r) =>
            html`
              <tr>
                <td>${jobLink(page, r.id)}</td>
                <td class="url"><code>${r.method} ${r.url}</code></td>
                <td class="n">${r.attempts}</td>
                <td>${outcomeText(r.error)}</td>
                <td>${when(r.nextAttempt, page.now)}</td>
                <td><button class="primary" name="one" value="${r
                  .id}">Retry now</button></td>
              </tr>
            `
          )}</tbody></table></form>
        `}
    `,
  );
}

/** The dead letters, with redrive and discard. */
export function deadLetters(
  page: Page,
  data: { total: number; letters: DeadView[]; offset: number; limit: number },
): Html {
  const { total, letters, offset, limit } = data;
  const pager = html`
    <p
      class="muted">${total === 0 ? 0 : offset + 1}–${offset +
        letters.length} of ${total}, oldest first${offset > 0
        ? html`
          · <a href="${page.base}/dead?offset=${Math.max(
            0,
            offset - limit,
          )}">older</a>
        `
        : ""}${offset + letters.length < total
        ? html`
          · <a href="${page.base}/dead?offset=${offset + limit}">newer</a>
        `
        : ""}</p>
  `;
  return layout(
    page,
    "/dead",
    html`<h2>Dead letters</h2>
${
      total === 0
        ? html`<p class="muted">No dead letters.</p>`
        : html`${pager}<form method="post" action="${page.base}/dead/redrive">${
          csrfField(page)
        }
<div class="actions">
<button class="primary" type="submit">Redrive selected</button>
<button class="danger" type="submit" formaction="${page.base}/dead/discard">Discard selected</button>
<button type="submit" name="all" value="1">Redrive all ${total}</button>
</div>
<table id="dead">
<thead><tr><th></th><th>id</th><th>request</th><th class="n">attempts</th><th>last error</th><th>dead since</th><th>body</th><th></th></tr></thead>
<tbody>${
          letters.map((d) =>
            html`
              <tr data-id="${d.id}">
                <td><input type="checkbox" name="id" value="${d
                  .id}" aria-label="select ${d.id}"></td>
                <td>${jobLink(page, d.id)}</td>
                <td class="url"><code>${d.method} ${d.url}</code></td>
                <td class="n">${d.attempts}</td>
                <td>${outcomeText(d.error)}</td>
                <td>${when(d.deadAt, page.now)}</td>
                <td>${body(d)}</td>
                <td><button class="primary" name="one" value="${d
                  .id}">Redrive</button> <button class="danger" name="one" value="${d
                  .id}" formaction="${page
                  .base}/dead/discard">Discard</button></td>
              </tr>
            `
          )
        }</tbody></table></form>`
    }`,
  );
}

/** One trigger: its request and every pg-boss row it went through. */
export function job(
  page: Page,
  data: History,
): Html {
  const { job, rows, total } = data;
  // Of every row, not only the last ones shown.
  const { dead: deadRow, retrying } = data.waiting;
  const state = rows[rows.length - 1];
  return layout(
    page,
    "/jobs",
    html`
      <h2>Trigger <code>${job.id}</code></h2>
      <dl>
        <dt>webhook-id</dt>
        <dd><code>${job.id}</code></dd>
        <dt>request</dt>
        <dd class="url"><code>${job.method} ${job.url}</code></dd>
        <dt>state</dt>
        <dd id="state"><code>${state.queue === "dead"
          ? `dead letter (${state.state})`
          : state.state}</code></dd>
        <dt>signing</dt>
        <dd>${job.ownSecret
          ? "its own secret (stored, not shown)"
          : "the outbox's secret, if it has one"}</dd>
        <dt>timeout</dt>
        <dd>${job.timeout} ms</dd>
        <dt>headers</dt>
        <dd>${job.headers.length === 0
          ? html`<span class="muted">none</span>`
          : html`
            <table id="headers">
              <tbody>${job.headers.map(([n, v]) =>
                html`
                  <tr>
                    <td><code>${n}</code></td>
                    <td><code>${v}</code></td>
                  </tr>
                `
              )}</tbody>
            </table>
          `}</dd>
        <dt>body</dt>
        <dd>${body(job)}</dd>
      </dl>
      ${deadRow || retrying
        ? html`
          <form method="post" action="${page.base}/dead/redrive"
            class="actions">${csrfField(
              page,
            )}<input type="hidden" name="return" value="job"><input type="hidden" name="one" value="${job
              .id}">${deadRow
              ? html`
                <button class="primary" type="submit">Redrive</button> <button class="danger"
                  type="submit" formaction="${page
                    .base}/dead/discard">Discard</button>
              `
              : ""}${retrying
              ? html`
                <button class="primary" type="submit"
                  formaction="${page.base}/retry">Retry now</button>
              `
              : ""}</form>
        `
        : ""}
      <h2>History</h2>
      <table id="history">
        <thead>
          <tr>
            <th>job</th>
            <th>queue</th>
            <th>state</th>
            <th class="n">attempts</th>
            <th>stored</th>
            <th>last attempt</th>
            <th>finished</th>
            <th>next attempt</th>
            <th>last outcome</th>
          </tr>
        </thead>
        <tbody>${rows.map((r) =>
          html`
            <tr>
              <td><code>${r.jobId}</code></td>
              <td>${r.queue === "dead" ? "dead letters" : "queue"}</td>
              <td><code>${r.state}</code></td>
              <td class="n">${r.attempts}${r.queue === "queue"
                ? html`
                  / ${r.retryLimit + 1}
                `
                : ""}</td>
              <td>${when(r.createdOn, page.now)}</td>
              <td>${when(r.startedOn, page.now)}</td>
              <td>${when(r.completedOn, page.now)}</td>
              <td>${when(r.nextAttempt, page.now)}</td>
              <td>${outcomeText(r.outcome)}</td>
            </tr>
          `
        )}</tbody>
      </table>
      ${total > rows.length
        ? html`
          <p id="history-more">The last ${rows.length} of ${total} rows.</p>
        `
        : ""}
      <p
        class="muted">pg-boss keeps one row per job with its latest outcome; a dead letter is a copy in the dead letter queue, and a redrive makes a new job.</p>
    `,
  );
}

/** A plain page for errors (not found, refused). */
export function message(page: Page, title: string, text: string): Html {
  return layout(
    page,
    "",
    html`
      <h2>${title}</h2>
      <p>${text}</p>
    `,
  );
}
