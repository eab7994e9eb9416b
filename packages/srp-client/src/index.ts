/**
 * `@srp/client`: the consumer side of SRP. A typed client for a hub's OpenAI-compatible
 * API (chat completions whole or streamed, embeddings, batches, the model catalog), and signed usage receipts
 * verified against the hub key from its discovery document. Any OpenAI SDK works against
 * a hub too; this client adds typed SRP usage and receipt checks, and (with a viem
 * wallet) pays with x402: per request, or by deposit, with wallet sign-in and refunds.
 *
 * @packageDocumentation
 * @module @srp/client
 */
export { discover, verifyHubReceipt, type ReceiptCheck } from "./client.js";
export {
  createClient,
  SrpApiError,
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
export {
  chooseRequirements,
  createPaymentSignature,
  signInMessage,
  DEFAULT_X402_MAX_AMOUNT,
  SIGN_IN_STATEMENT,
  type X402Account,
  type X402Options,
  type X402PaymentInfo,
  type X402Policy,
} from "./x402.js";
