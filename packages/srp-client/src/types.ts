/**
 * The public types of the client (`createClient` in `srp-client.ts`): what it sends and
 * what the hub answers (chat, embeddings, batches, the catalog, the account and its money,
 * wallet sessions, deposits and refunds), its options, and the `SrpClient` it returns.
 */
import type { BatchObject, Discovery, Receipt } from "@srp/core/schema";
import type { ReceiptCheck } from "./client.js";
import type { X402Options, X402PaymentInfo } from "./wallet-signing.js";

/** A chat message as OpenAI's API takes it (content may be text or content parts). */
export interface ChatMessage {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content: string | Array<Record<string, unknown>> | null;
  name?: string;
  tool_calls?: Array<{ id: string; type: "function"; function: { name: string; arguments: string } }>;
  tool_call_id?: string;
}

/** A chat completions request; members not listed pass through to the provider untouched. */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  max_tokens?: number;
  temperature?: number;
  tools?: Array<Record<string, unknown>>;
  tool_choice?: unknown;
  response_format?: Record<string, unknown>;
  /** Routing preferences of this request. */
  srp?: { sort?: "load" | "price" | "throughput"; allow_fallbacks?: boolean; max_price?: { input?: string; output?: string } };
  [member: string]: unknown;
}

/** Usage as the hub reports it: OpenAI's counts plus the cost and the receipt id. */
export interface SrpUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Cost in USD (USDC), decimal string. */
  cost: string;
  /** Cost in USDC atomic units, decimal string. */
  cost_units: string;
  /** Receipt id, or null when the job has no countersigned receipt (then it was not billed). */
  receipt_id: string | null;
  /** False when the backend did not report usage. */
  measured: boolean;
  [member: string]: unknown;
}

/** A whole chat completion. */
export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: Array<{
    index: number;
    message: { role: "assistant"; content: string | null; tool_calls?: ChatMessage["tool_calls"] };
    finish_reason: string | null;
  }>;
  usage: SrpUsage;
  [member: string]: unknown;
}

/** One streamed chunk. The last one has no choices and carries `usage`. */
export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: Array<{
    index: number;
    delta: { role?: string; content?: string | null; tool_calls?: unknown[] };
    finish_reason: string | null;
  }>;
  usage?: SrpUsage | null;
  [member: string]: unknown;
}

/** A model of the live catalog. */
export interface CatalogModel {
  id: string;
  name: string;
  context_length: number;
  architecture: { input_modalities: string[]; output_modalities: string[] };
  supported_parameters: string[];
  pricing: { prompt: string; completion: string };
  pricing_units_per_million: { input: string; output: string };
  instances_online: number;
  [member: string]: unknown;
}

/** An amount as the hub reports it: USDC atomic units (1e-6 USD) and the same in USD, both decimal strings. */
export interface SrpMoney {
  /** Atomic units, decimal string. */
  units: string;
  /** USD, decimal string. */
  usd: string;
}

/** The account's money, as `GET /v1/account` answers it. */
export interface AccountBalance {
  object: "srp.account";
  /** The account id. */
  id: string;
  /** What the account can spend now (prepaid and credits, less what is held). */
  balance: SrpMoney;
  /** Held for requests in flight. */
  held: SrpMoney;
  /** Prepaid (deposited, refundable) balance. */
  prepaid: SrpMoney;
  /** The prepaid discount in force, basis points. */
  discount_bps: number;
  /** The prepaid tier in force, or null. */
  tier: { min_deposit: SrpMoney; discount_bps: number } | null;
  spent: SrpMoney;
  earned: SrpMoney;
  deposited: SrpMoney;
  refunded: SrpMoney;
  /** Requests billed. */
  requests: number;
  [member: string]: unknown;
}

/** A wallet signed in (`POST /v1/auth/wallet`): a new API key of the wallet's account. */
export interface WalletSession {
  object: "srp.wallet_session";
  /** The wallet's account: the one its x402 payments credit. */
  account_id: string;
  /** The wallet address (lower case). */
  address: string;
  /** The API key the client uses from now on. */
  api_key: string;
  /** The key's id. */
  key_id: string;
  [member: string]: unknown;
}

/** A deposit (`POST /v1/futures/deposit`), paid with x402 and settled on-chain before the answer. */
export interface X402Deposit {
  object: "srp.deposit";
  /** The paying wallet's account, which holds the deposit. */
  account_id: string;
  /** The paying wallet (lower case). */
  address: string;
  /** The amount deposited. */
  amount: SrpMoney;
  /** The account's balance after the deposit (null when the hub could not read it). */
  balance: SrpMoney | null;
  /** The account's prepaid balance after the deposit (null when the hub could not read it). */
  prepaid: SrpMoney | null;
  /** The prepaid discount now in force, basis points (null when the hub could not read it). */
  discount_bps: number | null;
  /** The settlement transaction, or null when the hub does not know it. */
  transaction: string | null;
  /** The payment made. */
  payment?: X402PaymentInfo;
  [member: string]: unknown;
}

/** A refund (`POST /v1/futures/refund`): the account's unused prepaid balance, paid back on-chain. */
export interface X402Refund {
  object: "srp.refund";
  account_id: string;
  /** The wallet paid (the one that signed the refund). */
  address: string;
  /** The amount refunded (zero when there was nothing to refund). */
  amount: SrpMoney;
  /** The transfer transaction, or null when nothing was refunded. */
  transaction: string | null;
  [member: string]: unknown;
}

/**
 * A streamed completion: an async generator of chunks that also tells how it was paid.
 * `payment` is set once the hub has answered (before the first chunk is yielded); it stays
 * undefined when the request was not paid with x402.
 */
export interface ChatStream extends AsyncGenerator<ChatCompletionChunk> {
  /** The x402 payment of this request, once known; undefined when it was not paid with x402. */
  readonly payment: X402PaymentInfo | undefined;
}

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** The hub's base URL, e.g. `http://127.0.0.1:8787`. */
  hub: string;
  /**
   * The account's API key. Optional with `x402`: requests are then paid per call, and
   * {@link X402Client.signIn} obtains a key of the wallet's account.
   */
  apiKey?: string;
  /** `fetch` implementation; default the global one. */
  fetch?: typeof fetch;
  /**
   * Pay with x402 from a wallet (viem, an optional peer dependency). Without an API key,
   * chat requests the hub answers with 402 are paid within these limits and sent again;
   * with a key, a request the account cannot cover (`billing.insufficient_credits`) is
   * sent again without the key and paid the same way.
   */
  x402?: X402Options;
}

/** The wallet side of a client: deposits, sign-in and refunds (needs `ClientOptions.x402`). */
export interface X402Client {
  /**
   * Deposits `amount` atomic USDC units as prepaid balance of the wallet's account
   * (`POST /v1/futures/deposit`, paid with x402, settled before the answer). Pays exactly
   * `amount`, whatever `maxAmount` says; `networks` and `assets` apply.
   */
  deposit(amount: bigint, init?: { signal?: AbortSignal }): Promise<X402Deposit>;
  /**
   * Signs the wallet in (`GET /v1/auth/nonce`, then `POST /v1/auth/wallet` with an
   * EIP-4361 message signed by the wallet): the client uses the API key answered for all
   * later calls. The chain id of the message is the hub's x402 chain.
   */
  signIn(init?: { signal?: AbortSignal }): Promise<WalletSession>;
  /**
   * Has the account's unused prepaid balance paid back on-chain to the wallet
   * (`POST /v1/futures/refund` with the refund text signed by the wallet). The account is
   * the signed-in one (signs in first when there is no key).
   */
  refund(init?: { signal?: AbortSignal }): Promise<X402Refund>;
}

/** An embeddings request (`POST /v1/embeddings`). */
export interface EmbeddingsRequest {
  model: string;
  input: string | string[] | number[] | number[][];
  encoding_format?: "float" | "base64";
  dimensions?: number;
  /** Routing preferences (spec/v1/consumer.md, SRP-CON-014). */
  provider?: Record<string, unknown>;
  [member: string]: unknown;
}

/** An embeddings answer, with SRP usage. */
export interface Embeddings {
  object: "list";
  data: Array<{ object: "embedding"; index: number; embedding: number[] | string }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number } & SrpUsage;
}

/** One item of a batch: a non-streamed request to one of the batchable endpoints. */
export interface BatchItem {
  custom_id?: string;
  url:
    | "/v1/chat/completions"
    | "/v1/messages"
    | "/v1/responses"
    | "/v1/completions"
    | "/v1/embeddings"
    | "/v1/images/generations"
    | "/v1/audio/speech"
    | "/v1/audio/transcriptions";
  body: Record<string, unknown>;
}

/** A batch as the hub reports it (`GET /v1/jobs/{id}`): the `BatchObject` schema of `@srp/core`. */
export type Batch = BatchObject;

/** A typed SRP hub client. */
export interface SrpClient {
  /** Embeddings, billed per prompt token. */
  embeddings: {
    create(
      request: EmbeddingsRequest,
      init?: { signal?: AbortSignal },
    ): Promise<Embeddings & { receiptId: string | null; payment?: X402PaymentInfo }>;
  };
  /** Batches of up to 50 mixed requests, run asynchronously at a 10 % discount. */
  batches: {
    /** Submits a batch (one reservation of every item's worst case, or one x402 payment of their sum). */
    create(requests: BatchItem[], init?: { signal?: AbortSignal }): Promise<Batch & { payment?: X402PaymentInfo }>;
    /** The batch now. */
    get(id: string, init?: { signal?: AbortSignal }): Promise<Batch>;
    /** Polls until the batch has finished (`completed` or `failed`); default every 250 ms for at most 10 minutes. */
    wait(id: string, options?: { intervalMs?: number; timeoutMs?: number; signal?: AbortSignal }): Promise<Batch>;
  };
  chat: {
    /**
     * Creates a whole (non-streamed) completion. `payment` is set when the request was
     * paid with x402 (the requirements paid and the hub's decoded `PAYMENT-RESPONSE`).
     */
    create(
      request: ChatRequest,
      init?: { signal?: AbortSignal },
    ): Promise<ChatCompletion & { receiptId: string | null; payment?: X402PaymentInfo }>;
    /** Streams a completion; throws {@link SrpApiError} if the stream ends with an in-band error. */
    stream(request: ChatRequest, init?: { signal?: AbortSignal }): ChatStream;
  };
  /** The live model catalog. */
  models(): Promise<CatalogModel[]>;
  /**
   * Fetches a receipt and checks it against the hub's key from discovery. Needs a key: a
   * client paying with x402 and no key signs in first ({@link X402Client.signIn}).
   */
  receipt(id: string): Promise<{ receipt: Receipt; check: ReceiptCheck }>;
  /** The hub's discovery document (fetched once). */
  discovery(): Promise<Discovery>;
  /** The account's money (`GET /v1/account`). Needs a key: a client with `x402` and no key signs in first. */
  balance(): Promise<AccountBalance>;
  /** Deposits, sign-in and refunds with the `x402` wallet; each throws a `TypeError` when the client has none. */
  x402: X402Client;
}
