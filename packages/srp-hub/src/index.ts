/**
 * `@srp/hub`: an embeddable SRP hub. It serves the consumer APIs (OpenAI chat,
 * completions, Responses, models, embeddings, images and audio; Anthropic Messages;
 * batches; receipts, pricing, accounts, wallets and futures: the README's "The consumer
 * API" lists every route), the provider WebSocket endpoint with the complete v1
 * handshake, routing with a forgiving breaker and failover, receipt verification and
 * countersigning, the discovery document, and a double-entry ledger on SQLite or
 * PostgreSQL that bills consumers per token.
 *
 * @packageDocumentation
 * @module @srp/hub
 */
export { createHub, PROVIDER_PATH, type Hub, type HubOptions, type HubEvents, type HubX402Options, type HubResponsesOptions, type SessionInfo } from "./hub.js";
export type { HubStorage, ResponseBook } from "./storage/hub-storage.js";
export {
  MemoryResponseStore,
  RESPONSE_STORE_LIMITS,
  INPUT_ITEMS_PAGE,
  type ResponseStore,
  type ResponseStoreOptions,
  type StoredResponse,
} from "./api/response-store.js";
export { SqlResponseBook } from "./storage/response-book.js";
export { X402Payments, type X402PaymentsOptions, type Admission, type PaymentEvent } from "./payments/x402-flow.js";
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
export { requirementsFor, paymentRequired, checkPayment, bazaarExtension, type X402Terms, type X402Asset, type PaidResource, type CheckedPayment } from "./payments/x402-policy.js";
export type { PaymentBook, PaymentRecord, PaymentState, NewPayment, SettleMode } from "./payments/book.js";
export { FAILED_PAYMENT_RETENTION_MS } from "./payments/book.js";
export { SqlPaymentBook } from "./storage/payment-book.js";
export { SqlPayoutBook, type PayoutRecord, type PayoutTarget } from "./storage/payout-book.js";
export { SqlWalletBook, WALLET_NONCE_TTL_MS, type WalletBook, type PayoutWalletBinding } from "./storage/wallet-book.js";
export { depositResource, DEPOSIT_PATH, DEPOSIT_LIMITS } from "./api/futures.js";
export { OnchainPayouts, type OnchainPayoutsOptions, type PayoutVoucherView, type PayoutRun } from "./payments/onchain-payouts.js";
export {
  X402_DISCOVERY_PATH,
  x402Discovery,
  type X402DiscoveryDocument,
  type X402DiscoveryResource,
  type X402ModelPrice,
  type X402MaximumCostPrice,
  type X402AmountPrice,
} from "./api/x402-discovery.js";
export {
  MemoryAccountStore,
  hashApiKey,
  generateApiKey,
  type Account,
  type AccountStore,
  type AccountAdmin,
  type AccountRecord,
  type ApiKeyRecord,
} from "./accounts.js";
export { SqliteStore } from "./storage/sqlite.js";
export { SqlStore, type SqlStoreOptions } from "./storage/sql-store.js";
export { SqlAccountBook } from "./storage/account-book.js";
export { SqlReceiptBook } from "./storage/receipt-book.js";
export { SqlLedgerBook, type SqlLedgerBookOptions } from "./storage/ledger-book.js";
export { SqlStatementBook } from "./storage/statement-book.js";
export { InsufficientFundsError, RefundPendingError } from "./ledger/errors.js";
export { jobSettlement, type JobSettlement, type JobSettlementInput, type SettledJob } from "./ledger/postings.js";
export { openStore, type OpenStoreOptions } from "./storage/open.js";
export { openSqlite, type SqliteOptions } from "./storage/sqlite-driver.js";
export { openPostgres, type PostgresOptions } from "./storage/postgres-driver.js";
export { MIGRATIONS } from "./storage/migrations.js";
export { int, big, text, type SqlDriver, type SqlExecutor, type SqlRow, type SqlValue } from "./storage/sql.js";
export {
  post,
  balancedLegs,
  verifyLedger,
  history,
  userAccount,
  holdAccount,
  isHubLedger,
  isLedgerBooks,
  PLATFORM,
  BOUNTY_POOL,
  EXTERNAL,
  type HubLedger,
  type LedgerBooks,
  type AccountSummary,
  type TopEntry,
  type ReserveResult,
  type ReserveManyResult,
  type Leg,
  type Posting,
  type HistoryEntry,
  type LedgerProblem,
  type LedgerAccountKind,
} from "./ledger/ledger.js";
export { worstCase, discounted, discountFor, prepaidOf, splitCharge, DEFAULT_DISCOUNT_TIERS, type DiscountTier, type ChargeSplit } from "./ledger/policy.js";
export { ADMIN_PREFIX } from "./api/admin.js";
export { toNodeHandler, toWebRequest, writeWebResponse, DEFAULT_MAX_BODY_BYTES, type ClientInfo, type FetchHandler, type NodeHandlerOptions } from "./node-adapter.js";
export { clientAddress, clientKey, LIMIT_DEFAULTS, parseLimit, TokenBucket, TokenBuckets, type HubLimits, type Rate, type TokenBucketsOptions } from "./limits.js";
export { MemoryReceiptBook, checkNodeReceipt, type ReceiptBook, type StoredReceipt, type ReceiptCheckInput, type ReceiptVerdict } from "./receipts.js";
export { MemoryRoutingStore, freshHealth, type RoutingStore, type InstanceHealth } from "./routing/store.js";
export { Router, instanceKey, type LiveInstance, type RouteSort, type BreakerChange } from "./routing/router.js";
export { WaitQueue, Waiter, queueWaitOf, WAIT_QUEUE_DEFAULTS, QUEUE_TIMEOUT_HEADER, type WaitQueueOptions, type WaitOutcome } from "./routing/wait-queue.js";
export { modelList, modelsToTry, fallsThrough, fallbackError, waitingModelIndex, MAX_FALLBACK_MODELS } from "./routing/fallbacks.js";
export { AffinityTable, accountAffinityKey, chatAffinityKey, messagesAffinityKey, responsesAffinityKey, AFFINITY_MIN_PREFIX_BYTES, AFFINITY_TTL_MS, AFFINITY_MAX_ENTRIES, type AffinityOptions } from "./routing/affinity.js";
export {
  ROUTING_DEFAULTS,
  CLOSED_BREAKER,
  NO_THROUGHPUT,
  breakerStatus,
  breakerAfterOutcome,
  breakerProbeSent,
  breakerAfterProbe,
  recordHealth,
  healthScore,
  recordThroughput,
  belowFloor,
  rampFactor,
  eligible,
  pick,
  chatNeeds,
  estimatePromptTokens,
  type RoutingConfig,
  type Outcome,
  type Breaker,
  type BreakerStatus,
  type HealthBucket,
  type Throughput,
  type CandidateView,
  type RouteNeeds,
  type NoRoute,
} from "./routing/policy.js";
export { modelCatalog, promptTokenBound, type ModelEntry, type SrpUsageExtension } from "./api/openai.js";
export { errorResponse } from "./api/http.js";
export { BATCH_LIMITS, type BatchOptions, type BatchView, type BatchItemView, type BatchStatus } from "./api/batch.js";
export { anthropicError, messagesToChat, chatToMessage, withoutUnsignedThinking } from "./api/anthropic.js";
export { responsesToChat, chatToResponse, chatToOutput, inputItems, itemsToMessages, chatTools, toolNamespaces, responseShell, responsesUsage, finishStatus, ChatToResponsesEvents } from "./api/responses-translate.js";
export { planResponses, responseId } from "./api/responses.js";
export { planCompletions, completionsPromptBound, completionsChoices, COMPLETIONS_DEFAULT_MAX_TOKENS } from "./api/completions.js";
export { chatReasoningText, effortForBudget, reasoningEffortFor, withEffortThinking, THINKING_EFFORT_THRESHOLDS, TRANSLATED_THINKING_SIGNATURE, type ReasoningEffort } from "./api/reasoning.js";
