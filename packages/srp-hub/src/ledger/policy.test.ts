import { cost, formatAmount } from "@srp/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { balancedLegs, type Leg } from "./ledger.js";
import { DEFAULT_DISCOUNT_TIERS, discounted, discountFor, prepaidOf, splitCharge, worstCase, type DiscountTier } from "./policy.js";

/** Amounts up to $10^9 in atomic units, small ones often. */
const money = fc.oneof(fc.bigInt(0n, 1_000n), fc.bigInt(0n, 10n ** 15n));
const bps = fc.integer({ min: 0, max: 10_000 });
/** The tiers a hub actually uses: 0, 5 %, 10 %, 15 %. */
const tierBps = fc.constantFrom(0, 500, 1000, 1500);

describe("discounted", () => {
  it("rounds the consumer's price up", () => {
    expect(discounted(0n, 500)).toBe(0n);
    expect(discounted(1n, 500)).toBe(1n); // 0.95 -> 1
    expect(discounted(19n, 500)).toBe(19n); // 18.05 -> 19
    expect(discounted(20n, 500)).toBe(19n); // exactly 19
    expect(discounted(12_345n, 1000)).toBe(11_111n); // 11110.5 -> 11111
    expect(discounted(1_000_000n, 1500)).toBe(850_000n);
    expect(discounted(7n, 0)).toBe(7n);
    expect(discounted(7n, 10_000)).toBe(0n);
  });

  it("rejects negative amounts and out-of-range or fractional discounts", () => {
    expect(() => discounted(-1n, 0)).toThrow(RangeError);
    expect(() => discounted(1n, -1)).toThrow(RangeError);
    expect(() => discounted(1n, 10_001)).toThrow(RangeError);
    expect(() => discounted(1n, 0.5)).toThrow(RangeError);
    expect(() => discounted(1n, Number.NaN)).toThrow(RangeError);
  });

  it("is the smallest amount not below the exact discounted price, and never above the amount", () => {
    fc.assert(
      fc.property(money, bps, (amount, d) => {
        const price = discounted(amount, d);
        const exact = amount * BigInt(10_000 - d); // the price times 10_000
        expect(price * 10_000n >= exact).toBe(true);
        expect((price - 1n) * 10_000n < exact || price === 0n).toBe(true);
        expect(price <= amount).toBe(true);
        expect(price >= 0n).toBe(true);
        if (d === 0) expect(price).toBe(amount);
      }),
    );
  });

  it("is monotone: a larger discount never costs more, a larger amount never less", () => {
    fc.assert(
      fc.property(money, money, bps, bps, (a, b, d1, d2) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        const [small, large] = d1 <= d2 ? [d1, d2] : [d2, d1];
        expect(discounted(lo, small) <= discounted(hi, small)).toBe(true);
        expect(discounted(hi, large) <= discounted(hi, small)).toBe(true);
      }),
    );
  });
});

describe("discountFor", () => {
  it("reaches each default tier at exactly $10, $50 and $200, not a unit below", () => {
    expect(discountFor(0n)).toBe(0);
    expect(discountFor(9_999_999n)).toBe(0);
    expect(discountFor(10_000_000n)).toBe(500);
    expect(discountFor(49_999_999n)).toBe(500);
    expect(discountFor(50_000_000n)).toBe(1000);
    expect(discountFor(199_999_999n)).toBe(1000);
    expect(discountFor(200_000_000n)).toBe(1500);
    expect(discountFor(10n ** 18n)).toBe(1500);
    expect(discountFor(-1n)).toBe(0);
  });

  it("takes the best tier reached, whatever the order the tiers are listed in", () => {
    const tiers: DiscountTier[] = [
      { minUnits: 100n, discountBps: 300 },
      { minUnits: 10n, discountBps: 100 },
      { minUnits: 50n, discountBps: 700 }, // a smaller deposit with a larger discount wins from 50 on
    ];
    expect(discountFor(9n, tiers)).toBe(0);
    expect(discountFor(10n, tiers)).toBe(100);
    expect(discountFor(50n, tiers)).toBe(700);
    expect(discountFor(1000n, tiers)).toBe(700);
    expect(discountFor(1000n, [])).toBe(0);
  });

  it("never decreases as the prepaid balance grows (default tiers)", () => {
    fc.assert(
      fc.property(fc.bigInt(0n, 300_000_000n), fc.bigInt(0n, 300_000_000n), (a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(discountFor(lo) <= discountFor(hi)).toBe(true);
        expect([0, 500, 1000, 1500]).toContain(discountFor(a));
      }),
    );
  });

  it("exposes the default tiers of SRP-BIL-010, frozen", () => {
    expect(DEFAULT_DISCOUNT_TIERS).toEqual([
      { minUnits: 10_000_000n, discountBps: 500 },
      { minUnits: 50_000_000n, discountBps: 1000 },
      { minUnits: 200_000_000n, discountBps: 1500 },
    ]);
    expect(Object.isFrozen(DEFAULT_DISCOUNT_TIERS)).toBe(true);
  });
});

describe("worstCase", () => {
  it("prices every prompt token at the input price and maxOutputTokens at the output price, rounded up once", () => {
    expect(worstCase(1000, 500, { input: "150000", output: "600000" })).toBe(450n);
    expect(worstCase(1, 1, { input: "1", output: "1" })).toBe(1n); // 2e-6 units rounds up to 1
    expect(worstCase(0, 0, { input: "150000", output: "600000" })).toBe(0n);
    expect(worstCase(10, 10, { input: "0", output: "0" })).toBe(0n);
  });

  it("ignores a cheaper cached-input price (the worst case has no cache hits)", () => {
    expect(worstCase(1000, 0, { input: "150000", output: "600000", cachedInput: "1" })).toBe(150n);
  });

  it("equals core cost() of prompt + maxOut, and bounds the cost of any actual completion", () => {
    fc.assert(
      fc.property(
        fc.nat(2_000_000),
        fc.nat(200_000),
        fc.bigInt(0n, 100_000_000n),
        fc.bigInt(0n, 100_000_000n),
        fc.nat(200_000),
        (prompt, maxOut, input, output, actualOut) => {
          const price = { input: formatAmount(input), output: formatAmount(output) };
          const worst = worstCase(prompt, maxOut, price);
          expect(worst).toBe(cost({ promptTokens: prompt, completionTokens: maxOut }, price));
          const used = Math.min(actualOut, maxOut);
          expect(cost({ promptTokens: prompt, completionTokens: used }, price) <= worst).toBe(true);
        },
      ),
    );
  });

  it("rejects negative or fractional token counts", () => {
    expect(() => worstCase(-1, 0, { input: "1", output: "1" })).toThrow(RangeError);
    expect(() => worstCase(1, 0.5, { input: "1", output: "1" })).toThrow(RangeError);
  });
});

describe("splitCharge", () => {
  it("splits a plain job: the consumer pays the cost, the provider 90 % rounded down, the protocol the rest", () => {
    expect(splitCharge(1000n, 2000n, 0)).toEqual({ charge: 1000n, refund: 1000n, provider: 900n, protocol: 100n, overrun: 0n });
    expect(splitCharge(7n, 10n, 0)).toEqual({ charge: 7n, refund: 3n, provider: 6n, protocol: 1n, overrun: 0n });
    expect(splitCharge(0n, 10n, 0)).toEqual({ charge: 0n, refund: 10n, provider: 0n, protocol: 0n, overrun: 0n });
    expect(splitCharge(0n, 0n, 1500)).toEqual({ charge: 0n, refund: 0n, provider: 0n, protocol: 0n, overrun: 0n });
  });

  it("discounts the consumer's charge but not the provider's share (the platform funds the difference)", () => {
    // 12345 at 10 %: the consumer pays ceil(11110.5) = 11111, the provider floor(11110.5) = 11110.
    expect(splitCharge(12_345n, 20_000n, 1000)).toEqual({ charge: 11_111n, refund: 8_889n, provider: 11_110n, protocol: 1n, overrun: 0n });
    // At 15 % the discount is larger than the fee: the protocol's take is negative.
    expect(splitCharge(1_000_000n, 1_000_000n, 1500)).toEqual({
      charge: 850_000n,
      refund: 150_000n,
      provider: 900_000n,
      protocol: -50_000n,
      overrun: 0n,
    });
  });

  it("caps the charge at the reservation, and the provider's share at the share of the reservation", () => {
    // A receipt for more than the request allowed: nobody can draw money from the platform beyond what was admitted.
    expect(splitCharge(5000n, 1000n, 0)).toEqual({ charge: 1000n, refund: 0n, provider: 900n, protocol: 100n, overrun: 4000n });
    expect(splitCharge(5000n, 0n, 0)).toEqual({ charge: 0n, refund: 0n, provider: 0n, protocol: 0n, overrun: 5000n });
    // Exactly the reservation: no overrun, nothing back.
    expect(splitCharge(1000n, 1000n, 0)).toEqual({ charge: 1000n, refund: 0n, provider: 900n, protocol: 100n, overrun: 0n });
  });

  it("rejects negative amounts and bad discounts", () => {
    expect(() => splitCharge(-1n, 0n, 0)).toThrow(RangeError);
    expect(() => splitCharge(0n, -1n, 0)).toThrow(RangeError);
    expect(() => splitCharge(1n, 1n, 10_001)).toThrow(RangeError);
  });

  it("conserves money for any cost, reservation and discount", () => {
    fc.assert(
      fc.property(money, money, fc.oneof(tierBps, bps), (receiptCost, reserved, d) => {
        const s = splitCharge(receiptCost, reserved, d);
        // The reservation is split exactly between what is charged and what goes back.
        expect(s.charge + s.refund).toBe(reserved);
        // What is charged is split exactly between provider and protocol.
        expect(s.provider + s.protocol).toBe(s.charge);
        // The provider's share: 90 % rounded down of the receipt's cost, of at most the reservation.
        const base = receiptCost < reserved ? receiptCost : reserved;
        expect(s.provider).toBe((base * 9000n) / 10_000n);
        expect(s.provider * 10_000n <= base * 9000n && (s.provider + 1n) * 10_000n > base * 9000n).toBe(true);
        // Never more than reserved, never negative, never more than the discounted price.
        expect(s.charge >= 0n && s.charge <= reserved).toBe(true);
        expect(s.refund >= 0n).toBe(true);
        expect(s.charge <= discounted(receiptCost, d)).toBe(true);
        // The overrun is exactly the discounted price the reservation could not cover.
        expect(s.overrun).toBe(discounted(receiptCost, d) - s.charge);
        expect(s.overrun >= 0n).toBe(true);
        expect(s.overrun === 0n || s.charge === reserved).toBe(true);
        // Seen from the books: consumer, provider and platform movements sum to zero.
        expect(-reserved + s.refund + s.provider + s.protocol).toBe(0n);
      }),
      { numRuns: 500 },
    );
  });

  it("charges exactly the discounted cost when the reservation covers it", () => {
    fc.assert(
      fc.property(money, fc.bigInt(0n, 10n ** 6n), tierBps, (receiptCost, slack, d) => {
        const reserved = receiptCost + slack; // a worst case is never below the actual cost
        const s = splitCharge(receiptCost, reserved, d);
        expect(s.charge).toBe(discounted(receiptCost, d));
        expect(s.overrun).toBe(0n);
        // Without a discount the protocol keeps its 10 % (rounded in its favour); with up to 10 % off it never pays out.
        if (d <= 1000) expect(s.protocol >= 0n).toBe(true);
        if (d === 0) expect(s.protocol).toBe(receiptCost - (receiptCost * 9000n) / 10_000n);
      }),
    );
  });
});

describe("balancedLegs", () => {
  it("rejects legs that do not sum to zero, naming the imbalance", () => {
    expect(() => balancedLegs([{ account: "user:a", amount: 5n }])).toThrow(/sum to 5, not zero/);
    expect(() =>
      balancedLegs([
        { account: "user:a", amount: -5n },
        { account: "user:b", amount: 4n },
      ]),
    ).toThrow(RangeError);
  });

  it("merges legs of the same account and drops the ones that net to zero", () => {
    expect(
      balancedLegs([
        { account: "hold:c", amount: -100n },
        { account: "user:c", amount: 40n },
        { account: "user:c", amount: 45n }, // the consumer is also the provider
        { account: "platform", amount: 15n },
        { account: "bounty_pool", amount: 0n },
      ]),
    ).toEqual([
      { account: "hold:c", amount: -100n },
      { account: "user:c", amount: 85n },
      { account: "platform", amount: 15n },
    ]);
    expect(
      balancedLegs([
        { account: "user:a", amount: 3n },
        { account: "user:a", amount: -3n },
      ]),
    ).toEqual([]);
    expect(balancedLegs([])).toEqual([]);
  });

  it("keeps each account's net amount for any balanced set of legs, and throws for any unbalanced one", () => {
    const accounts = fc.constantFrom("user:a", "user:b", "hold:a", "platform", "external");
    fc.assert(
      fc.property(
        fc.array(fc.record({ account: accounts, amount: fc.bigInt(-1000n, 1000n) }), { maxLength: 12 }),
        fc.bigInt(-5n, 5n),
        (raw, skew) => {
          const total = raw.reduce((s, l) => s + l.amount, 0n);
          const legs: Leg[] = [...raw, { account: "platform", amount: -total }];
          const net = new Map<string, bigint>();
          for (const l of legs) net.set(l.account, (net.get(l.account) ?? 0n) + l.amount);
          const out = balancedLegs(legs);
          expect(new Set(out.map((l) => l.account)).size).toBe(out.length);
          expect(out.every((l) => l.amount !== 0n)).toBe(true);
          expect(out.reduce((s, l) => s + l.amount, 0n)).toBe(0n);
          for (const [account, amount] of net) expect(out.find((l) => l.account === account)?.amount ?? 0n).toBe(amount);
          if (skew !== 0n) expect(() => balancedLegs([...legs, { account: "user:a", amount: skew }])).toThrow(RangeError);
        },
      ),
    );
  });
});

describe("prepaidOf", () => {
  it("is the deposited money still held, nothing when never funded", () => {
    expect(prepaidOf(700n, 1000n)).toBe(700n);
    expect(prepaidOf(1500n, 1000n)).toBe(1000n);
    expect(prepaidOf(1500n, 0n)).toBe(0n);
    expect(prepaidOf(0n, 1000n)).toBe(0n);
  });
});
