// Users import ./durable by URL: no import map, no deno.json. A child Deno
// with --no-config imports src/durable/mod.ts by its file URL, stores a
// trigger in an embedded outbox and delivers it.
import assert from "node:assert/strict";

Deno.test("./durable imported by URL without deno.json: opens, stores and delivers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox_import_" });
  const mod = new URL("../../src/durable/mod.ts", import.meta.url).href;
  const script = `
    const { openOutbox } = await import(${JSON.stringify(mod)});
    const got = Promise.withResolvers();
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} },
      (request) => { got.resolve(request.headers.get("webhook-id")); return new Response(null, { status: 200 }); });
    const outbox = await openOutbox({ dir: ${JSON.stringify(dir)} });
    const { id } = await outbox.trigger("http://127.0.0.1:" + server.addr.port + "/", { json: { a: 1 } });
    outbox.start({ pollInterval: 100 });
    const seen = await got.promise;
    await outbox.stop();
    await server.shutdown();
    console.log(seen === id ? "delivered" : "wrong id " + seen);
  `;
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-config", "--no-lock", "-"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(script));
    await writer.close();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const output = await Promise.race([
      child.output(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill("SIGKILL");
          reject(new Error("the child did not finish in 120 s"));
        }, 120_000);
      }),
    ]).finally(() => clearTimeout(timer));
    const decoder = new TextDecoder();
    assert.equal(output.code, 0, decoder.decode(output.stderr));
    assert.equal(decoder.decode(output.stdout).trim(), "delivered");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
