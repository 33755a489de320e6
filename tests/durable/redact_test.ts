// Errors kept as `cause` never carry a connection string's password: not
// in a nested cause, not in a string property such as pg's `detail` or the
// `input` Node's URL parser attaches.
import assert from "node:assert/strict";
import {
  redact,
  redactError,
  redactServer,
  secretsOf,
} from "../../src/_redact.ts";

const PASSWORD = "s3cr3t-Pw";
const URL_TEXT = `postgres://app:${PASSWORD}@db.example:99999/app`;

function everything(error: unknown): string {
  return Deno.inspect(error, { depth: 20, showHidden: true });
}

Deno.test("redactError() masks secrets in nested causes and string properties, and keeps codes", async () => {
  const secrets = secretsOf(URL_TEXT);
  // Node's URL parser: ERR_INVALID_URL with the text as `input`.
  const { code, input, message } = await new Deno.Command("node", {
    args: [
      "-e",
      `try { new URL(${
        JSON.stringify(URL_TEXT)
      }); } catch (e) { console.log(JSON.stringify({ code: e.code, input: e.input, message: e.message })); }`,
    ],
    stdout: "piped",
  }).output().then((o) => JSON.parse(new TextDecoder().decode(o.stdout)));
  assert.equal(code, "ERR_INVALID_URL");
  assert.equal(input, URL_TEXT, "the parser keeps the input");
  const urlError = Object.assign(new TypeError(message), { code, input });
  // pg's DatabaseError shape: a SQLSTATE code and a `detail` line.
  const pgError = Object.assign(new Error("password authentication failed"), {
    code: "28P01",
    detail: `connection string was ${URL_TEXT}`,
  });
  const outer = new Error("Cannot open", {
    cause: new Error("connect failed", {
      cause: new AggregateError([pgError], "wrapped", { cause: urlError }),
    }),
  });
  const copy = redactError(outer, secrets) as Error;
  const shown = everything(copy);
  assert.ok(!shown.includes(PASSWORD), shown);
  assert.match(shown, /\[redacted\]/);
  assert.match(shown, /ERR_INVALID_URL/, "codes are kept");
  // Each level is there, masked.
  const inner = (copy.cause as Error).cause as Error & { cause?: unknown };
  const url = inner.cause as Error & { code?: string; input?: string };
  assert.equal(url.code, "ERR_INVALID_URL");
  assert.ok(url.input && !url.input.includes(PASSWORD));
  // A string property on the error itself.
  const direct = redactError(pgError, secrets) as Error & {
    code?: string;
    detail?: string;
  };
  assert.equal(direct.code, "28P01");
  assert.ok(direct.detail && !direct.detail.includes(PASSWORD));
  // Nothing to mask: the very same error.
  const clean = new Error("no secret here", { cause: new Error("none") });
  assert.equal(redactError(clean, secrets), clean);
});

Deno.test("secretsOf: a password a URL parser quotes back re-encoded (% as %25) is masked too (found by review: it leaked)", () => {
  const connectionString = "postgres://u:se?cr%et@127.0.0.1:1/db";
  const message =
    "Invalid URL: 'postgres://u:se?cr%25et@127.0.0.1:1/db' with base 'postgres://base'";
  const masked = redact(message, secretsOf(connectionString));
  assert.ok(!masked.includes("se?cr"), masked);
  assert.ok(!masked.includes("cr%25et"), masked);
});

Deno.test("redactServer() leaves out where the database is (the dashboard's error page), and keeps the rest of the message", () => {
  const cases: Array<[string, string]> = [
    [
      'Cannot list dead letters: PostgreSQL at 10.0.0.5:55432/app failed: value "Infinity" is out of range for type bigint',
      'Cannot list dead letters: PostgreSQL failed: value "Infinity" is out of range for type bigint',
    ],
    [
      "Cannot open outbox: PostgreSQL at db.internal:5432/app failed: connect ECONNREFUSED 10.0.0.5:5432",
      "Cannot open outbox: PostgreSQL failed: connect ECONNREFUSED [redacted]",
    ],
    [
      "getaddrinfo ENOTFOUND db.internal",
      "getaddrinfo ENOTFOUND [redacted]",
    ],
    [
      "connect ECONNREFUSED [::1]:5432",
      "connect ECONNREFUSED [redacted]",
    ],
    [
      'Cannot read: the embedded database in "/srv/a \\"b\\"" failed: ENOENT (no such file or directory)',
      "Cannot read: the embedded database failed: ENOENT (no such file or directory)",
    ],
    ["Error connecting: timeout", "Error connecting: timeout"],
    ["see postgres://app:pw@db/app", "see postgres://[redacted]@db/app"],
  ];
  for (const [text, shown] of cases) assert.equal(redactServer(text), shown);
});
