import {
  type Context,
  context,
  createTraceState,
  type Histogram,
  isSpanContextValid,
  metrics,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  type Tracer,
  trace,
} from "@opentelemetry/api";

/**
 * W3C Trace Context helpers over `@opentelemetry/api` (no SDK: every call is
 * a no-op that allocates nothing past a non-recording span). We read and
 * write `traceparent` ourselves instead of through the global propagator, so
 * the rules are the same with or without an SDK: a malformed header is
 * ignored, and the caller decides whether a header may become a parent.
 */

/** The trace context a transport carries beside a message (SPEC §10): W3C `traceparent` and `tracestate`. */
export interface TraceCarrier {
  traceparent?: string | undefined;
  tracestate?: string | undefined;
}

const NAME = "smcp";
let cachedTracer: Tracer | undefined;

/** smcp's tracer (the global provider's; a no-op one until an SDK registers). */
export function tracer(): Tracer {
  // The global API hands out a proxy tracer that follows a provider registered later.
  cachedTracer ??= trace.getTracer(NAME);
  return cachedTracer;
}

/**
 * Whether a span here would be a pure no-op: no OTel SDK has registered a
 * tracer provider, there is no parent to pass on, and nothing is active (a
 * context manager registered without a provider, as NodeSDK does with
 * traces off, may hold an outer trace, which a span of ours must keep
 * hiding). Callers then skip spans and context switches altogether: the
 * same behaviour, without the allocations on every request. Read on every
 * call, so an SDK registered later is followed.
 */
export function spansOff(hasParent: boolean): boolean {
  if (hasParent || context.active() !== ROOT_CONTEXT) return false;
  const provider = trace.getTracerProvider();
  return provider instanceof ProxyTracerProvider && provider.getDelegateTracer(NAME) === undefined;
}

const histograms = new Map<string, Histogram>();

/** A duration histogram in seconds, from the global meter provider (no-op without an SDK). */
export function durationHistogram(name: string, description: string): Histogram {
  let histogram = histograms.get(name);
  if (!histogram) {
    histogram = metrics.getMeter(NAME).createHistogram(name, {
      description,
      unit: "s",
      advice: { explicitBucketBoundaries: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300] },
    });
    histograms.set(name, histogram);
  }
  return histogram;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** A span context from a `traceparent` (version 00, lower-case hex), or undefined when it is malformed or all-zero. */
export function parseTraceparent(traceparent: unknown, tracestate?: unknown): SpanContext | undefined {
  if (typeof traceparent !== "string" || traceparent.length !== 55) return undefined;
  const match = TRACEPARENT.exec(traceparent);
  if (!match) return undefined;
  const spanContext: SpanContext = {
    traceId: match[1] as string,
    spanId: match[2] as string,
    traceFlags: Number.parseInt(match[3] as string, 16) & 1,
    isRemote: true,
  };
  if (!isSpanContextValid(spanContext)) return undefined;
  if (typeof tracestate === "string" && tracestate.length > 0 && tracestate.length <= 512) {
    spanContext.traceState = createTraceState(tracestate);
  }
  return spanContext;
}

/** The `traceparent` of a span context. */
export function formatTraceparent(spanContext: SpanContext): string {
  return `00-${spanContext.traceId}-${spanContext.spanId}-${spanContext.traceFlags & 1 ? "01" : "00"}`;
}

/** A context whose parent is the carrier's span context; `ROOT_CONTEXT` when the carrier has none or a malformed one. */
export function contextFrom(carrier: TraceCarrier | undefined): Context {
  const parent = carrier && parseTraceparent(carrier.traceparent, carrier.tracestate);
  return parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
}

/** The active span's context as a carrier, or undefined when no valid span is active. */
export function activeCarrier(active: Context = context.active()): TraceCarrier | undefined {
  const spanContext = trace.getSpanContext(active);
  if (!spanContext || !isSpanContextValid(spanContext)) return undefined;
  const state = spanContext.traceState?.serialize();
  return state
    ? { traceparent: formatTraceparent(spanContext), tracestate: state }
    : { traceparent: formatTraceparent(spanContext) };
}

/** The active span's `traceparent`, or undefined. */
export function activeTraceparent(): string | undefined {
  return activeCarrier()?.traceparent;
}

/** `trace_id` and `span_id` of the active span for a log line, or undefined (pino `mixin`). */
export function logIds(): { trace_id: string; span_id: string } | undefined {
  const spanContext = trace.getSpanContext(context.active());
  if (!spanContext || !isSpanContextValid(spanContext)) return undefined;
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
}

/** Ends a span with an error type (SPEC §5 code, or a class name) and status ERROR. */
export function failSpan(span: Span, errorType: string, message?: string): void {
  span.setAttribute("error.type", errorType);
  span.setStatus({ code: 2, message: message ?? errorType });
}

export { type Context, context, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
