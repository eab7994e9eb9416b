import { describe, expect, it } from "vitest";
import { JOB_TRACE_EXT, jobRequestId, jobTraceHeaders } from "./job-ext.js";

const PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

describe("a job's request id and trace context (SRP-JOB-037)", () => {
  it("reads a request id only when it is a short safe token", () => {
    expect(jobRequestId({ [JOB_TRACE_EXT.requestId]: "req_0123abcd" })).toBe("req_0123abcd");
    expect(jobRequestId({ "srp.request_id": "trace:42.a_b-c" })).toBe("trace:42.a_b-c");
    for (const bad of [42, null, "", "has spaces", "x".repeat(129), "a/b", { id: "x" }])
      expect(jobRequestId({ "srp.request_id": bad }), JSON.stringify(bad)).toBeUndefined();
    expect(jobRequestId(undefined)).toBeUndefined();
    expect(jobRequestId({ "acme.request_id": "x" })).toBeUndefined();
  });

  it("reads trace headers only from strings, and a tracestate only beside a traceparent", () => {
    expect(jobTraceHeaders({ "srp.traceparent": PARENT, "srp.tracestate": "a=1" })).toEqual({ traceparent: PARENT, tracestate: "a=1" });
    expect(jobTraceHeaders({ "srp.traceparent": PARENT, "srp.tracestate": 7 })).toEqual({ traceparent: PARENT });
    expect(jobTraceHeaders({ "srp.tracestate": "a=1" })).toEqual({});
    expect(jobTraceHeaders({ "srp.traceparent": { version: "00" } })).toEqual({});
    expect(jobTraceHeaders({ "srp.traceparent": "x".repeat(257) })).toEqual({});
    expect(jobTraceHeaders(undefined)).toEqual({});
  });
});
