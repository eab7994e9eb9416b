import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { derivedMultiplier, flapReduction, payout, PAYOUT_DEFAULTS, PLAIN_TERMS, trustCap } from "./payout-terms.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe("trustCap", () => {
  it("unlocks higher multipliers with tenure and health, none before the first level", () => {
    const levels = PAYOUT_DEFAULTS.trust;
    expect(trustCap(0, 1, levels)).toBe(10000);
    expect(trustCap(DAY - 1, 1, levels)).toBe(10000);
    expect(trustCap(DAY, 0.8, levels)).toBe(12500);
    expect(trustCap(DAY, 0.79, levels)).toBe(10000);
    expect(trustCap(7 * DAY, 0.9, levels)).toBe(15000);
    expect(trustCap(30 * DAY, 0.95, levels)).toBe(20000);
    // Long tenure with poor health earns only what the health allows.
    expect(trustCap(30 * DAY, 0.85, levels)).toBe(12500);
  });
});

describe("derivedMultiplier", () => {
  const cfg = PAYOUT_DEFAULTS;
  it("is 1× at or below balanced demand and rises with excess demand up to the ceiling", () => {
    expect(derivedMultiplier(0, 3, cfg)).toBe(10000);
    expect(derivedMultiplier(30, 3, cfg)).toBe(10000); // 10 per instance per minute: balanced
    expect(derivedMultiplier(60, 3, cfg)).toBe(15000); // twice the balance: +0.5×
    expect(derivedMultiplier(1e6, 3, cfg)).toBe(20000);
    expect(derivedMultiplier(5, 0, cfg)).toBe(20000); // demand and no supply at all
  });
});

describe("flapReduction", () => {
  it("starts at the configured reduction and decays linearly to zero over 72 hours", () => {
    const cfg = PAYOUT_DEFAULTS;
    expect(flapReduction(undefined, cfg)).toBe(0);
    expect(flapReduction(0, cfg)).toBe(5000);
    expect(flapReduction(36 * HOUR, cfg)).toBe(2500);
    expect(flapReduction(72 * HOUR - 1, cfg)).toBeGreaterThan(0);
    expect(flapReduction(72 * HOUR, cfg)).toBe(0);
    expect(flapReduction(100 * HOUR, cfg)).toBe(0);
  });
  it("never increases as time passes", () => {
    fc.assert(
      fc.property(fc.nat(80 * HOUR), fc.nat(HOUR), (t, dt) => flapReduction(t + dt, PAYOUT_DEFAULTS) <= flapReduction(t, PAYOUT_DEFAULTS)),
    );
  });
});

describe("payout", () => {
  it("without terms credits exactly the base share", () => {
    expect(payout(900n, 100n, 0n, PLAIN_TERMS)).toEqual({ provider: 900n, reduction: 0n, bounty: 0n, poolFunding: 0n });
  });
  it("pays a bounty from the pool, never more than the pool (plus this job's funding) holds", () => {
    const terms = { multiplierBps: 15000, reductionBps: 0, poolFundingBps: 2000 };
    expect(payout(900n, 100n, 1000n, terms)).toEqual({ provider: 1350n, reduction: 0n, bounty: 450n, poolFunding: 20n });
    expect(payout(900n, 100n, 0n, terms)).toEqual({ provider: 920n, reduction: 0n, bounty: 20n, poolFunding: 20n });
  });
  it("reduces a flapping instance's share, rounding against it", () => {
    expect(payout(901n, 100n, 0n, { multiplierBps: 10000, reductionBps: 5000, poolFundingBps: 0 })).toEqual({
      provider: 450n,
      reduction: 451n,
      bounty: 0n,
      poolFunding: 0n,
    });
  });
  it("conserves money: what the provider gains beyond its reduced share comes from the pool, and the pool never goes negative", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 12n }),
        fc.bigInt({ min: -(10n ** 11n), max: 10n ** 12n }),
        fc.bigInt({ min: 0n, max: 10n ** 12n }),
        fc.integer({ min: 10000, max: 30000 }),
        fc.integer({ min: 0, max: 10000 }),
        fc.integer({ min: 0, max: 10000 }),
        (base, take, pool, multiplierBps, reductionBps, poolFundingBps) => {
          const p = payout(base, take, pool, { multiplierBps, reductionBps, poolFundingBps });
          expect(p.provider).toBe(base - p.reduction + p.bounty);
          expect(p.reduction).toBeGreaterThanOrEqual(0n);
          expect(p.reduction).toBeLessThanOrEqual(base);
          expect(p.bounty).toBeGreaterThanOrEqual(0n);
          expect(pool + p.poolFunding - p.bounty).toBeGreaterThanOrEqual(0n);
          expect(p.poolFunding).toBe(take > 0n ? (take * BigInt(poolFundingBps)) / 10000n : 0n);
        },
      ),
    );
  });
});
