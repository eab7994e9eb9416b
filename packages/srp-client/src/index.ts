/**
 * `@srp/client`: the consumer side of SRP. This version discovers a hub and verifies
 * signed usage receipts; the OpenAI-compatible calls and x402 payments arrive with the
 * relay and payment features.
 *
 * @packageDocumentation
 * @module @srp/client
 */
export { discover, verifyHubReceipt, type ReceiptCheck } from "./client.js";
