import { describe, expect, it } from "vitest";
import {
  applyPolicyPatch,
  budgetExceeded,
  decodePolicy,
  encodePolicy,
  formatBudgetAmount,
  NO_POLICY,
  parsePolicyPatch,
  periodEnd,
  periodsAt,
  PolicyError,
  usdToUnits,
  type KeyPolicy,
} from "./policy.js";

const FULL: KeyPolicy = {
  tags: ["team-a", "ci"],
  expiresAt: Date.UTC(2027, 0, 1),
  models: ["sim-llama-3-8b"],
  budget: { total: 20_000_000n, day: 1_000_000n, month: 10_000_000n },
  limits: { rpm: 60, tpm: 100_000, concurrency: 4 },
};

describe("parsePolicyPatch", () => {
  it("reads every member of the contract's example", () => {
    const patch = parsePolicyPatch({
      tags: ["team-a", "ci", "ci"],
      expires_at: 1798761600000,
      models: ["sim-llama-3-8b"],
      budget: { total: { usd: "20" }, day: { units: "1000000" }, month: "10.5" },
      limits: { rpm: 60, tpm: 100000, concurrency: 4 },
    });
    expect(patch).toEqual({
      tags: ["team-a", "ci"],
      expiresAt: 1798761600000,
      models: ["sim-llama-3-8b"],
      budget: { total: 20_000_000n, day: 1_000_000n, month: 10_500_000n },
      limits: { rpm: 60, tpm: 100000, concurrency: 4 },
    });
  });

  it("takes an ISO time for expires_at, and null clears members", () => {
    expect(parsePolicyPatch({ expires_at: "2027-01-01T00:00:00Z" }).expiresAt).toBe(Date.UTC(2027, 0, 1));
    expect(parsePolicyPatch({ expires_at: null, models: null, budget: null, limits: null })).toEqual({
      expiresAt: null,
      models: null,
      budget: { total: null, day: null, month: null },
      limits: { rpm: null, tpm: null, concurrency: null },
    });
    expect(parsePolicyPatch({ budget: { day: null } })).toEqual({ budget: { day: null } });
  });

  it("leaves out what the body does not name", () => {
    expect(parsePolicyPatch({})).toEqual({});
    expect(parsePolicyPatch({ limits: { rpm: 5 } })).toEqual({ limits: { rpm: 5 } });
  });

  it.each([
    [{ tags: "ci" }, /tags/],
    [{ tags: ["has space"] }, /tags/],
    [{ tags: ["x".repeat(65)] }, /tags/],
    [{ tags: Array.from({ length: 17 }, (_, i) => `t${i}`) }, /tags/],
    [{ models: [] }, /models/],
    [{ models: "sim" }, /models/],
    [{ expires_at: -1 }, /expires_at/],
    [{ expires_at: "tomorrow" }, /expires_at/],
    [{ expires_at: 1.5 }, /expires_at/],
    [{ budget: { total: { usd: "-1" } } }, /budget\.total/],
    [{ budget: { day: { usd: "0.0000001" } } }, /budget\.day/],
    [{ budget: { month: { units: "12.5" } } }, /budget\.month/],
    [{ budget: { total: 5 } }, /budget\.total/],
    [{ budget: "5" }, /budget/],
    [{ budget: [] }, /budget/],
    [{ limits: { rpm: 0 } }, /limits\.rpm/],
    [{ limits: { tpm: 2.5 } }, /limits\.tpm/],
    [{ limits: { concurrency: "4" } }, /limits\.concurrency/],
    [{ limits: { rpm: 1_000_000_001 } }, /limits\.rpm/],
  ])("refuses %j", (body, message) => {
    expect(() => parsePolicyPatch(body as Record<string, unknown>)).toThrow(PolicyError);
    expect(() => parsePolicyPatch(body as Record<string, unknown>)).toThrow(message);
  });
});

describe("usdToUnits and amounts", () => {
  it("converts decimal dollars to atomic units exactly", () => {
    expect(usdToUnits("0")).toBe(0n);
    expect(usdToUnits("5")).toBe(5_000_000n);
    expect(usdToUnits("0.25")).toBe(250_000n);
    expect(usdToUnits("0.000001")).toBe(1n);
    expect(usdToUnits("1234567890123.999999")).toBe(1_234_567_890_123_999_999n);
  });

  it.each(["", ".5", "5.", "1e3", "-1", "1,5", "0.0000001", " 5"])("refuses %j", (text) => {
    expect(() => usdToUnits(text)).toThrow(PolicyError);
  });

  it("formats a budget in both forms, null as null", () => {
    expect(formatBudgetAmount(1_500_000n)).toEqual({ units: "1500000", usd: "1.50" });
    expect(formatBudgetAmount(null)).toBeNull();
  });
});

describe("applyPolicyPatch", () => {
  it("changes only what the patch names, null clearing it", () => {
    const p = applyPolicyPatch(FULL, { budget: { day: null }, limits: { rpm: 5 }, models: null });
    expect(p).toEqual({
      ...FULL,
      models: null,
      budget: { ...FULL.budget, day: null },
      limits: { ...FULL.limits, rpm: 5 },
    });
    expect(FULL.budget.day).toBe(1_000_000n); // pure: the input is unchanged
    expect(applyPolicyPatch(FULL, {})).toEqual(FULL);
    expect(applyPolicyPatch(FULL, { tags: [], expiresAt: null })).toMatchObject({ tags: [], expiresAt: null });
  });

  it("builds a new key's policy from nothing", () => {
    expect(applyPolicyPatch(NO_POLICY, parsePolicyPatch({ budget: { day: { usd: "1" } } }))).toEqual({
      ...NO_POLICY,
      budget: { total: null, day: 1_000_000n, month: null },
    });
  });
});

describe("encodePolicy / decodePolicy", () => {
  it("round-trips a full policy, amounts beyond 2^53 included", () => {
    const big = { ...FULL, budget: { total: 2n ** 62n, day: 0n, month: null } };
    for (const p of [FULL, big]) expect(decodePolicy(encodePolicy(p))).toEqual(p);
    expect(JSON.parse(encodePolicy(big)!).budget.total).toBe("4611686018427387904");
  });

  it("stores no policy as null and reads null, undefined and empty as no policy", () => {
    expect(encodePolicy(NO_POLICY)).toBeNull();
    expect(
      encodePolicy(applyPolicyPatch(FULL, parsePolicyPatch({ tags: [], expires_at: null, models: null, budget: null, limits: null }))),
    ).toBeNull();
    for (const stored of [null, undefined, ""]) expect(decodePolicy(stored)).toEqual(NO_POLICY);
  });

  it("reads a stored policy missing members as their defaults", () => {
    expect(decodePolicy('{"tags":["a"]}')).toEqual({ ...NO_POLICY, tags: ["a"] });
    expect(decodePolicy('{"budget":{"day":"5"},"limits":{"rpm":3}}')).toEqual({
      ...NO_POLICY,
      budget: { total: null, day: 5n, month: null },
      limits: { rpm: 3, tpm: null, concurrency: null },
    });
  });
});

describe("periodsAt and periodEnd", () => {
  it("names the UTC day and month a moment falls in", () => {
    expect(periodsAt(Date.UTC(2026, 11, 6, 18, 30))).toEqual({ total: "total", day: "d:2026-12-06", month: "m:2026-12" });
  });

  it("changes period at the last millisecond of a month and of a year", () => {
    const endOfJanuary = Date.UTC(2026, 1, 1) - 1;
    expect(periodsAt(endOfJanuary)).toEqual({ total: "total", day: "d:2026-01-31", month: "m:2026-01" });
    expect(periodsAt(endOfJanuary + 1)).toEqual({ total: "total", day: "d:2026-02-01", month: "m:2026-02" });
    const endOfYear = Date.UTC(2027, 0, 1) - 1;
    expect(periodsAt(endOfYear)).toEqual({ total: "total", day: "d:2026-12-31", month: "m:2026-12" });
    expect(periodsAt(endOfYear + 1)).toEqual({ total: "total", day: "d:2027-01-01", month: "m:2027-01" });
    // A leap day.
    expect(periodsAt(Date.UTC(2028, 1, 29, 12))).toMatchObject({ day: "d:2028-02-29", month: "m:2028-02" });
  });

  it("ends a day at the next UTC midnight and a month at the next month's first", () => {
    expect(periodEnd("day", Date.UTC(2026, 11, 31, 23, 59))).toBe(Date.UTC(2027, 0, 1));
    expect(periodEnd("month", Date.UTC(2026, 11, 15))).toBe(Date.UTC(2027, 0, 1));
    expect(periodEnd("month", Date.UTC(2028, 1, 29))).toBe(Date.UTC(2028, 2, 1));
    expect(periodEnd("day", Date.UTC(2026, 0, 31))).toBe(Date.UTC(2026, 1, 1));
    expect(periodEnd("total", 0)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe("budgetExceeded", () => {
  const budget = { total: 100n, day: 10n, month: 50n };

  it("lets an amount that reaches a cap exactly through, and refuses one unit more", () => {
    expect(budgetExceeded(budget, { total: 90n, day: 5n, month: 45n }, 5n)).toBeUndefined();
    expect(budgetExceeded(budget, { total: 90n, day: 5n, month: 45n }, 6n)).toEqual({ period: "day", cap: 10n, used: 5n });
  });

  it("names the day first, then the month, then the total", () => {
    expect(budgetExceeded(budget, { total: 100n, day: 10n, month: 50n }, 1n)?.period).toBe("day");
    expect(budgetExceeded(budget, { total: 100n, day: 0n, month: 50n }, 1n)?.period).toBe("month");
    expect(budgetExceeded(budget, { total: 100n, day: 0n, month: 0n }, 1n)).toEqual({ period: "total", cap: 100n, used: 100n });
  });

  it("counts a period with no use as zero and ignores periods without a cap", () => {
    expect(budgetExceeded(budget, {}, 10n)).toBeUndefined();
    expect(budgetExceeded(budget, {}, 11n)?.period).toBe("day");
    expect(budgetExceeded(NO_POLICY.budget, { total: 10n ** 18n }, 10n ** 18n)).toBeUndefined();
  });

  it("refuses everything but nothing under a zero cap", () => {
    const zero = { total: null, day: 0n, month: null };
    expect(budgetExceeded(zero, {}, 0n)).toBeUndefined();
    expect(budgetExceeded(zero, {}, 1n)).toEqual({ period: "day", cap: 0n, used: 0n });
  });
});
