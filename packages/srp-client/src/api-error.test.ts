import { describe, expect, it } from "vitest";
import { apiError, SrpApiError } from "./api-error.js";

describe("SrpApiError", () => {
  it("takes httpStatus and retryable from the error table for a known code", () => {
    const inBand = new SrpApiError(200, "job.stream_interrupted", "the stream ended without [DONE]");
    expect(inBand).toMatchObject({ name: "SrpApiError", status: 200, httpStatus: 502, retryable: false });
    expect(new SrpApiError(503, "payment.settlement_pending", "pending", 2)).toMatchObject({
      httpStatus: 503,
      retryable: true,
      retryAfter: 2,
    });
    expect(new SrpApiError(402, "billing.insufficient_credits", "top up").retryable).toBe(false);
  });

  it("keeps a code it does not know as sent, and judges retrying by status and Retry-After", () => {
    const later = new SrpApiError(409, "x-acme.quota_exceeded", "quota");
    expect(later).toMatchObject({ code: "x-acme.quota_exceeded", httpStatus: 409, retryable: false });
    expect(new SrpApiError(409, "x-acme.quota_exceeded", "quota", 5).retryable).toBe(true);
    expect(new SrpApiError(429, "x-acme.slow_down", "slow down").retryable).toBe(true);
  });

  it("reads either surface's error body, and a body that is not JSON as internal", async () => {
    const openai = new Response(
      JSON.stringify({ error: { message: "no such model", type: "not_found_error", param: null, code: "job.unknown_model" } }),
      { status: 404 },
    );
    expect(await apiError(openai)).toMatchObject({ status: 404, code: "job.unknown_model", message: "no such model", retryable: false });
    const anthropic = new Response(
      JSON.stringify({ type: "error", error: { type: "rate_limit_error", message: "slow down", code: "api.rate_limited" } }),
      {
        status: 429,
        headers: { "retry-after": "3" },
      },
    );
    expect(await apiError(anthropic)).toMatchObject({ code: "api.rate_limited", retryAfter: 3, retryable: true });
    const html = new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway" });
    expect(await apiError(html)).toMatchObject({ code: "internal", message: "Bad Gateway", httpStatus: 500, retryable: true });
  });
});
