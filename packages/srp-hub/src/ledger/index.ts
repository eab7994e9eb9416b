/**
 * `@srp/hub/ledger`: the hub's money, for operators who read, audit or extend it. The
 * double-entry ledger (`post` with legs that always balance, `verifyLedger`, `history`,
 * the account names `userAccount`, `holdAccount`, `PLATFORM`, `BOUNTY_POOL`, `EXTERNAL`),
 * the pricing policy (worst-case reservations, prepaid discount tiers, the split of a
 * charge), the postings a settled job makes, and the payout terms (`spec/v1/money.md`,
 * `spec/v1/billing.md`). Money is bigint atomic units throughout.
 *
 * Every export of this entry is public API: a new export is a promise to keep it.
 *
 * @module @srp/hub/ledger
 */
export {
  post,
  balancedLegs,
  verifyLedger,
  history,
  userAccount,
  holdAccount,
  PLATFORM,
  BOUNTY_POOL,
  EXTERNAL,
  type AccountSummary,
  type TopEntry,
  type ReservationClosure,
  type ReserveResult,
  type ReserveManyResult,
  type Leg,
  type Posting,
  type HistoryEntry,
  type LedgerProblem,
  type LedgerAccountKind,
} from "./ledger.js";
export {
  worstCase,
  discounted,
  discountFor,
  prepaidOf,
  splitCharge,
  DEFAULT_DISCOUNT_TIERS,
  type DiscountTier,
  type ChargeSplit,
} from "./policy.js";
export { jobSettlement, type JobSettlement, type JobSettlementInput, type SettledJob } from "./postings.js";
export { PAYOUT_DEFAULTS, type PayoutConfig, type TrustLevel } from "./payout-terms.js";
export { MemoryPayoutState, type PayoutState } from "./payout-state.js";
