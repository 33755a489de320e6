// OpenTelemetry without a dependency: the `@opentelemetry/api` global
// registry, read as it is. Deno's built-in OpenTelemetry (`OTEL_DENO=true`)
// fills it at startup (ext/telemetry/telemetry.ts registers its
// TracerProvider, ContextManager, MeterProvider and W3C propagators under
// `Symbol.for("opentelemetry.js.api.1")`); on Node and Bun,
// `@opentelemetry/api` fills it when the application registers an SDK. Where
// nobody did, the registry is absent and everything here costs one lookup.
import { VERSION } from "../trigger/_version.ts";
import {
  isSecretParam,
  redactParameters,
  redactQueryValues,
} from "../_redact.ts";

/** The instrumentation scope of every span and metric this module makes. */
export const SCOPE = "@fire/trigger";
export { VERSION };

const REGISTRY = Symbol.for("opentelemetry.js.api.1");
/** `@opentelemetry/api`'s context key of the active span. */
export const SPAN_KEY: unique symbol = Symbol.for(
  "OpenTelemetry Context Key SPAN",
);

/** Span kinds, as numbered by `@opentelemetry/api`. */
export const SpanKind = {
  INTERNAL: 0,
  SERVER: 1,
  CLIENT: 2,
  PRODUCER: 3,
  CONSUMER: 4,
} as const;
/** `SpanStatusCode.ERROR` of `@opentelemetry/api`. */
export const STATUS_ERROR = 2;

/** Attribute values OpenTelemetry accepts. */
export type AttributeValue = string | number | boolean;
/** A set of attributes. */
export type Attributes = Record<string, AttributeValue | undefined>;

/** The part of `Context` used here. */
export interface OtelContext {
  getValue(key: symbol): unknown;
  setValue(key: symbol, value: unknown): OtelContext;
}

/** The part of `Span` used here. */
export interface OtelSpan {
  spanContext(): { traceId: string; spanId: string; traceFlags: number };
  setAttribute(key: string, value: AttributeValue): unknown;
  setAttributes(attributes: Attributes): unknown;
  addEvent(name: string, attributes?: Attributes, time?: number): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  end(): void;
  isRecording(): boolean;
}

/** `attributes` without the undefined ones. */
export function defined(
  attributes: Attributes,
): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const key in attributes) {
    const value = attributes[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

interface Tracer {
  startSpan(
    name: string,
    options?: { kind?: number; attributes?: Attributes },
    context?: OtelContext,
  ): OtelSpan;
}

/** A counter or histogram. */
export interface Instrument {
  add?(value: number, attributes?: Attributes): void;
  record?(value: number, attributes?: Attributes): void;
}

/** The part of `Meter` used here. */
export interface Meter {
  createCounter(
    name: string,
    options?: { description?: string; unit?: string },
  ): Instrument;
  createHistogram(
    name: string,
    options?: {
      description?: string;
      unit?: string;
      advice?: { explicitBucketBoundaries?: number[] };
    },
  ): Instrument;
}

type Setter = { set(carrier: Carrier, key: string, value: string): void };
type Getter = {
  keys(carrier: Carrier): string[];
  get(carrier: Carrier, key: string): string | undefined;
};
/** Propagation headers, lower-case names. */
export type Carrier = Record<string, string>;

/** What the global registry holds (each member only once registered). */
export interface Registry {
  version?: string;
  trace?: { getTracer(name: string, version?: string): Tracer };
  context?: {
    active(): OtelContext;
    with<T>(context: OtelContext, fn: () => T): T;
  };
  metrics?: { getMeter(name: string, version?: string): Meter };
  propagation?: {
    inject(context: OtelContext, carrier: Carrier, setter: Setter): void;
    extract(
      context: OtelContext,
      carrier: Carrier,
      getter: Getter,
    ): OtelContext;
  };
}

/**
 * The registered OpenTelemetry API (major version 1), or undefined: the one
 * check every instrumented call pays when OpenTelemetry is off.
 */
export function otel(): Registry | undefined {
  const api = (globalThis as Record<symbol, unknown>)[REGISTRY];
  if (typeof api !== "object" || api === null) return undefined;
  const { version } = api as Registry;
  return typeof version === "string" && version.startsWith("1.")
    ? api as Registry
    : undefined;
}

/** An empty context, for a registry without a context manager. */
class EmptyContext implements OtelContext {
  #values: Map<symbol, unknown>;
  constructor(values = new Map<symbol, unknown>()) {
    this.#values = values;
  }
  getValue(key: symbol): unknown {
    return this.#values.get(key);
  }
  setValue(key: symbol, value: unknown): OtelContext {
    return new EmptyContext(new Map(this.#values).set(key, value));
  }
}

/** The active context, or an empty one. */
export function activeContext(api: Registry): OtelContext {
  return api.context?.active() ?? new EmptyContext();
}

/** The span active in `context`, if any. */
export function spanOf(context: OtelContext): OtelSpan | undefined {
  const span = context.getValue(SPAN_KEY) as OtelSpan | undefined;
  return typeof span?.spanContext === "function" ? span : undefined;
}

const setter: Setter = {
  set(carrier, key, value) {
    carrier[key.toLowerCase()] = value;
  },
};
const getter: Getter = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key.toLowerCase()],
};

/** The propagation headers (`traceparent`, …) of `context`. */
export function inject(api: Registry, context: OtelContext): Carrier {
  const carrier: Carrier = {};
  api.propagation?.inject(context, carrier, setter);
  return carrier;
}

/** `context` with what `carrier` propagates. */
export function extract(
  api: Registry,
  context: OtelContext,
  carrier: Carrier,
): OtelContext {
  return api.propagation?.extract(context, carrier, getter) ?? context;
}

let tracerOf: Registry["trace"];
let cachedTracer: Tracer | undefined;

/** This module's tracer, or undefined where no tracer provider is registered. */
export function tracer(api: Registry): Tracer | undefined {
  const provider = api.trace;
  if (provider === undefined) return undefined;
  if (provider !== tracerOf) {
    cachedTracer = provider.getTracer(SCOPE, VERSION);
    tracerOf = provider;
  }
  return cachedTracer;
}

/** A span started under a parent, and the context it is active in. */
export interface Started {
  /** Undefined where no tracer provider is registered. */
  span: OtelSpan | undefined;
  /** `parent` with the span set in it (`parent` itself without a span). */
  context: OtelContext;
}

/** Starts this module's span `name` under `parent`: the span, and the
 * context to run its work in and to propagate. */
export function startSpan(
  api: Registry,
  name: string,
  options: { kind: number; attributes: Attributes },
  parent: OtelContext,
): Started {
  const span = tracer(api)?.startSpan(name, options, parent);
  if (span === undefined) return { span, context: parent };
  try {
    return { span, context: parent.setValue(SPAN_KEY, span) };
  } catch (error) {
    // No context to run in: the span is not left open.
    try {
      span.end();
    } catch {
      // The SDK's own failure: the first error says more.
    }
    throw error;
  }
}

let meterOf: Registry["metrics"];
let cachedMeter: Meter | undefined;

/** This module's meter, or undefined where no meter provider is registered. */
export function meter(api: Registry): Meter | undefined {
  const provider = api.metrics;
  if (provider === undefined) return undefined;
  if (provider !== meterOf) {
    cachedMeter = provider.getMeter(SCOPE, VERSION);
    meterOf = provider;
  }
  return cachedMeter;
}

/**
 * Whether the runtime's own `fetch` starts a client span and injects its
 * context itself: Deno's built-in tracing does (and appends a second
 * `traceparent` to one already set), so the fetch transport leaves it that.
 */
export function fetchPropagatesItself(api: Registry): boolean {
  const deno = (globalThis as {
    Deno?: { telemetry?: { tracerProvider?: unknown } };
  }).Deno;
  return api.trace !== undefined &&
    api.trace === deno?.telemetry?.tracerProvider;
}

/** Runs `fn` and reports nothing it throws: telemetry never breaks a call. */
export function quietly(fn: () => void): void {
  try {
    fn();
  } catch {
    // An OpenTelemetry implementation that throws is not the caller's problem.
  }
}

/**
 * Runs `fn` in `context` through the registered context manager, once. A
 * manager that throws, never calls `fn` (or only later), or calls it again
 * cannot stop the work nor repeat it: `fn` then runs without the context,
 * and only once. What `fn` itself throws is thrown as ever.
 */
export function withContext<T>(
  api: Registry,
  context: OtelContext,
  fn: () => T,
): T {
  let manager: Registry["context"];
  quietly(() => manager = api.context);
  if (manager === undefined) return fn();
  let ran = false;
  let value!: T;
  let thrown: { error: unknown } | undefined;
  // A later call (a buggy manager's) runs nothing and gets the first
  // result, so a manager that uses it (`.then()`) does not throw.
  const once = () => {
    if (!ran) {
      ran = true;
      try {
        value = fn();
      } catch (error) {
        thrown = { error };
      }
    }
    return value;
  };
  quietly(() => manager!.with(context, once));
  if (!ran) {
    ran = true;
    value = fn();
    return value;
  }
  if (thrown !== undefined) throw thrown.error;
  return value;
}

/** Query parameters that carry signatures or keys (presigned URLs): the
 * semantic conventions' list (`url.query`), with AWS SigV4's. */
const SENSITIVE_QUERY = [
  "AWSAccessKeyId",
  "Signature",
  "sig",
  "X-Goog-Signature",
  "X-Amz-Signature",
  "X-Amz-Credential",
  "X-Amz-Security-Token",
];

const SENSITIVE = new Set(SENSITIVE_QUERY);

/** The conventions' names as written; beyond them, any name that reads as
 * a secret (`token`, `api_key`, `password`…), as the outbox's views hide. */
function sensitive(name: string): boolean {
  return SENSITIVE.has(name) || isSecretParam(name);
}

/** `text` with the values of sensitive parameters in the URLs it quotes
 * redacted; everything else byte for byte. */
export function redact(text: string): string {
  return redactQueryValues(text, "REDACTED", sensitive);
}

/** `url.full` of the semantic conventions: the values of signature
 * parameters redacted, in the query and in a fragment written as one (an
 * OAuth `#access_token=…`: never sent, but a secret all the same), the rest
 * of the URL byte for byte (credentials are never in `href`s prepared by
 * `trigger()`). */
export function urlFull(href: string): string {
  const hash = href.indexOf("#");
  const end = hash === -1 ? href.length : hash;
  const first = href.indexOf("?");
  const query = first !== -1 && first < end ? first : -1;
  if (query === -1 && hash === -1) return href;
  return (query === -1 ? href.slice(0, end) : href.slice(0, query + 1) +
    redactParameters(href.slice(query + 1, end), "REDACTED", sensitive)) +
    (hash === -1 ? "" : "#" +
      redactParameters(href.slice(hash + 1), "REDACTED", sensitive, true));
}
