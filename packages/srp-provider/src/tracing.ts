/**
 * OpenTelemetry tracing of the node, through `@opentelemetry/api` only: off (the API's
 * no-op) unless the embedding application registers a tracer provider. Each job the node
 * runs is one `srp.node.job` span around its backend call, a child of the hub's span named
 * by the job's `srp.traceparent` (SRP-JOB-038), so a consumer request is one trace across
 * hub and node. A missing or malformed trace context never fails a job: the span then
 * starts a trace of its own.
 */
import { context, ProxyTracerProvider, SpanKind, SpanStatusCode, trace, type Span, type TextMapGetter } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { jobRequestId, jobTraceHeaders } from "@srp/core";
import type { Job } from "@srp/core/schema";

/** The name of the node's tracer (its instrumentation scope). */
export const PROVIDER_TRACER = "@srp/provider";

// Taken once: the API's proxy tracer follows a tracer provider registered later.
const tracer = trace.getTracer(PROVIDER_TRACER);
const w3c = new W3CTraceContextPropagator();

const fromRecord: TextMapGetter<Record<string, string>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/** The parent of a job's span: the hub's span its `ext` names, else the active context (a malformed one is ignored). */
function parentOf(job: Job) {
  const headers = jobTraceHeaders(job.ext);
  if (headers.traceparent === undefined) return context.active();
  try {
    return w3c.extract(context.active(), headers, fromRecord);
  } catch {
    return context.active();
  }
}

/** Whether a tracer provider is registered: when none is, the node makes no span at all. */
function tracing(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegateTracer(PROVIDER_TRACER) !== undefined;
}

/**
 * Starts a job's `srp.node.job` span (SRP-JOB-038); undefined when nothing records it (no
 * tracer provider registered, or not sampled).
 */
export function startJobSpan(job: Job, nodeId: string): Span | undefined {
  if (!tracing()) return undefined;
  const requestId = jobRequestId(job.ext);
  const span = tracer.startSpan(
    "srp.node.job",
    {
      kind: SpanKind.SERVER,
      attributes: {
        "srp.job_id": job.jobId,
        "srp.node_id": nodeId,
        "srp.instance_id": job.instanceId,
        "srp.model": job.model,
        "srp.api": job.api,
        "srp.stream": job.stream,
        ...(requestId === undefined ? {} : { "srp.request_id": requestId }),
      },
    },
    parentOf(job),
  );
  return span.isRecording() ? span : undefined;
}

/** How a job ended, as its span records it. */
export interface JobSpanEnd {
  ok: boolean;
  code?: string;
  chunks: number;
  usage?: { promptTokens: number; completionTokens: number };
  cost?: string;
}

/** Ends a job's span with its outcome: error code, chunks, usage and cost. */
export function endJobSpan(span: Span, end: JobSpanEnd): void {
  span.setAttribute("srp.outcome", end.ok ? "done" : "error");
  span.setAttribute("srp.chunks", end.chunks);
  if (end.usage) {
    span.setAttribute("srp.prompt_tokens", end.usage.promptTokens);
    span.setAttribute("srp.completion_tokens", end.usage.completionTokens);
  }
  if (end.cost !== undefined) span.setAttribute("srp.cost_units", end.cost);
  if (!end.ok) {
    span.setAttribute("srp.error", end.code ?? "unknown");
    span.setStatus({ code: SpanStatusCode.ERROR, message: end.code ?? "failed" });
  }
  span.end();
}
