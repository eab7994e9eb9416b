/**
 * What each HTTP surface of the hub needs from it, built from the hub's parts: the consumer
 * APIs (OpenAI, Anthropic, Responses, completions, modalities, batches), the account API,
 * wallet sign-in and payout wallets, futures deposits and refunds, and payouts on Solana.
 */
import type { AccountApiContext } from "../api/account.js";
import type { FuturesApiContext } from "../api/futures.js";
import type { SolanaPayoutApiContext } from "../api/payout-solana.js";
import type { KeysApiContext } from "../api/keys.js";
import type { ConsumerApiContext } from "../api/serve.js";
import type { WalletApiContext } from "../api/wallet.js";
import type { PayoutTracker } from "../ledger/payout-tracker.js";
import type { X402Payments } from "../payments/x402-flow.js";
import type { Router } from "../routing/router.js";
import type { WaitQueue } from "../routing/wait-queue.js";
import type { JobDispatch } from "./job-dispatch.js";
import type { HubOptions } from "./options.js";
import type { HubBooks } from "./storage.js";
import type { KeyLimits } from "../limits/key-limits.js";
import type { StorageErrorSink } from "./types.js";

/** Room kept in a frame for the job's envelope around a consumer's body. */
const FRAME_ENVELOPE_BYTES = 64 * 1024;

/** The hub's parts the surfaces are built from. */
export interface HubParts {
  readonly options: HubOptions;
  readonly books: HubBooks;
  readonly router: Router;
  readonly waiting: WaitQueue;
  readonly payouts: PayoutTracker;
  readonly jobs: JobDispatch;
  readonly payments: X402Payments | undefined;
  readonly maxFrameBytes: number;
  readonly ledgerReady: Promise<void>;
  readonly storageError: StorageErrorSink;
  /** The account a node is connected under now, or undefined. */
  connectedAccount(nodeId: string): string | undefined;
  /** In a hub of several processes: waits for what the others announced until a moment ago. */
  readonly catchUp: ((models: readonly string[]) => Promise<void>) | undefined;
  /** API keys' rate limits (in this process, or shared by the hub's processes). */
  readonly keyLimits: KeyLimits;
}

/** The hub's public base URL for a request: `publicUrl`, else the request's origin (no trailing slash). */
export function baseUrlOf(options: Pick<HubOptions, "publicUrl">, request: Request): string {
  return options.publicUrl?.replace(/\/$/, "") ?? new URL(request.url).origin;
}

/** The host a wallet sign-in must name: the public URL's, else only a loopback host (pure). */
export function signInHost(publicUrl: string | undefined, request: Request): string | undefined {
  if (publicUrl) return new URL(publicUrl).host;
  const url = new URL(request.url);
  return ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname) ? url.host : undefined;
}

/** What the consumer APIs and batches need. */
export function consumerContext(p: HubParts): ConsumerApiContext {
  const { jobs } = p;
  return {
    router: p.router,
    hubId: p.options.identity.id,
    accounts: p.options.accounts,
    receipts: p.books.receipts,
    maxBodyBytes: p.maxFrameBytes - FRAME_ENVELOPE_BYTES,
    requestTimeoutMs: p.options.requestTimeoutMs ?? 120_000,
    noteDemand: (model) => p.payouts.noteDemand(model),
    setJobOwner: (jobId, accountId, reservationId) => jobs.setJobOwner(jobId, accountId, reservationId),
    ledger: p.books.ledger,
    ledgerReady: p.ledgerReady,
    storageError: p.storageError,
    releaseAfterCancel: (reservationId) => jobs.releaseAfterCancel(reservationId),
    cancel: (live, jobId, reason, failed) => jobs.cancel(live, jobId, reason, failed),
    payments: p.payments,
    responses: p.books.responses,
    waiting: p.waiting,
    keyLimits: p.keyLimits,
    ...(p.catchUp ? { catchUp: p.catchUp } : {}),
  };
}

/** What the account API (`/v1/account…`, pricing, estimates) needs. */
export function accountContext(p: HubParts): AccountApiContext {
  const books = p.books.books;
  return { accounts: p.options.accounts, books, router: p.router, tiers: books?.discountTiers ?? [], signupCredits: books?.signupCredits };
}

/** What the account's key endpoints need; `revoked` re-checks node bindings after a revocation. */
export function keysContext(p: HubParts, revoked: () => Promise<unknown>): KeysApiContext {
  return {
    accounts: p.options.accounts,
    admin: p.books.admin,
    // A key's policy is a few hundred bytes.
    maxBodyBytes: 64 * 1024,
    storageError: p.storageError,
    revoked,
  };
}

/** What wallet sign-in and payout wallets need. */
export function walletContext(p: HubParts): WalletApiContext {
  const { payments: paymentBook, admin } = p.books;
  return {
    accounts: p.options.accounts,
    wallets: p.books.wallets,
    walletAccount: paymentBook ? (address) => paymentBook.walletAccount(address) : undefined,
    createApiKey: admin ? (accountId, label) => admin.createApiKey(accountId, label) : undefined,
    host: (request) => signInHost(p.options.publicUrl, request),
    chainId: p.options.x402?.chainId,
    connectedAccount: (nodeId) => p.connectedAccount(nodeId),
    maxBodyBytes: p.maxFrameBytes - FRAME_ENVELOPE_BYTES,
    storageError: p.storageError,
  };
}

/** What futures deposits and refunds need. */
export function futuresContext(p: HubParts): FuturesApiContext {
  const x402 = p.options.x402;
  return {
    hubId: p.options.identity.id,
    accounts: p.options.accounts,
    payments: p.payments,
    books: p.books.books,
    wallets: p.books.wallets,
    treasury: x402?.treasury,
    chain: x402?.settler.chain,
    asset: x402?.asset.address,
    baseUrl: (request) => baseUrlOf(p.options, request),
    maxBodyBytes: p.maxFrameBytes - FRAME_ENVELOPE_BYTES,
    ledgerReady: p.ledgerReady,
    storageError: p.storageError,
    recentSolanaRefunds: new Map(),
  };
}

/** What providers' payouts on Solana need. */
export function solanaPayoutContext(p: HubParts): SolanaPayoutApiContext {
  return {
    hubId: p.options.identity.id,
    accounts: p.options.accounts,
    payouts: p.books.solanaPayouts,
    wallets: p.books.wallets,
    rails: () => p.payments?.rails ?? [],
    ledgerReady: p.ledgerReady,
    maxBodyBytes: p.maxFrameBytes - FRAME_ENVELOPE_BYTES,
    storageError: p.storageError,
  };
}
