/**
 * The ledger's local errors: outcomes of postings and refunds that never cross the wire
 * as they are (the consumer API maps them to `billing.*` codes). Kept apart from the
 * storage so that API modules can test for them without importing a database.
 */
import { LocalError } from "@srp/core";

/** Thrown when a leg would take an account that may not go negative below zero; the caller's transaction must roll back. */
export class InsufficientFundsError extends LocalError {
  override readonly name = "InsufficientFundsError";
  constructor(
    /** The ledger account that could not cover the leg. */
    readonly account: string,
    /** What the leg takes from it (atomic units). */
    readonly needed: bigint,
  ) {
    super(`${account} cannot cover ${needed}`, { details: { account, needed: needed.toString() } });
  }
}

/** Thrown by a refund while an x402 payment credited to the account before settling is still unsettled (`billing.refund_pending`). */
export class RefundPendingError extends LocalError {
  override readonly name = "RefundPendingError";
  constructor(
    /** The account whose refund waits. */
    readonly accountId: string,
  ) {
    super(`account ${accountId} has a payment that has not settled yet; refund after it settles`, { details: { accountId } });
  }
}
