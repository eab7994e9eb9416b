/**
 * `@srp/client`: the consumer side of SRP. A typed client for a hub's OpenAI-compatible
 * API (chat completions whole or streamed, the model catalog), and signed usage receipts
 * verified against the hub key from its discovery document. Any OpenAI SDK works against
 * a hub too; this client adds typed SRP usage and receipt checks.
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
} from "./srp-client.js";
