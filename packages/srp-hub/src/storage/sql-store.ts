/**
 * The hub's durable storage on any {@link SqlDriver} (SQLite or PostgreSQL). `SqlStore`
 * owns the driver, runs the migrations and builds the books that do the work, one per
 * concern: accounts and keys, receipts, the ledger, statements, x402 payments, payouts,
 * wallets, stored responses and batches. It exposes them as the {@link HubStorage} members a hub
 * takes, and keeps one-line delegations so `store.summary(...)` and the like still work.
 * Routing and payout state, kept in memory and written behind, are opened on demand
 * (`openRouting()`, `openPayoutState()`) and written out when the store closes.
 * One implementation for both engines, so they behave identically.
 */
import type { ReceiptPosition } from "@srp/core";
import type { Dispute, Statement } from "@srp/core/schema";
import type { Account, AccountAdmin, AccountRecord, AccountStore, ApiKeyChange, ApiKeyRecord } from "../accounts.js";
import type { KeyPolicy } from "../keys/policy.js";
import type { KeySpend } from "./key-spend.js";
import type {
  AccountSummary,
  HistoryEntry,
  LedgerBooks,
  LedgerProblem,
  ReservationClosure,
  ReserveKey,
  ReserveManyResult,
  ReserveResult,
  TopEntry,
} from "../ledger/ledger.js";
import { DEFAULT_DISCOUNT_TIERS, type DiscountTier } from "../ledger/policy.js";
import type { SettledJob } from "../ledger/postings.js";
import type { StatementBook } from "../ledger/statements.js";
import type { ReceiptBook, StoredReceipt } from "../receipts.js";
import { SqlAccountBook } from "./account-book.js";
import { SqlBatchBook } from "./batch-book.js";
import { SqlAsyncJobBook } from "./async-job-book.js";
import { SqlCardBook } from "./card-book.js";
import type { HubStorage } from "./hub-storage.js";
import { SqlLedgerBook } from "./ledger-book.js";
import { MIGRATIONS } from "./migrations.js";
import { SqlPaymentBook } from "./payment-book.js";
import { SqlPayoutState, type SqlPayoutStateOptions } from "./payout-state-book.js";
import { SqlPayoutBook } from "./payout-book.js";
import { SqlReceiptBook } from "./receipt-book.js";
import { SqlResponseBook } from "./response-book.js";
import { SqlRoutingStore, type SqlRoutingStoreOptions } from "./routing-book.js";
import { int, type SqlDriver } from "./sql.js";
import { SqlStatementBook } from "./statement-book.js";
import { SqlWalletBook } from "./wallet-book.js";

/** Options of {@link SqlStore}. */
export interface SqlStoreOptions {
  /** Credited to every new account from the platform, in atomic units. Default 1,000,000 ($1). */
  signupCredits?: bigint;
  /** Prepaid discount tiers. Default: SRP-BIL-010's $10+ 5 %, $50+ 10 %, $200+ 15 %. */
  discountTiers?: readonly DiscountTier[];
}

/** The statements of a migration script, split at each `;` that ends a line. */
function scriptStatements(script: string): string[] {
  return script
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Runs the migrations this database has not had yet, one transaction each. */
async function migrate(db: SqlDriver): Promise<void> {
  for (;;) {
    const applied = await db.transaction(async (tx) => {
      // Several hubs starting on one PostgreSQL database migrate one at a time (even the
      // first CREATE: IF NOT EXISTS is not safe against a concurrent create).
      if (db.dialect === "postgres") await tx.all("SELECT pg_advisory_xact_lock(7263001)");
      await tx.run("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)");
      const rows = await tx.all("SELECT MAX(version) AS v FROM schema_migrations");
      const current = rows[0]?.v === null || rows[0]?.v === undefined ? 0 : int(rows[0].v);
      if (current > MIGRATIONS.length) throw new Error(`database schema version ${current} is newer than this hub (${MIGRATIONS.length})`);
      if (current === MIGRATIONS.length) return false;
      for (const sql of scriptStatements(MIGRATIONS[current]!)) await tx.run(sql);
      await tx.run("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", [current + 1, Date.now()]);
      return true;
    });
    if (!applied) return;
  }
}

/**
 * Accounts, keys, receipts and the ledger on one SQL database. Pass it to a hub as
 * `storage` (every {@link HubStorage} member) and as `accounts` / `admin`.
 */
export class SqlStore implements AccountStore, AccountAdmin, ReceiptBook, LedgerBooks, StatementBook, HubStorage {
  readonly #db: SqlDriver;
  readonly #ready: Promise<void>;
  /** Write-behind state opened on this store, written out before it closes. */
  readonly #behind = new Set<{ close(): Promise<void> }>();

  /** Accounts, hashed API keys and wallet bindings. */
  readonly accounts: SqlAccountBook;
  /** Countersigned receipts and node positions; recording a billed receipt settles it. */
  readonly receipts: SqlReceiptBook;
  /** Reservations, deposits, refunds and the account reads (the same book as {@link SqlStore.books}). */
  readonly ledger: SqlLedgerBook;
  /** Signed statements to nodes and their disputes. */
  readonly statements: SqlStatementBook;
  /** On-chain payouts: provider earnings and the protocol's share out, against signed vouchers. */
  readonly payouts: SqlPayoutBook;
  /** The x402 payments: durable authorization locks, settlement states and wallet debts. */
  readonly payments: SqlPaymentBook;
  /** Wallets: one-time sign-in nonces and the payout wallet of each node. */
  readonly wallets: SqlWalletBook;
  /** Stored responses of the Responses API (default retention and bounds; the hub applies its own with `withOptions`). */
  readonly responses: SqlResponseBook;
  /** Batches, shared by every hub process on this database (`GET /v1/jobs/{id}` answers on any of them). */
  readonly batches: SqlBatchBook;
  /** Async jobs (videos, runs) and their artifacts, shared by every hub process on this database. */
  readonly asyncJobs: SqlAsyncJobBook;
  /** Card deposits (Checkout Sessions, credited once from their signed completion) and refunds of card money. */
  readonly cards: SqlCardBook;

  constructor(driver: SqlDriver, options: SqlStoreOptions = {}) {
    const signupCredits = options.signupCredits ?? 1_000_000n;
    if (signupCredits < 0n) throw new RangeError("signupCredits must be non-negative");
    this.#db = driver;
    this.#ready = migrate(driver);
    // Nobody may be left with an unobserved rejection; callers see it through ready().
    this.#ready.catch(() => {});
    const ready = this.#ready;
    this.accounts = new SqlAccountBook(driver, ready, signupCredits);
    this.receipts = new SqlReceiptBook(driver, ready);
    this.ledger = new SqlLedgerBook(driver, ready, {
      signupCredits,
      discountTiers: options.discountTiers ?? DEFAULT_DISCOUNT_TIERS,
    });
    this.statements = new SqlStatementBook(driver, ready);
    this.payments = new SqlPaymentBook(driver, ready);
    this.payouts = new SqlPayoutBook(driver, ready);
    this.wallets = new SqlWalletBook(driver, ready);
    this.responses = new SqlResponseBook(driver, ready);
    this.batches = new SqlBatchBook(driver, ready, this.ledger);
    this.asyncJobs = new SqlAsyncJobBook(driver, ready, this.ledger);
    this.cards = new SqlCardBook(driver, ready);
  }

  /** Operator operations on accounts and API keys: the account book. */
  get admin(): SqlAccountBook {
    return this.accounts;
  }

  /** Balances, history, deposits and refunds behind the account API: the ledger book. */
  get books(): SqlLedgerBook {
    return this.ledger;
  }

  /** The database engine underneath. */
  get dialect(): "sqlite" | "postgres" {
    return this.#db.dialect;
  }

  /** Resolves when the schema is migrated (rejects if it cannot be). */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** The schema version of the database. */
  async schemaVersion(): Promise<number> {
    await this.#ready;
    const rows = await this.#db.all("SELECT MAX(version) AS v FROM schema_migrations");
    return int(rows[0]!.v);
  }

  /**
   * Routing state on this database (breakers, 14-day health windows, throughput, latency,
   * first seen), loaded and ready: pass it to a hub as `routing` so the window and ramp-up
   * survive a restart. Changes are written every `flushIntervalMs` and when this store closes.
   *
   * @example
   * const store = await openStore("sqlite:./hub.sqlite");
   * const hub = createHub({ identity, storage: store, routing: await store.openRouting(), payoutState: await store.openPayoutState() });
   */
  async openRouting(options: SqlRoutingStoreOptions = {}): Promise<SqlRoutingStore> {
    const routing = new SqlRoutingStore(this.#db, this.#ready, options);
    await routing.load();
    this.#behind.add(routing);
    return routing;
  }

  /** Payout state on this database (demand, offers, model switches), loaded and ready: pass it to a hub as `payoutState`. */
  async openPayoutState(options: SqlPayoutStateOptions = {}): Promise<SqlPayoutState> {
    const state = new SqlPayoutState(this.#db, this.#ready, options);
    await state.load();
    this.#behind.add(state);
    return state;
  }

  /** Writes out the routing and payout state opened on it, then closes the database. */
  async close(): Promise<void> {
    await this.#ready.catch(() => {});
    for (const b of this.#behind) await b.close().catch(() => {});
    this.#behind.clear();
    await this.#db.close();
  }

  // -- accounts ({@link SqlAccountBook}) ---------------------------------------

  /** See {@link SqlAccountBook.findByApiKey}. */
  findByApiKey(apiKey: string): Promise<Account | undefined> {
    return this.accounts.findByApiKey(apiKey);
  }
  /** See {@link SqlAccountBook.findByWallet}. */
  findByWallet(address: string): Promise<Account | undefined> {
    return this.accounts.findByWallet(address);
  }
  /** Creates an account and credits its signup credits, in one transaction. */
  createAccount(input: { id?: string; name?: string } = {}): Promise<AccountRecord> {
    return this.accounts.createAccount(input);
  }
  /** See {@link SqlAccountBook.getAccount}. */
  getAccount(id: string): Promise<AccountRecord | undefined> {
    return this.accounts.getAccount(id);
  }
  /** See {@link SqlAccountBook.listAccounts}. */
  listAccounts(): Promise<AccountRecord[]> {
    return this.accounts.listAccounts();
  }
  /** See {@link SqlAccountBook.createApiKey}. */
  createApiKey(accountId: string, label?: string, policy?: KeyPolicy): Promise<{ key: string; record: ApiKeyRecord }> {
    return this.accounts.createApiKey(accountId, label, policy);
  }
  /** See {@link SqlAccountBook.getApiKey}. */
  getApiKey(keyId: string): Promise<ApiKeyRecord | undefined> {
    return this.accounts.getApiKey(keyId);
  }
  /** See {@link SqlAccountBook.updateApiKey}. */
  updateApiKey(keyId: string, change: ApiKeyChange): Promise<ApiKeyRecord | undefined> {
    return this.accounts.updateApiKey(keyId, change);
  }
  /** See {@link SqlAccountBook.keySpend}. */
  keySpend(keyIds: readonly string[], now: number): Promise<Map<string, KeySpend>> {
    return this.accounts.keySpend(keyIds, now);
  }
  /** Stores a key chosen elsewhere (e.g. a development key kept in a file); creates the account (with its signup credits) if needed. */
  importApiKey(accountId: string, key: string, label?: string): Promise<ApiKeyRecord> {
    return this.accounts.importApiKey(accountId, key, label);
  }
  /** See {@link SqlAccountBook.listApiKeys}. */
  listApiKeys(accountId: string): Promise<ApiKeyRecord[]> {
    return this.accounts.listApiKeys(accountId);
  }
  /** See {@link SqlAccountBook.revokeApiKey}. */
  revokeApiKey(keyId: string, options?: { keepLastLive?: boolean }): Promise<boolean> {
    return this.accounts.revokeApiKey(keyId, options);
  }
  /** See {@link SqlAccountBook.addWallet}. */
  addWallet(accountId: string, address: string): Promise<void> {
    return this.accounts.addWallet(accountId, address);
  }

  // -- receipts ({@link SqlReceiptBook}) ---------------------------------------

  /** See {@link SqlReceiptBook.position}. */
  /** See {@link SqlReceiptBook.forgetPosition}. */
  forgetPosition(nodeId: string): void {
    this.receipts.forgetPosition(nodeId);
  }
  position(nodeId: string): Promise<ReceiptPosition> {
    return this.receipts.position(nodeId);
  }
  /** Stores a countersigned receipt and the node's position; settles its reservation in the same transaction (see {@link SqlReceiptBook.record}). */
  record(entry: StoredReceipt): Promise<SettledJob | undefined> {
    return this.receipts.record(entry);
  }
  /** See {@link SqlReceiptBook.get}. */
  get(jobId: string): Promise<StoredReceipt | undefined> {
    return this.receipts.get(jobId);
  }
  /** See {@link SqlReceiptBook.recordGap}. */
  recordGap(nodeId: string, from: number, to: number): Promise<void> {
    return this.receipts.recordGap(nodeId, from, to);
  }
  /** See {@link SqlReceiptBook.gaps}. */
  gaps(nodeId: string): Promise<{ from: number; to: number }[]> {
    return this.receipts.gaps(nodeId);
  }

  // -- the ledger ({@link SqlLedgerBook}) --------------------------------------

  /** The prepaid discount tiers in force. */
  get discountTiers(): readonly DiscountTier[] {
    return this.ledger.discountTiers;
  }
  /** Credited to every new account (atomic units). */
  get signupCredits(): bigint {
    return this.ledger.signupCredits;
  }
  /** This process, as the holder of the reservations it makes. */
  get processId(): string {
    return this.ledger.processId;
  }
  /** See {@link SqlLedgerBook.reserve}. */
  reserve(accountId: string, amount: bigint, key?: ReserveKey): Promise<ReserveResult> {
    return this.ledger.reserve(accountId, amount, key);
  }
  /** See {@link SqlLedgerBook.reserveMany}. */
  reserveMany(accountId: string, amounts: readonly bigint[], extraDiscountBps: number, key?: ReserveKey): Promise<ReserveManyResult> {
    return this.ledger.reserveMany(accountId, amounts, extraDiscountBps, key);
  }
  /** See {@link SqlLedgerBook.release}. */
  /** How a reservation was closed, or that it is open (`HubLedger.closure`). */
  closure(reservationId: string): Promise<ReservationClosure | undefined> {
    return this.ledger.closure(reservationId);
  }
  release(reservationId: string, reason: string): Promise<boolean> {
    return this.ledger.release(reservationId, reason);
  }
  /** See {@link SqlLedgerBook.reconcile}. */
  reconcile(options: { all?: boolean; now?: number } = {}): Promise<string[]> {
    return this.ledger.reconcile(options);
  }
  /** See {@link SqlLedgerBook.heartbeat}. */
  heartbeat(now = Date.now()): Promise<void> {
    return this.ledger.heartbeat(now);
  }
  /** See {@link SqlLedgerBook.available}. */
  available(accountId: string): Promise<bigint> {
    return this.ledger.available(accountId);
  }
  /** See {@link SqlLedgerBook.deposit}. */
  deposit(accountId: string, amount: bigint, reference: string, memo: Record<string, unknown> = {}): Promise<boolean> {
    return this.ledger.deposit(accountId, amount, reference, memo);
  }
  /** See {@link SqlLedgerBook.refund}. */
  refund(accountId: string, reference: string, memo?: Record<string, unknown>): Promise<bigint> {
    return this.ledger.refund(accountId, reference, memo);
  }
  /** See {@link SqlLedgerBook.fundBountyPool}. */
  fundBountyPool(amount: bigint, reference: string): Promise<boolean> {
    return this.ledger.fundBountyPool(amount, reference);
  }
  /** See {@link SqlLedgerBook.summary}. */
  summary(accountId: string): Promise<AccountSummary> {
    return this.ledger.summary(accountId);
  }
  /** See {@link SqlLedgerBook.discountOf}. */
  discountOf(accountId: string): Promise<number> {
    return this.ledger.discountOf(accountId);
  }
  /** See {@link SqlLedgerBook.top}. */
  top(by: "earned" | "spent", limit = 10): Promise<TopEntry[]> {
    return this.ledger.top(by, limit);
  }
  /** See {@link SqlLedgerBook.history}. */
  history(accountId: string, limit = 50, before?: { createdAt: number; txId: string }): Promise<HistoryEntry[]> {
    return this.ledger.history(accountId, limit, before);
  }
  /** See {@link SqlLedgerBook.ledgerBalance}. */
  ledgerBalance(account: string): Promise<bigint> {
    return this.ledger.ledgerBalance(account);
  }
  /** See {@link SqlLedgerBook.verify}. */
  verify(): Promise<LedgerProblem[]> {
    return this.ledger.verify();
  }

  // -- statements and disputes ({@link SqlStatementBook}) ----------------------

  /** See {@link SqlStatementBook.issueStatement}. */
  issueStatement(
    nodeId: string,
    accountId: string,
    sign: (body: Omit<Statement, "sig" | "hubId">) => Statement,
    now = Date.now(),
    force = false,
  ): Promise<Statement | undefined> {
    return this.statements.issueStatement(nodeId, accountId, sign, now, force);
  }
  /** See {@link SqlStatementBook.statementsOf}. */
  statementsOf(nodeId: string, last?: number): Promise<Statement[]> {
    return this.statements.statementsOf(nodeId, last);
  }
  /** See {@link SqlStatementBook.recordDispute}. */
  recordDispute(nodeId: string, accountId: string, dispute: Dispute): Promise<void> {
    return this.statements.recordDispute(nodeId, accountId, dispute);
  }
  /** See {@link SqlStatementBook.disputes}. */
  disputes(limit = 100): Promise<Array<{ nodeId: string; accountId: string; receivedAt: number; dispute: Dispute }>> {
    return this.statements.disputes(limit);
  }
}
