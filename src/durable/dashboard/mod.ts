/**
 * A dashboard for a durable outbox: a fetch handler to mount in your Hono
 * app under a path of your choice, or serve alone, with
 * server-rendered pages (no build step, no client script, readable with
 * JavaScript off) for the person on call.
 *
 * - Overview: queued, active, retrying, delivered and dead per target
 *   origin, the last hour's deliveries per minute and failure rate as an
 *   SVG chart, the oldest queued job's age, and the jobs waiting for a
 *   retry (with "Retry now").
 * - Dead letters: URL, attempts, last error, when, the body (escaped,
 *   truncated); redrive one, the selected or all; discard.
 * - One trigger's history: its request (secrets removed), every pg-boss row
 *   it went through, attempts, statuses, errors, `webhook-id`, next retry.
 *
 * Secure by default: every request needs the token (`Authorization:
 * Bearer <token>`, or as the password of Basic credentials so a browser's
 * prompt works) or the Basic credentials you give; every action is a POST
 * carrying a CSRF token; every value from a job is escaped; signing
 * secrets, `Authorization`-like headers and URL credentials are never
 * rendered. Pages forbid scripts, framing and caching (CSP, `no-store`).
 *
 * This entry point loads Hono; `./durable` itself does not.
 *
 * @example Usage
 * ```ts
 * import { Hono } from "npm:hono@^4.13.19";
 * import { openOutbox } from "../mod.ts";
 * import { dashboard } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const outbox = await openOutbox({ dir });
 * const dash = dashboard(outbox, {
 *   token: "a-long-random-token-0123",
 *   path: "/outbox",
 * });
 * const app = new Hono();
 * app.all(`${dash.path}/*`, (c) => dash.fetch(c.req.raw));
 *
 * const refused = await app.request("/outbox");
 * assert.equal(refused.status, 401);
 * const page = await app.request("/outbox", {
 *   headers: { authorization: "Bearer a-long-random-token-0123" },
 * });
 * assert.equal(page.status, 200);
 * assert.match(await page.text(), /By target origin/);
 *
 * await outbox.stop();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
import { checkOptions } from "../../_options.ts";
import { ByteBudget } from "../../_byte_budget.ts";
import { Hono } from "npm:hono@^4.13.19";
import type { Context } from "npm:hono@^4.13.19";
import { type Admin, adminOf } from "../_admin_queries.ts";
import { show } from "../../_show.ts";
import { bufferedRequest, readBody, refuseBody } from "../../hono/_body.ts";
import {
  authorized,
  type Credentials,
  csrfKey,
  csrfToken,
  csrfValid,
} from "./_auth.ts";
import { failureText } from "./_failure.ts";
import * as pages from "./_pages.ts";

/** What the dashboard uses of an outbox: pass the one `openOutbox()`
 * returned (from `./durable`); any other object is refused. */
export interface DashboardOutbox {
  /** `"embedded"` (PGlite) or `"postgres"`. */
  readonly engine: "embedded" | "postgres";
  /** Moves dead letters back to the queue. @param ids Which ones; all when
   * omitted. @returns How many were moved. */
  redrive(ids?: string[]): Promise<number>;
  /** Deletes dead letters. @param ids Which ones. @returns How many. */
  discard(ids: string[]): Promise<number>;
}

/**
 * A dashboard: one fetch handler, to mount in a Hono app (or any router
 * that hands on a `Request`) or to serve alone.
 *
 * In Hono: ``app.all(`${dash.path}/*`, (c) => dash.fetch(c.req.raw))``
 * (which also matches `dash.path` itself). Links and form actions start
 * with `path`. It answers requests with that path in front or stripped
 * (as `mount(dash.fetch)` from `hono/mount` and `app.mount()` pass them).
 */
export interface Dashboard {
  /** Where it is mounted (the `path` option, without a trailing slash);
   * `""` when served alone. */
  readonly path: string;
  /** Answers one request (a bound function: pass it on as it is). `info`
   * is the server's word on the connection: Deno.serve's second argument
   * (given by `Deno.serve(dash.fetch)`), or Hono's `c.env` on Deno.serve,
   * `@hono/node-server` or Bun. With `localDevelopment`, a request whose
   * peer it shows is not this machine gets `403`, whatever its `Host`. */
  readonly fetch: (request: Request, info?: unknown) => Promise<Response>;
}

/** Options for {@linkcode dashboard}: credentials are required. */
export interface DashboardOptions {
  /** The path the dashboard is mounted under, e.g. `"/ops/outbox"`: its
   * links and form actions start with it. `"/"` when it is served alone.
   * Letters, digits, `/` and `-._~!$&'()+,;=@` only, without `//`, `.` or
   * `..` segments: any other (`é`, `%20`, `<`) is a `TypeError`, as no
   * request's path would match it as given.
   * @default {"/"} */
  path?: string;
  /** A bearer token of at least 16 characters. Browsers may also send it as
   * the password of Basic credentials, with any user name (the only way for
   * a token with spaces at either end, CR, LF or characters above U+00FF,
   * which a `Bearer` header cannot carry as they are). */
  token?: string;
  /** Basic credentials; the password at least 12 characters. */
  basic?: { username: string; password: string };
  /** Serves without credentials. Only for a dashboard on your own machine:
   * anyone who can reach it can redrive and discard. Requests for a name
   * other than `localhost`, `*.localhost`, `127.x.x.x`, `[::1]` or
   * `0.0.0.0` are refused, and those
   * from another machine when the server says where they come from (pass
   * `info` to `fetch`); bind the server to 127.0.0.1 all the same. Ignored
   * when `token` or `basic` is given.
   * @default {false} */
  localDevelopment?: boolean;
  /** The page title (and the Basic realm).
   * @default {"Outbox"} */
  title?: string;
  /** Dead letters per page.
   * @default {50} */
  pageSize?: number;
  /** Characters of a body shown on the dead letters page (the job page
   * shows up to 16 times as much).
   * @default {500} */
  bodyPreview?: number;
}

const PREFIX = "Cannot create dashboard: ";

/** The dead letters page's `offset`: a whole number, at most
 * `Number.MAX_SAFE_INTEGER` (a larger one is that: past the last page);
 * anything else (none, negative, fractional, not a number) is 0. */
function offsetOf(value: string | undefined): number {
  if (value === undefined || !/^\d+$/.test(value)) return 0;
  return Math.min(Number(value), Number.MAX_SAFE_INTEGER);
}

/** Ids one form may carry. */
const MAX_IDS = 1000;
/** Bytes a form may have, declared (Content-Length) or counted as it
 * arrives (chunked). */
const MAX_FORM = 256 * 1024;
/** Milliseconds a form's body may take to arrive (then 408). */
const FORM_TIMEOUT = 10_000;
/** Bytes of forms being read, all POSTs of one dashboard together (then
 * 503 with Retry-After): 16 forms at their largest. */
const FORMS_IN_MEMORY = 16 * MAX_FORM;

function credentialsOf(options: DashboardOptions): Credentials | null {
  const { token, basic } = options;
  const credentials: Credentials = {};
  if (token !== undefined) {
    if (typeof token !== "string" || token.length < 16) {
      throw new TypeError(
        `${PREFIX}token must be a string of at least 16 characters, received ${
          typeof token === "string" ? `${token.length} characters` : show(token)
        }`,
      );
    }
    credentials.token = token;
  }
  if (basic !== undefined) {
    if (
      typeof basic !== "object" || basic === null ||
      typeof basic.username !== "string" || basic.username === "" ||
      basic.username.includes(":")
    ) {
      throw new TypeError(
        `${PREFIX}basic.username must be a non-empty string without ":"`,
      );
    }
    if (typeof basic.password !== "string" || basic.password.length < 12) {
      throw new TypeError(
        `${PREFIX}basic.password must be a string of at least 12 characters`,
      );
    }
    credentials.basic = { username: basic.username, password: basic.password };
  }
  if (token === undefined && basic === undefined) {
    if (options.localDevelopment !== true) {
      throw new TypeError(
        `${PREFIX}give a token or basic credentials (or localDevelopment: true to serve it without any, on your own machine only)`,
      );
    }
    return null;
  }
  return credentials;
}

function positive(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  // Safe integers only: 1e21 is an integer too, and every page was a 500.
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new RangeError(
      `${PREFIX}${name} must be a whole number from 1 to ${Number.MAX_SAFE_INTEGER}, received ${
        show(value)
      }`,
    );
  }
  return value as number;
}

/**
 * Creates the dashboard of an opened outbox: a fetch handler to mount under
 * `options.path` with ``app.all(`${dash.path}/*`, (c) => dash.fetch(c.req.raw))``,
 * or to serve alone with `Deno.serve(dash.fetch)`.
 *
 * Routes (relative to where it is mounted): `GET /`, `GET /dead`,
 * `GET /jobs/:id`; `POST /dead/redrive`, `POST /dead/discard`,
 * `POST /retry` (form posts with the CSRF token, of at most 256 KiB: a
 * larger body, chunked or not, gets `413`).
 *
 * @param outbox An outbox from `openOutbox()`; it need not be started.
 * @param options Credentials (required, unless `localDevelopment`), the
 *   path it is mounted under, title.
 * @returns The dashboard's fetch handler and path.
 * @throws {TypeError} Without credentials, for a short token or password,
 *   for a `path` no request could reach (see {@linkcode DashboardOptions}),
 *   or for an outbox `openOutbox()` did not return.
 * @throws {RangeError} For a `pageSize` or `bodyPreview` not a whole number
 *   from 1 to `Number.MAX_SAFE_INTEGER`.
 *
 * @example Basic credentials, served alone
 * ```ts
 * import { openOutbox } from "../mod.ts";
 * import { dashboard } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const outbox = await openOutbox({ dir });
 * const dash = dashboard(outbox, {
 *   basic: { username: "oncall", password: "correct horse battery" },
 * });
 * // What Deno.serve(dash.fetch) would answer:
 * const page = await dash.fetch(new Request("http://localhost/dead", {
 *   headers: { authorization: `Basic ${btoa("oncall:correct horse battery")}` },
 * }));
 * assert.equal(page.status, 200);
 * assert.throws(() => dashboard(outbox, {}), TypeError); // no credentials
 *
 * await outbox.stop();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function dashboard(
  outbox: DashboardOutbox,
  options: DashboardOptions = {},
): Dashboard {
  checkOptions(options, PREFIX);
  const admin: Admin = adminOf(outbox);
  const credentials = credentialsOf(options);
  const title = options.title ?? "Outbox";
  if (typeof title !== "string") {
    throw new TypeError(
      `${PREFIX}title must be a string, received ${show(title)}`,
    );
  }
  // The Basic realm, in a header: printable ASCII only (a title with "—"
  // made every unauthenticated request a 500, so no login prompt).
  const realm = title.replace(/[^\x20-\x7e]|["\\]/g, "").trim() || "Outbox";
  const pageSize = positive(options.pageSize, "pageSize", 50);
  const bodyPreview = positive(options.bodyPreview, "bodyPreview", 500);
  const base = mountPath(options.path);
  const key = csrfKey(credentials ?? {});
  const forms = new ByteBudget(FORMS_IN_MEMORY);

  const app = new Hono<Env>().basePath(base || "/");

  app.use("*", async function dashboardSecurity(c, next) {
    const nonce = crypto.randomUUID().replaceAll("-", "");
    c.set("nonce", nonce);
    if (credentials !== null) {
      const ok = await authorized(
        c.req.header("authorization") ?? null,
        credentials,
      );
      if (!ok) {
        c.header(
          "WWW-Authenticate",
          `Basic realm="${realm}", charset="UTF-8"`,
        );
        if (credentials.token !== undefined) {
          c.header("WWW-Authenticate", `Bearer realm="outbox"`, {
            append: true,
          });
        }
        headers(c, nonce);
        return c.text("Unauthorized: this dashboard needs credentials", 401);
      }
    }
    if (
      credentials === null &&
      (!loopbackHost(new URL(c.req.url).hostname) ||
        (c.env.peer !== undefined && !loopbackAddress(c.env.peer)))
    ) {
      // Without credentials, a page another site's name was pointed at
      // 127.0.0.1 (DNS rebinding) is same-origin with: only loopback names.
      // And a client elsewhere on the network chooses its Host header: only
      // this machine, where the server tells.
      headers(c, nonce);
      return c.text(
        "Forbidden: without credentials (localDevelopment) this dashboard answers only to localhost, *.localhost, 127.x.x.x, [::1] and 0.0.0.0, from this machine",
        403,
      );
    }
    headers(c, nonce);
    // Mounted at "/outbox", the overview is "/outbox": "/outbox/" goes there.
    if (c.req.method === "GET" || c.req.method === "HEAD") {
      const target = slashless(new URL(c.req.url));
      if (target !== null) return c.redirect(target, 308);
    }
    if (c.req.method === "POST") {
      const refused = await checkPost(c, await key, forms);
      if (refused !== null) return refused;
    }
    await next();
  });

  /** A page's frame. `failed`: for the error page, which makes no
   * database call (the database may be what failed: a second queryTimeout
   * would only delay it) and renders without a CSRF token should its key
   * have failed. */
  async function page(
    c: Context<Env>,
    flash?: string,
    failed = false,
  ): Promise<pages.Page> {
    const token = key.then(csrfToken);
    return {
      base,
      csrf: await (failed ? token.catch(() => "") : token),
      nonce: c.get("nonce") ?? "",
      title,
      queue: admin.queue,
      engine: admin.engine === "embedded" ? "embedded (PGlite)" : "PostgreSQL",
      now: failed ? new Date() : await admin.now(),
      flash,
    };
  }

  app.get("/", async (c) => {
    const [origins, minutes, retrying] = await Promise.all([
      admin.origins(),
      admin.lastHour(),
      admin.retrying({ limit: 50 }),
    ]);
    return c.html(
      pages.overview(await page(c, flashOf(c)), { origins, minutes, retrying }),
    );
  });

  app.get("/dead", async (c) => {
    let offset = offsetOf(c.req.query("offset"));
    let { total, letters } = await admin.deadLetters({
      limit: pageSize,
      offset,
      bodyLimit: bodyPreview,
    });
    if (letters.length === 0 && offset > 0 && total > 0) {
      // Past the end (a stale link after a discard): the last page.
      offset = Math.floor((total - 1) / pageSize) * pageSize;
      ({ total, letters } = await admin.deadLetters({
        limit: pageSize,
        offset,
        bodyLimit: bodyPreview,
      }));
    }
    return c.html(
      pages.deadLetters(await page(c, flashOf(c)), {
        total,
        letters,
        offset,
        limit: pageSize,
      }),
    );
  });

  app.get("/jobs/:id", async (c) => {
    const id = c.req.param("id");
    const found = await admin.history(id, { bodyLimit: bodyPreview * 16 });
    if (found === null) {
      return c.html(
        pages.message(await page(c), "Not found", `No trigger with id ${id}.`),
        404,
      );
    }
    return c.html(pages.job(await page(c, flashOf(c)), found));
  });

  app.post("/dead/redrive", async (c) => {
    const form = c.get("form");
    const ids = form.all ? undefined : form.ids;
    const moved = ids !== undefined && ids.length === 0
      ? 0
      : await outbox.redrive(ids);
    return back(c, base, form, "redriven", moved);
  });

  app.post("/dead/discard", async (c) => {
    const form = c.get("form");
    const gone = form.ids.length === 0 ? 0 : await outbox.discard(form.ids);
    return back(c, base, form, "discarded", gone);
  });

  app.post("/retry", async (c) => {
    const form = c.get("form");
    const moved = await admin.retryNow(form.ids);
    return back(c, base, form, "retried", moved);
  });

  app.onError(async (error, c) => {
    // The page says what kind of failure it was; where the database is
    // (hosts, ports, paths in the message) stays in the log.
    const path = new URL(c.req.url).pathname;
    console.error(`fire-trigger dashboard: ${c.req.method} ${path}`, error);
    const verb = c.req.method !== "POST"
      ? undefined
      : path.endsWith("/dead/redrive")
      ? "redriven"
      : path.endsWith("/dead/discard")
      ? "discarded"
      : undefined;
    return c.html(
      pages.message(
        await page(c, undefined, true),
        "The outbox could not be read",
        failureText(error, verb),
      ),
      500,
    );
  });

  return {
    path: base,
    fetch: (request: Request, info?: unknown) => {
      // Before the request is rebuilt: Bun's requestIP() knows only its own.
      const peer = peerOf(info, request);
      if (base !== "") {
        const url = new URL(request.url);
        if (url.pathname !== base && !url.pathname.startsWith(`${base}/`)) {
          // Mounted with the path stripped (app.mount()): put it back.
          url.pathname = url.pathname === "/" ? base : base + url.pathname;
          request = new Request(url, request);
        }
      }
      return Promise.resolve(
        app.fetch(request, { peer }),
      );
    },
  };
}

/** Slashes, backslashes, tabs and line breaks, raw or percent-encoded: a
 * path starting with "/" and then any run of them ("//evil.example",
 * "/%09/evil.example", which Hono's decoded `c.req.path` turns into
 * "/\t/evil.example") is read by browsers as "//evil.example", another
 * host. */
const LEADING = /^(?:[/\\\t\r\n]|%(?:2f|5c|09|0a|0d))+/i;

/** Where a GET for a path ending in "/" goes: the path without its trailing
 * slashes, behind one leading slash only (so always on this host), with the
 * query; `null` when the path does not end in "/". Built from the raw,
 * still percent-encoded path: a decoded one can hold a tab or a backslash. */
function slashless(url: URL): string | null {
  const path = url.pathname;
  if (path.length <= 1 || !path.endsWith("/")) return null;
  const rest = path.replace(/\/+$/, "").replace(LEADING, "");
  return `/${rest}${url.search}`;
}

/**
 * The client's IP address from what a server passes with a request, or
 * undefined: Deno.serve's `info.remoteAddr`, `@hono/node-server`'s
 * `incoming.socket`, Bun's `server.requestIP(request)`.
 */
function peerOf(info: unknown, request: Request): string | undefined {
  try {
    const given = info as
      | {
        remoteAddr?: { hostname?: unknown };
        incoming?: { socket?: { remoteAddress?: unknown } };
        requestIP?: (request: Request) => { address?: unknown } | null;
      }
      | null
      | undefined;
    const address = given?.remoteAddr?.hostname ??
      given?.incoming?.socket?.remoteAddress ??
      (typeof given?.requestIP === "function"
        ? given.requestIP(request)?.address
        : undefined);
    return typeof address === "string" ? address : undefined;
  } catch {
    return undefined;
  }
}

/** Whether an IP address is this machine's loopback (IPv4, IPv6, or IPv4
 * mapped into IPv6). */
function loopbackAddress(address: string): boolean {
  const v4 = address.toLowerCase().replace(/^::ffff:/, "");
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4) || address === "::1";
}

/** Whether a request's host is this machine by name or address. */
function loopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname.endsWith(".localhost") ||
    hostname === "0.0.0.0" || // what Deno.serve prints when it listens there
    hostname === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/** A `path` the dashboard can be served under: segments of RFC 3986's
 * unescaped path characters but `:` and `*` (Hono's parameter and wildcard),
 * one trailing slash at most. Any other character the URL parser
 * percent-encodes or the router decodes (`é`, `<`, `"`, `%20`), so no
 * request's path would start with it: every request got `404`. */
const MOUNT_PATH = /^(?:\/[A-Za-z0-9\-._~!$&'()+,;=@]+)*\/?$/;

/** The `path` option without a trailing slash (`""` for the root). */
function mountPath(path: unknown): string {
  if (path === undefined) return "";
  if (
    typeof path !== "string" || !MOUNT_PATH.test(path) ||
    // No "." or ".." segments: a request's path never has them.
    new URL(path, "http://x").pathname !== path
  ) {
    throw new TypeError(
      `${PREFIX}path must start with "/" and hold only letters, digits, "/" and -._~!$&'()+,;=@ (no "//", "." or ".." segments, nothing percent-encoded), received ${
        show(path)
      }`,
    );
  }
  return path.replace(/\/$/, "");
}

type Env = {
  /** The client's address, where the server told it. */
  Bindings: { peer: string | undefined };
  Variables: { nonce: string; form: Form };
};

interface Form {
  ids: string[];
  all: boolean;
  return: "dead" | "job" | "overview";
  one?: string;
}

const FLASH: Record<string, string> = {
  redriven: "Redriven",
  discarded: "Discarded",
  retried: "Retried now",
};

function flashOf(c: Context<Env>): string | undefined {
  const done = c.req.query("done");
  const n = Number.parseInt(c.req.query("n") ?? "", 10);
  if (
    done === undefined || !Object.hasOwn(FLASH, done) || !Number.isFinite(n)
  ) {
    return undefined;
  }
  return `${FLASH[done]}: ${n}`;
}

function headers(c: Context, nonce: string): void {
  c.header(
    "Content-Security-Policy",
    `default-src 'none'; style-src 'nonce-${nonce}'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
  );
  c.header("X-Content-Type-Options", "nosniff");
  c.header("X-Frame-Options", "DENY");
  c.header("Referrer-Policy", "no-referrer");
  c.header("Cache-Control", "no-store");
}

/** Refuses a POST without a form, with a foreign origin, or without the
 * CSRF token; keeps the parsed form for the route. */
async function checkPost(
  c: Context<Env>,
  key: CryptoKey,
  forms: ByteBudget,
): Promise<Response | null> {
  // Browsers say where a form came from; only this origin's pages (or a
  // typed-in request) may post. Other clients send no such header.
  const site = c.req.header("sec-fetch-site");
  if (site !== undefined && site !== "same-origin" && site !== "none") {
    return c.text("Forbidden: cross-site request", 403);
  }
  // Read within MAX_FORM whatever the framing (a chunked body declares no
  // length, and Hono's parseBody() would buffer all of it), within
  // FORM_TIMEOUT, and within what all forms being read may hold.
  const read = await readBody(c, {
    maxBodySize: MAX_FORM,
    timeout: FORM_TIMEOUT,
    budget: forms,
  });
  if (!read.ok) {
    // The receiving side's answer, with this page's headers.
    const refused = refuseBody(read.failure, MAX_FORM, FORM_TIMEOUT);
    return c.newResponse(refused.body, refused);
  }
  // Counted only while it is read and parsed: a form is small once parsed.
  // The copy's signal is the request's, read only if something reads it
  // (nothing here: Deno 2.9 warns about its legacy abort once it is read).
  try {
    c.req.raw = bufferedRequest(c.req.raw, read.body);
    return await checkForm(c, key);
  } finally {
    read.release();
  }
}

/** The CSRF and content checks of a form read in full. */
async function checkForm(
  c: Context<Env>,
  key: CryptoKey,
): Promise<Response | null> {
  const type = c.req.header("content-type") ?? "";
  if (
    !type.startsWith("application/x-www-form-urlencoded") &&
    !type.startsWith("multipart/form-data")
  ) {
    return c.text("Forbidden: missing or wrong CSRF token", 403);
  }
  let fields: Record<string, string | File | (string | File)[]>;
  try {
    fields = await c.req.parseBody({ all: true });
  } catch {
    return c.text("Bad Request: unreadable form", 400);
  }
  const list = (name: string) =>
    ([] as unknown[]).concat(fields[name] ?? []).filter((v): v is string =>
      typeof v === "string"
    );
  const [token] = list("_csrf");
  if (list("_csrf").length !== 1 || !(await csrfValid(key, token))) {
    return c.text("Forbidden: missing or wrong CSRF token", 403);
  }
  const one = list("one")[0];
  const ids = one !== undefined && one !== "" ? [one] : list("id");
  // No bound of its own on an id's length: a trigger's id may be a
  // caller's `webhook-id` of any length (the form's MAX_FORM bounds them).
  if (ids.length > MAX_IDS) {
    return c.text(`Bad Request: at most ${MAX_IDS} ids`, 400);
  }
  const back = list("return")[0];
  const form: Form = {
    ids: ids.filter((id) => id !== ""),
    all: list("all")[0] === "1" && one === undefined,
    return: back === "job" || back === "overview" ? back : "dead",
    one,
  };
  c.set("form", form);
  return null;
}

function back(
  c: Context<Env>,
  base: string,
  form: Form,
  done: string,
  n: number,
): Response {
  const path = form.return === "job" && form.one !== undefined
    ? `/jobs/${encodeURIComponent(form.one)}`
    : form.return === "overview"
    ? ""
    : "/dead";
  return c.redirect(
    `${base}${path || (base ? "" : "/")}?done=${done}&n=${n}`,
    303,
  );
}
