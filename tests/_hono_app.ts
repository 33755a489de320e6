// The Hono app the tests of src/hono/ run on Deno.serve, on Node through
// @hono/node-server and behind nginx. Each request names a record with
// `?id=`; the test reads it back from `GET /log/:id`.
import { Hono } from "hono";
import {
  connection,
  type ConnectionEnv,
  drainBackground,
  verifyTrigger,
} from "../src/hono/mod.ts";

/** The signing secret of the app's `/verified` route. */
export const HONO_TEST_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/** What a route saw; read back from `GET /log/:id`. */
export interface HonoRecord {
  /** Statuses the shutdown functions received, one per call. */
  shutdown: number[];
  /** Whether the work loop ran to its end. */
  completed: boolean;
  /** The signal's reason name when the loop stopped on it. */
  stoppedBy?: string;
  /** Whether `conn.aborted` was seen true during the work. */
  sawAborted: boolean;
  /** The body length the route read, or the body itself for ack routes. */
  body?: unknown;
  /** The body read error's name, when reading failed. */
  bodyError?: string;
  /** The status 100 ms after the work ended (after Deno's legacy abort). */
  later?: number;
  /**
   * Whether the request's own signal had aborted 100 ms after the work
   * ended: Deno.serve's legacy abort on a successful answer.
   */
  requestSignalAborted?: boolean;
  /** Milliseconds from the request start to the first shutdown call. */
  shutdownAt?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Builds the test app; `errors` collects what `reportError` reported. */
export function createHonoTestApp(): {
  app: Hono<ConnectionEnv>;
  records: Map<string, HonoRecord>;
  errors: unknown[];
} {
  const records = new Map<string, HonoRecord>();
  const errors: unknown[] = [];
  const app = new Hono<ConnectionEnv>();
  // Quiet: the tests read errors from `errors`, not from the console.
  app.onError((error, c) => {
    errors.push(error);
    return c.text("Internal Server Error", 500);
  });
  const record = (id: string): HonoRecord => {
    const rec: HonoRecord = {
      shutdown: [],
      completed: false,
      sawAborted: false,
    };
    records.set(id, rec);
    return rec;
  };

  // A slow route that checks its connection every 10 ms.
  // ms: work length; ignore=1: ignoreUserAbort(true); limit: ms;
  // restart: ms at which setTimeLimit(limit) is called again;
  // readAfter: ms to wait before reading the body (default: at once).
  app.all("/work", connection(), async (c) => {
    const start = performance.now();
    const conn = c.var.connection;
    const q = (name: string) => c.req.query(name);
    const rec = record(q("id") ?? "none");
    conn.onShutdown((status) => {
      rec.shutdown.push(status);
      rec.shutdownAt ??= performance.now() - start;
      setTimeout(() => {
        rec.later = conn.status;
        rec.requestSignalAborted = c.req.raw.signal.aborted;
      }, 100);
    });
    if (q("ignore") === "1") conn.ignoreUserAbort(true);
    const limit = Number(q("limit") ?? 0);
    if (limit > 0) conn.setTimeLimit(limit);
    const ms = Number(q("ms") ?? 1000);
    const restart = Number(q("restart") ?? -1);
    const readAfter = Number(q("readAfter") ?? 0);
    let restarted = false;
    let read = c.req.method !== "POST";
    while (performance.now() - start < ms) {
      const elapsed = performance.now() - start;
      if (!read && elapsed >= readAfter) {
        read = true;
        try {
          rec.body = (await c.req.text()).length;
        } catch (error) {
          rec.bodyError = (error as Error).name;
        }
      }
      if (!restarted && restart >= 0 && elapsed >= restart) {
        restarted = true;
        conn.setTimeLimit(limit);
      }
      if (conn.aborted) rec.sawAborted = true;
      if (conn.signal.aborted) {
        rec.stoppedBy = (conn.signal.reason as Error).name;
        return c.text("stopped", 500);
      }
      await sleep(10);
    }
    rec.completed = true;
    return c.json({ status: conn.status });
  });

  // Early ack: reads the JSON body, works `ms`, records the body.
  app.post(
    "/ack",
    connection({ ack: true, reportError: (error) => void errors.push(error) }),
    async (c) => {
      const conn = c.var.connection;
      const rec = record(c.req.query("id") ?? "none");
      conn.onShutdown((status) => void rec.shutdown.push(status));
      const body = await c.req.json();
      await sleep(Number(c.req.query("ms") ?? 2000));
      if (c.req.query("fail") === "1") {
        throw new Error("background work failed");
      }
      rec.body = body;
      rec.completed = true;
      return c.json({ ignored: true });
    },
  );

  // Early ack with a form body read through parseBody() and a body limit.
  app.post(
    "/ack-form",
    connection({ ack: true, maxBodySize: 4096 }),
    async (c) => {
      const rec = record(c.req.query("id") ?? "none");
      c.var.connection.onShutdown((status) => void rec.shutdown.push(status));
      rec.body = await c.req.parseBody();
      rec.completed = true;
      return c.body(null);
    },
  );

  // verifyTrigger() alone: answers with the body it let through.
  app.post(
    "/verified",
    verifyTrigger({ secret: HONO_TEST_SECRET }),
    async (c) => c.text(await c.req.text()),
  );

  app.get("/log/:id", (c) => {
    const rec = records.get(c.req.param("id"));
    return rec ? c.json(rec) : c.json(null, 404);
  });
  app.get("/count", (c) => {
    const prefix = c.req.query("prefix") ?? "";
    let seen = 0;
    let completed = 0;
    for (const [id, rec] of records) {
      if (!id.startsWith(prefix)) continue;
      seen++;
      if (rec.completed) completed++;
    }
    return c.json({ seen, completed });
  });
  app.post("/drain", async (c) => c.json({ drained: await drainBackground() }));
  return { app, records, errors };
}
