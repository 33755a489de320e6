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
  tracer,
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

/**
 * Records a connection's final status once its work is over: on the active
 * server span, or with `ack` (the server span ends with the early 202) on a
 * span of its own covering the background work. Returns, without `ack`,
 * what records the status at an early answer (a 503, a 499): the server
 * span ends with it, before the route (and so the work) does.
 */
export function traceConnection(
  conn: { readonly finished: Promise<number> },
  ack: boolean,
): ((status: number) => void) | undefined {
  const api = otel();
  if (api === undefined) return undefined;
  let early: ((status: number) => void) | undefined;
  quietly(() => {
    const parent = activeContext(api);
    let span: OtelSpan | undefined;
    if (ack) {
      span = tracer(api)?.startSpan("connection background", {
        kind: SpanKind.INTERNAL,
        attributes: { "fire_trigger.connection.ack": true },
      }, parent);
    } else {
      span = spanOf(parent);
    }
    if (span === undefined) return;
    const traced = span;
    if (!ack) {
      early = (status) =>
        quietly(() =>
          traced.setAttributes({
            "fire_trigger.connection.status": statusName(status),
          })
        );
    }
    conn.finished.then((status) =>
      quietly(() => {
        span.setAttributes({
          "fire_trigger.connection.status": statusName(status),
        });
        if (ack) span.end();
      })
    );
  });
  return early;
}
