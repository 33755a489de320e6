// The receiving side on the active server span (private): what
// verifyTrigger() and connection() know, as attributes. Nothing happens
// where no OpenTelemetry API is registered.
import {
  activeContext,
  type Attributes,
  defined,
  otel,
  type OtelSpan,
  quietly,
  SpanKind,
  spanOf,
  startSpan,
  STATUS_ERROR,
  withContext,
} from "../telemetry/_otel.ts";

/** Adds `attributes` to the active span (the server span of the request). */
export function annotate(attributes: Attributes): void {
  const api = otel();
  if (api === undefined) return;
  quietly(() => spanOf(activeContext(api))?.setAttributes(defined(attributes)));
}

/** The final status, as `fire_trigger.connection.status` shows it. */
function statusName(status: number): string {
  if (status === 0) return "normal";
  const names = [];
  if (status & 1) names.push("aborted");
  if (status & 2) names.push("timeout");
  return names.join(",");
}

/** What the middleware tells the connection's span, where one is traced. */
export interface ConnectionTrace {
  /** Without `ack`: records the status at an early answer (a 503, a 499):
   * the server span ends with it, before the route (and so the work) does. */
  early?: (status: number) => void;
  /** With `ack`: runs `fn` (the background run) in the context of the span
   * covering it, so what it traces (a trigger() it fires) is its child. */
  within<T>(fn: () => T): T;
  /** With `ack`: the background route threw `error` (its span shows it). */
  failed(error: unknown): void;
}

/**
 * Records a connection's final status once its work is over: on the active
 * server span, or with `ack` (the server span ends with the early 202) on a
 * span of its own covering the background work. Undefined where nothing is
 * traced.
 */
export function traceConnection(
  conn: { readonly finished: Promise<number> },
  ack: boolean,
): ConnectionTrace | undefined {
  const api = otel();
  if (api === undefined) return undefined;
  let trace: ConnectionTrace | undefined;
  quietly(() => {
    const parent = activeContext(api);
    let span: OtelSpan | undefined;
    let context = parent;
    if (ack) {
      ({ span, context } = startSpan(api, "connection background", {
        kind: SpanKind.INTERNAL,
        attributes: { "fire_trigger.connection.ack": true },
      }, parent));
    } else {
      span = spanOf(parent);
    }
    if (span === undefined) return;
    const traced = span;
    trace = {
      early: ack ? undefined : (status) =>
        quietly(() =>
          traced.setAttributes({
            "fire_trigger.connection.status": statusName(status),
          })
        ),
      within: (fn) => withContext(api, context, fn),
      failed: (error) =>
        quietly(() => {
          traced.setAttribute("error.type", errorType(error));
          traced.setStatus({ code: STATUS_ERROR });
        }),
    };
    conn.finished.then((status) =>
      quietly(() => {
        traced.setAttributes({
          "fire_trigger.connection.status": statusName(status),
        });
        if (ack) traced.end();
      })
    );
  });
  return trace;
}

/** `error.type` of the semantic conventions for a throw: its class's
 * name, or `_OTHER` for a throw that is no Error. */
function errorType(error: unknown): string {
  if (!(error instanceof Error)) return "_OTHER";
  const name = error.constructor?.name || error.name;
  return typeof name === "string" && name !== "" ? name : "_OTHER";
}
