import { formatAmount } from "@srp/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BOUNTY_POOL, EXTERNAL, holdAccount, PLATFORM, userAccount, writtenLegs, type Posting } from "./ledger.js";
import {
  bountyFundPosting,
  debtRepaymentPosting,
  debtRepayments,
  depositPosting,
  jobSettlement,
  refundPosting,
  releasePosting,
  reservePosting,
  signupPosting,
  x402CreditPosting,
  x402Reversal,
  x402ReversalPosting,
  type JobSettlementInput,
} from "./postings.js";

const sum = (p: Posting) => p.legs.reduce((a, l) => a + l.amount, 0n);
const leg = (p: Posting, account: string) => p.legs.filter((l) => l.account === account).reduce((a, l) => a + l.amount, 0n);

const base: JobSettlementInput = {
  receipt: { jobId: "job_1", cost: "1000" },
  reservationId: "res_1",
  consumerAccountId: "acct_c",
  providerAccountId: "acct_p",
  reserved: 2000n,
  discountBps: 0,
  poolBalance: 0n,
};

describe("jobSettlement", () => {
  it("a plain job: the consumer pays the cost, the provider earns 90 %, the rest of the hold returns", () => {
    const { posting, settled, poolChange } = jobSettlement(base);
    expect(posting).toMatchObject({ idempotencyKey: "settle:res_1", kind: "settle", accountId: "acct_c", ref: "res_1" });
    expect(posting.memo).toEqual({
      jobId: "job_1",
      cost: "1000",
      charge: "1000",
      discountBps: 0,
      provider: "acct_p",
      providerShare: "900",
    });
    expect(posting.legs).toEqual([
      { account: holdAccount("acct_c"), amount: -2000n },
      { account: userAccount("acct_c"), amount: 1000n },
      { account: userAccount("acct_p"), amount: 900n },
      { account: PLATFORM, amount: 100n },
      { account: BOUNTY_POOL, amount: 0n },
    ]);
    expect(settled).toEqual({
      charge: 1000n,
      refund: 1000n,
      provider: 900n,
      protocol: 100n,
      overrun: 0n,
      reservationId: "res_1",
      discountBps: 0,
      bounty: 0n,
      reduction: 0n,
    });
    expect(poolChange).toBe(0n);
  });

  it("a discount larger than the fee is funded by the platform", () => {
    const { posting, settled } = jobSettlement({
      ...base,
      receipt: { jobId: "job_1", cost: "1000000" },
      reserved: 1_000_000n,
      discountBps: 1500,
    });
    expect(settled).toMatchObject({ charge: 850_000n, provider: 900_000n, protocol: -50_000n });
    expect(leg(posting, PLATFORM)).toBe(-50_000n);
    expect(posting.memo).toMatchObject({ charge: "850000", discountBps: 1500, providerShare: "900000" });
  });

  it("a bounty is paid from the pool, part of the fee funds it, and the memo names both", () => {
    const terms = { multiplierBps: 15000, reductionBps: 0, poolFundingBps: 2000 };
    const { posting, settled, poolChange } = jobSettlement({ ...base, terms, poolBalance: 1000n });
    // 900 base share, +50 % bounty = 450 from the pool; 20 % of the 100 fee (20) funds it.
    expect(settled).toMatchObject({ provider: 1350n, bounty: 450n, reduction: 0n });
    expect(poolChange).toBe(20n - 450n);
    expect(leg(posting, BOUNTY_POOL)).toBe(poolChange);
    expect(leg(posting, PLATFORM)).toBe(80n);
    expect(posting.memo).toMatchObject({ bounty: "450", providerShare: "900" });
    expect(posting.memo).not.toHaveProperty("reduction");
  });

  it("the bounty never exceeds the pool plus this job's own funding", () => {
    const terms = { multiplierBps: 20000, reductionBps: 0, poolFundingBps: 2000 };
    const { settled, poolChange } = jobSettlement({ ...base, terms, poolBalance: 0n });
    expect(settled.bounty).toBe(20n);
    expect(poolChange).toBe(0n);
  });

  it("the anti-flapping reduction stays with the platform", () => {
    const terms = { multiplierBps: 10000, reductionBps: 5000, poolFundingBps: 0 };
    const { posting, settled } = jobSettlement({ ...base, terms });
    expect(settled).toMatchObject({ provider: 450n, reduction: 450n, bounty: 0n });
    expect(leg(posting, PLATFORM)).toBe(100n + 450n);
    expect(posting.memo).toMatchObject({ reduction: "450" });
  });

  it("a cost above the reservation is capped: the consumer pays at most what was reserved", () => {
    const { posting, settled } = jobSettlement({ ...base, receipt: { jobId: "job_1", cost: "5000" }, reserved: 1000n });
    expect(settled).toMatchObject({ charge: 1000n, refund: 0n, provider: 900n, overrun: 4000n });
    expect(leg(posting, userAccount("acct_c"))).toBe(0n);
  });

  it("a free job still names its accounts: zero entries, never a transaction without any", () => {
    const { posting } = jobSettlement({ ...base, receipt: { jobId: "job_1", cost: "0" }, reserved: 0n });
    expect(writtenLegs(posting.legs).map((l) => l.amount)).toEqual([0n, 0n, 0n, 0n, 0n]);
  });

  it("the legs always balance, the pool never goes below zero and the hold is emptied", () => {
    const amount = fc.bigInt(0n, 10n ** 12n);
    const bps = fc.integer({ min: 0, max: 10_000 });
    const terms = fc.record({ multiplierBps: fc.integer({ min: 10000, max: 30000 }), reductionBps: bps, poolFundingBps: bps });
    fc.assert(
      fc.property(amount, amount, fc.constantFrom(0, 500, 1000, 1500), terms, amount, (cost, reserved, discountBps, t, pool) => {
        const { posting, settled, poolChange } = jobSettlement({
          ...base,
          receipt: { jobId: "j", cost: formatAmount(cost) },
          reserved,
          discountBps,
          terms: t,
          poolBalance: pool,
        });
        expect(sum(posting)).toBe(0n);
        expect(pool + poolChange).toBeGreaterThanOrEqual(0n);
        expect(leg(posting, holdAccount("acct_c"))).toBe(-reserved);
        expect(settled.charge + settled.refund).toBe(reserved);
        expect(leg(posting, userAccount("acct_p"))).toBe(settled.provider);
      }),
    );
  });
});

describe("the other postings", () => {
  it("each balances and moves money where its name says", () => {
    expect(reservePosting("res_1", "a", 5n)).toEqual({
      idempotencyKey: "reserve:res_1",
      kind: "reserve",
      accountId: "a",
      ref: "res_1",
      legs: [
        { account: "user:a", amount: -5n },
        { account: "hold:a", amount: 5n },
      ],
    });
    expect(releasePosting("res_1", "a", 5n, "failed")).toMatchObject({
      idempotencyKey: "release:res_1",
      kind: "release",
      memo: { reason: "failed" },
    });
    expect(leg(releasePosting("res_1", "a", 5n, "x"), "user:a")).toBe(5n);
    expect(signupPosting("a", 7n)).toMatchObject({ idempotencyKey: "signup:a", kind: "signup_credit" });
    expect(leg(signupPosting("a", 7n), PLATFORM)).toBe(-7n);
    expect(depositPosting("a", 9n, "ref", { by: "op" })).toMatchObject({
      idempotencyKey: "deposit:ref",
      kind: "deposit",
      ref: "ref",
      memo: { by: "op" },
    });
    expect(leg(depositPosting("a", 9n, "ref", {}), EXTERNAL)).toBe(-9n);
    expect(leg(refundPosting("a", 9n, "n1"), EXTERNAL)).toBe(9n);
    expect(bountyFundPosting(3n, "r")).toMatchObject({ idempotencyKey: "bounty_fund:r", kind: "bounty_fund" });
    expect(leg(bountyFundPosting(3n, "r"), BOUNTY_POOL)).toBe(3n);
    for (const p of [
      reservePosting("r", "a", 5n),
      releasePosting("r", "a", 5n, ""),
      signupPosting("a", 1n),
      depositPosting("a", 1n, "x", {}),
      refundPosting("a", 1n, "x"),
      bountyFundPosting(1n, "x"),
    ]) {
      expect(sum(p)).toBe(0n);
    }
  });
});

describe("x402 postings", () => {
  const payment = {
    id: "pay_1",
    accountId: "acct_w",
    amount: 1000n,
    memo: { network: "eip155:1", asset: "0xa", payer: "0xb", nonce: "0xc", mode: "after" },
  };

  it("credits a payment from outside to the wallet account, idempotent by payment id", () => {
    const p = x402CreditPosting(payment);
    expect(sum(p)).toBe(0n);
    expect(leg(p, userAccount("acct_w"))).toBe(1000n);
    expect(leg(p, EXTERNAL)).toBe(-1000n);
    expect(p.idempotencyKey).toBe("x402:pay_1");
  });

  it("takes a failed payment back from what is left of the prepaid balance; the rest is debt the platform carries", () => {
    expect(x402Reversal(1000n, 400n, 1000n)).toEqual({ back: 400n, debt: 600n });
    expect(x402Reversal(1000n, 5000n, 700n)).toEqual({ back: 700n, debt: 300n });
    expect(x402Reversal(1000n, 5000n, 5000n)).toEqual({ back: 1000n, debt: 0n });
    // Never funded, or spent below zero: nothing comes back.
    expect(x402Reversal(1000n, 5000n, 0n)).toEqual({ back: 0n, debt: 1000n });
    expect(x402Reversal(1000n, -50n, 1000n)).toEqual({ back: 0n, debt: 1000n });
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 12n }),
        fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }),
        fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }),
        (amount, balance, funded) => {
          const split = x402Reversal(amount, balance, funded);
          const p = x402ReversalPosting({ id: "pay_1", accountId: "acct_w", amount }, split, "settlement failed");
          return split.back >= 0n && split.debt >= 0n && split.back + split.debt === amount && sum(p) === 0n && leg(p, EXTERNAL) === amount;
        },
      ),
    );
  });

  it("repays debts oldest first from prepaid money, back to the platform", () => {
    const r = debtRepayments(150n, [
      { paymentId: "a", owed: 100n },
      { paymentId: "b", owed: 100n },
      { paymentId: "c", owed: 100n },
    ]);
    expect(r).toEqual({
      total: 150n,
      payments: [
        { paymentId: "a", pay: 100n, cleared: true },
        { paymentId: "b", pay: 50n, cleared: false },
      ],
    });
    expect(debtRepayments(0n, [{ paymentId: "a", owed: 100n }])).toEqual({ total: 0n, payments: [] });
    const p = debtRepaymentPosting("acct_w", 150n, ["a", "b", "c"], "k1");
    expect(sum(p)).toBe(0n);
    expect(leg(p, PLATFORM)).toBe(150n);
    expect(p.idempotencyKey).toBe("debt_repayment:k1");
  });
});
