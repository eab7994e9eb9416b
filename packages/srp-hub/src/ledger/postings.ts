/**
 * Every movement of money the hub's books post, as pure functions from what is known to
 * the balanced {@link Posting}: signup credits, deposits, refunds, bounty funding,
 * reservations and their release, the five-leg settlement of a job's receipt, and x402
 * credits, reversals and debt repayments. The one-at-a-time path and PostgreSQL's set-based
 * batches (`storage/pg-batch.ts`) both post these, so each rule is written once. Nothing here touches a database.
 */
import { parseAmount } from "@srp/core";
import type { Receipt } from "@srp/core/schema";
import { BOUNTY_POOL, EXTERNAL, holdAccount, PLATFORM, userAccount, type Posting } from "./ledger.js";
import { payout, PLAIN_TERMS, type PayoutTerms } from "./payout-terms.js";
import { prepaidOf, splitCharge, type ChargeSplit } from "./policy.js";

/** A settled job, as a receipt book's `record` reports it. `provider` is what the provider was credited (after bounty and reduction). */
export interface SettledJob extends ChargeSplit {
  reservationId: string;
  discountBps: number;
  /** Paid from the bounty pool on top of the provider's share. */
  bounty: bigint;
  /** Withheld from the provider's share by the anti-flapping reduction. */
  reduction: bigint;
}

/** What the settlement of one job's receipt needs to know. */
export interface JobSettlementInput {
  /** The countersigned receipt (its job id and cost). */
  receipt: Pick<Receipt, "jobId" | "cost">;
  /** The reservation the receipt settles. */
  reservationId: string;
  /** The consumer's account (who reserved). */
  consumerAccountId: string;
  /** The serving node's owner. */
  providerAccountId: string;
  /** What the reservation holds. */
  reserved: bigint;
  /** The consumer's discount, fixed at reservation. */
  discountBps: number;
  /** Payout adjustments decided by the hub; none when absent. */
  terms?: PayoutTerms;
  /** The bounty pool's balance before this settlement. */
  poolBalance: bigint;
}

/** The settlement of one job: the posting, what the receipt book reports, and how the pool moves. */
export interface JobSettlement {
  /** The balanced `settle` transaction (its legs may cancel to nothing for a free job). */
  posting: Posting;
  /** The split of the charge and the payout adjustments, as reported to the caller. */
  settled: SettledJob;
  /** What the bounty pool's balance moves by (its funding less the bounty paid). */
  poolChange: bigint;
}

/**
 * Settles a job from its receipt (SRP-MON-007): the reservation leaves the consumer's
 * hold, the unspent part returns to the consumer, the provider is credited its share after
 * payout terms, the platform keeps the protocol's take (plus any reduction, less what funds
 * the pool) and the pool pays the bounty. The five legs always sum to zero.
 *
 * @example
 * const { posting, settled } = jobSettlement({
 *   receipt: { jobId: "job_1", cost: "1000" },
 *   reservationId: "res_1",
 *   consumerAccountId: "acct_c",
 *   providerAccountId: "acct_p",
 *   reserved: 2000n,
 *   discountBps: 0,
 *   poolBalance: 0n,
 * });
 * settled.charge; // 1000n
 * posting.legs.length; // 5
 */
export function jobSettlement(input: JobSettlementInput): JobSettlement {
  const { receipt, reservationId, consumerAccountId: consumer, providerAccountId: provider, reserved, discountBps } = input;
  const split = splitCharge(parseAmount(receipt.cost), reserved, discountBps);
  const pay = payout(split.provider, split.protocol, input.poolBalance, input.terms ?? PLAIN_TERMS);
  const poolChange = pay.poolFunding - pay.bounty;
  const posting: Posting = {
    idempotencyKey: `settle:${reservationId}`,
    kind: "settle",
    accountId: consumer,
    ref: reservationId,
    memo: {
      jobId: receipt.jobId,
      cost: receipt.cost,
      charge: split.charge.toString(),
      discountBps,
      provider,
      providerShare: split.provider.toString(),
      ...(pay.bounty > 0n ? { bounty: pay.bounty.toString() } : {}),
      ...(pay.reduction > 0n ? { reduction: pay.reduction.toString() } : {}),
    },
    legs: [
      { account: holdAccount(consumer), amount: -reserved },
      { account: userAccount(consumer), amount: split.refund },
      { account: userAccount(provider), amount: pay.provider },
      { account: PLATFORM, amount: split.protocol + pay.reduction - pay.poolFunding },
      { account: BOUNTY_POOL, amount: poolChange },
    ],
  };
  const settled: SettledJob = {
    ...split,
    provider: pay.provider,
    bounty: pay.bounty,
    reduction: pay.reduction,
    reservationId,
    discountBps,
  };
  return { posting, settled, poolChange };
}

/** Moves `amount` of an account's spendable balance to its hold for one reservation. */
export function reservePosting(reservationId: string, accountId: string, amount: bigint): Posting {
  return {
    idempotencyKey: `reserve:${reservationId}`,
    kind: "reserve",
    accountId,
    ref: reservationId,
    legs: [
      { account: userAccount(accountId), amount: -amount },
      { account: holdAccount(accountId), amount },
    ],
  };
}

/** Returns a reservation's money from the hold to the account (nothing was billed). */
export function releasePosting(reservationId: string, accountId: string, amount: bigint, reason: string): Posting {
  return {
    idempotencyKey: `release:${reservationId}`,
    kind: "release",
    accountId,
    ref: reservationId,
    memo: { reason },
    legs: [
      { account: holdAccount(accountId), amount: -amount },
      { account: userAccount(accountId), amount },
    ],
  };
}

/** Credits a new account's signup credits from the platform. */
export function signupPosting(accountId: string, credits: bigint): Posting {
  return {
    idempotencyKey: `signup:${accountId}`,
    kind: "signup_credit",
    accountId,
    legs: [
      { account: PLATFORM, amount: -credits },
      { account: userAccount(accountId), amount: credits },
    ],
  };
}

/** Credits money that arrived from outside to an account's prepaid balance (idempotent by `reference`). */
export function depositPosting(accountId: string, amount: bigint, reference: string, memo: Record<string, unknown>): Posting {
  return {
    idempotencyKey: `deposit:${reference}`,
    kind: "deposit",
    accountId,
    ref: reference,
    memo,
    legs: [
      { account: EXTERNAL, amount: -amount },
      { account: userAccount(accountId), amount },
    ],
  };
}

/** Sends an account's unused prepaid money back out (idempotent by `reference`; `memo`, when given, says where to). */
export function refundPosting(accountId: string, amount: bigint, reference: string, memo?: Record<string, unknown>): Posting {
  return {
    idempotencyKey: `refund:${reference}`,
    kind: "refund",
    accountId,
    ref: reference,
    ...(memo ? { memo } : {}),
    legs: [
      { account: userAccount(accountId), amount: -amount },
      { account: EXTERNAL, amount },
    ],
  };
}

/** Moves platform money into the bounty pool (an operator decision, idempotent by `reference`). */
export function bountyFundPosting(amount: bigint, reference: string): Posting {
  return {
    idempotencyKey: `bounty_fund:${reference}`,
    kind: "bounty_fund",
    ref: reference,
    legs: [
      { account: PLATFORM, amount: -amount },
      { account: BOUNTY_POOL, amount },
    ],
  };
}

/** What the x402 postings need to know of a payment. */
export interface X402PaymentFacts {
  /** The payment's id (its idempotency keys derive from it). */
  id: string;
  /** The payer's wallet account. */
  accountId: string;
  /** Atomic units paid. */
  amount: bigint;
  /** Recorded in the credit's memo. */
  memo: { network: string; asset: string; payer: string; nonce: string; mode: string };
}

/** Credits an x402 payment to the payer's account as prepaid balance (idempotent by payment id). */
export function x402CreditPosting(p: X402PaymentFacts): Posting {
  return {
    idempotencyKey: `x402:${p.id}`,
    kind: "x402_payment",
    accountId: p.accountId,
    ref: p.id,
    memo: p.memo,
    legs: [
      { account: EXTERNAL, amount: -p.amount },
      { account: userAccount(p.accountId), amount: p.amount },
    ],
  };
}

/**
 * How a credited x402 payment whose settlement failed is taken back: from what is left of
 * the account's prepaid balance, at most the payment (`back`); the rest is the wallet's
 * debt, which the platform carries (`debt`). `back + debt = amount`.
 *
 * @example
 * x402Reversal(1000n, 400n, 1000n); // { back: 400n, debt: 600n }
 */
export function x402Reversal(amount: bigint, balance: bigint, funded: bigint): { back: bigint; debt: bigint } {
  const prepaid = prepaidOf(balance, funded);
  const back = prepaid <= 0n ? 0n : prepaid < amount ? prepaid : amount;
  return { back, debt: amount - back };
}

/** Reverses a failed x402 payment's credit: `back` from the account, `debt` carried by the platform (idempotent by payment id). */
export function x402ReversalPosting(
  p: Pick<X402PaymentFacts, "id" | "accountId" | "amount">,
  split: { back: bigint; debt: bigint },
  reason: string,
): Posting {
  return {
    idempotencyKey: `x402_reversal:${p.id}`,
    kind: "x402_reversal",
    accountId: p.accountId,
    ref: p.id,
    memo: { reason: reason.slice(0, 200), debt: split.debt.toString() },
    legs: [
      { account: userAccount(p.accountId), amount: -split.back },
      { account: PLATFORM, amount: -split.debt },
      { account: EXTERNAL, amount: p.amount },
    ],
  };
}

/** One open debt of a wallet account: what is still owed on it. */
export interface OpenDebt {
  paymentId: string;
  owed: bigint;
}

/**
 * Pays a wallet account's open debts, oldest first, from its prepaid balance: what each
 * gets (`pay`), whether that clears it, and the total. Debts the money does not reach are
 * left out.
 *
 * @example
 * debtRepayments(150n, [{ paymentId: "a", owed: 100n }, { paymentId: "b", owed: 100n }]);
 * // { total: 150n, payments: [{ paymentId: "a", pay: 100n, cleared: true }, { paymentId: "b", pay: 50n, cleared: false }] }
 */
export function debtRepayments(
  prepaid: bigint,
  debts: readonly OpenDebt[],
): { total: bigint; payments: { paymentId: string; pay: bigint; cleared: boolean }[] } {
  let available = prepaid;
  let total = 0n;
  const payments: { paymentId: string; pay: bigint; cleared: boolean }[] = [];
  for (const d of debts) {
    if (available <= 0n) break;
    const pay = d.owed < available ? d.owed : available;
    available -= pay;
    total += pay;
    payments.push({ paymentId: d.paymentId, pay, cleared: pay === d.owed });
  }
  return { total, payments };
}

/** Moves repaid debts from the account back to the platform, which carried them. */
export function debtRepaymentPosting(accountId: string, total: bigint, debtIds: readonly string[], key: string): Posting {
  return {
    idempotencyKey: `debt_repayment:${key}`,
    kind: "debt_repayment",
    accountId,
    memo: { debts: [...debtIds] },
    legs: [
      { account: userAccount(accountId), amount: -total },
      { account: PLATFORM, amount: total },
    ],
  };
}
