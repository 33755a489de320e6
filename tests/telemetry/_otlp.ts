// An OTLP/HTTP JSON receiver on 127.0.0.1 and a runner that starts a Deno
// subprocess with Deno's built-in OpenTelemetry exporting to it.

/** A received span, attributes flattened. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP numbering: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  scope: string;
  attributes: Record<string, unknown>;
  events: Array<
    { name: string; time: bigint; attributes: Record<string, unknown> }
  >;
  status: { code?: number; message?: string };
  /** Unix nanoseconds. */
  start: bigint;
  end: bigint;
}

/** A received metric data point, attributes flattened. */
export interface ReceivedPoint {
  metric: string;
  unit: string;
  scope: string;
  attributes: Record<string, unknown>;
  /** A sum's value. */
  value?: number;
  /** A histogram's count and sum. */
  count?: number;
  sum?: number;
}

/** What a subprocess printed and exported. */
export interface OtelRun {
  stdout: string;
  spans: ReceivedSpan[];
  points: ReceivedPoint[];
}

type AnyValue = {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
};
type KeyValue = { key: string; value: AnyValue };

function flat(list: KeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) {
    out[key] = value.stringValue ?? value.boolValue ?? value.doubleValue ??
      (value.intValue === undefined ? undefined : Number(value.intValue));
  }
  return out;
}

// deno-lint-ignore no-explicit-any
type Json = any;

function spansOf(body: Json): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const resource of body.resourceSpans ?? []) {
    for (const scoped of resource.scopeSpans ?? []) {
      for (const span of scoped.spans ?? []) {
        out.push({
          traceId: span.traceId,
          spanId: span.spanId,
          parentSpanId: span.parentSpanId ?? "",
          name: span.name,
          kind: span.kind,
          scope: scoped.scope?.name ?? "",
          attributes: flat(span.attributes),
          events: (span.events ?? []).map((e: Json) => ({
            name: e.name,
            time: BigInt(e.timeUnixNano),
            attributes: flat(e.attributes),
          })),
          status: span.status ?? {},
          start: BigInt(span.startTimeUnixNano),
          end: BigInt(span.endTimeUnixNano),
        });
      }
    }
  }
  return out;
}

function pointsOf(body: Json): ReceivedPoint[] {
  const out: ReceivedPoint[] = [];
  for (const resource of body.resourceMetrics ?? []) {
    for (const scoped of resource.scopeMetrics ?? []) {
      for (const metric of scoped.metrics ?? []) {
        const base = {
          metric: metric.name,
          unit: metric.unit ?? "",
          scope: scoped.scope?.name ?? "",
        };
        for (const p of metric.sum?.dataPoints ?? []) {
          out.push({
            ...base,
            attributes: flat(p.attributes),
            value: Number(p.asInt ?? p.asDouble),
          });
        }
        for (const p of metric.histogram?.dataPoints ?? []) {
          out.push({
            ...base,
            attributes: flat(p.attributes),
            count: Number(p.count),
            sum: p.sum,
          });
        }
      }
    }
  }
  return out;
}

/**
 * Runs `script` with `OTEL_DENO=true`, exporting OTLP over HTTP/JSON to a
 * receiver on 127.0.0.1; returns its stdout and everything it exported.
 * Fails when the script fails or runs longer than `timeoutMs`.
 */
export async function runWithOtel(
  script: string,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<OtelRun> {
  const spans: ReceivedSpan[] = [];
  // Deno exports cumulative metrics at each interval: keep the latest point
  // per metric and attribute set.
  const points = new Map<string, ReceivedPoint>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const path = new URL(request.url).pathname;
      const body = await request.json();
      if (path === "/v1/traces") spans.push(...spansOf(body));
      if (path === "/v1/metrics") {
        for (const point of pointsOf(body)) {
          const attributes = Object.entries(point.attributes).sort();
          points.set(
            JSON.stringify([point.scope, point.metric, attributes]),
            point,
          );
        }
      }
      return Response.json({});
    },
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", script, ...args],
    env: {
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${server.addr.port}`,
      OTEL_METRIC_EXPORT_INTERVAL: "200",
      OTEL_DENO_CONSOLE: "ignore",
      OTEL_SERVICE_NAME: "otel-test",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    const output = await child.output();
    const stdout = new TextDecoder().decode(output.stdout);
    if (!output.success) {
      throw new Error(
        `${script} ${args.join(" ")} failed (code ${output.code}${
          output.signal ? `, killed after ${timeoutMs} ms` : ""
        }):\n${stdout}\n${new TextDecoder().decode(output.stderr)}`,
      );
    }
    return { stdout, spans, points: [...points.values()] };
  } finally {
    clearTimeout(timer);
    await server.shutdown();
  }
}
