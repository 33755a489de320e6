// Nothing lost on the default path: stale keep-alive connections against
// real servers, counted at the receiver. Each scenario fires 1 KB POSTs with
// the default options (wait "sent", reuse, resend) and compares what each
// trigger's outcome says with the intact bodies the server counted: lost
// (ok but never received), duplicated (received twice), misreported (a
// failure that was received). Timeouts are shrunk (300 ms idle) so a
// scenario takes seconds.
import assert from "node:assert/strict";
import {
  closeIdleConnections,
  trigger,
  type TriggerOutcome,
} from "../../mod.ts";
import { connectionCounts } from "../../src/transport/_pool.ts";
import {
  type CountingTarget,
  lossBody,
  nodeClusterTarget,
  pythonIdleTarget,
  rawClosingTarget,
} from "../_stale_servers.ts";
import { within } from "../_wait.ts";
import { findExecutable, skipUnless } from "../_env.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the receiver saw against what the sender was told. */
interface Tally {
  fired: number;
  received: number;
  /** Outcomes `ok`. */
  ok: number;
  /** Outcomes not `ok`, by error code. */
  failed: Record<string, number>;
  /** Resolved `ok: true` (the caller moved on) but never received. */
  lost: number;
  /** Received more than once. */
  duplicated: number;
  /** `result.outcome` disagrees with the receiver: ok but never received,
   * or a failure that was received. */
  misreported: number;
}

interface Fired {
  /** What `trigger()` resolved with: the caller moves on when true. */
  resolvedOk: boolean;
  outcome: TriggerOutcome;
}

/** Fires one default trigger with body `id`. */
async function fire(url: string, id: string): Promise<Fired> {
  const result = await trigger(url, {
    body: lossBody(id),
    headers: { "content-type": "application/json" },
    timeout: 5_000,
  });
  return { resolvedOk: result.ok, outcome: await result.outcome };
}

/** Runs `scenario` (which records outcomes by id), stops the target, and
 * compares. */
async function count(
  name: string,
  target: CountingTarget,
  scenario: (outcomes: Map<string, Promise<Fired>>) => Promise<void>,
): Promise<Tally> {
  await closeIdleConnections(); // nothing learned from earlier tests
  const outcomes = new Map<string, Promise<Fired>>();
  let received: Map<string, number>;
  try {
    await within(scenario(outcomes), `${name} scenario`, 30_000);
    await within(Promise.all(outcomes.values()), `${name} outcomes`, 10_000);
    await sleep(100); // the receiver's last lines
  } finally {
    await closeIdleConnections();
    received = await target.stop();
  }
  assert.deepEqual(
    connectionCounts(),
    { open: 0, waiting: 0 },
    "every connection's place was given back",
  );
  const tally: Tally = {
    fired: outcomes.size,
    received: 0,
    ok: 0,
    failed: {},
    lost: 0,
    duplicated: 0,
    misreported: 0,
  };
  for (const [id, promise] of outcomes) {
    const { resolvedOk, outcome } = await promise;
    const times = received.get(id) ?? 0;
    if (times > 0) tally.received++;
    if (times > 1) tally.duplicated++;
    if (resolvedOk && times === 0) tally.lost++;
    if (outcome.ok) {
      tally.ok++;
      if (times === 0) tally.misreported++;
    } else {
      const code = outcome.error?.code ?? "?";
      tally.failed[code] = (tally.failed[code] ?? 0) + 1;
      if (times > 0) tally.misreported++;
    }
  }
  console.log(`${name}: ${JSON.stringify(tally)}`);
  return tally;
}

function assertNothingLost(tally: Tally): void {
  assert.equal(tally.lost, 0, "ok but never received");
  assert.equal(tally.duplicated, 0, "received twice");
  assert.equal(tally.misreported, 0, "the outcome disagrees with the receiver");
  assert.equal(tally.ok, tally.fired, `failures: ${JSON.stringify(tally)}`);
  assert.equal(tally.received, tally.fired);
}

/**
 * `senders` loops, each firing `rounds` triggers with a pause of `gapMs` to
 * `gapMs + spreadMs` after each one's outcome: each sender's next trigger
 * finds its connection idle for about as long as the server's timeout.
 */
function idleRace(
  url: string,
  senders: number,
  rounds: number,
  gapMs: number,
  spreadMs: number,
) {
  return async (outcomes: Map<string, Promise<Fired>>) => {
    await Promise.all(
      Array.from({ length: senders }, async (_, s) => {
        for (let r = 0; r < rounds; r++) {
          const id = `s${s}-r${r}`;
          const outcome = fire(url, id);
          outcomes.set(id, outcome);
          await outcome;
          await sleep(gapMs + Math.random() * spreadMs);
        }
      }),
    );
  };
}

Deno.test({
  name:
    "loss: Python http.server closing idle connections after 300 ms, unannounced",
  ignore: skipUnless(
    findExecutable("python3") !== undefined,
    "python3 is not installed (Python's http.server is the target)",
  ),
}, async () => {
  const target = await pythonIdleTarget(300);
  const tally = await count(
    "python http.server, 300 ms idle",
    target,
    idleRace(target.url, 10, 8, 298, 3),
  );
  assertNothingLost(tally);
});

Deno.test("loss: a raw server with an unannounced 300 ms idle close", async () => {
  const target = rawClosingTarget({ idleMs: 300 });
  const tally = await count(
    "raw Deno, 300 ms idle close",
    target,
    idleRace(target.url, 10, 8, 298, 3),
  );
  assertNothingLost(tally);
});

Deno.test("loss: a server that closes 1–3 ms after each response, without Connection: close", async () => {
  const target = rawClosingTarget({ closeAfterMs: [1, 3] });
  const tally = await count(
    "closes 1-3 ms after each response",
    target,
    async (outcomes) => {
      for (let i = 0; i < 50; i++) {
        const id = `q${i}`;
        const outcome = fire(target.url, id);
        outcomes.set(id, outcome);
        await outcome;
        await sleep(Math.random() * 3);
      }
    },
  );
  assertNothingLost(tally);
});

Deno.test("loss: a Node http cluster restarted gracefully under steady load", async () => {
  const target = await nodeClusterTarget();
  const tally = await count(
    "Node cluster, 3 graceful restarts under load",
    target,
    async (outcomes) => {
      let running = true;
      const senders = Array.from({ length: 8 }, async (_, s) => {
        for (let r = 0; running && r < 2_000; r++) {
          const id = `n${s}-${r}`;
          const outcome = fire(target.url, id);
          outcomes.set(id, outcome);
          await outcome;
          await sleep(2);
        }
      });
      for (let restart = 0; restart < 3; restart++) {
        await sleep(250);
        await target.restart();
      }
      await sleep(250);
      running = false;
      await Promise.all(senders);
    },
  );
  assertNothingLost(tally);
});
