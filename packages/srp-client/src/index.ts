/**
 * `@srp/client`: the consumer side of SRP. A typed client for a hub's OpenAI-compatible
 * API (chat completions whole or streamed, embeddings, batches, the model catalog), and signed usage receipts
 * verified against the hub key from its discovery document. Any OpenAI SDK works against
 * a hub too; this client adds typed SRP usage and receipt checks, and (with a viem
 * wallet) pays with x402: per request, or by deposit, with wallet sign-in and refunds.
 *
 * The root entry holds `createClient`, its options, request and response types, the
 * errors it throws, and receipt verification. Subpath entry:
 * - `@srp/client/x402`: choosing requirements, signing the payment header and the wallet
 *   sign-in text, for those who pay x402 without `createClient`.
 *
 * Every export of every entry is public API: a new export is a promise to keep it.
 *
 * @packageDocumentation
 * @module @srp/client
 */
export { discover, verifyHubReceipt, type ReceiptCheck } from "./client.js";
export { SrpApiError } from "./api-error.js";
export {
  createClient,
  type SrpClient,
  type ClientOptions,
  type ChatRequest,
  type ChatMessage,
  type ChatCompletion,
  type ChatCompletionChunk,
  type CatalogModel,
  type SrpUsage,
  type ChatStream,
  type SrpMoney,
  type EmbeddingsRequest,
  type Embeddings,
  type BatchItem,
  type Batch,
  type AccountBalance,
  type WalletSession,
  type X402Client,
  type X402Deposit,
  type X402Refund,
} from "./srp-client.js";
export type { X402Account, X402Options, X402PaymentInfo, X402Policy } from "./wallet-signing.js";
