import { describe, expect, it } from "vitest";
import { SrpError } from "@srp/core";
import { NO_POLICY } from "../keys/policy.js";
import { keyBudgetError, modelNotAllowed, rateLimitError, releasedAtEnd } from "./key-admission.js";
import type { Admitted } from "../limits/key-limits.js";
import type { RequestNote } from "./request-note.js";

/** An admission that records what it was released with. */
function admitted(): Admitted & { released: number[] } {
  const released: number[] = [];
  return { ok: true, headers: { "x-ratelimit-limit-requests": "5" }, released, release: (t: number) => void released.push(t) };
}

const sse = (body: ReadableStream<Uint8Array>) => new Response(body, { headers: { "content-type": "text/event-stream" } });

describe("key admission", () => {
  it("names the first model a key may not use, and allows any model without a list", () => {
    expect(modelNotAllowed(NO_POLICY, ["a", "b"])).toBeUndefined();
    const e = modelNotAllowed({ ...NO_POLICY, models: ["a"] }, ["a", "b"]);
    expect(e).toBeInstanceOf(SrpError);
    expect(e!.code).toBe("api.model_not_allowed");
    expect(e!.message).toContain("b");
    expect(modelNotAllowed({ ...NO_POLICY, models: ["a", "b"] }, ["b"])).toBeUndefined();
  });

  it("a budget refusal says the period and what is left; a rate refusal the limit", () => {
    const e = keyBudgetError({ period: "day", cap: 1_000_000n, used: 750_000n }, 400_000n);
    expect(e.code).toBe("api.key_budget_exceeded");
    expect(e.httpStatus).toBe(402);
    expect(e.message).toMatch(/daily budget of 1.00 USD has 0.25 USD left/);
    const r = rateLimitError({ ok: false, reason: "requests", retryAfterMs: 2500, tooLarge: false, headers: {} });
    expect(r.code).toBe("api.rate_limited");
    expect(r.details).toMatchObject({ limit: "requests", retryAfterMs: 2500 });
  });

  it("a whole answer releases at once with its billed tokens, a refusal with none", async () => {
    const a = admitted();
    const note: RequestNote = { requestId: "", promptTokens: 10, completionTokens: 4 };
    const res = releasedAtEnd(Response.json({ ok: true }), a, note, 900);
    expect(res.headers.get("x-ratelimit-limit-requests")).toBe("5");
    expect(a.released).toEqual([14]);
    const b = admitted();
    releasedAtEnd(Response.json({ error: {} }, { status: 402 }), b, { requestId: "" }, 900);
    expect(b.released).toEqual([0]);
  });

  it("a stream releases when it ends; one the consumer leaves before its billing keeps the estimate", async () => {
    const note: RequestNote = { requestId: "" };
    const whole = admitted();
    const out = releasedAtEnd(
      sse(
        new ReadableStream({
          start(c) {
            c.enqueue(new TextEncoder().encode("data: {}\\n\\n"));
            note.promptTokens = 7;
            note.completionTokens = 3;
            c.close();
          },
        }),
      ),
      whole,
      note,
      500,
    );
    expect(whole.released).toEqual([]);
    await out.text();
    expect(whole.released).toEqual([10]);

    const left = admitted();
    const never = releasedAtEnd(sse(new ReadableStream({ pull() {} })), left, { requestId: "" }, 500);
    await never.body!.cancel();
    expect(left.released).toEqual([500]);
  });
});
