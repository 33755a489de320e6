// The outbox continues the caller's trace (private): `outbox.trigger()`
// stores the trace context of a PRODUCER span with the job, and each
// delivery attempt is a CONSUMER span in that trace, with its attempt number.
// Nothing happens where no OpenTelemetry API is registered.
import {
  activeContext,
  type Carrier,
  extract,
  inject,
  otel,
  type OtelContext,
  type OtelSpan,
  quietly,
  redact,
  type Registry,
  SPAN_KEY,
  SpanKind,
  startSpan,
  STATUS_ERROR,
  urlFull,
  withContext,
} from "../telemetry/_otel.ts";

/** The span of storing one trigger; its context goes with the job. */
export interface EnqueueTrace {
  /** `traceparent` (and `tracestate`, `baggage`) to store with the job. */
  carrier: Carrier;
  /** Ends the span when `storing` settles; returns it unchanged. */
  follow<T>(storing: Promise<T>): Promise<T>;
}

/**
 * Starts the span of storing a trigger in `queue`, in the caller's context.
 * Undefined when OpenTelemetry is off.
 */
export function traceEnqueue(
  queue: string,
  jobId: string,
  url: string,
): EnqueueTrace | undefined {
  const api = otel();
  if (api === undefined) return undefined;
  try {
    const parent = activeContext(api);
    const { span, context } = startSpan(api, `send ${queue}`, {
      kind: SpanKind.PRODUCER,
      attributes: {
        "messaging.system": "pg-boss",
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
        "messaging.destination.name": queue,
        "messaging.message.id": jobId,
        "url.full": urlFull(url),
      },
    }, parent);
    const carrier = inject(api, context);
    return {
      carrier,
      follow: (storing) =>
        storing.then((value) => {
          quietly(() => span?.end());
          return value;
        }, (error) => {
          quietly(() => {
            // The error's code (`CLOSED`, `DATABASE`…), as the other spans.
            const code = (error as { code?: unknown })?.code;
            fail(
              span,
              typeof code === "string" ? code : (error as Error)?.name ??
                "_OTHER",
              error,
            );
            span?.end();
          });
          throw error;
        }),
    };
  } catch {
    return undefined;
  }
}

/** One delivery attempt's span. */
export interface AttemptTrace {
  /** Runs `fn` with the attempt's span active (the trigger nests in it). */
  within<T>(fn: () => T): T;
  /** The attempt is over: delivered (a 2xx), or failed with `error`. */
  end(delivered: boolean, error?: { code: string; message: string }): void;
}

/**
 * Starts the span of delivery attempt `attempt` of a job, a child of the
 * context stored with it. Undefined when OpenTelemetry is off.
 */
export function traceAttempt(
  stored: Carrier | undefined,
  queue: string,
  jobId: string,
  attempt: number,
): AttemptTrace | undefined {
  const api = otel();
  if (api === undefined) return undefined;
  try {
    return new Attempt(api, stored ?? {}, queue, jobId, attempt);
  } catch {
    return undefined;
  }
}

/** `@opentelemetry/api`'s context key of the baggage. */
const BAGGAGE_KEY = Symbol.for("OpenTelemetry Baggage Key");

/** The active context without its span and its baggage: what a job is
 * delivered from, whoever is active (the job's own context is extracted
 * into it). */
function cleared(api: Registry): OtelContext {
  return activeContext(api).setValue(SPAN_KEY, undefined)
    .setValue(BAGGAGE_KEY, undefined);
}

/** Runs `fn` in the active context without its span and baggage: the
 * dispatcher's loop and timers serve every caller's jobs, not the one that
 * started it (started inside a request, each poll's spans went under that
 * request, a trace that grew for as long as the process ran; and that
 * request's baggage went to every job's target). */
export function detached<T>(fn: () => T): T {
  const api = otel();
  if (api === undefined) return fn();
  let context: OtelContext | undefined;
  quietly(() => context = cleared(api));
  return context === undefined ? fn() : withContext(api, context, fn);
}

function fail(span: OtelSpan | undefined, code: string, error: unknown): void {
  span?.setAttribute("error.type", code);
  span?.setStatus({
    code: STATUS_ERROR,
    // The trigger's URL may be in it: its signature parameters redacted.
    message: redact(error instanceof Error ? error.message : String(error)),
  });
}

class Attempt implements AttemptTrace {
  #api: Registry;
  #span: OtelSpan | undefined;
  #context: OtelContext;

  constructor(
    api: Registry,
    stored: Carrier,
    queue: string,
    jobId: string,
    attempt: number,
  ) {
    this.#api = api;
    // The stored context, not whatever is active in the dispatcher (its
    // span or its baggage).
    const parent = extract(api, cleared(api), stored);
    ({ span: this.#span, context: this.#context } = startSpan(
      api,
      `process ${queue}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          "messaging.system": "pg-boss",
          "messaging.operation.name": "process",
          "messaging.operation.type": "process",
          "messaging.destination.name": queue,
          "messaging.message.id": jobId,
          "fire_trigger.attempt": attempt,
        },
      },
      parent,
    ));
  }

  within<T>(fn: () => T): T {
    return withContext(this.#api, this.#context, fn);
  }

  end(delivered: boolean, error?: { code: string; message: string }): void {
    quietly(() => {
      this.#span?.setAttribute("fire_trigger.delivered", delivered);
      if (error !== undefined) fail(this.#span, error.code, error.message);
      this.#span?.end();
    });
  }
}
