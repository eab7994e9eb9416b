/** The pure policy of API key rate limits: bucket arithmetic, the admission decision, the headers. */
import { describe, expect, it } from "vitest";
import {
  decide,
  drain,
  formatDuration,
  limitHeaders,
  normalizeLimits,
  remaining,
  resetMs,
  tokenCount,
  WINDOW_MS,
  waitMs,
} from "./key-limits.js";

describe("per-minute buckets", () => {
  it("drain by the limit per millisecond, never below empty, never backwards in time", () => {
    const state = { load: 3 * WINDOW_MS, at: 1000 };
    expect(drain(state, 3, 1000)).toBe(3 * WINDOW_MS);
    expect(drain(state, 3, 1000 + 20_000)).toBe(2 * WINDOW_MS); // one request back every 20 s at 3 rpm
    expect(drain(state, 3, 1000 + 600_000)).toBe(0);
    expect(drain(state, 3, 0)).toBe(3 * WINDOW_MS);
    expect(drain(undefined, 3, 5)).toBe(0);
  });

  it("wait until the cost fits, for ever when it never can", () => {
    expect(waitMs(0, 1, 3)).toBe(0);
    expect(waitMs(2 * WINDOW_MS, 1, 3)).toBe(0);
    expect(waitMs(3 * WINDOW_MS, 1, 3)).toBe(20_000);
    expect(waitMs(800 * WINDOW_MS, 300, 1000)).toBe(6000); // 100 tokens over at 1000 tpm
    expect(waitMs(3 * WINDOW_MS, 1, 7)).toBe(0);
    expect(waitMs(7 * WINDOW_MS, 1, 7)).toBe(Math.ceil(WINDOW_MS / 7)); // rounded up, never early
    expect(waitMs(0, 1001, 1000)).toBe(Number.POSITIVE_INFINITY);
  });

  it("report what remains and when the bucket is full again", () => {
    expect(remaining(0, 60)).toBe(60);
    expect(remaining(WINDOW_MS, 60)).toBe(59);
    expect(remaining(WINDOW_MS + 1, 60)).toBe(58); // a part of a request is not a request
    expect(remaining(70 * WINDOW_MS, 60)).toBe(0); // in debt after an underestimate
    expect(resetMs(WINDOW_MS, 5000)).toBe(12); // one request under 5000 rpm
    expect(resetMs(24 * WINDOW_MS, 160_000)).toBe(9);
    expect(resetMs(0, 10)).toBe(0);
  });
});

describe("formatDuration", () => {
  it("writes durations as the x-ratelimit-reset-* headers do", () => {
    expect(formatDuration(0)).toBe("0s");
    expect(formatDuration(12)).toBe("12ms");
    expect(formatDuration(0.2)).toBe("1ms");
    expect(formatDuration(999)).toBe("999ms");
    expect(formatDuration(1000)).toBe("1s");
    expect(formatDuration(1500)).toBe("1.5s");
    expect(formatDuration(17_142)).toBe("17.142s");
    expect(formatDuration(20_050)).toBe("20.05s");
    expect(formatDuration(60_000)).toBe("1m0s");
    expect(formatDuration(360_000)).toBe("6m0s");
    expect(formatDuration(61_500)).toBe("1m1.5s");
    expect(formatDuration(3_600_000)).toBe("1h0m0s");
    expect(formatDuration(3_723_000)).toBe("1h2m3s");
  });
});

describe("limits and counts", () => {
  it("keep only the limits that are set, as whole numbers", () => {
    expect(normalizeLimits({ rpm: 60, tpm: null, concurrency: undefined })).toEqual({ rpm: 60 });
    expect(normalizeLimits({ rpm: 0, tpm: -5, concurrency: 2.7 })).toEqual({ concurrency: 2 });
    expect(normalizeLimits({ rpm: Number.NaN, tpm: Number.POSITIVE_INFINITY })).toEqual({});
  });

  it("count tokens as whole numbers, at least 0", () => {
    expect(tokenCount(12.1)).toBe(13);
    expect(tokenCount(-3)).toBe(0);
    expect(tokenCount(Number.NaN)).toBe(0);
  });
});

describe("decide", () => {
  const idle = { requests: 0, tokens: 0, inFlight: 0 };

  it("admits what fits every limit, and anything without limits", () => {
    expect(decide({ rpm: 1, tpm: 10, concurrency: 1 }, idle, 10)).toEqual({ ok: true });
    expect(decide({}, { requests: 1e9, tokens: 1e9, inFlight: 1e9 }, 1e9)).toEqual({ ok: true });
  });

  it("names the limit with the longest wait", () => {
    const state = { requests: 60 * WINDOW_MS, tokens: 1000 * WINDOW_MS, inFlight: 4 };
    // requests: 1 s; tokens: 500 tokens at 1000 tpm = 30 s; concurrency: the 1 s hint.
    expect(decide({ rpm: 60, tpm: 1000, concurrency: 4 }, state, 500)).toEqual({
      ok: false,
      reason: "tokens",
      retryAfterMs: 30_000,
      tooLarge: false,
    });
    expect(decide({ rpm: 60, concurrency: 4 }, state, 500, 5000)).toMatchObject({ reason: "concurrency", retryAfterMs: 5000 });
    expect(decide({ rpm: 60, concurrency: 5 }, state, 500)).toMatchObject({ reason: "requests", retryAfterMs: 1000 });
  });

  it("refuses for good an estimate above the tokens per minute", () => {
    expect(decide({ rpm: 60, tpm: 1000 }, { ...idle, requests: 60 * WINDOW_MS }, 1001)).toEqual({
      ok: false,
      reason: "tokens",
      retryAfterMs: Number.POSITIVE_INFINITY,
      tooLarge: true,
    });
  });
});

describe("limitHeaders", () => {
  it("sends OpenAI's headers for the limits that are set", () => {
    expect(limitHeaders({ rpm: 60, tpm: 150_000 }, { requests: WINDOW_MS, tokens: 16 * WINDOW_MS })).toEqual({
      "x-ratelimit-limit-requests": "60",
      "x-ratelimit-remaining-requests": "59",
      "x-ratelimit-reset-requests": "1s",
      "x-ratelimit-limit-tokens": "150000",
      "x-ratelimit-remaining-tokens": "149984",
      "x-ratelimit-reset-tokens": "7ms",
    });
    expect(limitHeaders({ tpm: 10 }, { requests: 5, tokens: 0 })).toEqual({
      "x-ratelimit-limit-tokens": "10",
      "x-ratelimit-remaining-tokens": "10",
      "x-ratelimit-reset-tokens": "0s",
    });
    expect(limitHeaders({}, { requests: 5, tokens: 5 })).toEqual({});
  });

  it("adds retry-after in whole seconds on a refusal, or says not to retry one that can never pass", () => {
    expect(limitHeaders({}, { requests: 0, tokens: 0 }, { retryAfterMs: 1, tooLarge: false })).toEqual({ "retry-after": "1" });
    expect(limitHeaders({ rpm: 3 }, { requests: 3 * WINDOW_MS, tokens: 0 }, { retryAfterMs: 20_000, tooLarge: false })).toEqual({
      "x-ratelimit-limit-requests": "3",
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": "1m0s",
      "retry-after": "20",
    });
    expect(limitHeaders({}, { requests: 0, tokens: 0 }, { retryAfterMs: 20_001, tooLarge: false })["retry-after"]).toBe("21");
    expect(limitHeaders({}, { requests: 0, tokens: 0 }, { retryAfterMs: Number.POSITIVE_INFINITY, tooLarge: true })).toEqual({
      "x-should-retry": "false",
    });
  });
});
