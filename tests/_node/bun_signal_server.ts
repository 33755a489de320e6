// Bun.serve without Hono, run by tests/platforms/node_bun_test.ts with
// `bun`: records what request.signal does per request (?id=), read back from
// GET /log. ?ms= work time, ?read=1 reads the body first, ?readlate=1 after
// the work. Prints the port.
declare const Bun: {
  serve(options: {
    fetch: (request: Request) => Response | Promise<Response>;
    hostname: string;
    port: number;
  }): { port: number };
};

interface Entry {
  abortedAfter?: number;
  reason?: string;
  body?: number;
  bodyError?: string;
  answered?: boolean;
}

const log: Record<string, Entry> = {};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function readBody(request: Request, entry: Entry): Promise<void> {
  try {
    entry.body = (await request.text()).length;
  } catch (error) {
    entry.bodyError = (error as Error).name;
  }
}

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === "/log") return Response.json(log);
    const entry: Entry = log[url.searchParams.get("id")!] = {};
    const start = performance.now();
    request.signal.addEventListener("abort", () => {
      entry.abortedAfter = Math.round(performance.now() - start);
      entry.reason = (request.signal.reason as Error)?.name;
    });
    if (url.searchParams.has("read")) await readBody(request, entry);
    await sleep(Number(url.searchParams.get("ms") ?? 0));
    if (url.searchParams.has("readlate")) await readBody(request, entry);
    entry.answered = true;
    return new Response("ok");
  },
});
console.log(JSON.stringify({ port: server.port }));
