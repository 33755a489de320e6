// A trigger seen by OpenTelemetry (private): its trace context on the wire, a
// CLIENT span covering the whole trigger, and two metrics. Nothing happens,
// and nothing is allocated, when no OpenTelemetry API is registered.
import { type PreparedRequest, sendableHeader } from "./_request.ts";
import type { TriggerOutcome } from "./types.ts";
import { readEnv } from "../_env.ts";
import {
  activeContext,
  type Attributes,
  defined,
  fetchPropagatesItself,
  inject,
  type Instrument,
  type Meter,
  meter,
  otel,
  type OtelContext,
  type OtelSpan,
  quietly,
  redact,
  type Registry,
  SpanKind,
  startSpan,
  STATUS_ERROR,
  urlFull,
  withContext,
} from "../telemetry/_otel.ts";

/** The metric counting triggers once they are over. */
export const TRIGGERS_METRIC = "fire_trigger.triggers";
/** The metric of how long callers waited for `trigger()` to resolve. */
export const WAIT_METRIC = "fire_trigger.wait.duration";

/** The methods semantic conventions know (RFC 9110, PATCH and QUERY). */
const DEFAULT_METHODS = [
  "CONNECT",
  "DELETE",
  "GET",
  "HEAD",
  "OPTIONS",
  "PATCH",
  "POST",
  "PUT",
  "QUERY",
  "TRACE",
];
/** Replaces the known methods (comma-separated), as semconv requires. */
export const KNOWN_METHODS_VARIABLE = "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS";

/**
 * The known methods: `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS` when it is set
 * (and readable without a prompt), else the default list. Never throws.
 */
export function readKnownMethods(): Set<string> {
  const value = readEnv(KNOWN_METHODS_VARIABLE);
  if (typeof value !== "string") return new Set(DEFAULT_METHODS);
  return new Set(
    value.split(",").map((method) => method.trim()).filter((m) => m !== ""),
  );
}

let knownMethods: Set<string> | undefined;

/** Buckets (s) for the caller's wait: it is often well under a millisecond. */
const WAIT_BUCKETS = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

let instrumentsOf: Meter | undefined;
let cached: { triggers: Instrument; wait: Instrument } | undefined;

/** The two instruments, made once per meter provider. */
function instruments(api: Registry): typeof cached {
  const current = meter(api);
  if (current === undefined) return undefined;
  if (current !== instrumentsOf) {
    cached = {
      triggers: current.createCounter(TRIGGERS_METRIC, {
        description: "Triggers by outcome, counted once each is over.",
        unit: "{trigger}",
      }),
      wait: current.createHistogram(WAIT_METRIC, {
        description: "How long callers waited for trigger() to resolve.",
        unit: "s",
        advice: { explicitBucketBoundaries: WAIT_BUCKETS },
      }),
    };
    instrumentsOf = current;
  }
  return cached;
}

/** What `run()` tells the trigger's telemetry as it goes. */
export interface TriggerTelemetry {
  /** Runs the send in the span's context (the runtime's fetch span nests). */
  within<T>(fn: () => T): T;
  /** The caller's promise resolved (`wait` reached, or a failure). */
  resumed(outcome: TriggerOutcome, elapsed: number): void;
  /** A stale reused connection: the request goes again on a fresh one. */
  resend(): void;
  /** The request waits for a connection (`true`), or stops waiting. */
  queue(waiting: boolean): void;
  /** The trigger is over. */
  end(outcome: TriggerOutcome): void;
}

/**
 * Starts a trigger's telemetry in the caller's context, and adds the trace
 * context headers the caller did not set to `req.headers`. Undefined when
 * OpenTelemetry is off.
 */
export function startTelemetry(
  req: PreparedRequest,
): TriggerTelemetry | undefined {
  const api = otel();
  if (api === undefined) return undefined;
  try {
    return new Telemetry(api, req);
  } catch {
    return undefined;
  }
}

// The caller waits only for the span's start and the headers: attributes
// beyond the ones sampling may use, the "resumed" event (with its own time)
// and the metrics are recorded when the trigger is over.
/** An error's message without the method and URL appended to it (the span
 * has them), any other URL in it redacted. */
function describe(
  error: { message: string; url?: string; method?: string },
  method: string,
): string {
  const target = `: ${error.method ?? method} ${error.url}`;
  const message = error.url !== undefined && error.message.endsWith(target)
    ? error.message.slice(0, -target.length)
    : error.message;
  return redact(message);
}

class Telemetry implements TriggerTelemetry {
  #api: Registry;
  #req: PreparedRequest;
  #span: OtelSpan | undefined;
  #context: OtelContext;
  #common: Attributes;
  #resends = 0;
  /** When the caller resumed (ms since the epoch), how long it waited, and
   * the error it saw. */
  #resumedAt = 0;
  #wait: number | undefined;
  #waitError: string | undefined;

  constructor(api: Registry, req: PreparedRequest) {
    this.#api = api;
    this.#req = req;
    const { url } = req;
    knownMethods ??= readKnownMethods();
    const method = knownMethods.has(req.method) ? req.method : "_OTHER";
    const tls = url.protocol === "https:";
    this.#common = {
      "http.request.method": method,
      "server.address": url.hostname.startsWith("[")
        ? url.hostname.slice(1, -1)
        : url.hostname,
      "server.port": url.port ? Number(url.port) : tls ? 443 : 80,
      "fire_trigger.transport": req.transport,
      "fire_trigger.wait": req.wait,
    };
    const parent = activeContext(api);
    // What semantic conventions list as available to samplers, at start.
    ({ span: this.#span, context: this.#context } = startSpan(
      api,
      // No URL template: the method, or "HTTP" for an unknown one.
      method === "_OTHER" ? "HTTP" : method,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          "http.request.method": method,
          "server.address": this.#common["server.address"],
          "server.port": this.#common["server.port"],
          "url.full": urlFull(req.href),
        },
      },
      parent,
    ));
    // Deno's own fetch injects its span's context itself; a fetch of the
    // caller's (a service binding, an app's handler) may not reach it.
    if (
      req.transport === "fetch" &&
      (req.fetch === undefined || req.fetch === globalThis.fetch) &&
      fetchPropagatesItself(api)
    ) return;
    let carrier;
    try {
      carrier = inject(api, this.#context);
    } catch (error) {
      // The caller sees no telemetry, so no span is left open either.
      quietly(() => this.#span?.end());
      throw error;
    }
    const added: Array<[string, string]> = [];
    const has = (lower: string) =>
      req.headers.some(([key]) => key.toLowerCase() === lower);
    // A `tracestate` belongs to its `traceparent` (W3C Trace Context): one
    // the caller set takes the propagator's `tracestate` out too.
    const ownParent = has("traceparent");
    for (const name in carrier) {
      const value = carrier[name];
      // A propagator's header that could not be sent as it is (a CR LF in a
      // name made from a baggage key, say) is left out: written raw, it
      // would add header lines of its own.
      if (!sendableHeader(name, value)) continue;
      // Headers the caller set win.
      const lower = name.toLowerCase();
      if (ownParent && lower === "tracestate") continue;
      if (!has(lower)) added.push([name, value]);
    }
    if (added.length > 0) {
      req.headers = [...req.headers, ...added];
    }
  }

  within<T>(fn: () => T): T {
    if (this.#span === undefined) return fn();
    return withContext(this.#api, this.#context, fn);
  }

  resumed(outcome: TriggerOutcome, elapsed: number): void {
    this.#resumedAt = performance.timeOrigin + performance.now();
    this.#wait = elapsed;
    this.#waitError = outcome.error?.code;
  }

  resend(): void {
    quietly(() => {
      this.#resends++;
      this.#span?.setAttribute("http.request.resend_count", this.#resends);
      this.#span?.addEvent("fire_trigger.resend", {
        "fire_trigger.resend.reason": "stale_connection",
      });
    });
  }

  queue(waiting: boolean): void {
    quietly(() =>
      this.#span?.addEvent(
        waiting ? "fire_trigger.queue.wait" : "fire_trigger.queue.leave",
      )
    );
  }

  end(outcome: TriggerOutcome): void {
    quietly(() => {
      const req = this.#req;
      const error = outcome.error?.code;
      const status = outcome.status;
      const span = this.#span;
      // Ended whatever the SDK throws on the way.
      if (span !== undefined) {
        try {
          span.setAttributes(defined({
            "fire_trigger.transport": req.transport,
            "fire_trigger.wait": req.wait,
            "http.request.method_original":
              this.#common["http.request.method"] === "_OTHER"
                ? req.method
                : undefined,
            "network.protocol.name": "http",
            "network.protocol.version": req.transport === "socket"
              ? "1.1"
              : undefined,
            "http.response.status_code": status,
            "error.type": error,
          }));
          if (this.#wait !== undefined) {
            span.addEvent(
              "fire_trigger.resumed",
              defined({
                "fire_trigger.wait": req.wait,
                "error.type": this.#waitError,
              }),
              this.#resumedAt,
            );
          }
          // Unset for any status below 400 (a 3xx included); no description
          // where the status code tells it; never the URL's query.
          if (error !== undefined && (status === undefined || status >= 400)) {
            span.setStatus(
              error === "HTTP_STATUS" ? { code: STATUS_ERROR } : {
                code: STATUS_ERROR,
                message: describe(outcome.error!, req.method),
              },
            );
          }
        } catch {
          // The SDK's failure: the metrics below are still recorded.
        } finally {
          span.end();
        }
      }
      const metrics = instruments(this.#api);
      if (metrics === undefined) return;
      // The transport as it ended: a socket trigger can fall back to fetch.
      this.#common["fire_trigger.transport"] = req.transport;
      if (this.#wait !== undefined) {
        metrics.wait.record?.(
          this.#wait / 1000,
          defined({ ...this.#common, "error.type": this.#waitError }),
        );
      }
      metrics.triggers.add?.(
        1,
        defined({
          ...this.#common,
          "http.response.status_code": status,
          "error.type": error,
          "fire_trigger.outcome": outcome.ok ? "ok" : "error",
        }),
      );
    });
  }
}
