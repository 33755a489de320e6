// A sender for tests/trigger/endless_body_test.ts, on Deno, Node (bundled)
// or Bun: for each transport, one trigger whose body is a stream that never
// ends (a 1 KiB chunk per pull, a millisecond apart) ends at its timeout,
// and one at its caller's abort; prints one JSON line: per case, the code,
// whether the stream was cancelled, and how many chunks were pulled at the
// end and 300 ms after it; and the code of a stream whose chunk is a string.
import { trigger } from "../../mod.ts";

const runtime = globalThis as {
  Deno?: { args: string[] };
  process?: { argv: string[] };
};
const url = runtime.Deno?.args[0] ?? runtime.process!.argv[2];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const cases = [];
for (const transport of ["socket", "fetch"] as const) {
  for (const end of ["timeout", "abort"] as const) {
    let pulled = 0;
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        pulled++;
        await sleep(1);
        controller.enqueue(new Uint8Array(1024));
      },
      cancel() {
        cancelled = true;
      },
    });
    const abort = new AbortController();
    if (end === "abort") setTimeout(() => abort.abort(), 300);
    const result = await trigger(url, {
      body,
      transport,
      timeout: end === "timeout" ? 300 : 10_000,
      signal: abort.signal,
    });
    const atEnd = pulled;
    await sleep(300);
    cases.push({
      transport,
      end,
      code: result.error?.code,
      cancelled,
      atEnd,
      later: pulled,
    });
  }
}
// A chunk that is a string: BODY on every runtime (Bun's Request took it).
const stringChunk = await trigger(url, {
  body: new ReadableStream({
    start(controller) {
      controller.enqueue("abc" as unknown as Uint8Array);
      controller.close();
    },
  }),
  timeout: 5_000,
});
console.log(
  JSON.stringify({ cases, stringChunk: stringChunk.error?.code ?? "ok" }),
);
