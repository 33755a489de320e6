// The socket transport's TLS ClientHello offers ALPN "http/1.1" on every
// runtime (Node's and Bun's connections did; Deno's offered none).
import assert from "node:assert/strict";
import { closeIdleConnections, trigger } from "../../mod.ts";
import { makeCert } from "../_servers.ts";
import { findExecutable, skipUnless } from "../_env.ts";

Deno.test({
  name:
    "the socket transport over TLS offers ALPN http/1.1 (a server offering h2 and http/1.1 settles on http/1.1)",
  ignore: skipUnless(
    findExecutable("openssl") !== undefined,
    "openssl is needed to make a certificate",
  ),
  async fn() {
    const tls = await makeCert();
    const listener = Deno.listenTls({
      hostname: "127.0.0.1",
      port: 0,
      cert: tls.cert,
      key: tls.key,
      alpnProtocols: ["h2", "http/1.1"],
    });
    const negotiated: Array<string | null> = [];
    const served = (async () => {
      const conn = await listener.accept();
      try {
        negotiated.push((await conn.handshake()).alpnProtocol);
        const buffer = new Uint8Array(4_096);
        let head = "";
        while (!head.includes("\r\n\r\n")) {
          const n = await conn.read(buffer);
          if (n === null) return;
          head += new TextDecoder().decode(buffer.subarray(0, n));
        }
        await conn.write(
          new TextEncoder().encode(
            "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
          ),
        );
      } finally {
        conn.close();
      }
    })();
    try {
      const { port } = listener.addr as Deno.NetAddr;
      const result = await trigger(`https://127.0.0.1:${port}/`, {
        transport: "socket",
        caCerts: [tls.cert],
        wait: "accepted",
        timeout: 10_000,
      });
      assert.equal(result.ok, true, String(result.error));
      assert.equal(result.status, 204);
      await result.done;
      await served;
      assert.deepEqual(negotiated, ["http/1.1"]);
    } finally {
      listener.close();
      await closeIdleConnections();
    }
  },
});
