/**
 * A small typed client for a hub's consumer API: chat completions (whole or streamed as
 * an async iterator), the model catalog, and signed receipts checked against the hub key
 * published in the hub's discovery document; with a wallet, x402 payments (per request
 * and deposits), wallet sign-in and refunds. Runtime-neutral: `fetch` and Web streams.
 *
 * `createClient` wires the parts: `transport.ts` (the hub, its key and discovery),
 * `payment.ts` (paying a 402 with x402), `account.ts` (balance, sign-in, deposits, refunds)
 * and `requests.ts` (chat, embeddings, batches, catalog, receipts); the types are in
 * `types.ts`.
 */
import { createAccount } from "./account.js";
import { createPayer, walletPolicies } from "./payment.js";
import { batchRequests, chatRequests, embeddingRequests, fetchReceipt, listModels, poster } from "./requests.js";
import { createTransport } from "./transport.js";
import type { ClientOptions, SrpClient } from "./types.js";

export type {
  ChatMessage,
  ChatRequest,
  SrpUsage,
  ChatCompletion,
  ChatCompletionChunk,
  CatalogModel,
  SrpMoney,
  AccountBalance,
  WalletSession,
  X402Deposit,
  X402Refund,
  ChatStream,
  ClientOptions,
  X402Client,
  EmbeddingsRequest,
  Embeddings,
  BatchItem,
  Batch,
  SrpClient,
} from "./types.js";

/**
 * Creates a client for one hub and account (an API key, a wallet paying with x402, or
 * both).
 *
 * @example
 * const srp = createClient({ hub: "http://127.0.0.1:8787", apiKey: process.env.SRP_API_KEY! });
 * for await (const chunk of srp.chat.stream({ model: "llama3.1:8b", messages: [{ role: "user", content: "Hi" }] })) {
 *   process.stdout.write(chunk.choices[0]?.delta.content ?? "");
 * }
 *
 * @example
 * // Pay per request from a wallet (x402), in USDC only, at most 0.10 USD a request.
 * const srp = createClient({ hub, x402: { account: privateKeyToAccount(key), assets: [USDC], maxAmount: 100_000n } });
 * const answer = await srp.chat.create({ model: "llama3.1:8b", messages: [{ role: "user", content: "Hi" }] });
 * console.log(answer.payment?.response?.transaction);
 */
export function createClient(options: ClientOptions): SrpClient {
  const hub = createTransport(options.hub, options.apiKey, options.fetch ?? fetch);
  const payer = createPayer(hub, options.x402);
  const { limits, perRequest } = walletPolicies(options.x402);
  const account = createAccount(hub, payer, options.x402, limits);
  const post = poster(payer, perRequest);
  return {
    embeddings: embeddingRequests(post),
    batches: batchRequests(hub, post),
    chat: chatRequests(post),
    models: () => listModels(hub),
    async receipt(id) {
      await account.ensureKey();
      return fetchReceipt(hub, id);
    },
    discovery: hub.discovery,
    balance: account.balance,
    x402: account.x402,
  };
}
