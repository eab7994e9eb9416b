import type { Capability } from "@srp/core/schema";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  belowFloor,
  breakerAfterOutcome,
  breakerAfterProbe,
  breakerProbeSent,
  breakerStatus,
  chatNeeds,
  CLOSED_BREAKER,
  eligible,
  estimatePromptTokens,
  healthScore,
  NO_THROUGHPUT,
  pick,
  rampFactor,
  recordHealth,
  recordThroughput,
  ROUTING_DEFAULTS,
  type Breaker,
  type CandidateView,
  type HealthBucket,
  type NoRoute,
  type Outcome,
  type RouteNeeds,
  type Throughput,
} from "./policy.js";

// ---------------------------------------------------------------------------
// Helpers

const SEC = 1000;
const DAY = 24 * 3600_000;
/** A fixed "now", midway through a UTC day so day arithmetic is unambiguous. */
const T0 = 1_700_000_000_000 - (1_700_000_000_000 % DAY) + DAY / 2;

/** A seasoned, idle, closed, unmeasured instance of model "m"; override what a test needs. */
function view(key: string, over: Partial<Omit<CandidateView, "key">> = {}): CandidateView {
  return {
    key,
    model: "m",
    capabilities: ["chat", "stream"],
    contextLength: 8192,
    price: { input: "100000", output: "200000" },
    active: 0,
    capacity: 4,
    breaker: CLOSED_BREAKER,
    health: 0.5,
    throughput: NO_THROUGHPUT,
    firstSeen: T0 - 30 * DAY,
    ...over,
  };
}

function needs(over: Partial<RouteNeeds> = {}): RouteNeeds {
  return { model: "m", capabilities: ["chat"], contextTokens: 100, ...over };
}

/** Folds outcomes `[time, outcome]` into a breaker. */
function fold(b: Breaker, events: ReadonlyArray<readonly [number, Outcome]>): Breaker {
  return events.reduce((acc, [t, o]) => breakerAfterOutcome(acc, o, t), b);
}

/** A breaker parked by three failures, the third at `t`. */
function parkedAt(t: number): Breaker {
  return fold(CLOSED_BREAKER, [
    [t - 2 * SEC, "failure"],
    [t - SEC, "failure"],
    [t, "failure"],
  ]);
}

/** A throughput estimate of `samples` streams all at `tps` tokens/s. */
function measured(tps: number, samples: number): Throughput {
  let t = NO_THROUGHPUT;
  for (let i = 0; i < samples; i++) t = recordThroughput(t, tps * 10, 10_000);
  return t;
}

function keys(r: CandidateView[] | NoRoute): string[] {
  if (!Array.isArray(r)) throw new Error(`expected candidates, got ${JSON.stringify(r)}`);
  return r.map((c) => c.key).sort();
}

/** A deterministic pseudo-random source in [0, 1) (mulberry32). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------
// Breaker

describe("breaker", () => {
  it("starts closed and stays closed on a fresh breaker at any time", () => {
    expect(breakerStatus(CLOSED_BREAKER, 0)).toBe("closed");
    expect(breakerStatus(CLOSED_BREAKER, T0)).toBe("closed");
  });

  it("does not park on failures spread over more than the 60 s window", () => {
    // 0 s, 30 s, 60 s: the first is exactly 60 s old at the third, so it has left the window.
    let b = fold(CLOSED_BREAKER, [
      [T0, "failure"],
      [T0 + 30 * SEC, "failure"],
      [T0 + 60 * SEC, "failure"],
    ]);
    expect(breakerStatus(b, T0 + 60 * SEC)).toBe("closed");
    expect(b.failures).toEqual([T0 + 30 * SEC, T0 + 60 * SEC]);
    // A steady trickle of one failure every 31 s never parks either.
    b = CLOSED_BREAKER;
    for (let i = 0; i < 50; i++) {
      b = breakerAfterOutcome(b, "failure", T0 + i * 31 * SEC);
      expect(b.needsProbe).toBe(false);
    }
    expect(b.failures.length).toBeLessThanOrEqual(2);
  });

  it("parks on the 3rd failure within 60 s for exactly 15 s", () => {
    const third = T0 + 59_999;
    const two = fold(CLOSED_BREAKER, [
      [T0, "failure"],
      [T0 + 10 * SEC, "failure"],
    ]);
    expect(breakerStatus(two, T0 + 10 * SEC)).toBe("closed");
    expect(two.needsProbe).toBe(false);
    const b = breakerAfterOutcome(two, "failure", third);
    expect(b).toEqual({ failures: [], parkedUntil: third + 15_000, probing: false, needsProbe: true });
    expect(breakerStatus(b, third)).toBe("parked");
    expect(breakerStatus(b, third + 14_999)).toBe("parked");
    expect(breakerStatus(b, third + 15_000)).toBe("probe_due");
    expect(breakerStatus(b, third + 3_600_000)).toBe("probe_due");
  });

  it("walks parked -> probe_due -> probing -> closed after a successful probe", () => {
    const b = parkedAt(T0);
    expect(breakerStatus(b, T0 + 1)).toBe("parked");
    expect(breakerStatus(b, T0 + 15_000)).toBe("probe_due");
    const sent = breakerProbeSent(b);
    expect(sent.probing).toBe(true);
    expect(sent.parkedUntil).toBe(T0 + 15_000);
    expect(breakerStatus(sent, T0 + 15_000)).toBe("probing");
    expect(breakerStatus(sent, T0 + 60_000)).toBe("probing");
    const ok = breakerAfterProbe(sent, true, T0 + 16_000);
    expect(ok).toEqual(CLOSED_BREAKER);
    expect(breakerStatus(ok, T0 + 16_000)).toBe("closed");
  });

  it("readmits fully: after a successful probe it takes 3 fresh failures to park again", () => {
    const readmitted = breakerAfterProbe(breakerProbeSent(parkedAt(T0)), true, T0 + 16_000);
    const two = fold(readmitted, [
      [T0 + 17_000, "failure"],
      [T0 + 18_000, "failure"],
    ]);
    expect(breakerStatus(two, T0 + 18_000)).toBe("closed");
    const parked = breakerAfterOutcome(two, "failure", T0 + 19_000);
    expect(breakerStatus(parked, T0 + 19_000)).toBe("parked");
    expect(parked.parkedUntil).toBe(T0 + 34_000);
  });

  it("parks again for exactly 15 s after a failed probe, then wants another probe", () => {
    const sent = breakerProbeSent(parkedAt(T0));
    const failedAt = T0 + 20_000;
    const again = breakerAfterProbe(sent, false, failedAt);
    expect(again).toEqual({ failures: [], parkedUntil: failedAt + 15_000, probing: false, needsProbe: true });
    expect(breakerStatus(again, failedAt)).toBe("parked");
    expect(breakerStatus(again, failedAt + 14_999)).toBe("parked");
    expect(breakerStatus(again, failedAt + 15_000)).toBe("probe_due");
    const second = breakerProbeSent(again);
    expect(breakerStatus(second, failedAt + 15_001)).toBe("probing");
    expect(breakerStatus(breakerAfterProbe(second, true, failedAt + 16_000), failedAt + 16_000)).toBe("closed");
  });

  it("does not extend the park for outcomes that arrive while parked or probing", () => {
    const b = parkedAt(T0);
    for (const o of ["failure", "success", "neutral"] as const) {
      for (const t of [T0, T0 + 5_000, T0 + 14_999, T0 + 15_000, T0 + 40_000]) {
        const after = breakerAfterOutcome(b, o, t);
        expect(after).toBe(b);
        expect(after.parkedUntil).toBe(T0 + 15_000);
      }
    }
    // Three more failures inside the park do not re-park it, and a success does not readmit it.
    const flurry = fold(b, [
      [T0 + 1_000, "failure"],
      [T0 + 2_000, "failure"],
      [T0 + 3_000, "failure"],
      [T0 + 4_000, "success"],
    ]);
    expect(flurry).toBe(b);
    expect(breakerStatus(flurry, T0 + 15_000)).toBe("probe_due");
    // Same while probing: only the probe decides.
    const probing = breakerProbeSent(b);
    expect(breakerAfterOutcome(probing, "success", T0 + 16_000)).toBe(probing);
    expect(breakerAfterOutcome(probing, "failure", T0 + 16_000)).toBe(probing);
    expect(breakerStatus(probing, T0 + 16_000)).toBe("probing");
  });

  it("changes nothing on neutral outcomes (consumer-caused 4xx)", () => {
    const one = breakerAfterOutcome(CLOSED_BREAKER, "failure", T0);
    expect(breakerAfterOutcome(one, "neutral", T0 + 1)).toBe(one);
    expect(breakerAfterOutcome(CLOSED_BREAKER, "neutral", T0)).toBe(CLOSED_BREAKER);
    // Neutral outcomes between failures neither reset nor add to the count.
    const b = fold(CLOSED_BREAKER, [
      [T0, "failure"],
      [T0 + 1_000, "neutral"],
      [T0 + 2_000, "failure"],
      [T0 + 3_000, "neutral"],
      [T0 + 4_000, "neutral"],
      [T0 + 5_000, "failure"],
    ]);
    expect(breakerStatus(b, T0 + 5_000)).toBe("parked");
    expect(b.parkedUntil).toBe(T0 + 20_000);
  });

  it("clears the failure count on a success", () => {
    const two = fold(CLOSED_BREAKER, [
      [T0, "failure"],
      [T0 + 1_000, "failure"],
    ]);
    const cleared = breakerAfterOutcome(two, "success", T0 + 2_000);
    expect(cleared.failures).toEqual([]);
    expect(breakerStatus(cleared, T0 + 2_000)).toBe("closed");
    const afterOne = breakerAfterOutcome(cleared, "failure", T0 + 3_000);
    expect(afterOne.needsProbe).toBe(false);
    expect(afterOne.failures).toEqual([T0 + 3_000]);
    // A success on a clean breaker returns it unchanged.
    expect(breakerAfterOutcome(CLOSED_BREAKER, "success", T0)).toBe(CLOSED_BREAKER);
  });

  it("ignores probe results and probe marks on a closed breaker's status", () => {
    expect(breakerAfterProbe(CLOSED_BREAKER, false, T0)).toBe(CLOSED_BREAKER);
    expect(breakerAfterProbe(CLOSED_BREAKER, true, T0)).toBe(CLOSED_BREAKER);
    expect(breakerStatus(breakerProbeSent(CLOSED_BREAKER), T0)).toBe("closed");
  });

  it("never mutates its input", () => {
    const one = breakerAfterOutcome(CLOSED_BREAKER, "failure", T0);
    const snapshot = structuredClone(one);
    breakerAfterOutcome(one, "failure", T0 + 1);
    breakerAfterOutcome(one, "success", T0 + 2);
    breakerProbeSent(one);
    expect(one).toEqual(snapshot);
    expect(CLOSED_BREAKER).toEqual({ failures: [], parkedUntil: 0, probing: false, needsProbe: false });
  });

  it("follows a custom config", () => {
    const cfg = { ...ROUTING_DEFAULTS, breakerFailures: 2, breakerWindowMs: 10_000, parkMs: 5_000 };
    const one = breakerAfterOutcome(CLOSED_BREAKER, "failure", T0, cfg);
    expect(one.needsProbe).toBe(false);
    expect(breakerAfterOutcome(one, "failure", T0 + 10_000, cfg).needsProbe).toBe(false);
    const parked = breakerAfterOutcome(one, "failure", T0 + 9_999, cfg);
    expect(parked.parkedUntil).toBe(T0 + 9_999 + 5_000);
    expect(breakerAfterProbe(parked, false, T0 + 20_000, cfg).parkedUntil).toBe(T0 + 25_000);
  });
});

// ---------------------------------------------------------------------------
// eligible()

describe("eligible", () => {
  it("says unknown_model when no instance serves the model", () => {
    expect(eligible([], needs(), T0)).toEqual({ reason: "unknown_model" });
    expect(eligible([view("a", { model: "other" })], needs(), T0)).toEqual({ reason: "unknown_model" });
  });

  it("says no_match and names the missing capability", () => {
    const all = [view("a", { capabilities: ["chat", "tools"] }), view("b", { capabilities: ["chat", "stream"] })];
    const r = eligible(all, needs({ capabilities: ["chat", "tools", "vision"] }), T0);
    expect(r).toMatchObject({ reason: "no_match" });
    const detail = (r as { detail: string }).detail;
    expect(detail).toContain("vision");
    expect(detail).not.toContain("tools");
    expect(detail).toContain("m");
    // Several missing capabilities are all named.
    const r2 = eligible(all, needs({ capabilities: ["chat", "vision", "json_mode"] }), T0) as { detail: string };
    expect(r2.detail).toContain("vision");
    expect(r2.detail).toContain("json_mode");
  });

  it("filters by context length (equal is enough)", () => {
    const all = [view("small", { contextLength: 4096 }), view("big", { contextLength: 32_768 })];
    expect(keys(eligible(all, needs({ contextTokens: 4096 }), T0))).toEqual(["big", "small"]);
    expect(keys(eligible(all, needs({ contextTokens: 4097 }), T0))).toEqual(["big"]);
    const r = eligible(all, needs({ contextTokens: 40_000 }), T0);
    expect(r).toMatchObject({ reason: "no_match" });
    expect((r as { detail: string }).detail).toMatch(/context length/);
  });

  it("filters by the price cap on input and output independently (equal is within the cap)", () => {
    const all = [
      view("cheap", { price: { input: "100", output: "400" } }),
      view("mid", { price: { input: "200", output: "200" } }),
      view("dear", { price: { input: "900", output: "900" } }),
    ];
    expect(keys(eligible(all, needs(), T0))).toEqual(["cheap", "dear", "mid"]);
    expect(keys(eligible(all, needs({ maxPrice: { input: 200n } }), T0))).toEqual(["cheap", "mid"]);
    expect(keys(eligible(all, needs({ maxPrice: { input: 199n } }), T0))).toEqual(["cheap"]);
    expect(keys(eligible(all, needs({ maxPrice: { output: 200n } }), T0))).toEqual(["mid"]);
    expect(keys(eligible(all, needs({ maxPrice: { input: 150n, output: 400n } }), T0))).toEqual(["cheap"]);
    expect(keys(eligible(all, needs({ maxPrice: {} }), T0))).toEqual(["cheap", "dear", "mid"]);
    const r = eligible(all, needs({ maxPrice: { input: 99n } }), T0);
    expect(r).toMatchObject({ reason: "no_match" });
    expect((r as { detail: string }).detail).toMatch(/price cap/);
  });

  it("compares prices exactly beyond 2^53", () => {
    const big = "90071992547409930"; // 10 * 2^53 - 2, not representable as a double
    const all = [view("a", { price: { input: big, output: "1" } })];
    expect(keys(eligible(all, needs({ maxPrice: { input: BigInt(big) } }), T0))).toEqual(["a"]);
    expect(eligible(all, needs({ maxPrice: { input: BigInt(big) - 1n } }), T0)).toMatchObject({ reason: "no_match" });
  });

  it("leaves out excluded instances", () => {
    const all = [view("a"), view("b")];
    expect(keys(eligible(all, needs({ exclude: new Set(["a"]) }), T0))).toEqual(["b"]);
  });

  it("says parked with the time until the earliest park ends", () => {
    const a = view("a", { breaker: parkedAt(T0) }); // until T0 + 15 s
    const b = view("b", { breaker: parkedAt(T0 + 4_000) }); // until T0 + 19 s
    expect(eligible([a, b], needs(), T0 + 5_000)).toEqual({ reason: "parked", retryAfterMs: 10_000 });
    expect(eligible([b], needs(), T0 + 5_000)).toEqual({ reason: "parked", retryAfterMs: 14_000 });
    // Never less than a second, and a probe in flight suggests a second.
    expect(eligible([a], needs(), T0 + 14_800)).toEqual({ reason: "parked", retryAfterMs: 1_000 });
    expect(eligible([view("p", { breaker: breakerProbeSent(parkedAt(T0)) })], needs(), T0 + 20_000)).toEqual({
      reason: "parked",
      retryAfterMs: 1_000,
    });
    expect(eligible([view("d", { breaker: parkedAt(T0) })], needs(), T0 + 20_000)).toEqual({ reason: "parked", retryAfterMs: 1_000 });
  });

  it("says busy when every closed instance is full, even if others are parked", () => {
    const full = view("full", { active: 4, capacity: 4 });
    expect(eligible([full], needs(), T0)).toEqual({ reason: "busy" });
    expect(eligible([full, view("over", { active: 5, capacity: 4 }), view("p", { breaker: parkedAt(T0) })], needs(), T0 + 1)).toEqual({
      reason: "busy",
    });
  });

  it("offers only closed instances with a free slot", () => {
    const all = [
      view("free"),
      view("full", { active: 2, capacity: 2 }),
      view("parked", { breaker: parkedAt(T0) }),
      view("probe_due", { breaker: parkedAt(T0 - 20_000) }),
      view("probing", { breaker: breakerProbeSent(parkedAt(T0 - 20_000)) }),
      view("readmitted", { breaker: breakerAfterProbe(breakerProbeSent(parkedAt(T0 - 20_000)), true, T0 - 1_000) }),
    ];
    expect(keys(eligible(all, needs(), T0 + 1_000))).toEqual(["free", "readmitted"]);
  });

  it("uses instances below the throughput floor only when no faster instance is free", () => {
    const slow = view("slow", { throughput: measured(2, 3) });
    const fast = view("fast", { throughput: measured(40, 3) });
    const fresh = view("fresh");
    const barelyMeasured = view("barely", { throughput: measured(2, 2) });
    expect(keys(eligible([slow, fast], needs(), T0))).toEqual(["fast"]);
    // Unmeasured and under-sampled instances are not below the floor.
    expect(keys(eligible([slow, fresh, barelyMeasured], needs(), T0))).toEqual(["barely", "fresh"]);
    // When the fast ones are busy or parked, the slow one is used.
    expect(keys(eligible([slow, { ...fast, active: 4 }], needs(), T0))).toEqual(["slow"]);
    expect(keys(eligible([slow, { ...fast, breaker: parkedAt(T0) }], needs(), T0))).toEqual(["slow"]);
    // A faster instance that does not match the request does not push the slow one out.
    expect(keys(eligible([slow, { ...fast, contextLength: 10 }], needs(), T0))).toEqual(["slow"]);
    // A custom floor.
    expect(keys(eligible([slow, fast], needs(), T0, { ...ROUTING_DEFAULTS, minTokensPerSecond: 1 }))).toEqual(["fast", "slow"]);
  });

  it("does not mutate its input", () => {
    const all = [view("a"), view("b", { active: 4 })];
    const snapshot = structuredClone(all);
    eligible(all, needs(), T0);
    expect(all).toEqual(snapshot);
  });
});

// ---------------------------------------------------------------------------
// Throughput and ramp-up

describe("throughput", () => {
  it("ignores streams under 4 tokens or under 50 ms", () => {
    expect(recordThroughput(NO_THROUGHPUT, 3, 10_000)).toBe(NO_THROUGHPUT);
    expect(recordThroughput(NO_THROUGHPUT, 1_000, 49)).toBe(NO_THROUGHPUT);
    expect(recordThroughput(NO_THROUGHPUT, 0, 0)).toBe(NO_THROUGHPUT);
    const t = measured(10, 1);
    expect(recordThroughput(t, 3, 10_000)).toBe(t);
    expect(recordThroughput(NO_THROUGHPUT, 4, 50)).toEqual({ tokensPerSecond: 80, samples: 1 });
  });

  it("takes the first stream as is, then averages exponentially", () => {
    const one = recordThroughput(NO_THROUGHPUT, 100, 10_000);
    expect(one).toEqual({ tokensPerSecond: 10, samples: 1 });
    const two = recordThroughput(one, 200, 10_000);
    expect(two.samples).toBe(2);
    expect(two.tokensPerSecond).toBeCloseTo(10 * 0.7 + 20 * 0.3, 10);
  });

  it("is below the floor only after throughputMinSamples streams", () => {
    expect(belowFloor(NO_THROUGHPUT)).toBe(false);
    expect(belowFloor(measured(1, 1))).toBe(false);
    expect(belowFloor(measured(1, 2))).toBe(false);
    expect(belowFloor(measured(1, 3))).toBe(true);
    expect(belowFloor(measured(4.9, 3))).toBe(true);
    expect(belowFloor(measured(5, 3))).toBe(false);
    expect(belowFloor(measured(50, 10))).toBe(false);
    expect(belowFloor(measured(1, 1), { ...ROUTING_DEFAULTS, throughputMinSamples: 1 })).toBe(true);
  });

  it("does not count ignored streams as samples", () => {
    let t = measured(1, 2);
    t = recordThroughput(t, 2, 10_000);
    t = recordThroughput(t, 100, 10);
    expect(t.samples).toBe(2);
    expect(belowFloor(t)).toBe(false);
  });

  it("recovers above the floor after faster streams", () => {
    let t = measured(1, 3);
    expect(belowFloor(t)).toBe(true);
    for (let i = 0; i < 10; i++) t = recordThroughput(t, 300, 10_000);
    expect(belowFloor(t)).toBe(false);
  });
});

describe("rampFactor", () => {
  it("is 0.1 at first sight, 1 after 7 days, linear between", () => {
    expect(rampFactor(T0, T0)).toBeCloseTo(0.1, 12);
    expect(rampFactor(T0, T0 + 3.5 * DAY)).toBeCloseTo(0.55, 12);
    expect(rampFactor(T0, T0 + 7 * DAY)).toBe(1);
    expect(rampFactor(T0, T0 + 7 * DAY - 1)).toBeLessThan(1);
    expect(rampFactor(T0, T0 + 365 * DAY)).toBe(1);
    // A first appearance in the future (clock skew between hubs) counts as brand new.
    expect(rampFactor(T0 + DAY, T0)).toBeCloseTo(0.1, 12);
  });

  it("stays in [rampFloor, 1] and never decreases with age (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 45 }),
        fc.integer({ min: -DAY, max: 30 * DAY }),
        fc.integer({ min: 0, max: 30 * DAY }),
        (firstSeen, age, more) => {
          const a = rampFactor(firstSeen, firstSeen + age);
          const b = rampFactor(firstSeen, firstSeen + age + more);
          expect(a).toBeGreaterThanOrEqual(0.1 - 1e-12);
          expect(b).toBeLessThanOrEqual(1);
          expect(b).toBeGreaterThanOrEqual(a);
        },
      ),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------
// Health window

describe("health window", () => {
  const today = Math.floor(T0 / DAY);

  it("creates and accumulates the bucket of the current day", () => {
    let w = recordHealth([], T0, { success: 1 });
    w = recordHealth(w, T0 + 1_000, { failure: 2, neutral: 1 });
    w = recordHealth(w, T0 + 2_000, { probeOk: 1, probeFail: 1, onlineMs: 60_000 });
    expect(w).toEqual([{ day: today, success: 1, failure: 2, neutral: 1, probeOk: 1, probeFail: 1, onlineMs: 60_000 }]);
    w = recordHealth(w, T0 + DAY, { success: 1 });
    expect(w.map((b) => b.day)).toEqual([today, today + 1]);
  });

  it("caps online time at one day per bucket", () => {
    let w = recordHealth([], T0, { onlineMs: 20 * 3600_000 });
    w = recordHealth(w, T0, { onlineMs: 20 * 3600_000 });
    expect(w[0]!.onlineMs).toBe(DAY);
  });

  it("drops buckets older than 14 days", () => {
    let w: HealthBucket[] = [];
    for (let d = 20; d >= 0; d--) w = recordHealth(w, T0 - d * DAY, { success: 1 });
    // Recording at T0 - 0 keeps today and the 13 days before it: a 14-day window.
    expect(w.map((b) => b.day)).toEqual(Array.from({ length: 14 }, (_, i) => today - 13 + i));
    // A bucket written exactly 14 days ago is gone; one written 13 days ago is kept.
    const two = recordHealth(recordHealth([], T0 - 14 * DAY, { failure: 1 }), T0 - 13 * DAY, { failure: 1 });
    expect(recordHealth(two, T0, {}).map((b) => b.day)).toEqual([today - 13, today]);
  });

  it("does not mutate the window it is given", () => {
    const w = recordHealth([], T0, { success: 1 });
    const snapshot = structuredClone(w);
    recordHealth(w, T0, { success: 5 });
    recordHealth(w, T0 + 20 * DAY, { success: 5 });
    expect(w).toEqual(snapshot);
  });

  it("scores a newcomer 0.5 and orders instances by their record", () => {
    expect(healthScore([], T0)).toBe(0.5);
    const good = recordHealth([], T0, { success: 10 });
    const bad = recordHealth([], T0, { failure: 10 });
    const mixed = recordHealth([], T0, { success: 5, failure: 5 });
    const neutral = recordHealth([], T0, { neutral: 100 });
    expect(healthScore(good, T0)).toBeGreaterThan(healthScore(mixed, T0));
    expect(healthScore(mixed, T0)).toBe(0.5);
    expect(healthScore(mixed, T0)).toBeGreaterThan(healthScore(bad, T0));
    expect(healthScore(neutral, T0)).toBe(0.5);
    expect(healthScore(recordHealth([], T0, { probeFail: 1 }), T0)).toBeLessThan(0.5);
    expect(healthScore(recordHealth([], T0, { probeOk: 1 }), T0)).toBeGreaterThan(0.5);
    // One full day online is worth one success.
    expect(healthScore(recordHealth([], T0, { onlineMs: DAY }), T0)).toBe(healthScore(recordHealth([], T0, { success: 1 }), T0));
    for (const w of [good, bad, mixed, neutral]) {
      expect(healthScore(w, T0)).toBeGreaterThan(0);
      expect(healthScore(w, T0)).toBeLessThan(1);
    }
  });

  it("forgets outcomes once they leave the window", () => {
    const old = recordHealth([], T0 - 14 * DAY, { failure: 50 });
    expect(healthScore(old, T0 - 14 * DAY)).toBeLessThan(0.1);
    expect(healthScore(old, T0 - DAY)).toBeLessThan(0.1);
    expect(healthScore(old, T0)).toBe(0.5);
  });

  it("more successes never lower the score and more failures never raise it (property)", () => {
    const counts = fc.record({
      success: fc.nat(1000),
      failure: fc.nat(1000),
      neutral: fc.nat(1000),
      probeOk: fc.nat(10),
      probeFail: fc.nat(10),
      onlineMs: fc.nat(DAY),
    });
    fc.assert(
      fc.property(counts, fc.integer({ min: 1, max: 100 }), (add, k) => {
        const w = recordHealth([], T0, add);
        const s = healthScore(w, T0);
        expect(s).toBeGreaterThan(0);
        expect(s).toBeLessThan(1);
        expect(healthScore(recordHealth(w, T0, { success: k }), T0)).toBeGreaterThan(s);
        expect(healthScore(recordHealth(w, T0, { failure: k }), T0)).toBeLessThan(s);
        expect(healthScore(recordHealth(w, T0, { neutral: k }), T0)).toBe(s);
      }),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------
// pick()

describe("pick", () => {
  it("returns nothing from nothing", () => {
    expect(pick([], T0)).toBeUndefined();
  });

  it("takes the lowest share of busy slots, not the lowest count", () => {
    const all = [
      view("half", { active: 1, capacity: 2 }),
      view("quarter", { active: 2, capacity: 8 }),
      view("most", { active: 3, capacity: 4 }),
    ];
    for (const u of [0, 0.5, 0.999999]) expect(pick(all, T0, () => u)?.key).toBe("quarter");
  });

  it("breaks load ties by health bucket, and health never beats load", () => {
    const healthy = view("healthy", { health: 0.9 });
    const meh = view("meh", { health: 0.5 });
    for (const u of [0, 0.5, 0.999999]) expect(pick([meh, healthy], T0, () => u)?.key).toBe("healthy");
    const idleButSick = view("sick", { health: 0.1 });
    const busyButHealthy = view("busy", { health: 0.99, active: 1 });
    for (const u of [0, 0.5, 0.999999]) expect(pick([busyButHealthy, idleButSick], T0, () => u)?.key).toBe("sick");
  });

  it("does not concentrate traffic on small health differences (same bucket)", () => {
    const all = [view("a", { health: 0.81 }), view("b", { health: 0.89 })];
    expect(pick(all, T0, () => 0.1)?.key).toBe("a");
    expect(pick(all, T0, () => 0.9)?.key).toBe("b");
  });

  it("weights the random choice by ramp-up", () => {
    const seasoned = view("seasoned", { firstSeen: T0 - 30 * DAY });
    const fresh = view("fresh", { firstSeen: T0 });
    // Weights 1 and 0.1: the seasoned one takes u < 1/1.1.
    expect(pick([seasoned, fresh], T0, () => 0.9)?.key).toBe("seasoned");
    expect(pick([seasoned, fresh], T0, () => 0.92)?.key).toBe("fresh");
    expect(pick([fresh, seasoned], T0, () => 0.09)?.key).toBe("fresh");
    expect(pick([fresh, seasoned], T0, () => 0.1)?.key).toBe("seasoned");
    // Over many picks the new instance's share is about 0.1 / 1.1.
    const random = mulberry32(7);
    let freshCount = 0;
    const K = 20_000;
    for (let i = 0; i < K; i++) if (pick([seasoned, fresh], T0, random)?.key === "fresh") freshCount++;
    const p = 0.1 / 1.1;
    expect(Math.abs(freshCount - K * p)).toBeLessThan(5 * Math.sqrt(K * p * (1 - p)));
  });

  it("stays within its candidates whatever the random source returns", () => {
    const all = [view("a"), view("b"), view("c")];
    for (const u of [0, 0.3333, 0.6667, 0.9999999999, 1]) expect(["a", "b", "c"]).toContain(pick(all, T0, () => u)?.key);
    expect(["a", "b", "c"]).toContain(pick(all, T0)?.key);
  });
});

// ---------------------------------------------------------------------------
// chatNeeds and estimatePromptTokens

describe("chatNeeds", () => {
  const msgs = [{ role: "user", content: "hi" }];
  const sorted = (c: Capability[]) => [...c].sort();

  it("needs only chat for a plain body", () => {
    expect(chatNeeds({ model: "m", messages: msgs })).toEqual(["chat"]);
    expect(chatNeeds({})).toEqual(["chat"]);
  });

  it("needs stream only for stream: true", () => {
    expect(chatNeeds({ messages: msgs, stream: true })).toContain("stream");
    expect(chatNeeds({ messages: msgs, stream: false })).not.toContain("stream");
    expect(chatNeeds({ messages: msgs, stream: "true" })).not.toContain("stream");
  });

  it("needs tools only for a non-empty tools array", () => {
    const tool = { type: "function", function: { name: "f", parameters: {} } };
    expect(chatNeeds({ messages: msgs, tools: [tool] })).toContain("tools");
    expect(chatNeeds({ messages: msgs, tools: [] })).not.toContain("tools");
    expect(chatNeeds({ messages: msgs, tools: null })).not.toContain("tools");
  });

  it("needs json_mode for json_object and json_schema response formats", () => {
    expect(chatNeeds({ messages: msgs, response_format: { type: "json_object" } })).toContain("json_mode");
    expect(chatNeeds({ messages: msgs, response_format: { type: "json_schema", json_schema: { name: "x", schema: {} } } })).toContain(
      "json_mode",
    );
    expect(chatNeeds({ messages: msgs, response_format: { type: "text" } })).not.toContain("json_mode");
    expect(chatNeeds({ messages: msgs, response_format: null })).not.toContain("json_mode");
  });

  it("needs vision when a message has an image_url part", () => {
    const image = [
      {
        role: "user",
        content: [
          { type: "text", text: "what is this" },
          { type: "image_url", image_url: { url: "data:image/png;base64,AA==" } },
        ],
      },
    ];
    expect(chatNeeds({ messages: image })).toContain("vision");
    expect(chatNeeds({ messages: [{ role: "user", content: [{ type: "text", text: "no image" }] }] })).not.toContain("vision");
    // Malformed messages do not throw.
    expect(chatNeeds({ messages: [null, 3, { content: [null, 1] }] })).toEqual(["chat"]);
    expect(chatNeeds({ messages: "not an array" })).toEqual(["chat"]);
  });

  it("combines everything", () => {
    const body = {
      stream: true,
      tools: [{ type: "function", function: { name: "f" } }],
      response_format: { type: "json_object" },
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://x/y.png" } }] }],
    };
    expect(sorted(chatNeeds(body))).toEqual(sorted(["chat", "stream", "tools", "json_mode", "vision"]));
  });

  it("estimates prompt tokens at four characters per token, rounding up", () => {
    const body = { messages: [{ role: "user", content: "x".repeat(100) }] };
    expect(estimatePromptTokens(body)).toBe(Math.ceil(JSON.stringify(body.messages).length / 4));
    expect(estimatePromptTokens({})).toBe(1);
  });

  it("counts the JSON text of messages exactly, without recursion (no stack overflow at any depth)", () => {
    const messages = [
      { role: "user", content: [{ type: "text", text: 'a "quoted" é \n', n: -1.5e-7, ok: true, no: false, none: null }, [], {}] },
      { role: "assistant", content: null, gone: undefined },
    ];
    expect(estimatePromptTokens({ messages })).toBe(Math.ceil(JSON.stringify(messages).length / 4));
    let deep: unknown = "x";
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(() => JSON.stringify(deep)).toThrow(RangeError);
    expect(estimatePromptTokens({ messages: [{ role: "user", content: deep }] })).toBe(
      Math.ceil((100_000 * 2 + 3 + '[{"role":"user","content":}]'.length) / 4),
    );
  });
});

// ---------------------------------------------------------------------------
// Properties

describe("properties", () => {
  it("(1) equally idle, healthy, old instances share picks evenly (within 5 sigma of a binomial)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 20 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        // A common state: same load, health and age for everyone.
        fc.record({
          active: fc.integer({ min: 0, max: 3 }),
          health: fc.double({ min: 0, max: 1, noNaN: true }),
          age: fc.integer({ min: 0, max: 30 * DAY }),
        }),
        (n, seed, common) => {
          const all = Array.from({ length: n }, (_, i) =>
            view(`i${i}`, { active: common.active, capacity: 4, health: common.health, firstSeen: T0 - common.age }),
          );
          const random = mulberry32(seed);
          const K = 250 * n;
          const counts = new Map<string, number>();
          for (let k = 0; k < K; k++) {
            const c = pick(all, T0, random);
            expect(c).toBeDefined();
            counts.set(c!.key, (counts.get(c!.key) ?? 0) + 1);
          }
          // Each count is Binomial(K, 1/n): mean K/n, sd sqrt(K p (1 - p)). With 5 sd the chance
          // of a false alarm is about 5.7e-7 per instance, so about 1e-4 over the whole run.
          const p = 1 / n;
          const mean = K * p;
          const sd = Math.sqrt(K * p * (1 - p));
          expect(counts.size).toBe(n);
          for (const [, count] of counts) expect(Math.abs(count - mean)).toBeLessThanOrEqual(5 * sd);
        },
      ),
      { numRuns: 40 },
    );
  });

  // Any breaker state relative to `now`.
  const anyBreaker = (now: number): fc.Arbitrary<Breaker> =>
    fc.oneof(
      fc.constant(CLOSED_BREAKER),
      fc.array(fc.integer({ min: now - 120_000, max: now }), { maxLength: 2 }).map((failures) => ({ ...CLOSED_BREAKER, failures })),
      fc.integer({ min: 1, max: 15_000 }).map((d) => ({ failures: [], parkedUntil: now + d, probing: false, needsProbe: true })),
      fc
        .tuple(fc.integer({ min: 0, max: 10 * DAY }), fc.boolean())
        .map(([d, probing]) => ({ failures: [], parkedUntil: now - d, probing, needsProbe: true })),
    );

  const anyOther = (now: number): fc.Arbitrary<CandidateView> =>
    fc
      .record({
        capacity: fc.integer({ min: 1, max: 8 }),
        busy: fc.integer({ min: 0, max: 9 }),
        breaker: anyBreaker(now),
        health: fc.double({ min: 0, max: 1, noNaN: true }),
        tps: fc.double({ min: 0.5, max: 100, noNaN: true }),
        samples: fc.integer({ min: 0, max: 5 }),
        age: fc.integer({ min: 0, max: 30 * DAY }),
      })
      .map((o) =>
        view("other", {
          capacity: o.capacity,
          active: Math.min(o.busy, o.capacity + 1),
          breaker: o.breaker,
          health: o.health,
          throughput: { tokensPerSecond: o.tps, samples: o.samples },
          firstSeen: now - o.age,
        }),
      );

  it("(2) a parked instance never appears in eligible() while parked or probing, and gets nothing but its probe", () => {
    const outcome = fc.constantFrom<Outcome>("success", "failure", "neutral");
    fc.assert(
      fc.property(
        // How the target got here: parked at `parkAt`, then some failed probe cycles.
        fc.integer({ min: T0 - 10 * DAY, max: T0 }),
        fc.array(fc.integer({ min: 15_000, max: 120_000 }), { maxLength: 3 }),
        // What happens after the last park: outcomes of jobs started before it, whether its probe was sent, and when we ask.
        fc.array(fc.tuple(fc.integer({ min: 0, max: 60_000 }), outcome), { maxLength: 6 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 120_000 }),
        fc.array(anyOther(T0 + 200 * DAY), { maxLength: 6 }),
        (parkAt, failedProbes, late, probeSent, askAfter, othersAtFuture) => {
          let b = parkedAt(parkAt);
          let lastPark = parkAt;
          for (const gap of failedProbes) {
            lastPark += gap;
            b = breakerAfterProbe(breakerProbeSent(b), false, lastPark);
          }
          expect(b.parkedUntil).toBe(lastPark + 15_000);
          b = fold(
            b,
            late.map(([dt, o]) => [lastPark + dt, o] as const),
          );
          expect(b.parkedUntil).toBe(lastPark + 15_000);
          const now = lastPark + askAfter;
          if (probeSent && now >= b.parkedUntil) b = breakerProbeSent(b);
          const status = breakerStatus(b, now);
          expect(status).not.toBe("closed");
          if (now < lastPark + 15_000) expect(status).toBe("parked");
          else expect(status).toBe(probeSent ? "probing" : "probe_due");

          // The target is otherwise the most attractive instance there is.
          const target = view("target", { breaker: b, health: 1, active: 0, capacity: 64, throughput: measured(1000, 5) });
          // Re-anchor the others' breakers to `now` (they were generated around a fixed future time).
          const shift = now - (T0 + 200 * DAY);
          const others = othersAtFuture.map((o, i) => ({
            ...o,
            key: `o${i}`,
            firstSeen: o.firstSeen + shift,
            breaker: {
              ...o.breaker,
              failures: o.breaker.failures.map((t) => t + shift),
              parkedUntil: o.breaker.needsProbe ? o.breaker.parkedUntil + shift : 0,
            },
          }));
          const all = [...others, target];
          const r = eligible(all, needs(), now);
          if (Array.isArray(r)) {
            expect(r.map((c) => c.key)).not.toContain("target");
            for (const c of r) {
              expect(breakerStatus(c.breaker, now)).toBe("closed");
              expect(c.active).toBeLessThan(c.capacity);
            }
            expect(pick(r, now, mulberry32(parkAt))?.key).not.toBe("target");
          } else {
            expect(["parked", "busy"]).toContain(r.reason);
            if (r.reason === "parked") expect(r.retryAfterMs).toBeGreaterThanOrEqual(1000);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("(3) pick() returns one of its candidates with the minimal load ratio", () => {
    const candidate = fc
      .record({
        capacity: fc.integer({ min: 1, max: 1024 }),
        share: fc.double({ min: 0, max: 1, noNaN: true }),
        health: fc.double({ min: 0, max: 1, noNaN: true }),
        age: fc.integer({ min: -DAY, max: 30 * DAY }),
      })
      .map((o) => ({ capacity: o.capacity, active: Math.floor(o.share * o.capacity), health: o.health, age: o.age }));
    fc.assert(
      fc.property(fc.array(candidate, { minLength: 1, maxLength: 20 }), fc.integer({ min: 0, max: 0xffffffff }), (specs, seed) => {
        const all = specs.map((s, i) => view(`c${i}`, { capacity: s.capacity, active: s.active, health: s.health, firstSeen: T0 - s.age }));
        const random = mulberry32(seed);
        const minLoad = Math.min(...all.map((c) => c.active / c.capacity));
        for (let k = 0; k < 5; k++) {
          const chosen = pick(all, T0, random);
          expect(chosen).toBeDefined();
          expect(all).toContain(chosen);
          expect(chosen!.active / chosen!.capacity).toBe(minLoad);
        }
      }),
      { numRuns: 300 },
    );
  });

  const closedBreaker = fc
    .array(fc.integer({ min: T0 - 120_000, max: T0 }), { maxLength: 2 })
    .map((f): Breaker => ({ ...CLOSED_BREAKER, failures: f.sort((a, b) => a - b) }));

  it("(4) only neutral outcomes never park and change nothing", () => {
    fc.assert(
      fc.property(closedBreaker, fc.array(fc.integer({ min: 0, max: 10 * DAY }), { maxLength: 50 }), (start, times) => {
        let b = start;
        for (const dt of [...times].sort((x, y) => x - y)) {
          b = breakerAfterOutcome(b, "neutral", T0 + dt);
          expect(b).toBe(start);
          expect(breakerStatus(b, T0 + dt)).toBe("closed");
        }
        expect(breakerStatus(CLOSED_BREAKER, T0)).toBe("closed");
      }),
      { numRuns: 200 },
    );
  });

  it("(4b) neutral outcomes are invisible: removing them from any sequence changes no breaker", () => {
    const event = fc.tuple(fc.integer({ min: 0, max: 40_000 }), fc.constantFrom<Outcome>("success", "failure", "neutral", "neutral"));
    fc.assert(
      fc.property(fc.array(event, { maxLength: 30 }), (steps) => {
        let t = T0;
        const timed = steps.map(([dt, o]) => [(t += dt), o] as const);
        expect(fold(CLOSED_BREAKER, timed)).toEqual(
          fold(
            CLOSED_BREAKER,
            timed.filter(([, o]) => o !== "neutral"),
          ),
        );
      }),
      { numRuns: 300 },
    );
  });

  it("(5) the breaker parks exactly when 3 failures fall within 60 s with no success between them", () => {
    const event = fc.tuple(fc.integer({ min: 0, max: 40_000 }), fc.constantFrom<Outcome>("success", "failure", "failure", "neutral"));
    fc.assert(
      fc.property(fc.array(event, { maxLength: 30 }), (steps) => {
        let t = T0;
        const timed = steps.map(([dt, o]) => [(t += dt), o] as const);
        // Reference model: the first failure that has two more failures, since the last success, less than 60 s before it.
        let expectedParkAt: number | undefined;
        let recent: number[] = [];
        for (const [at, o] of timed) {
          if (o === "success") recent = [];
          if (o !== "failure") continue;
          recent = [...recent.filter((x) => at - x < 60_000), at];
          if (recent.length >= 3) {
            expectedParkAt = at;
            break;
          }
        }
        const b = fold(CLOSED_BREAKER, timed);
        if (expectedParkAt === undefined) expect(b.needsProbe).toBe(false);
        else expect(b).toEqual({ failures: [], parkedUntil: expectedParkAt + 15_000, probing: false, needsProbe: true });
      }),
      { numRuns: 300 },
    );
  });
});

describe("ramp-up against seasoned instances", () => {
  it("a brand-new idle instance gets about a tenth of a seasoned idle one's share, rising over the week", () => {
    const now = 100 * 24 * 3600_000;
    const base = {
      model: "m",
      capabilities: ["chat"],
      contextLength: 8192,
      price: { input: "1", output: "1" },
      active: 0,
      capacity: 1,
      breaker: CLOSED_BREAKER,
      throughput: NO_THROUGHPUT,
    } as const;
    const seasoned = { ...base, key: "old", health: 15 / 16, firstSeen: now - 30 * 24 * 3600_000 };
    const share = (ageDays: number) => {
      const fresh = { ...base, key: "new", health: 0.5, firstSeen: now - ageDays * 24 * 3600_000 };
      let seed = 42;
      const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      let hits = 0;
      for (let i = 0; i < 20_000; i++) if (pick([seasoned, fresh], now, random)?.key === "new") hits++;
      return hits / 20_000;
    };
    // Weight 0.1 against 1: a share of 0.1 / 1.1.
    expect(share(0)).toBeGreaterThan(0.07);
    expect(share(0)).toBeLessThan(0.11);
    expect(share(3.5)).toBeGreaterThan(share(0));
    // After the week the newcomer is seasoned, and health decides.
    expect(share(8)).toBe(0);
  });
});
