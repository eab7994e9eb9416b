/**
 * `@srp/core/x402`: x402 v2 payments as SRP uses them (and version 1, which hubs still take). The schemas of the payment header
 * documents (`PAYMENT-REQUIRED`, `PAYMENT-SIGNATURE`, `PAYMENT-RESPONSE`) and their
 * codec: encode, decode and validate a header, read the `exact` EVM payload, compare
 * requirements, map chain ids to `eip155:` networks. Payers (clients) and payees (hubs)
 * use this entry; the rules are in `spec/v1/payments.md`.
 *
 * Every export of this entry is public API: a new export is a promise to keep it.
 *
 * @module @srp/core/x402
 */
export {
  PaymentRequirements,
  PaymentRequired,
  PaymentPayload,
  PaymentRequirementsV1,
  PaymentRequiredV1,
  PaymentPayloadV1,
  PaymentResource,
  SettlementResponse,
  ExactEvmPayload,
  ExactEvmAuthorization,
  EvmAddress,
  EvmNetwork,
  Bytes32,
} from "./schema/payments.js";
export {
  X402_HEADERS,
  X402_VERSION,
  X402_V1_HEADERS,
  X402_V1_EVM_NETWORKS,
  v1NetworkOf,
  paymentHeaderOf,
  decodePaymentPayloadV1,
  paymentRequiredV1Of,
  encodeX402Header,
  decodeX402Header,
  decodePaymentRequired,
  decodePaymentPayload,
  decodeSettlementResponse,
  exactEvmPayload,
  sameRequirements,
  evmNetwork,
  evmChainId,
} from "./payment-headers.js";
