import { describe, expect, it } from "vitest";
import { maximumCostOn, runTimeout, settleBy, SETTLE_MARGIN_MS, withinReservation } from "./serve.js";

describe("settleBy", () => {
  it("is the authorization's expiry less the margin for a payment settled after serving, else nothing", () => {
    expect(settleBy({ mode: "after", validBefore: 1_700_000_300 })).toBe(1_700_000_300_000 - SETTLE_MARGIN_MS);
    expect(settleBy({ mode: "after", validBefore: 100 }, 5000)).toBe(95_000);
    expect(settleBy({ mode: "before", validBefore: 1_700_000_300 })).toBeUndefined();
    expect(settleBy(undefined)).toBeUndefined();
  });
});

describe("withinReservation", () => {
  const plan = {
    bound: { promptTokens: 1000, completionTokens: 500 },
    prefs: { sort: "load" as const, allowFallbacks: true },
    capabilities: ["chat" as const],
  };
  const cheap = { price: { input: "1000000", output: "3000000" }, contextLength: 8192 };
  const reserved = maximumCostOn([cheap], plan.bound, undefined, plan.capabilities).cost;

  it("admits instances whose worst case fits the reservation, refuses dearer ones", () => {
    const fits = withinReservation(plan, reserved);
    expect(fits(cheap)).toBe(true);
    expect(fits({ ...cheap, price: { input: "900000", output: "3000000" } })).toBe(true);
    expect(fits({ ...cheap, price: { input: "1000001", output: "3000000" } })).toBe(false);
    expect(fits({ ...cheap, price: { input: "1000000", output: "3000000", cacheWrite: "2000000" } })).toBe(false);
  });

  it("counts a longer context when the output limit comes from it", () => {
    const open = { ...plan, bound: { promptTokens: 1000, completionTokens: 0 } };
    const fits = withinReservation(open, maximumCostOn([cheap], open.bound, undefined, open.capabilities).cost);
    expect(fits(cheap)).toBe(true);
    expect(fits({ ...cheap, contextLength: 32_768 })).toBe(false);
  });
});

describe("runTimeout", () => {
  const budget = { ms: 120_000, chosen: false };
  it("cuts a non-streamed request short at the settle limit of an x402 payment settled after serving (SRP-PAY-013)", () => {
    expect(runTimeout(false, budget, 1_000_030_000, 1_000_000_000)).toEqual({ ms: 30_000, chosen: true });
    expect(runTimeout(false, budget, 999_000_000, 1_000_000_000)).toEqual({ ms: 0, chosen: true });
  });
  it("keeps the request's own budget when streamed, without such a payment, or when the limit is later", () => {
    expect(runTimeout(true, budget, 1_000_030_000, 1_000_000_000)).toBe(budget);
    expect(runTimeout(false, budget, undefined, 1_000_000_000)).toBe(budget);
    expect(runTimeout(false, budget, 1_000_120_000, 1_000_000_000)).toBe(budget);
  });
});
