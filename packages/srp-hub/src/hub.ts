/**
 * The embeddable hub. `createHub` returns a Web-standard `fetch` handler for the HTTP
 * surface, an `upgrade` handler for the provider WebSocket endpoint, and helpers to
 * attach both to a `node:http` server or to listen on a port.
 */
import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { Duplex } from "node:stream";
import {
  consumerOpenApi,
  countersignReceipt,
  DISCOVERY_PATH,
  FRAME_LIMITS,
  frameHardCap,
  HANDSHAKE_TIMING,
  INITIAL_POSITION,
  randomBytes,
  SrpError,
  SUPPORTED_VERSIONS,
  toBase64Url,
  type Discovery,
  type Done,
  type Identity,
  type Job,
  type ReceiptPosition,
  type RelayedOutput,
  type UsageBounds,
  type Dispute,
  type Statement,
  signStatement,
} from "@srp/core";
import { useNodeCrypto, type Corkable } from "@srp/core/node";
import { verifyMessage } from "viem";
import { WebSocketServer } from "ws";
import type { AccountStore } from "./accounts.js";
import { toNodeHandler } from "./node-adapter.js";
import { NonceMemory } from "./nonces.js";
import { ClientLimiter, type HubLimits } from "./limits.js";
import { gateHttp, refusalError, refuseUpgrade, upgradeKey } from "./gate.js";
import type { ClientInfo } from "./node-adapter.js";
import { ProviderSession } from "./session.js";
import { checkNodeReceipt, MemoryReceiptBook, type ReceiptBook } from "./receipts.js";
import { MemoryRoutingStore, type RoutingStore } from "./routing/store.js";
import { instanceKey, Router, type BreakerChange, type LiveInstance } from "./routing/router.js";
import { PAYOUT_DEFAULTS, type PayoutConfig } from "./ledger/payouts.js";
import { PayoutTracker } from "./ledger/payout-tracker.js";
import type { RoutingConfig } from "./routing/policy.js";
import { WaitQueue, type WaitQueueOptions } from "./routing/wait-queue.js";
import { isHubLedger, isLedgerBooks, type HubLedger, type LedgerBooks } from "./ledger/ledger.js";
import { isStatementBook } from "./settlement.js";
import { getAccount, getHistory, getPricing, postEstimate, postRefund, type AccountApiContext } from "./api/account.js";
import { chatCompletions, getReceipt, listModels, type OpenAIContext } from "./api/openai.js";
import { countTokens, postMessages } from "./api/anthropic.js";
import { postResponses } from "./api/responses.js";
import { postCompletions } from "./api/completions.js";
import { MODALITY_SURFACES, postModality } from "./api/modalities.js";
import { Batches, type BatchOptions } from "./api/batch.js";
import { fail } from "./api/http.js";
import { ADMIN_PREFIX, handleAdmin } from "./api/admin.js";
import { X402_DISCOVERY_PATH, x402Discovery } from "./api/x402.js";
import type { PaymentBook, SettleMode } from "./payments/book.js";
import { X402Payments, type PaymentEvent } from "./payments/payments.js";
import type { ChainWriter, Settler } from "./payments/settler.js";
import type { X402Asset } from "./payments/x402.js";
import type { OnchainPayouts } from "./payments/payouts.js";
import { postPayoutVoucher } from "./api/payouts.js";
import { getNonce, getPayoutWallet, postPayoutWallet, postWalletSignIn, type WalletApiContext } from "./api/wallet.js";
import { postDeposit, postFuturesRefund, type FuturesApiContext } from "./api/futures.js";
import type { WalletBook } from "./storage/wallet-book.js";
import { isAccountAdmin, type AccountAdmin } from "./accounts.js";
import { handleStoredResponse, MemoryResponseStore, RESPONSES_PREFIX, type ResponseStore, type ResponseStoreOptions } from "./api/response-store.js";

// Native Ed25519 and SHA-256 (OpenSSL) for everything this process signs and verifies.
useNodeCrypto();

/** How often the hub sweeps expired nonces and failed payment locks from storage. */
const SWEEP_INTERVAL_MS = 60_000;

/** Path of the provider WebSocket endpoint. */
export const PROVIDER_PATH = "/srp/v1/provider";

/** Options of {@link createHub}. */
export interface HubOptions {
  /** The hub's Ed25519 identity (its id is the hub id). */
  identity: Identity;
  /** Where accounts are looked up when nodes bind to them. */
  accounts: AccountStore;
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
  /** Where countersigned receipts and node positions are kept; default in memory. */
  receipts?: ReceiptBook;
  /**
   * Bills consumers: reserves each request's maximum cost before routing (402
   * `billing.insufficient_credits` when the balance cannot cover it) and releases what is
   * not billed; the receipt book settles. Default: the receipt book when it is also a
   * ledger (a `SqlStore` / `SqliteStore` is both), else none (nothing is billed).
   */
  ledger?: HubLedger;
  /** Where routing state (breakers, health, throughput) is kept; default in memory. */
  routing?: RoutingStore;
  /** Overrides of the routing numbers (defaults are the brief's). */
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
  /** How often each connected node gets a signed statement of its receipts and earnings (SRP-SET-007); default 1 h. 0 disables. */
  statementIntervalMs?: number;
  /** x402 pay-per-call for requests without an API key (spec/v1/payments.md). Needs a ledger. */
  x402?: HubX402Options;
  /** On-chain payouts through the settlement contract (`POST /v1/payouts/voucher`); absent: none. */
  onchainPayouts?: OnchainPayouts;
  /** Batches (`POST /v1/batch`): how long results are kept (default 24 h) and how many items of a batch run at once (default 4). */
  batches?: BatchOptions;
  /** Stored responses of `POST /v1/responses` (`store`): retention (default 30 days), bounds of a conversation, and where (default the storage's `responses` book, else memory). */
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
  /** Settles authorizations: {@link directSettler} or {@link facilitatorSettler}. */
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
  /** Where payments are locked and recorded; default the receipt book's `payments` (a `SqlStore` has one). */
  book?: PaymentBook;
  /**
   * A wallet client whose account is the treasury (`payTo`): it pays refunds of prepaid
   * balances back on-chain and funds provider payouts. Without it, on-chain refunds and
   * payouts are unavailable (`payment.unavailable`).
   */
  treasury?: ChainWriter;
}

/** Where and how long a hub keeps stored responses. */
export interface HubResponsesOptions extends ResponseStoreOptions {
  /** The store; default the receipt book's (or ledger's, or account store's) `responses` (a `SqlStore` has one), else in memory. */
  store?: ResponseStore;
}

/** The stored-response book of storage that keeps them (a `SqlStore` does), with the hub's options. */
function responseBookOf(value: unknown, options: ResponseStoreOptions): ResponseStore | undefined {
  const r = (value as { responses?: { withOptions?: unknown } } | null)?.responses;
  return r && typeof r.withOptions === "function" ? (r.withOptions as (o: ResponseStoreOptions) => ResponseStore).call(r, options) : undefined;
}

/** Where a hub keeps stored responses (SRP-CON-050..). */
function responseStoreFor(options: HubOptions, receipts: unknown, ledger: unknown): ResponseStore {
  const { store, ...policy } = options.responses ?? {};
  return store ?? responseBookOf(receipts, policy) ?? responseBookOf(ledger, policy) ?? responseBookOf(options.accounts, policy) ?? new MemoryResponseStore(policy);
}

/** Whether storage keeps x402 payments (a `SqlStore` does). */
function paymentBookOf(value: unknown): PaymentBook | undefined {
  const p = (value as { payments?: Partial<PaymentBook> } | null)?.payments;
  return p && typeof p.lock === "function" && typeof p.walletAccount === "function" ? (p as PaymentBook) : undefined;
}

/** Whether storage keeps wallet nonces and payout wallets (a `SqlStore` does). */
function walletBookOf(value: unknown): WalletBook | undefined {
  const w = (value as { wallets?: Partial<WalletBook> } | null)?.wallets;
  return w && typeof w.consumeNonce === "function" && typeof w.bindPayoutWallet === "function" ? (w as WalletBook) : undefined;
}

/** Where a hub's x402 payments and wallet accounts are kept: `x402.book`, else its storage's. */
function paymentBookFor(options: HubOptions, receipts: unknown, ledger: HubLedger | undefined): PaymentBook | undefined {
  return options.x402?.book ?? paymentBookOf(receipts) ?? paymentBookOf(ledger) ?? paymentBookOf(options.accounts);
}

/** The hub's x402 payments from its options, or undefined when it takes none. */
function x402Payments(options: HubOptions, receipts: unknown, ledger: HubLedger | undefined, onEvent: (e: PaymentEvent) => void): X402Payments | undefined {
  const o = options.x402;
  if (!o) return undefined;
  if (!ledger) throw new TypeError("x402 payments need a ledger: pass `ledger`, or a receipt book that is one (SqlStore)");
  const book = paymentBookFor(options, receipts, ledger);
  if (!book) throw new TypeError("x402 payments need a payment book: pass `x402.book`, or a SqlStore as the receipt book");
  const mode = o.settle ?? "before";
  const requestSeconds = Math.ceil((options.requestTimeoutMs ?? 120_000) / 1000);
  const minValiditySeconds = o.minValiditySeconds ?? (mode === "before" ? 60 : requestSeconds + 60);
  return new X402Payments({
    terms: { chainId: o.chainId, asset: o.asset, payTo: o.payTo, minValiditySeconds, maxTimeoutSeconds: o.maxTimeoutSeconds ?? Math.max(300, minValiditySeconds + 240) },
    mode,
    settler: o.settler,
    book,
    onEvent,
  });
}

/** A provider session as the hub reports it. */
export interface SessionInfo {
  sessionId: string;
  nodeId: string;
  accountId: string;
  version: number;
  instances: number;
  lastSeen: number;
}

/** Events a hub emits. */
export interface HubEvents {
  "session.open": [info: SessionInfo & { replaced: boolean }];
  "session.close": [info: SessionInfo & { code: number; reason: string }];
  "handshake.rejected": [detail: { sessionId: string; code: string; message: string }];
  /** A breaker parked or readmitted an instance; `lastForModel` means the model has no instance left. */
  breaker: [change: BreakerChange];
  /** A node's receipt failed a check and was not countersigned (the job's consumer is not billed for it). */
  "receipt.rejected": [detail: { jobId: string; nodeId: string; code: string; message: string }];
  /** A node's receipt skipped sequence numbers: it was countersigned, and the missing range recorded (SRP-ATT-010). */
  "receipt.gap": [detail: { jobId: string; nodeId: string; from: number; to: number }];
  /** A node disputed the hub's receipt totals or a statement (SRP-SET-011). */
  dispute: [detail: { nodeId: string; accountId: string; dispute: Dispute }];
  /** A statement was issued to a node. */
  statement: [detail: { nodeId: string; statement: Statement }];
  /** Storage failed (a receipt or a settlement could not be recorded, reservations not reconciled). */
  "storage.error": [detail: { what: string; message: string }];
  /** An x402 payment settled, failed, became a debt, or has an unknown outcome. */
  payment: [event: PaymentEvent];
}

/** An embeddable SRP hub. */
export interface Hub extends EventEmitter<HubEvents> {
  /** The hub id (base64url Ed25519 public key). */
  readonly id: string;
  /** Web-standard handler for the hub's HTTP surface. */
  fetch(request: Request, client?: ClientInfo): Promise<Response>;
  /** Handles a `node:http` upgrade request; returns false if the path is not the provider endpoint. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Attaches the HTTP handler and the WebSocket endpoint to a `node:http` server. */
  attach(server: Server): void;
  /** Creates a `node:http` server for this hub and listens; resolves with its base URL. */
  listen(options?: { port?: number; host?: string }): Promise<{ url: string; server: Server }>;
  /** Open, authenticated provider sessions. */
  sessions(): SessionInfo[];
  /** The discovery document for a given base URL. */
  discovery(baseUrl: string): Discovery;
  /** The live routing table. */
  readonly router: Router;
  /** The hub's x402 payments, when it takes them. */
  readonly payments: X402Payments | undefined;
  /** Operator operations, when the account store offers them (library form of the admin API). */
  readonly admin: AccountAdmin | undefined;
  /** The receipt book. */
  readonly receipts: ReceiptBook;
  /** The ledger that bills consumers, if any. */
  readonly ledger: HubLedger | undefined;
  /** Where stored responses of `POST /v1/responses` are kept. */
  readonly responses: ResponseStore;
  /** Requests waiting for a slot, per model (SRP-CON-064); for inspection. */
  readonly waiting: WaitQueue;
  /** The ledger's books (balances, history, deposits, refunds, checks), when the ledger keeps them. */
  readonly books: LedgerBooks | undefined;
  /**
   * Issues a signed statement to every connected node with receipts since its last one
   * (to every connected node with `force`) and sends it; the hub also does this every
   * `statementIntervalMs`. Needs a receipt book that keeps statements (`SqlStore`).
   */
  issueStatements(force?: boolean): Promise<Statement[]>;
  /**
   * Stops taking consumer requests, waits for jobs in flight (up to `drainTimeoutMs`),
   * says goodbye to every node, and closes the endpoint and any server made by `listen`.
   */
  close(): Promise<void>;
  /**
   * Checks every open provider session's API key or wallet against the account store and
   * closes those whose binding was revoked (`auth.revoked`, SRP-SEC-022); resolves with how
   * many it closed. The hub does this after `DELETE /admin/v1/keys/{keyId}` and every
   * `limits.bindingCheckIntervalMs`.
   */
  revalidateSessions(): Promise<number>;
}

/** The id after a route's prefix, percent-decoded (a malformed escape is left as it came, and then names nothing). */
function pathId(path: string, prefix: string): string {
  const raw = path.slice(prefix.length);
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

function info(s: ProviderSession): SessionInfo {
  return { sessionId: s.sessionId, nodeId: s.nodeId ?? "", accountId: s.account?.id ?? "", version: s.version ?? 0, instances: s.instances.size, lastSeen: s.lastSeen };
}

async function verifyWallet(address: string, message: string, signature: string): Promise<boolean> {
  try {
    return await verifyMessage({ address: address as `0x${string}`, message, signature: signature as `0x${string}` });
  } catch {
    return false;
  }
}

/**
 * Creates an embeddable hub.
 *
 * @example
 * import { createServer } from "node:http";
 * import { generateIdentity } from "@srp/core";
 * import { createHub, MemoryAccountStore } from "@srp/hub";
 *
 * const accounts = new MemoryAccountStore();
 * accounts.add({ id: "acct_1", apiKeys: ["srp_example_key_123"] });
 * const hub = createHub({ identity: generateIdentity(), accounts });
 * const server = createServer();
 * hub.attach(server);
 * server.listen(8787);
 */
export function createHub(options: HubOptions): Hub {
  const maxFrameBytes = options.maxFrameBytes ?? FRAME_LIMITS.default;
  if (maxFrameBytes < FRAME_LIMITS.min || maxFrameBytes > FRAME_LIMITS.max) {
    throw new RangeError(`maxFrameBytes must be within ${FRAME_LIMITS.min}..${FRAME_LIMITS.max}`);
  }
  if (options.adminToken !== undefined && options.adminToken.length < 16) throw new RangeError("adminToken must be at least 16 characters");
  const emitter = new EventEmitter<HubEvents>();
  const byNode = new Map<string, ProviderSession>();
  const all = new Set<ProviderSession>();
  const servers: Server[] = [];
  const versions = options.versions ?? SUPPORTED_VERSIONS;
  // The codec, not ws, judges every frame up to the hard cap, so each gets its coded
  // `error` first (SRP-FRM-014, SRP-FRM-015): UTF-8 is checked in `decode`, and ws closes
  // (1009) only frames over twice the limit, before buffering them.
  const wss = new WebSocketServer({ noServer: true, maxPayload: frameHardCap(maxFrameBytes), skipUTF8Validation: true });
  const nonces = new NonceMemory(2 * HANDSHAKE_TIMING.freshnessWindowMs);
  const limiter = new ClientLimiter(options.limits);
  /** The client key of each provider connection still in its handshake. */
  const handshaking = new Map<ProviderSession, string>();
  const handshakeEnded = (session: ProviderSession, failed: boolean) => {
    const key = handshaking.get(session);
    if (key === undefined) return;
    handshaking.delete(session);
    limiter.handshakeEnded(key, failed);
  };
  const receipts = options.receipts ?? new MemoryReceiptBook();
  const router = new Router(options.routing ?? new MemoryRoutingStore(), options.routingConfig ?? {}, options.random ?? Math.random);
  router.onBreakerChange = (change) => emitter.emit("breaker", change);
  const waiting = new WaitQueue(options.queue ?? {});
  /** Slots of a session's models may be free (instances came online, capacity reported): their first waiters retry. */
  const notifyWaiters = (session: ProviderSession) => {
    for (const instance of session.instances.values()) waiting.notify(instance.model);
  };
  const jobOwners = new Map<string, { accountId: string; reservationId: string | undefined; at: number }>();
  /** Each node's receipt position, authoritative in this process once loaded. */
  const positions = new Map<string, ReceiptPosition>();
  const ledger = options.ledger ?? (isHubLedger(receipts) ? receipts : undefined);
  const statementBook = isStatementBook(receipts) ? receipts : undefined;
  /** Reservations of cancelled jobs, released when the node ends the job without a receipt or after a grace period. */
  const releaseLater = new Map<string, ReturnType<typeof setTimeout>>();
  /** Cancelled jobs whose cancel already counted as a failure of their instance (a missed deadline): at most one per job. */
  const failureCounted = new Set<string>();
  const cancelGraceMs = options.cancelGraceMs ?? 30_000;
  const payouts = new PayoutTracker({ ...PAYOUT_DEFAULTS, ...options.payouts });
  const payoutTermsFor = (nodeId: string, job: Job) => {
    const key = instanceKey(nodeId, job.instanceId);
    return payouts.terms(key, job.model, router.standing(key), router.views(job.model).length);
  };
  const storageError = (what: string, error: unknown) => emitter.emit("storage.error", { what, message: (error as Error)?.message ?? String(error) });
  // At start: release what dead processes held (on SQLite, every other holder). Requests
  // reserve only after this, so this process is known alive before it holds anything.
  const ledgerReady: Promise<void> = ledger?.reconcile
    ? ledger.reconcile().then(
        () => undefined,
        (e: unknown) => {
          storageError("reconcile reservations", e);
        },
      )
    : Promise.resolve();
  // Then keep this process alive in the books and release what hubs that died since held
  // (shared databases; the start-time rule for SQLite is not repeated).
  const payments = x402Payments(options, receipts, ledger, (e) => emitter.emit("payment", e));
  const responses = responseStoreFor(options, receipts, ledger);
  const ledgerTimer = ledger?.reconcile
    ? setInterval(() => {
        ledger.reconcile!({ all: false }).catch((e: unknown) => storageError("reconcile reservations", e));
        payments?.reconcile().catch((e: unknown) => storageError("reconcile x402 payments", e));
      }, 15_000)
    : undefined;
  ledgerTimer?.unref();
  const probes = new Map<string, { live: LiveInstance; deadline: number }>();
  const probeTimeoutMs = options.probeTimeoutMs ?? 10_000;
  let closing = false;

  const ctx = {
    identity: options.identity,
    accounts: options.accounts,
    nonces,
    versions,
    maxFrameBytes,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 15_000,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? HANDSHAKE_TIMING.handshakeTimeoutMs,
    maxInstances: options.maxInstances ?? 64,
    maxConcurrentJobs: options.maxConcurrentJobs ?? 256,
    refusedTiers: new Set(options.refusedTiers ?? ["subscription"]),
    verifyWalletSignature: verifyWallet,
    ...(limiter.sessionMessages ? { messageRate: limiter.sessionMessages } : {}),
    revocationEpoch: () => revocationEpoch,
    admitAuth(session: ProviderSession) {
      const key = handshaking.get(session);
      const refused = key === undefined ? undefined : limiter.auth(key);
      return refused ? refusalError("session.rate_limited", refused) : undefined;
    },
    onAuthenticated(session: ProviderSession) {
      handshakeEnded(session, false);
      const nodeId = session.nodeId!;
      const previous = byNode.get(nodeId);
      byNode.set(nodeId, session);
      emitter.emit("session.open", { ...info(session), replaced: previous !== undefined });
      return previous;
    },
    onInstancesChanged(session: ProviderSession) {
      router.sync(session);
      const nodeId = session.nodeId!;
      payouts.noteOffers(nodeId, [...session.instances.values()], (instanceId) => instanceKey(nodeId, instanceId));
      notifyWaiters(session);
    },
    onCapacityReported(session: ProviderSession) {
      notifyWaiters(session);
    },
    async receiptPosition(nodeId: string): Promise<ReceiptPosition> {
      const known = positions.get(nodeId);
      if (known) return known;
      const stored = await receipts.position(nodeId);
      if (!positions.has(nodeId)) positions.set(nodeId, stored);
      return positions.get(nodeId)!;
    },
    settleReceipt(session: ProviderSession, job: Job, done: Done, requestHash: string, responseHash: string, plausibility?: { relayed: RelayedOutput; bounds?: UsageBounds }) {
      const nodeId = session.nodeId!;
      const verdict = checkNodeReceipt({ job, done, nodeId, hubId: options.identity.id, requestHash, responseHash, position: positions.get(nodeId) ?? INITIAL_POSITION, ...plausibility });
      if (!verdict.countersign) {
        if (verdict.error) emitter.emit("receipt.rejected", { jobId: job.jobId, nodeId: session.nodeId!, code: verdict.error.code, message: verdict.error.message });
        // An implausible bill is the instance's failure (SRP-ATT-017), recorded once, here, whether or not the job was cancelled.
        // A job cancelled at the hub's deadline already counted as a failure then: at most one per job.
        if (verdict.error?.code === "receipt.implausible_usage" && !failureCounted.has(job.jobId)) router.outcome(instanceKey(nodeId, job.instanceId), job.model, "failure");
        return verdict.error ? { error: verdict.error } : {};
      }
      const gap = verdict.error?.details as { from?: number; to?: number } | undefined;
      if (gap?.from !== undefined && gap.to !== undefined) {
        receipts.recordGap(nodeId, gap.from, gap.to).catch((e: unknown) => storageError("record a receipt gap", e));
        emitter.emit("receipt.gap", { jobId: job.jobId, nodeId: session.nodeId!, from: gap.from, to: gap.to });
      }
      const receipt = countersignReceipt(done.receipt, options.identity);
      const owner = jobOwners.get(job.jobId);
      jobOwners.delete(job.jobId);
      positions.set(nodeId, { lastSeq: receipt.seq, totals: receipt.totals });
      const settled = receipts.record({
        receipt,
        terms: payoutTermsFor(nodeId, job),
        providerAccountId: session.account!.id,
        ...(owner ? { consumerAccountId: owner.accountId } : {}),
        ...(owner?.reservationId ? { reservationId: owner.reservationId } : {}),
      });
      settled.catch((e: unknown) => storageError(`record receipt ${job.jobId}`, e));
      return verdict.error ? { receipt, error: verdict.error, settled } : { receipt, settled };
    },
    onProbeResult(session: ProviderSession, result: { probeId: string; ok: boolean }) {
      const p = probes.get(result.probeId);
      if (!p || p.live.session !== session) return;
      probes.delete(result.probeId);
      router.probeResult(p.live.key, p.live.instance.model, result.ok);
    },
    onCancelledEnd(jobId: string, end: "done" | "error" | "lost") {
      failureCounted.delete(jobId);
      const owner = jobOwners.get(jobId);
      jobOwners.delete(jobId);
      const id = owner?.reservationId;
      if (id === undefined) return;
      const timer = releaseLater.get(id);
      if (timer) clearTimeout(timer);
      releaseLater.delete(id);
      // A late done whose receipt was countersigned was settled by recording it (and its
      // owner entry is gone by now); anything else (a job_error, a lost session, a late done
      // whose receipt failed its checks) will never be billed: release now.
      if (ledger) ledger.release(id, `the cancelled job ended without a billable receipt (${end})`).catch((e: unknown) => storageError(`release ${id}`, e));
    },
    onDispute(session: ProviderSession, dispute: Dispute) {
      emitter.emit("dispute", { nodeId: session.nodeId!, accountId: session.account!.id, dispute });
      if (statementBook) statementBook.recordDispute(session.nodeId!, session.account!.id, dispute).catch((e: unknown) => storageError("record a dispute", e));
    },
    onClosed(session: ProviderSession, code: number, reason: string) {
      handshakeEnded(session, false);
      all.delete(session);
      router.remove(session);
      if (session.nodeId !== undefined && byNode.get(session.nodeId) === session) byNode.delete(session.nodeId);
      emitter.emit("session.close", { ...info(session), code, reason });
    },
    onRejected(session: ProviderSession, error: SrpError) {
      handshakeEnded(session, error.code !== "session.rate_limited");
      all.delete(session);
      emitter.emit("handshake.rejected", { sessionId: session.sessionId, code: error.code, message: error.message });
    },
  };

  const probeTimer = setInterval(() => {
    const now = Date.now();
    for (const [id, p] of probes) {
      if (now > p.deadline) {
        probes.delete(id);
        router.probeResult(p.live.key, p.live.instance.model, false, now);
      }
    }
    for (const live of router.dueProbes(now)) {
      const probeId = `probe_${toBase64Url(randomBytes(12))}`;
      probes.set(probeId, { live, deadline: now + probeTimeoutMs });
      live.session.send({ type: "probe", probeId, instanceId: live.instance.instanceId, deadline: now + probeTimeoutMs });
    }
    for (const [id, o] of jobOwners) {
      if (now - o.at < 3_600_000) break;
      jobOwners.delete(id);
    }
  }, 250);
  probeTimer.unref();
  const onlineTimer = setInterval(() => router.creditOnline(60_000), 60_000);
  onlineTimer.unref();

  /** Issues and sends a statement to every connected node that had receipts since its last one (all of them with `force`). */
  const issueStatements = async (force = false): Promise<Statement[]> => {
    if (!statementBook) return [];
    const out: Statement[] = [];
    for (const session of byNode.values()) {
      if (session.state !== "open" || session.nodeId === undefined || session.account === undefined) continue;
      try {
        const statement = await statementBook.issueStatement(session.nodeId, session.account.id, (body) => signStatement(body, options.identity), Date.now(), force);
        if (!statement) continue;
        session.send({ type: "statement", statement });
        emitter.emit("statement", { nodeId: session.nodeId, statement });
        out.push(statement);
      } catch (e) {
        storageError(`statement for ${session.nodeId}`, e);
      }
    }
    return out;
  };
  const statementIntervalMs = options.statementIntervalMs ?? 3_600_000;
  const statementTimer = statementBook && statementIntervalMs > 0 ? setInterval(() => void issueStatements(), statementIntervalMs) : undefined;
  statementTimer?.unref();

  /**
   * Counts re-checks of bindings: a handshake whose account look-up straddles one (a
   * revocation may have gone through after it read the credential) looks it up again
   * before its welcome, as it is not yet among the sessions re-checked.
   */
  let revocationEpoch = 0;
  /** Closes the open sessions whose API key or wallet binding was revoked (SRP-SEC-022). */
  const revalidateSessions = async (): Promise<number> => {
    revocationEpoch++;
    let closed = 0;
    for (const session of [...byNode.values()]) {
      try {
        if (await session.stillBound()) continue;
      } catch (e) {
        storageError(`check the binding of ${session.nodeId}`, e);
        continue;
      }
      session.revoke();
      closed++;
    }
    return closed;
  };
  const bindingTimer = limiter.bindingCheckIntervalMs > 0 ? setInterval(() => void revalidateSessions(), limiter.bindingCheckIntervalMs) : undefined;
  bindingTimer?.unref();
  /** Expired sign-in nonces and failed, never-credited payment locks are deleted (bounded batches), and idle limit keys dropped. */
  const sweepStorage = () => {
    limiter.sweep();
    walletBook?.sweep?.().catch((e: unknown) => storageError("sweep wallet nonces", e));
    walletAccounts?.sweep?.().catch((e: unknown) => storageError("sweep failed payments", e));
    responses.sweep?.().catch((e: unknown) => storageError("sweep stored responses", e));
  };
  const sweepTimer = setInterval(sweepStorage, SWEEP_INTERVAL_MS);
  sweepTimer.unref();

  const api: OpenAIContext = {
    router,
    hubId: options.identity.id,
    accounts: options.accounts,
    receipts,
    maxBodyBytes: maxFrameBytes - 64 * 1024,
    requestTimeoutMs: options.requestTimeoutMs ?? 120_000,
    noteDemand: (model) => payouts.noteDemand(model),
    setJobOwner(jobId, accountId, reservationId) {
      jobOwners.set(jobId, { accountId, reservationId, at: Date.now() });
    },
    ledger,
    ledgerReady,
    storageError,
    releaseAfterCancel(reservationId) {
      if (!ledger || releaseLater.has(reservationId)) return;
      const timer = setTimeout(() => {
        releaseLater.delete(reservationId);
        ledger.release(reservationId, "the cancelled job did not end in time").catch((e: unknown) => storageError(`release ${reservationId}`, e));
      }, cancelGraceMs);
      timer.unref();
      releaseLater.set(reservationId, timer);
    },
    cancel(live, jobId, reason, failed) {
      if (live.session.cancelJob(jobId, reason) && failed) failureCounted.add(jobId);
    },
    payments,
    responses,
    waiting,
  };

  const batches = new Batches(api, options.batches);

  const books = isLedgerBooks(ledger) ? ledger : undefined;
  const accountApi: AccountApiContext = {
    accounts: options.accounts,
    books,
    router,
    tiers: books?.discountTiers ?? [],
    signupCredits: books?.signupCredits,
  };

  const baseUrlOf = (request: Request): string => options.publicUrl?.replace(/\/$/, "") ?? new URL(request.url).origin;

  const walletBook = walletBookOf(receipts) ?? walletBookOf(ledger) ?? walletBookOf(options.accounts);
  const walletAccounts = paymentBookFor(options, receipts, ledger);
  const keyIssuer = isAccountAdmin(options.accounts) ? options.accounts : undefined;
  const walletApi: WalletApiContext = {
    accounts: options.accounts,
    wallets: walletBook,
    walletAccount: walletAccounts ? (address) => walletAccounts.walletAccount(address) : undefined,
    createApiKey: keyIssuer ? (accountId, label) => keyIssuer.createApiKey(accountId, label) : undefined,
    host: (request) => {
      if (options.publicUrl) return new URL(options.publicUrl).host;
      const url = new URL(request.url);
      return ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname) ? url.host : undefined;
    },
    chainId: options.x402?.chainId,
    connectedAccount(nodeId) {
      const s = byNode.get(nodeId);
      return s?.state === "open" ? s.account?.id : undefined;
    },
    maxBodyBytes: api.maxBodyBytes,
    storageError,
  };
  const futuresApi: FuturesApiContext = {
    hubId: options.identity.id,
    accounts: options.accounts,
    payments,
    books,
    wallets: walletBook,
    treasury: options.x402?.treasury,
    chain: options.x402?.settler.chain,
    asset: options.x402?.asset.address,
    baseUrl: baseUrlOf,
    maxBodyBytes: api.maxBodyBytes,
    ledgerReady,
    storageError,
  };

  const discovery = (baseUrl: string): Discovery => ({
    protocol: "srp",
    versions: [...versions],
    hubId: options.identity.id,
    provider: { url: `${baseUrl.replace(/^http/, "ws")}${PROVIDER_PATH}`, maxFrameBytes },
    consumer: {
      baseUrl: `${baseUrl}/v1`,
      openapi: `${baseUrl}/openapi.json`,
      surfaces: [
        "openai.chat.completions",
        "openai.models",
        "anthropic.messages",
        "openai.responses",
        "openai.completions",
        ...(ledger?.reserveMany ? ["srp.batch"] : []),
        "openai.embeddings",
        "openai.images",
        "openai.audio",
        "srp.receipts",
        "srp.pricing",
        "srp.estimate",
        ...(books ? ["srp.account"] : []),
        ...(walletBook ? ["srp.wallet"] : []),
        ...(payments && books && walletBook ? ["srp.futures"] : []),
      ],
    },
    payments: payments ? ["account", "x402"] : ["account"],
    software: "@srp/hub",
  });

  const hub = Object.assign(emitter, {
    id: options.identity.id,
    fetch(request: Request, client?: ClientInfo): Promise<Response> {
      return gateHttp(limiter, request, client, (r) => hub.route(r));
    },
    async route(request: Request): Promise<Response> {
      const url = new URL(request.url);
      if (url.pathname === DISCOVERY_PATH && (request.method === "GET" || request.method === "HEAD")) {
        return Response.json(discovery(baseUrlOf(request)), { headers: { "cache-control": "public, max-age=60", "access-control-allow-origin": "*" } });
      }
      if (url.pathname === X402_DISCOVERY_PATH && (request.method === "GET" || request.method === "HEAD")) {
        if (!payments) return fail("api.not_found", "this hub takes no x402 payments");
        return Response.json(x402Discovery(payments, baseUrlOf(request), router, { deposits: books !== undefined }), { headers: { "cache-control": "public, max-age=60", "access-control-allow-origin": "*" } });
      }
      if (url.pathname === "/openapi.json" && (request.method === "GET" || request.method === "HEAD")) {
        return Response.json(consumerOpenApi(baseUrlOf(request)), { headers: { "cache-control": "public, max-age=300", "access-control-allow-origin": "*" } });
      }
      if (url.pathname === PROVIDER_PATH) {
        return Response.json({ error: { code: "protocol.unexpected_message", message: "this endpoint speaks WebSocket only" } }, { status: 426, headers: { upgrade: "websocket" } });
      }
      const path = url.pathname;
      if (path === "/v1/chat/completions") {
        if (request.method !== "POST") return fail("api.method_not_allowed", "use POST", { allow: "POST" });
        if (closing) return fail("session.shutdown", "the hub is shutting down");
        return chatCompletions(request, api);
      }
      if (path === "/v1/messages") {
        if (request.method !== "POST") return fail("api.method_not_allowed", "use POST", { allow: "POST" });
        if (closing) return fail("session.shutdown", "the hub is shutting down");
        return postMessages(request, api);
      }
      if (path === "/v1/messages/count_tokens") {
        if (request.method !== "POST") return fail("api.method_not_allowed", "use POST", { allow: "POST" });
        return countTokens(request, api);
      }
      if (path === "/v1/responses") {
        if (request.method !== "POST") return fail("api.method_not_allowed", "use POST", { allow: "POST" });
        if (closing) return fail("session.shutdown", "the hub is shutting down");
        return postResponses(request, api);
      }
      if (path === "/v1/completions") {
        if (request.method !== "POST") return fail("api.method_not_allowed", "use POST", { allow: "POST" });
        if (closing) return fail("session.shutdown", "the hub is shutting down");
        return postCompletions(request, api);
      }
      if (Object.hasOwn(MODALITY_SURFACES, path)) {
        if (request.method !== "POST") return fail("api.method_not_allowed", "use POST", { allow: "POST" });
        if (closing) return fail("session.shutdown", "the hub is shutting down");
        return postModality(request, api, path);
      }
      if (path === "/v1/batch") {
        if (request.method !== "POST") return fail("api.method_not_allowed", "use POST", { allow: "POST" });
        if (closing) return fail("session.shutdown", "the hub is shutting down");
        return batches.create(request);
      }
      if (path.startsWith("/v1/jobs/")) {
        if (request.method !== "GET") return fail("api.method_not_allowed", "use GET", { allow: "GET" });
        return batches.get(request, pathId(path, "/v1/jobs/"));
      }
      if (path === "/v1/models") {
        if (request.method !== "GET") return fail("api.method_not_allowed", "use GET", { allow: "GET" });
        return listModels(router);
      }
      if (path.startsWith(ADMIN_PREFIX) && options.adminToken !== undefined) {
        return handleAdmin(request, path, {
          token: options.adminToken,
          admin: isAccountAdmin(options.accounts) ? options.accounts : undefined,
          books,
          sessions: () => hub.sessions(),
          revoked: () => revalidateSessions(),
        });
      }
      if (path === "/v1/pricing") return request.method === "GET" ? getPricing(accountApi) : fail("api.method_not_allowed", "use GET", { allow: "GET" });
      if (path === "/v1/estimate") return request.method === "POST" ? postEstimate(request, accountApi, api.maxBodyBytes) : fail("api.method_not_allowed", "use POST", { allow: "POST" });
      if (path === "/v1/account") return request.method === "GET" ? getAccount(request, accountApi) : fail("api.method_not_allowed", "use GET", { allow: "GET" });
      if (path === "/v1/account/history") return request.method === "GET" ? getHistory(request, accountApi) : fail("api.method_not_allowed", "use GET", { allow: "GET" });
      if (path === "/v1/account/refund") return request.method === "POST" ? postRefund(request, accountApi) : fail("api.method_not_allowed", "use POST", { allow: "POST" });
      if (path === "/v1/payouts/voucher") {
        if (request.method !== "POST") return fail("api.method_not_allowed", "use POST", { allow: "POST" });
        return postPayoutVoucher(request, { accounts: options.accounts, payouts: options.onchainPayouts, storageError });
      }
      if (path === "/v1/auth/nonce") return request.method === "GET" ? getNonce(walletApi) : fail("api.method_not_allowed", "use GET", { allow: "GET" });
      if (path === "/v1/auth/wallet") return request.method === "POST" ? postWalletSignIn(request, walletApi) : fail("api.method_not_allowed", "use POST", { allow: "POST" });
      if (path === "/v1/nodes/payout-wallet") {
        if (request.method === "POST") return postPayoutWallet(request, walletApi);
        return request.method === "GET" ? getPayoutWallet(request, walletApi) : fail("api.method_not_allowed", "use GET or POST", { allow: "GET, POST" });
      }
      if (path === "/v1/futures/deposit") {
        if (request.method !== "POST") return fail("api.method_not_allowed", "use POST", { allow: "POST" });
        if (closing) return fail("session.shutdown", "the hub is shutting down");
        return postDeposit(request, futuresApi);
      }
      if (path === "/v1/futures/refund") return request.method === "POST" ? postFuturesRefund(request, futuresApi) : fail("api.method_not_allowed", "use POST", { allow: "POST" });
      if (path.startsWith(RESPONSES_PREFIX)) return handleStoredResponse(request, path, { accounts: options.accounts, responses, storageError });
      if (path.startsWith("/v1/receipts/")) {
        if (request.method !== "GET") return fail("api.method_not_allowed", "use GET", { allow: "GET" });
        return getReceipt(request, pathId(path, "/v1/receipts/"), api);
      }
      return fail("api.not_found", `no route for ${request.method} ${path}`);
    },
    handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean {
      const path = (request.url ?? "/").split("?")[0];
      if (path !== PROVIDER_PATH) return false;
      const key = upgradeKey(limiter, request);
      const refused = limiter.connect(key);
      if (refused) {
        refuseUpgrade(socket, refused);
        return true;
      }
      let counted = true;
      const release = () => {
        if (counted) limiter.handshakeEnded(key, false);
        counted = false;
      };
      socket.once("close", release);
      wss.handleUpgrade(request, socket, head, (ws) => {
        socket.off("close", release);
        if (!counted) return ws.terminate();
        counted = false;
        const session = new ProviderSession(ws, ctx, socket as Duplex & Corkable);
        if (session.state === "await_auth") handshaking.set(session, key);
        else limiter.handshakeEnded(key, false);
        all.add(session);
      });
      return true;
    },
    attach(server: Server): void {
      server.on("request", toNodeHandler(hub.fetch, { maxBodyBytes: maxFrameBytes }));
      server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (!hub.handleUpgrade(req, socket, head)) socket.destroy();
      });
    },
    async listen({ port = 8787, host = "127.0.0.1" } = {}): Promise<{ url: string; server: Server }> {
      const server = createServer();
      hub.attach(server);
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => resolve());
      });
      const address = server.address();
      const actualPort = typeof address === "object" && address ? address.port : port;
      const h = host.includes(":") ? `[${host}]` : host;
      return { url: `http://${h}:${actualPort}`, server };
    },
    sessions(): SessionInfo[] {
      return [...byNode.values()].filter((s) => s.state === "open").map(info);
    },
    discovery,
    router,
    payments,
    receipts,
    admin: isAccountAdmin(options.accounts) ? options.accounts : undefined,
    ledger,
    books,
    responses,
    waiting,
    issueStatements,
    revalidateSessions,
    async close(): Promise<void> {
      closing = true;
      waiting.close();
      const until = Date.now() + (options.drainTimeoutMs ?? 30_000);
      await batches.close(options.drainTimeoutMs ?? 30_000);
      while ([...all].some((s) => s.jobCount > 0) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      clearInterval(probeTimer);
      clearInterval(onlineTimer);
      clearInterval(ledgerTimer);
      clearInterval(statementTimer);
      clearInterval(sweepTimer);
      clearInterval(bindingTimer);
      // Reservations still waiting for a cancelled job's end are released now (nothing more will be billed).
      await Promise.all(
        [...releaseLater].map(([id, t]) => {
          clearTimeout(t);
          return ledger?.release(id, "the hub closed before the cancelled job ended").catch((e: unknown) => storageError(`release ${id}`, e));
        }),
      );
      releaseLater.clear();
      for (const s of all) s.goodbye("hub is shutting down", options.reconnectAfterMs ?? 5000);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
    },
  });
  return hub as Hub;
}
