// Errors kept as `cause` never carry a connection string's password: not
// in a nested cause, not in a string property such as pg's `detail` or the
// `input` Node's URL parser attaches.
import assert from "node:assert/strict";
import {
  isSecretHeader,
  isSecretParam,
  redact,
  redactError,
  redactHeaders,
  redactUrl,
  secretsOf,
} from "../../src/_redact.ts";
import { failureText } from "../../src/durable/dashboard/_failure.ts";
import { openOutbox, OutboxError } from "../../src/durable/mod.ts";

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

Deno.test("secretsOf: a password of 1-3 characters does not mask those letters in every word; the whole string still is", () => {
  for (const password of ["e", "ai", "%65"]) {
    const connectionString = `postgres://app:${password}@127.0.0.1:1/db`;
    const secrets = secretsOf(connectionString);
    const message = 'password authentication failed for user "app"';
    assert.equal(redact(message, secrets), message, password);
    assert.equal(
      redact(`cannot parse ${connectionString}`, secrets),
      "cannot parse [redacted]",
    );
  }
  // From four characters on, the password is masked wherever it appears.
  const secrets = secretsOf("postgres://app:fail@127.0.0.1:1/db");
  assert.equal(
    redact("password authentication failed", secrets),
    "password authentication [redacted]ed",
  );
});

Deno.test("the dashboard's error page says what kind of failure, never where the database is (host, port, socket path, certificate names)", async () => {
  // Real failures: openOutbox() against nothing listening on IPv6 loopback
  // (pg: "connect ECONNREFUSED ::1:1", unbracketed) and on a unix socket
  // that is not there ("connect ENOENT /path/.s.PGSQL.5432").
  const socketDir = `/tmp/fire-trigger-no-socket-${crypto.randomUUID()}`;
  const real: unknown[] = [];
  for (
    const connectionString of [
      "postgres://app:pw@[::1]:1/app",
      `postgres://app:pw@/app?host=${socketDir}`,
    ]
  ) {
    real.push(
      await openOutbox({ connectionString }).then(
        async (outbox) => {
          await outbox.stop();
          throw new Error(`${connectionString} opened`);
        },
        (error: unknown) => error,
      ),
    );
  }
  // Messages drivers write, wrapped as the outbox wraps them (found by
  // review: a pattern-based redaction let each of these through).
  const driver = (message: string, code?: string) =>
    new OutboxError(
      "DATABASE",
      `Cannot list dead letters: PostgreSQL at db.internal:5432/app failed: ${message}`,
      { cause: Object.assign(new Error(message), code ? { code } : {}) },
    );
  const made = [
    driver("connect ECONNREFUSED 2001:db8::5:5432", "ECONNREFUSED"),
    driver("connect ECONNREFUSED fe80::1%eth0:5432", "ECONNREFUSED"),
    driver("getaddrinfo EAI_AGAIN db.internal", "EAI_AGAIN"),
    driver("see postgres://app:pw@db.internal:5432/app"),
    driver(
      'no pg_hba.conf entry for host "10.0.0.7", user "app", database "app", SSL off',
      "28000",
    ),
    driver(
      "Hostname/IP does not match certificate's altnames: Host: db.internal. is not in the cert's altnames: DNS:other.internal",
      "ERR_TLS_CERT_ALTNAME_INVALID",
    ),
    driver(
      "ENOENT: no such file or directory, open '/srv/secret/db/PG_VERSION'",
    ),
    // A code that is not a code: never shown.
    Object.assign(new Error("x"), { code: "db.internal:5432" }),
    "thrown string at db.internal:5432",
  ];
  const hidden = [
    "::1",
    ":1)",
    socketDir,
    "PGSQL",
    "2001:db8",
    "fe80",
    "eth0",
    "db.internal",
    "5432",
    "10.0.0.7",
    "other.internal",
    "/srv/secret",
    "pw",
    "postgres://",
  ];
  for (const error of [...real, ...made]) {
    const text = failureText(error);
    for (const where of hidden) {
      assert.ok(!text.includes(where), `${where} shown: ${text}`);
    }
    assert.match(text, /The server's log has the details\./);
  }
  assert.match(failureText(real[0]), /\(OutboxError DATABASE, ECONNREFUSED\)/);
  assert.match(failureText(real[1]), /\(OutboxError DATABASE, ENOENT\)/);
  assert.match(failureText(made[2]), /\(OutboxError DATABASE, EAI_AGAIN\)/);
  assert.match(failureText(made[4]), /\(OutboxError DATABASE, 28000\)/);
  assert.match(failureText(made.at(-2)), /\(Error\)/);
  assert.match(failureText(made.at(-1)), /\(Error\)/);
  // A redrive or discard that failed partway: how many moved, from `done`.
  const partway = new OutboxError("TIMEOUT", "at db.internal:5432", {
    done: 3_000,
  });
  assert.match(
    failureText(partway, "redriven"),
    /\(OutboxError TIMEOUT\)\. .* Before it failed, 3000 dead letters were redriven: they stay redriven; submit again for the rest\.$/,
  );
  assert.doesNotMatch(failureText(partway), /Before it failed/);
  for (const done of [0, undefined, "9", 1.5]) {
    const error = Object.assign(new Error("x"), { done });
    assert.doesNotMatch(failureText(error, "discarded"), /Before/);
  }
});

Deno.test("what the dashboard and CLI hide: header and query names with `key` as a word (Azure's x-functions-key and ?code=, APIM's subscription key), not Idempotency-Key; a fragment's parameters", () => {
  for (
    const name of [
      "x-functions-key",
      "Ocp-Apim-Subscription-Key",
      "X-Master-Key",
      "x-api-key",
      "apikey",
      "x-access-key",
      "Authorization",
      "X-Goog-Iap-Jwt-Assertion",
      "X-Shopify-Hmac-Sha256",
      "X-Passphrase",
      "X-Pwd",
    ]
  ) assert.equal(isSecretHeader(name), true, name);
  for (
    const name of [
      "Idempotency-Key",
      "x-idempotency-key",
      "keyboard",
      "monkey",
      "content-type",
    ]
  ) assert.equal(isSecretHeader(name), false, name);
  for (
    const name of [
      "key",
      "subscription-key",
      "access_key",
      "private_key",
      "code",
      "jwt",
      "pass",
      "passphrase",
      "accessKey",
      "subscriptionKey",
      "AWSAccessKeyId",
    ]
  ) assert.equal(isSecretParam(name), true, name);
  for (
    const name of ["keyword", "zipcode", "monkey", "page", "passage", "KEYS"]
  ) {
    assert.equal(isSecretParam(name), false, name);
  }
  assert.deepEqual(
    redactHeaders([
      ["x-functions-key", "FUNCKEY"],
      ["Idempotency-Key", "order-7"],
    ]),
    [["x-functions-key", "[redacted]"], ["Idempotency-Key", "order-7"]],
  );
  assert.equal(
    redactUrl(
      "https://f.example/api/hook?code=AZ&subscription-key=K&page=2#access_token=T&state=s",
    ),
    "https://f.example/api/hook?code=%5Bredacted%5D&subscription-key=%5Bredacted%5D&page=2#access_token=[redacted]&state=s",
  );
  // A hash route's parameters (`#/callback?code=…`).
  assert.equal(
    redactUrl("https://app.example/#/callback?code=AUTH&next=%2Fhome"),
    "https://app.example/#/callback?code=[redacted]&next=%2Fhome",
  );
});
