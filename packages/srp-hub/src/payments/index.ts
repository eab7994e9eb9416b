/**
 * `@srp/hub/payments`: x402 payments as the hub takes them, for those who mount them on
 * their own routes or audit them. The payment flow (`X402Payments`: admit, settle,
 * reconcile) over its payment rails (one per network: `evmRail`, and any `PaymentRail`
 * an embedder adds), the pure offer and check policy (`requirementsFor`, `checkPayment`), the
 * payment book's records, prepaid deposits, and the `/.well-known/x402` discovery document
 * (`spec/v1/payments.md`). The settlers and on-chain payouts an embedder configures are in
 * `@srp/hub`.
 *
 * Every export of this entry is public API: a new export is a promise to keep it.
 *
 * @module @srp/hub/payments
 */
export { X402Payments, type X402PaymentsOptions, type Admission, type PaymentEvent, type PaymentHeader } from "./x402-flow.js";
export type { PaymentRail, RailPayment, PaymentLock, RailRefunds, RailRefundResult } from "./rail.js";
export { evmRail } from "./evm-rail.js";
export {
  requirementsFor,
  requirementsV1For,
  paymentFromV1,
  paymentRequired,
  checkPayment,
  bazaarExtension,
  type X402Terms,
  type X402Asset,
  type PaidResource,
  type CheckedPayment,
} from "./x402-policy.js";
export {
  FAILED_PAYMENT_RETENTION_MS,
  type PaymentBook,
  type PaymentRecord,
  type PaymentState,
  type NewPayment,
  type SettleMode,
} from "./book.js";
export { depositResource, DEPOSIT_PATH, DEPOSIT_LIMITS } from "../api/futures.js";
export {
  X402_DISCOVERY_PATH,
  X402_DISCOVERY_JSON_PATH,
  x402Discovery,
  type X402DiscoveryDocument,
  type X402DiscoveryResource,
  type X402ModelPrice,
  type X402MaximumCostPrice,
  type X402AmountPrice,
} from "../api/x402-discovery.js";
