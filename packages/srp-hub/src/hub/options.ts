/**
 * The options of `createHub`: identity, storage, limits and the optional surfaces (x402,
 * on-chain payouts, batches, stored responses). Every book the hub uses is named here;
 * none is guessed from another object's shape.
 */
import type { Identity } from "@srp/core";
import type { AccountAdmin, AccountStore } from "../accounts.js";
import type { BatchOptions } from "../api/batch.js";
import type { AsyncJobOptions } from "../api/async-jobs.js";
import type { HubCardOptions } from "../cards/stripe-cards.js";
import type { ResponseStore, ResponseStoreOptions } from "../api/response-store.js";
import type { HubLedger } from "../ledger/ledger.js";
import type { PayoutState } from "../ledger/payout-state.js";
import type { PayoutConfig } from "../ledger/payout-terms.js";
import type { HubLimits } from "../limits.js";
import type { HubMetricsOptions } from "../metrics.js";
import type { NonceStore } from "../nonces.js";
import type { ClusterOptions } from "../cluster/cluster.js";
import type { PaymentBook, SettleMode } from "../payments/book.js";
import type { OnchainPayouts } from "../payments/onchain-payouts.js";
import type { ChainWriter, Settler } from "../payments/authorization-settlers.js";
import type { X402Asset } from "../payments/x402-policy.js";
import type { ReceiptBook } from "../receipts.js";
import type { RoutingConfig } from "../routing/policy.js";
import type { RoutingStore } from "../routing/store.js";
import type { WaitQueueOptions } from "../routing/wait-queue.js";
import type { HubStorage } from "../storage/hub-storage.js";
import type { PaymentRail } from "../payments/rail.js";

/** Options of `createHub`. */
export interface HubOptions {
  /** The hub's Ed25519 identity (its id is the hub id). */
  identity: Identity;
  /** Where accounts are looked up when consumers call and nodes bind to them. */
  accounts: AccountStore;
  /**
   * Where the hub keeps what must outlive a request: receipts, the ledger and its books,
   * statements, x402 payments, wallets, stored responses and operator operations on accounts.
   * A `SqlStore` (`SqliteStore`, `openStore`) is all of them: `createHub({ accounts: store, storage: store })`.
   * Absent: receipts and stored responses in memory, nothing billed.
   */
  storage?: HubStorage;
  /**
   * Operator operations: the admin API (`adminToken`), `hub.admin`, and the API key a wallet
   * sign-in issues (`POST /v1/auth/wallet`). Default: `storage.admin` (a `SqlStore`'s account
   * book); a `MemoryAccountStore` offers them too. None: admin account routes answer 404 and
   * wallet sign-in issues no key.
   */
  admin?: AccountAdmin;
  /** Public base URL (e.g. `https://hub.example`); default: derived from each request's Host header. */
  publicUrl?: string;
  /** Frame limit announced in hello; default 4 MiB. */
  maxFrameBytes?: number;
  /** Heartbeat interval announced in welcome; default 15 s. */
  heartbeatIntervalMs?: number;
  /** Handshake deadline; default 10 s. */
  handshakeTimeoutMs?: number;
  /** Instances per session; default 64. */
  maxInstances?: number;
  /** Concurrent jobs per session; default 256. */
  maxConcurrentJobs?: number;
  /** Supply tiers refused in offers; default `["subscription"]`. */
  refusedTiers?: readonly string[];
  /** Protocol versions offered; default all the library speaks. */
  versions?: readonly number[];
  /** Where countersigned receipts and node positions are kept; default `storage.receipts`, else in memory. */
  receipts?: ReceiptBook;
  /**
   * Bills consumers: reserves each request's maximum cost before routing (402
   * `billing.insufficient_credits` when the balance cannot cover it) and releases what is
   * not billed; the receipt book settles. Default `storage.ledger`; absent: nothing is billed.
   */
  ledger?: HubLedger;
  /**
   * Where routing state (breakers, health windows, throughput, latency, first seen) is kept;
   * default in memory. `await store.openRouting()` keeps it in a `SqlStore`'s database, so it
   * survives a restart (the hub flushes it when it closes).
   */
  routing?: RoutingStore;
  /**
   * Where the nonces of hellos are remembered, to tell a replayed `auth` from a wrong one
   * (SRP-AUTH-003); default in this process's memory. The processes of one hub share a
   * `RedisNonceStore`.
   */
  nonces?: NonceStore;
  /**
   * Join the other processes of this hub (docs/deployment.md): they share a Redis server for
   * live state (which node is on which process, load, nonces) and send each other jobs over
   * direct links, so a request reaching any process is served by a node connected to any.
   * Every process must share the hub's identity and its PostgreSQL storage. Await
   * `hub.ready()` before serving. Absent: this process is the whole hub.
   */
  cluster?: ClusterOptions;
  /** Overrides of the routing numbers (defaults: `ROUTING_DEFAULTS`, `spec/v1/liveness.md` "Routing policy"). */
  routingConfig?: Partial<RoutingConfig>;
  /** Random source for routing tie-breaks; default `Math.random`. */
  random?: () => number;
  /** Default time a consumer request may take; default 120 s (header `x-srp-timeout-ms` overrides). */
  requestTimeoutMs?: number;
  /** Time a parked instance's probe may take; default 10 s. */
  probeTimeoutMs?: number;
  /** How long `close()` waits for jobs in flight; default 30 s. */
  drainTimeoutMs?: number;
  /** Enables the HTTP admin API under `/admin/v1/` for this bearer token (at least 16 characters). */
  adminToken?: string;
  /**
   * Prometheus metrics (`hub.metrics`), off when absent; with a `token`, served at `GET /metrics`
   * to `Authorization: Bearer <token>` (the README's "Metrics").
   */
  metrics?: HubMetricsOptions;
  /** Delay `close()` asks nodes to wait before reconnecting (goodbye.reconnectAfterMs); default 5 s. */
  reconnectAfterMs?: number;
  /**
   * How long the reservation of a job the hub cancelled (consumer gone, deadline) waits
   * for the node's end of the job: a late `done` is billed at its receipt (SRP-JOB-016,
   * SRP-JOB-021), a `job_error` releases it at once. Default 30 s.
   */
  cancelGraceMs?: number;
  /**
   * Waiting for a slot (SRP-CON-064): requests per model that may wait while every instance
   * is busy (default 256), of them per paying account (default 64), how long they wait unless
   * they ask (header `x-srp-queue-timeout-ms`; default 30 s) and the longest they may ask for
   * (default 300 s).
   */
  queue?: Partial<Pick<WaitQueueOptions, "maxWaiters" | "maxWaitersPerAccount" | "waitMs" | "maxWaitMs">>;
  /** Bounties, trust caps and anti-flapping (defaults: no bounties configured, 20 % of fees fund the pool, a 50 % reduction after a model switch decaying over 72 h). */
  payouts?: Partial<PayoutConfig>;
  /** Where demand and model switches (for bounties and anti-flapping) are kept; default in memory. `await store.openPayoutState()` keeps them in a `SqlStore`'s database. */
  payoutState?: PayoutState;
  /** How often each connected node gets a signed statement of its receipts and earnings (SRP-SET-007); default 1 h. 0 disables. */
  statementIntervalMs?: number;
  /** x402 pay-per-call for requests without an API key (spec/v1/payments.md). Needs a ledger and a payment book. */
  x402?: HubX402Options;
  /**
   * Prepaid deposits by card through Stripe Checkout (`POST /v1/account/deposits/card`,
   * credited from the signed webhook at `POST /v1/stripe/webhook`; billing.md "Card
   * deposits"). Needs `storage` with card books (a `SqlStore`).
   */
  cards?: HubCardOptions;
  /** On-chain payouts through the settlement contract (`POST /v1/payouts/voucher`); absent: none. */
  onchainPayouts?: OnchainPayouts;
  /** Batches (`POST /v1/batch`): how long results are kept (default 24 h) and how many items of a batch run at once (default 4). */
  batches?: BatchOptions;
  /**
   * Async jobs (`POST /v1/videos`, `POST /v1/runs`; consumer.md "Async jobs"): the result
   * limits announced to nodes (SRP-JOB-039), retention, caps, webhooks and where jobs are kept
   * (default `storage.asyncJobs`, else memory). `false`: the hub takes no async jobs and
   * refuses async instances. Default: on, with the reference limits.
   */
  asyncJobs?: HubAsyncJobOptions | false;
  /** Stored responses of `POST /v1/responses` (`store`): retention (default 30 days), bounds of a conversation, and where (default `storage.responses`, else memory). */
  responses?: HubResponsesOptions;
  /** What strangers may make the hub do, per client address: rates of nonces, failed payments, connections and handshakes, messages per session (see the README's "Limits"; SRP-SEC-014..). */
  limits?: HubLimits;
}

/** How a hub takes x402 payments. */
export interface HubX402Options {
  /** The EVM chain payments settle on. */
  chainId: number;
  /** The token (USDC, or the test token on a local chain). */
  asset: X402Asset;
  /** The hub's treasury address: every authorization pays it. */
  payTo: string;
  /** Settles authorizations: `directSettler` or `facilitatorSettler`. */
  settler: Settler;
  /**
   * `before` (default): settle, then serve; a payer whose request then fails keeps the
   * money as prepaid balance. `after`: serve, then settle; only served requests move money,
   * and a settlement that fails then becomes the wallet's debt (the platform carries it).
   */
  settle?: SettleMode;
  /** `maxTimeoutSeconds` offered; default the larger of 300 and the validity needed plus 4 minutes. */
  maxTimeoutSeconds?: number;
  /** Seconds an arriving authorization must still be valid; default 60 (`before`) or the request time-out plus 60 s (`after`). */
  minValiditySeconds?: number;
  /** Where payments are locked and recorded; default `storage.payments`. */
  book?: PaymentBook;
  /**
   * A wallet client whose account is the treasury (`payTo`): it pays refunds of prepaid
   * balances back on-chain and funds provider payouts. Without it, on-chain refunds and
   * payouts are unavailable (`payment.unavailable`).
   */
  treasury?: ChainWriter;
  /**
   * More networks offered in the same 402 after the EVM one, each a payment rail (such as
   * Solana's `svmRail`); the payer chooses by the network it pays on.
   */
  rails?: readonly PaymentRail[];
}

/** Where and how long a hub keeps stored responses. */
export interface HubResponsesOptions extends ResponseStoreOptions {
  /** The store; default `storage.responses` with these options, else in memory. */
  store?: ResponseStore;
}

/** How a hub takes async jobs: {@link AsyncJobOptions} and the limits announced to nodes (SRP-JOB-039). */
export interface HubAsyncJobOptions extends AsyncJobOptions {
  /** Largest part of a result stream, bytes: 65 536 to 524 288; default 262 144. Its base64 form must fit `maxFrameBytes`. */
  partBytes?: number;
  /** Largest result of one job, bytes: `partBytes` to 4 GiB; default 64 MiB. The hub holds a running job's result in memory. */
  maxResultBytes?: number;
  /**
   * How long a node's async jobs survive its session, waiting for it to reconnect and resume
   * them (SRP-JOB-045), ms: 0 to 600 000; default 120 000. 0: they end with the session and
   * are failed over at once.
   */
  resumeWindowMs?: number;
  /** Result bytes of running jobs the hub holds in memory at once, across nodes; default 512 MiB. Beyond it a job fails with `job.result_too_large`. */
  maxHeldBytes?: number;
}
