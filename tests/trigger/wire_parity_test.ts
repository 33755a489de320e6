// The two transports put the same request on the wire (issue #13): for a set
// of URLs, methods and bodies, a raw server captures what the socket
// transport, the fetch transport and a plain `fetch()` send, and the three are
// compared field by field. Plain `fetch()` is the reference: it is what the
// fetch transport hands the request to, and what users compare against.
import assert from "node:assert/strict";
import { trigger, type TriggerOptions } from "../../mod.ts";
import { latin1Text, rawCapture } from "../_servers.ts";
import { within } from "../_wait.ts";

interface Wire {
  method: string;
  target: string;
  version: string;
  /** Lower-cased names (HTTP names are case-insensitive), in order. */
  headers: Map<string, string>;
  body: string;
}

function parse(raw: Uint8Array): Wire {
  const text = latin1Text(raw);
  const end = text.indexOf("\r\n\r\n");
  assert.ok(end > 0, `a head in ${JSON.stringify(text.slice(0, 200))}`);
  const [line, ...lines] = text.slice(0, end).split("\r\n");
  const match = /^(\S+) (\S+) (HTTP\/1\.1)$/.exec(line);
  assert.ok(match, `request line ${JSON.stringify(line)}`);
  const headers = new Map<string, string>();
  for (const field of lines) {
    const colon = field.indexOf(":");
    const name = field.slice(0, colon).toLowerCase();
    assert.ok(!headers.has(name), `${name} once`);
    headers.set(name, field.slice(colon + 1).trim());
  }
  return {
    method: match[1],
    target: match[2],
    version: match[3],
    headers,
    body: text.slice(end + 4),
  };
}

/** Headers only one side sends, and why: nothing else may differ. */
const FETCH_ONLY = new Set(["accept", "accept-language", "accept-encoding"]);
const SOCKET_ONLY = new Set(["connection"]); // "close" when not reusing

const PATHS = [
  "/",
  "/x?",
  "/x?#fragment",
  "/a|b^c[d]e",
  "/q?x=|^`{}[]\\\"'<>",
  "/p a/é?q=é a&r=%zz",
  "/%7C%41?%7c",
  "/a{b}`c\\d#f",
];
const METHODS = [
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "OPTIONS",
  "PATCH",
  "patch",
  "delete",
  "post",
  "Options",
  "purge",
];
const BODIES = [undefined, "", "body"] as const;

interface Case {
  path: string;
  method?: string;
  body?: string;
}

function cases(): Case[] {
  const list: Case[] = PATHS.map((path) => ({ path }));
  for (const method of METHODS) {
    for (const body of BODIES) {
      const upper = method.toUpperCase();
      if (body !== undefined && (upper === "GET" || upper === "HEAD")) {
        continue;
      }
      list.push({ path: "/m", method, body });
    }
  }
  return list;
}

function describe(c: Case): string {
  return `${c.method ?? "(default)"} ${JSON.stringify(c.path)} body=${
    c.body === undefined ? "none" : JSON.stringify(c.body)
  }`;
}

Deno.test("the socket transport, the fetch transport and fetch() put the same request on the wire", async () => {
  const server = rawCapture();
  try {
    for (const c of cases()) {
      const url = server.origin + c.path;
      const what = describe(c);
      const label = what.replace(/[^ -~]/g, "?");
      const options: TriggerOptions = {
        method: c.method,
        body: c.body,
        headers: { "X-Case": label },
        wait: "accepted",
        timeout: 10_000,
      };

      const reference = await fetch(url, {
        method: c.method ?? (c.body === undefined ? "GET" : "POST"),
        body: c.body,
        headers: {
          "X-Case": label,
          "User-Agent": "reference",
        },
      });
      await reference.body?.cancel();
      const ref = parse(await server.requests.take());

      const wire: Record<string, Wire> = {};
      for (const transport of ["socket", "fetch"] as const) {
        const result = await trigger(url, {
          ...options,
          transport,
          reuse: false,
        });
        assert.equal(
          result.ok,
          true,
          `${transport} ${what}: ${result.error?.message}`,
        );
        await within(result.done, `${transport} done, ${what}`);
        wire[transport] = parse(await server.requests.take());
      }
      const { socket, fetch: viaFetch } = wire;

      // The request line: as fetch() sends it.
      for (const [name, got] of Object.entries(wire)) {
        assert.equal(got.method, ref.method, `${name} method, ${what}`);
        assert.equal(got.target, ref.target, `${name} target, ${what}`);
        assert.equal(got.version, ref.version, `${name} version, ${what}`);
        assert.equal(got.body, ref.body, `${name} body, ${what}`);
        // Framing and the body's type: present on both or neither, equal.
        for (const field of ["host", "content-length", "content-type"]) {
          assert.equal(
            got.headers.get(field),
            ref.headers.get(field),
            `${name} ${field}, ${what}`,
          );
        }
      }

      // Every other field, one by one.
      const names = new Set([
        ...socket.headers.keys(),
        ...viaFetch.headers.keys(),
      ]);
      for (const name of names) {
        if (FETCH_ONLY.has(name)) {
          assert.ok(!socket.headers.has(name), `socket sends ${name}, ${what}`);
          continue;
        }
        if (SOCKET_ONLY.has(name)) {
          assert.ok(!viaFetch.headers.has(name), `fetch sends ${name}`);
          continue;
        }
        assert.equal(
          socket.headers.get(name),
          viaFetch.headers.get(name),
          `header ${name}, ${what}`,
        );
      }
    }
  } finally {
    await server.close();
  }
});
