/**
 * The hub's x402 payments (spec/v1/payments.md) built from its options: the terms it offers
 * (chain, asset, treasury, validity windows), its settle mode and where payments are kept.
 */
import type { HubLedger } from "../ledger/ledger.js";
import type { PaymentBook } from "../payments/book.js";
import { X402Payments, type PaymentEvent } from "../payments/x402-flow.js";
import type { X402Terms } from "../payments/x402-policy.js";
import type { HubX402Options } from "./options.js";

/** The terms a hub offers from its x402 options and its request time-out (pure). */
export function x402Terms(o: HubX402Options, requestTimeoutMs: number): X402Terms {
  const mode = o.settle ?? "before";
  const requestSeconds = Math.ceil(requestTimeoutMs / 1000);
  const minValiditySeconds = o.minValiditySeconds ?? (mode === "before" ? 60 : requestSeconds + 60);
  return {
    chainId: o.chainId,
    asset: o.asset,
    payTo: o.payTo,
    minValiditySeconds,
    maxTimeoutSeconds: o.maxTimeoutSeconds ?? Math.max(300, minValiditySeconds + 240),
  };
}

/** What {@link x402Payments} builds from. */
export interface X402Setup {
  /** The `x402` option; absent: the hub takes no x402 payments. */
  readonly options: HubX402Options | undefined;
  /** Default time a consumer request may take, ms. */
  readonly requestTimeoutMs: number;
  /** The hub's ledger (x402 needs one). */
  readonly ledger: HubLedger | undefined;
  /** Where payments are locked and recorded (x402 needs one). */
  readonly book: PaymentBook | undefined;
  /** Receives each payment's outcome. */
  onEvent(event: PaymentEvent): void;
}

/** The hub's x402 payments, or undefined when it takes none; throws when x402 lacks a ledger or a payment book. */
export function x402Payments(setup: X402Setup): X402Payments | undefined {
  const o = setup.options;
  if (!o) return undefined;
  if (!setup.ledger) throw new TypeError("x402 payments need a ledger: pass `storage` (a SqlStore) or `ledger`");
  if (!setup.book) throw new TypeError("x402 payments need a payment book: pass `storage` (a SqlStore) or `x402.book`");
  return new X402Payments({
    terms: x402Terms(o, setup.requestTimeoutMs),
    mode: o.settle ?? "before",
    settler: o.settler,
    ...(o.rails ? { rails: o.rails } : {}),
    book: setup.book,
    onEvent: setup.onEvent,
  });
}
