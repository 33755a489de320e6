// `transport: "auto"` goes where the runtime's own fetch goes: through the
// proxy HTTP_PROXY (and the rest) names, unless NO_PROXY exempts the host.
// Real runtimes, each in a process of its own with the variables set, against
// a real forwarding and tunnelling proxy on loopback (it logs each request
// line, then passes the bytes on to the target).
import assert from "node:assert/strict";
import {
  bunBinary,
  node22Binary,
  run,
  withTempFile,
} from "../_node/_runtimes.ts";

const mod = new URL("../../mod.ts", import.meta.url).href;

/** A proxy on loopback: absolute-form requests are passed on as they are,
 * CONNECT is answered 200 and tunnelled. Logs each first request line. */
function tunnelProxy() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const lines: string[] = [];
  const open = new Set<Deno.Conn>();
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    try {
      await from.readable.pipeTo(to.writable, { preventClose: true });
    } catch {
      // either side gone
    }
    await to.closeWrite().catch(() => {}); // closed
  };
  const serve = async (client: Deno.Conn) => {
    open.add(client);
    const buffer = new Uint8Array(65_536);
    let got = 0;
    let end = -1;
    while (end < 0 && got < buffer.length) {
      const n = await client.read(buffer.subarray(got)).catch(() => null);
      if (n === null) return client.close();
      got += n;
      end = new TextDecoder().decode(buffer.subarray(0, got)).indexOf("\r\n");
    }
    const head = new TextDecoder().decode(buffer.subarray(0, got));
    const line = head.slice(0, end);
    lines.push(line);
    const [method, target] = line.split(" ");
    const authority = method === "CONNECT" ? target : new URL(target).host;
    const [hostname, port] = authority.split(":");
    const upstream = await Deno.connect({ hostname, port: Number(port) });
    open.add(upstream);
    if (method === "CONNECT") {
      await client.write(
        new TextEncoder().encode("HTTP/1.1 200 Connection Established\r\n\r\n"),
      );
    } else {
      await upstream.write(buffer.subarray(0, got));
    }
    await Promise.all([pipe(client, upstream), pipe(upstream, client)]);
    for (const conn of [client, upstream]) {
      open.delete(conn);
      try {
        conn.close();
      } catch {
        // closed
      }
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) serve(conn).catch(() => {});
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    lines,
    async close() {
      listener.close();
      for (const conn of open) {
        try {
          conn.close();
        } catch {
          // closed
        }
      }
      await accepting.catch(() => {});
    },
  };
}

/** The trigger, run by a runtime of its own: prints the transport and the
 * status (or error code) as one JSON line. */
const probe = `
import { trigger } from ${JSON.stringify(mod)};
const [url, transport] = (globalThis.Deno?.args ?? process.argv.slice(2));
const result = await trigger(url, { wait: "accepted", transport, timeout: 10000 });
await result.done;
console.log(JSON.stringify({ transport: result.transport, status: result.status, code: result.error?.code }));
`;

interface Case {
  name: string;
  env: Record<string, string>;
  host?: string;
  transport?: string;
  /** The proxy carried it (and so fetch did). */
  proxied: boolean;
}

async function runCases(
  runtime: "deno" | "node22" | "bun",
  cases: Case[],
  t: Deno.TestContext,
  denoFlags = ["--allow-net", "--allow-read", "--allow-env"],
) {
  const target = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(null, { status: 202 }),
  );
  const proxy = tunnelProxy();
  try {
    await withTempFile(probe, async (path) => {
      for (const c of cases) {
        await t.step(c.name, async () => {
          proxy.lines.length = 0;
          const env = {
            ...c.env,
            HTTP_PROXY: c.env.HTTP_PROXY?.replace("PROXY", proxy.url),
            HTTPS_PROXY: c.env.HTTPS_PROXY?.replace("PROXY", proxy.url),
            ALL_PROXY: c.env.ALL_PROXY?.replace("PROXY", proxy.url),
            http_proxy: c.env.http_proxy?.replace("PROXY", proxy.url),
          };
          for (const [k, v] of Object.entries(env)) {
            if (v === undefined) delete (env as Record<string, unknown>)[k];
          }
          const url = `http://${c.host ?? "127.0.0.1"}:${target.addr.port}/job`;
          const args = [path, url, c.transport ?? "auto"];
          const binary = runtime === "deno"
            ? Deno.execPath()
            : runtime === "bun"
            ? await bunBinary()
            : await node22Binary();
          const ran = await run(
            binary,
            runtime === "deno" ? ["run", ...denoFlags, ...args] : args,
            30_000,
            { env: env as Record<string, string> },
          );
          assert.equal(ran.code, 0, ran.stderr);
          const line = ran.stdout.trim().split("\n").at(-1) ?? "";
          const result = JSON.parse(line);
          assert.equal(result.status, 202, line + ran.stderr);
          assert.equal(
            result.transport,
            c.proxied ? "fetch" : "socket",
            line,
          );
          if (c.proxied) {
            assert.equal(proxy.lines.length, 1, proxy.lines.join("\n"));
            assert.match(
              proxy.lines[0],
              new RegExp(`^(GET http://|CONNECT )${c.host ?? "127.0.0.1"}:`),
            );
          } else {
            assert.deepEqual(proxy.lines, []);
          }
        });
      }
    }, runtime === "deno" ? "probe.ts" : "probe.mts");
  } finally {
    await proxy.close();
    await target.shutdown();
  }
}

Deno.test("Deno: auto goes through HTTP_PROXY as Deno's fetch does; NO_PROXY, HTTPS_PROXY alone, a CGI script and transport socket go straight to the target", async (t) => {
  await runCases("deno", [
    { name: "HTTP_PROXY", env: { HTTP_PROXY: "PROXY" }, proxied: true },
    { name: "http_proxy", env: { http_proxy: "PROXY" }, proxied: true },
    { name: "ALL_PROXY", env: { ALL_PROXY: "PROXY" }, proxied: true },
    {
      name: "NO_PROXY by network",
      env: { HTTP_PROXY: "PROXY", NO_PROXY: "10.0.0.0/8, 127.0.0.0/8" },
      proxied: false,
    },
    {
      name: "NO_PROXY by name",
      env: { HTTP_PROXY: "PROXY", NO_PROXY: "localhost" },
      host: "localhost",
      proxied: false,
    },
    {
      name: "HTTPS_PROXY for an http: URL",
      env: { HTTPS_PROXY: "PROXY" },
      proxied: false,
    },
    {
      name: "CGI script",
      env: { HTTP_PROXY: "PROXY", REQUEST_METHOD: "POST" },
      proxied: false,
    },
    {
      name: 'transport "socket" asked for',
      env: { HTTP_PROXY: "PROXY" },
      transport: "socket",
      proxied: false,
    },
    {
      name: 'transport "fetch" asked for',
      env: { HTTP_PROXY: "PROXY" },
      transport: "fetch",
      proxied: true,
    },
  ], t);
});

Deno.test("Deno without env access: the variables are not read (no prompt, no throw) and auto keeps the socket", async (t) => {
  await runCases(
    "deno",
    [
      {
        name: "HTTP_PROXY unread",
        env: { HTTP_PROXY: "PROXY" },
        proxied: false,
      },
    ],
    t,
    ["--allow-net", "--allow-read"],
  );
});

Deno.test("Bun: auto goes through HTTP_PROXY as Bun's fetch does, not past NO_PROXY", async (t) => {
  await runCases("bun", [
    { name: "HTTP_PROXY", env: { HTTP_PROXY: "PROXY" }, proxied: true },
    {
      name: "NO_PROXY",
      env: { HTTP_PROXY: "PROXY", NO_PROXY: "127.0.0.1" },
      proxied: false,
    },
  ], t);
});

Deno.test("Node 22: auto goes through HTTP_PROXY only under NODE_USE_ENV_PROXY=1, as Node's fetch does", async (t) => {
  await runCases("node22", [
    {
      name: "HTTP_PROXY alone (Node's fetch ignores it)",
      env: { HTTP_PROXY: "PROXY" },
      proxied: false,
    },
    {
      name: "HTTP_PROXY with NODE_USE_ENV_PROXY=1",
      env: { HTTP_PROXY: "PROXY", NODE_USE_ENV_PROXY: "1" },
      proxied: true,
    },
    {
      name: "HTTP_PROXY with NODE_OPTIONS=--use-env-proxy",
      env: { HTTP_PROXY: "PROXY", NODE_OPTIONS: "--use-env-proxy" },
      proxied: true,
    },
    {
      name: "HTTP_PROXY with NODE_USE_ENV_PROXY=true (Node wants 1)",
      env: { HTTP_PROXY: "PROXY", NODE_USE_ENV_PROXY: "true" },
      proxied: false,
    },
  ], t);
});
