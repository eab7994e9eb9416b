/**
 * OpenTelemetry tracing of the hub, through `@opentelemetry/api` only: off (the API's no-op)
 * unless the embedding application registers a tracer provider. A consumer request is one
 * `srp.request` span; each job the relay sends for it (each attempt) is an `srp.job` span
 * under it, whose W3C Trace Context travels to the node in the job's `ext` (SRP-JOB-037),
 * so the node's spans join the same trace. The README's "Tracing" section lists the spans
 * and their attributes.
 */
import {
  context,
  isSpanContextValid,
  ProxyTracerProvider,
  SpanKind,
  SpanStatusCode,
  trace,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { JOB_TRACE_EXT } from "@srp/core";
import type { Job } from "@srp/core/schema";
import type { RequestNote } from "./api/request-note.js";
import type { RequestEvent } from "./hub/types.js";
import type { JobEvent, JobWatch } from "./relay.js";
import type { LiveInstance } from "./routing/router.js";

/** The name of the hub's tracer (its instrumentation scope). */
export const HUB_TRACER = "@srp/hub";

// Taken once: the API's proxy tracer follows a tracer provider registered later.
const tracer = trace.getTracer(HUB_TRACER);
const w3c = new W3CTraceContextPropagator();

const fromHeaders: TextMapGetter<Headers> = {
  keys: (h) => [...h.keys()],
  get: (h, key) => h.get(key) ?? undefined,
};
const intoRecord: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/**
 * Whether a tracer provider is registered: when none is, nothing is traced and the hub
 * makes no span at all (a few nanoseconds per request).
 */
export function tracing(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegateTracer(HUB_TRACER) !== undefined;
}

/**
 * Starts a request's `srp.request` span: a child of the active span (an HTTP server's
 * instrumentation), else of the consumer's own `traceparent` header, else a new trace.
 * Undefined when nothing traces (no tracer provider registered).
 */
export function startRequestSpan(request: Request, requestId: string): Span | undefined {
  if (!tracing()) return undefined;
  let parent = context.active();
  if (trace.getSpan(parent) === undefined && request.headers.has("traceparent")) parent = w3c.extract(parent, request.headers, fromHeaders);
  const span = tracer.startSpan(
    "srp.request",
    {
      kind: SpanKind.SERVER,
      attributes: { "srp.request_id": requestId, "http.request.method": request.method },
    },
    parent,
  );
  return isSpanContextValid(span.spanContext()) ? span : undefined;
}

/** Ends a request's span with what its `request` event reports: the surface, the model, the status, the billed usage and cost. */
export function endRequestSpan(span: Span, event: RequestEvent): void {
  span.setAttribute("srp.surface", event.surface);
  span.setAttribute("http.response.status_code", event.status);
  span.setAttribute("srp.stream", event.stream);
  if (event.model !== undefined) span.setAttribute("srp.model", event.model);
  if (event.promptTokens !== undefined) span.setAttribute("srp.prompt_tokens", event.promptTokens);
  if (event.completionTokens !== undefined) span.setAttribute("srp.completion_tokens", event.completionTokens);
  if (event.costUnits !== undefined) span.setAttribute("srp.cost_units", event.costUnits.toString());
  if (event.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${event.status}` });
  span.end();
}

/** How a job ended, as the `srp.outcome` attribute of its span says (pure): `done`, `error`, `lost` or `not_sent`. */
export function jobOutcome(e: JobEvent | undefined): { outcome: string; detail?: string; failed: boolean } {
  if (e === undefined) return { outcome: "not_sent", failed: false };
  switch (e.type) {
    case "done":
      return e.rejected ? { outcome: "done", detail: e.rejected.code, failed: true } : { outcome: "done", failed: false };
    case "error":
      return { outcome: "error", detail: e.error.code, failed: true };
    case "lost":
      return { outcome: "lost", detail: e.reason, failed: e.reason !== "consumer_gone" };
    default:
      return { outcome: "chunk", failed: false };
  }
}

function endJobSpan(span: Span, e: JobEvent | undefined): void {
  const o = jobOutcome(e);
  span.setAttribute("srp.outcome", o.outcome);
  if (o.detail !== undefined) span.setAttribute(e?.type === "done" ? "srp.receipt_error" : "srp.error", o.detail);
  if (o.failed) span.setStatus({ code: SpanStatusCode.ERROR, message: o.detail ?? o.outcome });
  span.end();
}

/**
 * The relay's watch of one request's jobs (its `observe`): each job sent carries the
 * request's id in `ext` and, while the request is traced, an `srp.job` span under the
 * request's, whose `traceparent` (and `tracestate`) the job carries too (SRP-JOB-037).
 */
export function watchJobs(note: RequestNote): (job: Job, live: LiveInstance) => JobWatch {
  let attempt = 0;
  return (job, live) => {
    attempt++;
    // A note opened for other bookkeeping, not by the request observer, has no id to pass on.
    const ext: Record<string, string> = note.requestId === "" ? {} : { [JOB_TRACE_EXT.requestId]: note.requestId };
    if (note.span === undefined) return { ext, ended: () => {} };
    const span = tracer.startSpan(
      "srp.job",
      {
        kind: SpanKind.CLIENT,
        attributes: {
          "srp.request_id": note.requestId,
          "srp.job_id": job.jobId,
          "srp.model": job.model,
          "srp.instance_id": job.instanceId,
          "srp.node_id": live.session.nodeId ?? "",
          "srp.attempt": attempt,
          "srp.stream": job.stream,
        },
      },
      trace.setSpan(context.active(), note.span),
    );
    const headers: Record<string, string> = {};
    w3c.inject(trace.setSpan(context.active(), span), headers, intoRecord);
    if (headers.traceparent !== undefined) ext[JOB_TRACE_EXT.traceparent] = headers.traceparent;
    if (headers.traceparent !== undefined && headers.tracestate !== undefined) ext[JOB_TRACE_EXT.tracestate] = headers.tracestate;
    let ended = false;
    return {
      ext,
      ended: (e) => {
        if (ended) return;
        ended = true;
        endJobSpan(span, e);
      },
    };
  };
}
