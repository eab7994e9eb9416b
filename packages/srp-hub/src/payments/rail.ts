/**
 * Payment rails: one network a hub takes x402 payments on, and everything about it that
 * depends on the chain (spec/v1/payments.md): the requirements it offers, the stateless
 * checks of a payment (signatures included), and its settler (preflight, settle, the
 * chain's word on a payment). The flow around them (the durable lock, crediting, settling
 * before or after serving, debts, reconciliation) is the same for every rail and lives in
 * `x402-flow.ts`. A hub offers every rail it has in one 402 (`accepts` lists each); the
 * payer picks one by its `accepted.network`.
 */
import type { SrpError } from "@srp/core";
import type { PaymentPayload, PaymentRequirements, PaymentRequirementsV1 } from "@srp/core/x402";
import type { AuthorizationOutcome, PreflightResult, SettleResult } from "./authorization-settlers.js";
import type { PaidResource } from "./x402-policy.js";

/**
 * What a payment locks in the payment book, so that it buys one request however many
 * copies arrive: the network, the token, who pays, the payment's one-time id on its chain
 * (an EIP-3009 nonce; a Solana transaction's signature), the amount and its expiry.
 */
export interface PaymentLock {
  /** CAIP-2 network id. */
  network: string;
  /** The token (contract address, or mint). */
  asset: string;
  /** The paying wallet. */
  payer: string;
  /** The payment's one-time id on its chain. */
  nonce: string;
  amount: bigint;
  /** Unix seconds after which the payment can no longer settle. */
  validBefore: number;
}

/** A payment that passed every stateless check of its rail: the document, the requirements it pays, and what it locks. */
export interface RailPayment {
  payment: PaymentPayload;
  requirements: PaymentRequirements;
  lock: PaymentLock;
}

/**
 * What paying money back to a payer came to: paid (the transfer landed), failed (it surely
 * did not and never will move money: refused before it was sent, failed on-chain, or expired
 * unsent), or unknown (it may have been sent; never to be credited back blindly).
 */
export type RailRefundResult =
  | { outcome: "paid"; transaction: string }
  | { outcome: "failed"; reason: string }
  | { outcome: "unknown"; reason: string; transaction?: string };

/**
 * Money paid out from the treasury on a rail's network: refunds of prepaid money to the address
 * that paid (spec/v1/payments.md, SRP-PAY-033), and providers' earnings to an address they
 * proved is theirs (SRP-PAY-034).
 */
export interface RailRefunds {
  /**
   * Whether `payer` can receive the rail's token now: undefined when it can, else why not
   * (something only the payer can fix, such as a missing token account). Asked before any
   * money leaves the books. Throws when the chain cannot be read.
   */
  receivable(payer: string): Promise<string | undefined>;
  /**
   * Transfers `amount` (ledger units) from the treasury to `payer`. `reference` (the refund's or
   * payout's nonce) goes on-chain with it (a memo on Solana, `SRP <purpose> <reference>`): it
   * names the transfer for reconciliation, and makes each one's transaction its own (two
   * transfers of one amount to one address would otherwise be the same transaction, which the
   * chain takes once). `purpose` defaults to `"refund"`. Never throws.
   */
  pay(payer: string, amount: bigint, reference: string, purpose?: "refund" | "payout"): Promise<RailRefundResult>;
}

/** One network a hub takes x402 payments on. */
export interface PaymentRail {
  /** The CAIP-2 network id (`eip155:8453`, `solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp`). */
  readonly network: string;
  /** The settler's name, for logs and the discovery document. */
  readonly settlerName: string;
  /**
   * Whether its payments expire too soon to serve a request before settling them (a Solana
   * transaction's blockhash lives about a minute): the hub then settles them before
   * serving, whatever its settlement mode.
   */
  readonly settlesFirst: boolean;
  /** The smallest amount offered on this rail, in ledger units (a 402 for less lists no entry of it). */
  readonly minAmount: bigint;
  /** The requirements offered for a request that may cost up to `amount` (an entry of a 402's `accepts`). */
  offer(amount: bigint): PaymentRequirements;
  /** The same offer for x402 version-1 clients, or undefined when the rail takes no version 1. */
  offerV1(amount: bigint, resource: PaidResource): PaymentRequirementsV1 | undefined;
  /**
   * Every check that needs no chain state, in the spec's order, signatures included:
   * `payment.accepted` is on this rail's network; `offered` is what this rail offered for
   * the request. Returns the checked payment, or the error to answer with.
   */
  check(payment: PaymentPayload, offered: PaymentRequirements, nowSeconds: number): Promise<RailPayment | SrpError>;
  /**
   * A stored payment, checked when it arrived, rebuilt for reconciliation (no time checks);
   * undefined when the document is not one of this rail's.
   */
  restore(payment: PaymentPayload): RailPayment | undefined;
  /** What only the chain knows before settling: the payer can pay, the payment is unused. Stateless. */
  preflight(p: RailPayment): Promise<PreflightResult>;
  /** Settles the payment. Submitting one payment twice is safe: the chain accepts it once. */
  settle(p: RailPayment): Promise<SettleResult>;
  /** What the chain says of a locked payment: it paid the hub, it is unused, or it was spent otherwise; undefined when it cannot tell. */
  outcome(lock: PaymentLock): Promise<AuthorizationOutcome | undefined>;
  /**
   * Refunds to the payers of this rail, on its network, from the treasury; absent when the
   * rail cannot pay them (no treasury key). The EVM network's refunds are the hub's treasury
   * wallet's (`x402.treasury`), not its rail's.
   */
  readonly refunds?: RailRefunds;
}
