/**
 * The `ext` members of a `job` that tell which consumer request it serves and carry the
 * hub's W3C Trace Context (SRP-JOB-037, SRP-JOB-038 in `spec/v1/jobs.md`). A hub may set
 * them; a node reads them for its logs and spans and never fails a job over them, so the
 * readers here return `undefined` for anything they cannot use.
 */

/** The `ext` keys of a job's request id and trace context (SRP-JOB-037). */
export const JOB_TRACE_EXT = {
  /** The id the hub returned to the consumer in `x-request-id`. */
  requestId: "srp.request_id",
  /** The W3C `traceparent` of the hub's span for the job. */
  traceparent: "srp.traceparent",
  /** The W3C `tracestate` that goes with it. */
  tracestate: "srp.tracestate",
} as const;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The request id a job's `ext` carries (`srp.request_id`), when it is 1 to 128 characters
 * of `A-Z a-z 0-9 . _ : -`; else undefined (pure).
 *
 * @example
 * jobRequestId({ "srp.request_id": "req_1" }); // "req_1"
 * jobRequestId({ "srp.request_id": 42 }); // undefined
 */
export function jobRequestId(ext: Readonly<Record<string, unknown>> | undefined): string | undefined {
  const id = ext?.[JOB_TRACE_EXT.requestId];
  return typeof id === "string" && REQUEST_ID.test(id) ? id : undefined;
}

/**
 * The trace context a job's `ext` carries, as the `traceparent` and `tracestate` headers of
 * W3C Trace Context would (pure): only string values, `tracestate` only beside a
 * `traceparent`. Whether the `traceparent` is well formed is the propagator's to judge.
 *
 * @example
 * jobTraceHeaders({ "srp.traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" });
 * // { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }
 */
export function jobTraceHeaders(ext: Readonly<Record<string, unknown>> | undefined): { traceparent?: string; tracestate?: string } {
  const parent = ext?.[JOB_TRACE_EXT.traceparent];
  if (typeof parent !== "string" || parent.length > 256) return {};
  const state = ext?.[JOB_TRACE_EXT.tracestate];
  return typeof state === "string" && state.length <= 512 ? { traceparent: parent, tracestate: state } : { traceparent: parent };
}
