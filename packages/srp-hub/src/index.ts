/**
 * `@srp/hub`: an embeddable SRP hub. It serves the consumer APIs (OpenAI chat,
 * completions, Responses, models, embeddings, images and audio; Anthropic Messages;
 * batches; receipts, pricing, accounts, wallets and futures: the README's "The consumer
 * API" lists every route), the provider WebSocket endpoint with the complete v1
 * handshake, routing with a forgiving breaker and failover, receipt verification and
 * countersigning, the discovery document, and a double-entry ledger on SQLite or
 * PostgreSQL that bills consumers per token.
 *
 * The root entry holds what embedding and operating a hub needs: `createHub`, its
 * options, events and the `Hub` it returns; the stores you construct (`SqliteStore`,
 * `SqlStore`, `openStore`, `MemoryAccountStore`, `MemoryResponseStore`,
 * `MemoryReceiptBook`); x402 settlers and on-chain payouts; the `node:http` adapter; and
 * the errors you catch. Subpath entries:
 * - `@srp/hub/routing`: routing policy, the `Router`, the wait queue, fallbacks and affinity.
 * - `@srp/hub/ledger`: the double-entry ledger, pricing policy, postings and payout terms.
 * - `@srp/hub/storage`: SQLite/PostgreSQL drivers, migrations and each SQL book on its own.
 * - `@srp/hub/payments`: the x402 payment flow and policy, payment records, deposits, x402 discovery.
 *
 * Every export of every entry is public API: a new export is a promise to keep it.
 *
 * @packageDocumentation
 * @module @srp/hub
 */

// The hub
export {
  createHub,
  PROVIDER_PATH,
  type Hub,
  type HubOptions,
  type HubEvents,
  type HubMetrics,
  type HubMetricsOptions,
  type RequestEvent,
  type LedgerEvent,
  type HubX402Options,
  type HubResponsesOptions,
  type HubAsyncJobOptions,
  type SessionInfo,
  asyncAnnouncement,
} from "./hub.js";
export {
  toNodeHandler,
  toWebRequest,
  writeWebResponse,
  DEFAULT_MAX_BODY_BYTES,
  type ClientInfo,
  type FetchHandler,
  type NodeHandlerOptions,
} from "./node-adapter.js";
export { LIMIT_DEFAULTS, type HubLimits, type Rate } from "./limits.js";
export { BATCH_LIMITS, type BatchOptions } from "./api/batch.js";
export { MemoryBatchStore, type BatchStore, type BatchRecord, type KeptBatches } from "./api/batch-store.js";
export { ASYNC_JOB_DEFAULTS, type AsyncJobOptions } from "./api/async-jobs.js";
export { MemoryAsyncJobStore, type AsyncJobStore, type AsyncJobRecord, type StoredArtifact, type KeptJobs } from "./api/async-job-store.js";
export { signWebhook, webhookUrlProblem } from "./api/webhooks.js";
export { NonceMemory, type NonceStore } from "./nonces.js";
export { RedisNonceStore, type RedisNonceStoreOptions, type NonceRedis } from "./cluster/shared-nonces.js";
export type { ClusterOptions } from "./cluster/cluster.js";
export type { DirectoryTimings } from "./cluster/directory.js";

// Storage: what the hub keeps, in memory or in SQLite / PostgreSQL
export type { HubStorage, ResponseBook } from "./storage/hub-storage.js";
export { SqliteStore } from "./storage/sqlite.js";
export { SqlStore, type SqlStoreOptions } from "./storage/sql-store.js";
export { openStore, type OpenStoreOptions } from "./storage/open.js";
export {
  MemoryAccountStore,
  hashApiKey,
  generateApiKey,
  type Account,
  type AccountStore,
  type AccountAdmin,
  type AccountRecord,
  type ApiKeyRecord,
  type ApiKeyChange,
  LastKeyError,
  isLiveKey,
} from "./accounts.js";
// API keys' spending controls: the policy, its JSON and the spending per key.
export {
  NO_POLICY,
  PolicyError,
  parsePolicyPatch,
  applyPolicyPatch,
  type KeyPolicy,
  type KeyPolicyPatch,
  type KeyBudget,
  type KeyRateLimits,
  type RequestKey,
  type SpendPeriodKind,
} from "./keys/policy.js";
export type { KeySpend } from "./storage/key-spend.js";
export { MemoryReceiptBook, type ReceiptBook, type StoredReceipt } from "./receipts.js";
export {
  MemoryResponseStore,
  RESPONSE_STORE_LIMITS,
  INPUT_ITEMS_PAGE,
  type ResponseStore,
  type ResponseStoreOptions,
  type StoredResponse,
} from "./api/response-store.js";
export type { HubLedger, LedgerBooks } from "./ledger/ledger.js";

// x402 settlement and on-chain payouts
export {
  directSettler,
  facilitatorSettler,
  facilitatorSupported,
  authorizationOutcome,
  EIP3009_ABI,
  type AuthorizationOutcome,
  type AuthorizationQuery,
  type Settler,
  type ChainReader,
  type ChainWriter,
  type SettleInput,
  type SettleResult,
  type PreflightResult,
  type DirectSettlerOptions,
  type FacilitatorSettlerOptions,
  type FacilitatorSupported,
} from "./payments/authorization-settlers.js";
export {
  OnchainPayouts,
  type OnchainPayoutsOptions,
  type PayoutVoucherView,
  type PayoutRun,
  type PayoutEvent,
} from "./payments/onchain-payouts.js";
/** The text a provider signs with a Solana address's key to take its earnings there (`POST /v1/payouts/solana`, SRP-PAY-034). */
export { solanaPayoutMessage } from "./api/solana-proof.js";

// x402 on Solana: the `exact` rail (an SPL token transfer whose fees the hub's fee payer pays) and its chain adapters
export { svmRail, SVM_MIN_AMOUNT, type SvmRailOptions, type SvmKeyPair } from "./payments/svm-rail.js";
export {
  svmRequirements,
  checkSvmPayment,
  SOLANA_NETWORKS,
  BLOCKHASH_LIFETIME_SECONDS,
  MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS,
  MAX_COMPUTE_UNIT_LIMIT,
  type SvmTerms,
  type CheckedSvmPayment,
} from "./payments/svm-check.js";
export {
  rpcSvmChain,
  liteSvmChain,
  type SvmChain,
  type SvmAccount,
  type SvmSubmitResult,
  type SvmSignatureStatus,
  type SvmTxErrorKind,
  type RpcSvmChainOptions,
  type LiteSvmLike,
} from "./payments/svm-chain.js";

// Errors
export { InsufficientFundsError, RefundPendingError } from "./ledger/errors.js";

// Card deposits (Stripe Checkout; billing.md "Card deposits")
export {
  StripeCards,
  CardSignatureError,
  type HubCardOptions,
  type CardProcessor,
  type CardEvent,
  type CardRefundCall,
  type CardRefundLookup,
  type CreatedSession,
} from "./cards/stripe-cards.js";
export {
  CARD_DEPOSIT_LIMITS,
  CARD_DEPOSIT_EXPIRE_MS,
  CARD_DEPOSIT_RETENTION_MS,
  CARD_OPEN_LIMIT,
  CARD_REFUND_LOOKUP_AFTER_MS,
  CARD_SESSION_TTL_MS,
  cardDepositRetryAfter,
  refundableWithoutCards,
  UNITS_PER_CENT,
  type CardAmount,
  type CompletedSession,
  type RecordedCardDeposit,
  type CardRefundShare,
  type RefundableCardDeposit,
} from "./cards/card-policy.js";
export { CARD_DEPOSIT_PATH, CARD_WEBHOOK_PATH, type CardMoneyEvent } from "./api/cards.js";
export {
  SqlCardBook,
  type CardBook,
  type CardCreditOutcome,
  type CardRefundPlan,
  type StoredCardDeposit,
  type StoredCardRefund,
} from "./storage/card-book.js";
