/**
 * The hub's durable storage on any {@link SqlDriver} (SQLite or PostgreSQL): accounts,
 * hashed API keys, wallets, countersigned receipts, node positions, and the ledger
 * (signup credits, deposits, reservations, settlements, refunds). One implementation for
 * both engines, so they behave identically.
 */
import { INITIAL_POSITION, parseAmount, type Dispute, type Receipt, type ReceiptPosition, type ReceiptTotals, type Statement } from "@srp/core";
import { statementBody, type StatementBook } from "../settlement.js";
import {
  checkAccountId,
  checkWallet,
  generateApiKey,
  hashApiKey,
  keyPrefix,
  newId,
  type Account,
  type AccountAdmin,
  type AccountRecord,
  type AccountStore,
  type ApiKeyRecord,
} from "../accounts.js";
import {
  BOUNTY_POOL,
  EXTERNAL,
  history,
  holdAccount,
  InsufficientFunds,
  ledgerId,
  PLATFORM,
  post,
  userAccount,
  verifyLedger,
  type HistoryEntry,
  type AccountSummary,
  type LedgerBooks,
  type LedgerProblem,
  type ReserveResult,
  type ReserveManyResult,
  type TopEntry,
} from "../ledger/ledger.js";
import { DEFAULT_DISCOUNT_TIERS, discountFor, settle, type DiscountTier, type Settlement } from "../ledger/policy.js";
import { payout, PLAIN_TERMS } from "../ledger/payouts.js";
import type { ReceiptBook, StoredReceipt } from "../receipts.js";
import { MIGRATIONS } from "./migrations.js";
import { repayDebtsIn, SqlPaymentBook } from "./payment-book.js";
import { SqlPayoutBook } from "./payout-book.js";
import { SqlWalletBook } from "./wallet-book.js";
import { SqlResponseBook } from "./response-book.js";
import { recordBatch, reserveBatch, TurnBatcher, type ReserveAsk } from "./pg-batch.js";
import { big, int, text, type SqlDriver, type SqlExecutor, type SqlRow } from "./sql.js";

/** The largest amount a ledger column holds (a signed 64-bit integer, about 9.2 trillion USD in atomic units). */
export const MAX_LEDGER_AMOUNT = 2n ** 63n - 1n;

/** Options of {@link SqlStore}. */
export interface SqlStoreOptions {
  /** Credited to every new account from the platform, in atomic units. Default 1,000,000 ($1). */
  signupCredits?: bigint;
  /** Prepaid discount tiers. Default: the brief's $10+ 5 %, $50+ 10 %, $200+ 15 %. */
  discountTiers?: readonly DiscountTier[];
}


/** A settled job, as {@link SqlStore.record} reports it. `provider` is what the provider was credited (after bounty and reduction). */
export interface SettledJob extends Settlement {
  reservationId: string;
  discountBps: number;
  /** Paid from the bounty pool on top of the provider's share. */
  bounty: bigint;
  /** Withheld from the provider's share by the anti-flapping reduction. */
  reduction: bigint;
}

const PROCESS_STALE_MS = 60_000;

/** Thrown by a refund while an x402 payment credited to the account before settling is still unsettled. */
export class RefundPending extends Error {
  override readonly name = "RefundPending";
  constructor(readonly accountId: string) {
    super(`account ${accountId} has a payment that has not settled yet; refund after it settles`);
  }
}

function keyRecord(r: SqlRow): ApiKeyRecord {
  return {
    keyId: String(r.id),
    accountId: String(r.account_id),
    prefix: String(r.prefix),
    label: text(r.label),
    createdAt: int(r.created_at),
    revokedAt: r.revoked_at === null ? null : int(r.revoked_at),
  };
}

function accountRecord(r: SqlRow): AccountRecord {
  return { id: String(r.id), name: text(r.name), createdAt: int(r.created_at) };
}

function statements(script: string): string[] {
  return script
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Accounts, keys, receipts and the ledger on one SQL database. */
export class SqlStore implements AccountStore, AccountAdmin, ReceiptBook, LedgerBooks, StatementBook {
  readonly #db: SqlDriver;
  readonly #ready: Promise<void>;
  readonly #signupCredits: bigint;
  readonly #tiers: readonly DiscountTier[];
  /** Node positions, cached once read (one session per node writes them). */
  readonly #positions = new Map<string, ReceiptPosition>();
  /** This process, as the holder of the reservations it makes. */
  readonly processId = ledgerId("proc");
  /** Whether this process's heartbeat row exists. */
  #alive = false;
  /** PostgreSQL: reservations and receipts batched per turn of the event loop. */
  readonly #reserves: TurnBatcher<ReserveAsk, ReserveResult> | undefined;
  readonly #records: TurnBatcher<StoredReceipt, SettledJob | undefined> | undefined;

  constructor(driver: SqlDriver, options: SqlStoreOptions = {}) {
    this.#db = driver;
    this.#signupCredits = options.signupCredits ?? 1_000_000n;
    if (this.#signupCredits < 0n) throw new RangeError("signupCredits must be non-negative");
    this.#tiers = options.discountTiers ?? DEFAULT_DISCOUNT_TIERS;
    if (driver.dialect === "postgres") {
      this.#reserves = new TurnBatcher(
        (asks) => this.#db.transaction((tx) => reserveBatch(tx, asks, { tiers: this.#tiers, processId: this.processId, now: Date.now() })),
        (ask) => this.#reserveOne(ask),
      );
      this.#records = new TurnBatcher(
        async (entries) => {
          const results = await this.#db.transaction((tx) => recordBatch(tx, entries.map((entry) => ({ entry })), Date.now()));
          for (const e of entries) this.#advance(e.receipt);
          return results;
        },
        (entry) => this.#recordOne(entry),
      );
    }
    this.#ready = this.#migrate();
    // Nobody may be left with an unobserved rejection; callers see it through ready().
    this.#ready.catch(() => {});
    this.payments = new SqlPaymentBook(driver, this.#ready);
    this.payouts = new SqlPayoutBook(driver, this.#ready);
    this.wallets = new SqlWalletBook(driver, this.#ready);
    this.responses = new SqlResponseBook(driver, this.#ready);
  }

  /** On-chain payouts: provider earnings and the protocol's share out, against signed vouchers. */
  readonly payouts: SqlPayoutBook;

  /** The x402 payments: durable authorization locks, settlement states and wallet debts. */
  readonly payments: SqlPaymentBook;

  /** Wallets: one-time sign-in nonces and the payout wallet of each node. */
  readonly wallets: SqlWalletBook;

  /** Stored responses of the Responses API (default retention and bounds; the hub applies its own with `withOptions`). */
  readonly responses: SqlResponseBook;

  /** The prepaid discount tiers in force. */
  get discountTiers(): readonly DiscountTier[] {
    return this.#tiers;
  }

  /** Credited to every new account (atomic units). */
  get signupCredits(): bigint {
    return this.#signupCredits;
  }

  /** The database engine underneath. */
  get dialect(): "sqlite" | "postgres" {
    return this.#db.dialect;
  }

  /** Resolves when the schema is migrated (rejects if it cannot be). */
  ready(): Promise<void> {
    return this.#ready;
  }

  async #migrate(): Promise<void> {
    for (;;) {
      const applied = await this.#db.transaction(async (tx) => {
        // Several hubs starting on one PostgreSQL database migrate one at a time (even the
        // first CREATE: IF NOT EXISTS is not safe against a concurrent create).
        if (this.#db.dialect === "postgres") await tx.all("SELECT pg_advisory_xact_lock(7263001)");
        await tx.run("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)");
        const rows = await tx.all("SELECT MAX(version) AS v FROM schema_migrations");
        const current = rows[0]?.v === null || rows[0]?.v === undefined ? 0 : int(rows[0].v);
        if (current > MIGRATIONS.length) throw new Error(`database schema version ${current} is newer than this hub (${MIGRATIONS.length})`);
        if (current === MIGRATIONS.length) return false;
        for (const sql of statements(MIGRATIONS[current]!)) await tx.run(sql);
        await tx.run("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", [current + 1, Date.now()]);
        return true;
      });
      if (!applied) return;
    }
  }

  /** Posts a transaction on this store's engine (see {@link post}). */
  #post(tx: SqlExecutor, p: Parameters<typeof post>[1], now = Date.now()): Promise<boolean> {
    return post(tx, p, { now, dialect: this.#db.dialect });
  }

  /** The schema version of the database. */
  async schemaVersion(): Promise<number> {
    await this.#ready;
    const rows = await this.#db.all("SELECT MAX(version) AS v FROM schema_migrations");
    return int(rows[0]!.v);
  }

  // -- accounts ---------------------------------------------------------------

  async findByApiKey(apiKey: string): Promise<Account | undefined> {
    await this.#ready;
    const rows = await this.#db.all("SELECT account_id, revoked_at FROM api_keys WHERE hash = ?", [hashApiKey(apiKey)]);
    const r = rows[0];
    return r && r.revoked_at === null ? { id: String(r.account_id) } : undefined;
  }

  async findByWallet(address: string): Promise<Account | undefined> {
    await this.#ready;
    const rows = await this.#db.all("SELECT account_id FROM wallets WHERE address = ?", [address.toLowerCase()]);
    return rows[0] ? { id: String(rows[0].account_id) } : undefined;
  }

  /** Creates an account and credits its signup credits, in one transaction. */
  async createAccount(input: { id?: string; name?: string } = {}): Promise<AccountRecord> {
    await this.#ready;
    const id = input.id ?? newId("acct");
    checkAccountId(id);
    const record = { id, name: input.name ?? null, createdAt: Date.now() };
    await this.#db.transaction(async (tx) => {
      const inserted = await tx.run("INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING", [record.id, record.name, record.createdAt]);
      if (inserted === 0) throw new TypeError(`account ${id} exists`);
      await this.#grantSignup(tx, id);
    });
    return record;
  }

  async #grantSignup(tx: SqlExecutor, accountId: string): Promise<void> {
    if (this.#signupCredits === 0n) return;
    await this.#post(tx, {
      idempotencyKey: `signup:${accountId}`,
      kind: "signup_credit",
      accountId,
      legs: [
        { account: PLATFORM, amount: -this.#signupCredits },
        { account: userAccount(accountId), amount: this.#signupCredits },
      ],
    });
  }

  async getAccount(id: string): Promise<AccountRecord | undefined> {
    await this.#ready;
    const rows = await this.#db.all("SELECT * FROM accounts WHERE id = ?", [id]);
    return rows[0] ? accountRecord(rows[0]) : undefined;
  }

  async listAccounts(): Promise<AccountRecord[]> {
    await this.#ready;
    return (await this.#db.all("SELECT * FROM accounts ORDER BY created_at, id")).map(accountRecord);
  }

  async #requireAccount(tx: SqlExecutor, accountId: string): Promise<void> {
    if ((await tx.all("SELECT id FROM accounts WHERE id = ?", [accountId])).length === 0) throw new TypeError(`no account ${accountId}`);
  }

  async createApiKey(accountId: string, label?: string): Promise<{ key: string; record: ApiKeyRecord }> {
    await this.#ready;
    await this.#requireAccount(this.#db, accountId);
    const key = generateApiKey();
    return { key, record: await this.#insertKey(accountId, key, label) };
  }

  /** Stores the hash of `key` for an account. */
  async #insertKey(accountId: string, key: string, label: string | undefined): Promise<ApiKeyRecord> {
    const record: ApiKeyRecord = { keyId: newId("key"), accountId, prefix: keyPrefix(key), label: label ?? null, createdAt: Date.now(), revokedAt: null };
    await this.#db.run("INSERT INTO api_keys (id, account_id, hash, prefix, label, created_at) VALUES (?, ?, ?, ?, ?, ?)", [
      record.keyId,
      accountId,
      hashApiKey(key),
      record.prefix,
      record.label,
      record.createdAt,
    ]);
    return record;
  }

  /** Stores a key chosen elsewhere (e.g. a development key kept in a file); creates the account (with its signup credits) if needed. */
  async importApiKey(accountId: string, key: string, label?: string): Promise<ApiKeyRecord> {
    await this.#ready;
    checkAccountId(accountId);
    if (!(await this.getAccount(accountId))) {
      await this.createAccount({ id: accountId }).catch(async (error: unknown) => {
        if (!(await this.getAccount(accountId))) throw error; // created meanwhile by someone else: fine
      });
    }
    const existing = await this.#db.all("SELECT * FROM api_keys WHERE hash = ?", [hashApiKey(key)]);
    if (existing[0]) {
      if (existing[0].account_id !== accountId) throw new TypeError("this key belongs to another account");
      return keyRecord(existing[0]);
    }
    return this.#insertKey(accountId, key, label);
  }

  async listApiKeys(accountId: string): Promise<ApiKeyRecord[]> {
    await this.#ready;
    return (await this.#db.all("SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at, id", [accountId])).map(keyRecord);
  }

  async revokeApiKey(keyId: string): Promise<boolean> {
    await this.#ready;
    return (await this.#db.run("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [Date.now(), keyId])) === 1;
  }

  async addWallet(accountId: string, address: string): Promise<void> {
    await this.#ready;
    await this.#requireAccount(this.#db, accountId);
    await this.#db.run("INSERT INTO wallets (address, account_id, created_at) VALUES (?, ?, ?) ON CONFLICT (address) DO UPDATE SET account_id = excluded.account_id", [
      checkWallet(address),
      accountId,
      Date.now(),
    ]);
  }

  // -- receipts ---------------------------------------------------------------

  async position(nodeId: string): Promise<ReceiptPosition> {
    const cached = this.#positions.get(nodeId);
    if (cached) return cached;
    await this.#ready;
    const rows = await this.#db.all("SELECT last_seq, totals FROM node_positions WHERE node_id = ?", [nodeId]);
    const pos = rows[0] ? { lastSeq: int(rows[0].last_seq), totals: JSON.parse(String(rows[0].totals)) as ReceiptTotals } : INITIAL_POSITION;
    this.#positions.set(nodeId, pos);
    return pos;
  }

  /**
   * Stores a countersigned receipt and the node's new position; when the job has a
   * reservation, settles it in the same transaction: the consumer pays the receipt's cost
   * after discount (at most the reservation), the provider's account is credited 90 % of
   * the cost, the protocol keeps the rest, and the remainder of the reservation returns.
   */
  async record(entry: StoredReceipt): Promise<SettledJob | undefined> {
    await this.#ready;
    // PostgreSQL: the receipts of one turn of the event loop are recorded and settled in one set-based transaction.
    return this.#records ? this.#records.push(entry) : this.#recordOne(entry);
  }

  /** The cached position of a node moves forward only. */
  #advance(r: Receipt): void {
    if ((this.#positions.get(r.nodeId)?.lastSeq ?? -1) < r.seq) this.#positions.set(r.nodeId, { lastSeq: r.seq, totals: r.totals });
  }

  /** One receipt in its own transaction. */
  async #recordOne(entry: StoredReceipt): Promise<SettledJob | undefined> {
    const r = entry.receipt;
    const now = Date.now();
    const settledJob = await this.#db.transaction(async (tx) => {
      let settled: SettledJob | undefined;
      const receiptCost = parseAmount(r.cost);
      if (entry.reservationId !== undefined) {
        // Claim the reservation first: the conditional update waits for a concurrent claim and
        // then sees its result, so a reservation is settled or released exactly once.
        const claimed = await tx.run("UPDATE reservations SET state = 'settled', job_id = ?, closed_at = ? WHERE id = ? AND state = 'open'", [r.jobId, now, entry.reservationId]);
        const res = claimed === 1 ? (await tx.all("SELECT account_id, amount, discount_bps FROM reservations WHERE id = ?", [entry.reservationId]))[0] : undefined;
        if (res) {
          const consumer = String(res.account_id);
          const reserved = big(res.amount);
          const discountBps = int(res.discount_bps);
          const s = settle(receiptCost, reserved, discountBps);
          const terms = entry.terms ?? PLAIN_TERMS;
          // The pool's row is locked first (PostgreSQL), so concurrent bounties never overdraw it.
          const poolRows = await tx.all(`SELECT balance FROM ledger_accounts WHERE id = ?${this.#db.dialect === "postgres" ? " FOR UPDATE" : ""}`, [BOUNTY_POOL]);
          const pay = payout(s.provider, s.protocol, poolRows[0] ? big(poolRows[0].balance) : 0n, terms);
          await this.#post(
            tx,
            {
              idempotencyKey: `settle:${entry.reservationId}`,
              kind: "settle",
              accountId: consumer,
              ref: entry.reservationId,
              memo: {
                jobId: r.jobId,
                cost: r.cost,
                charge: s.charge.toString(),
                discountBps,
                provider: entry.providerAccountId,
                providerShare: s.provider.toString(),
                ...(pay.bounty > 0n ? { bounty: pay.bounty.toString() } : {}),
                ...(pay.reduction > 0n ? { reduction: pay.reduction.toString() } : {}),
              },
              legs: [
                { account: holdAccount(consumer), amount: -reserved },
                { account: userAccount(consumer), amount: s.refund },
                { account: userAccount(entry.providerAccountId), amount: pay.provider },
                { account: PLATFORM, amount: s.protocol + pay.reduction - pay.poolFunding },
                { account: BOUNTY_POOL, amount: pay.poolFunding - pay.bounty },
              ],
            },
            now,
          );
          settled = { ...s, provider: pay.provider, bounty: pay.bounty, reduction: pay.reduction, reservationId: entry.reservationId, discountBps };
          await tx.run("UPDATE reservations SET charged = ? WHERE id = ?", [s.charge, entry.reservationId]);
        }
      }
      await tx.run(
        "INSERT INTO receipts (job_id, node_id, seq, consumer_account_id, provider_account_id, cost, body, created_at, reservation_id, provider_share, payout_bounty, payout_reduction) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
          r.jobId,
          r.nodeId,
          r.seq,
          entry.consumerAccountId ?? null,
          entry.providerAccountId,
          r.cost,
          JSON.stringify(r),
          now,
          settled ? entry.reservationId! : null,
          settled ? settled.provider : 0n,
          settled ? settled.bounty : 0n,
          settled ? settled.reduction : 0n,
        ],
      );
      await tx.run("INSERT INTO node_positions (node_id, last_seq, totals) VALUES (?, ?, ?) ON CONFLICT (node_id) DO UPDATE SET last_seq = excluded.last_seq, totals = excluded.totals WHERE node_positions.last_seq < excluded.last_seq", [
        r.nodeId,
        r.seq,
        JSON.stringify(r.totals),
      ]);
      return settled;
    });
    this.#advance(r);
    return settledJob;
  }

  async get(jobId: string): Promise<StoredReceipt | undefined> {
    await this.#ready;
    const rows = await this.#db.all("SELECT * FROM receipts WHERE job_id = ?", [jobId]);
    const r = rows[0];
    if (!r) return undefined;
    const out: StoredReceipt = { receipt: JSON.parse(String(r.body)) as Receipt, providerAccountId: String(r.provider_account_id) };
    if (r.consumer_account_id !== null) out.consumerAccountId = String(r.consumer_account_id);
    if (r.reservation_id !== null) out.reservationId = String(r.reservation_id);
    out.payout = {
      credited: r.provider_share === null ? 0n : big(r.provider_share),
      bounty: r.payout_bounty === null ? 0n : big(r.payout_bounty),
      reduction: r.payout_reduction === null ? 0n : big(r.payout_reduction),
    };
    return out;
  }

  async recordGap(nodeId: string, from: number, to: number): Promise<void> {
    await this.#ready;
    await this.#db.run("INSERT INTO receipt_gaps (node_id, from_seq, to_seq, noted_at) VALUES (?, ?, ?, ?) ON CONFLICT (node_id, from_seq) DO NOTHING", [nodeId, from, to, Date.now()]);
  }

  async gaps(nodeId: string): Promise<{ from: number; to: number }[]> {
    await this.#ready;
    return (await this.#db.all("SELECT from_seq, to_seq FROM receipt_gaps WHERE node_id = ? ORDER BY from_seq", [nodeId])).map((r) => ({ from: int(r.from_seq), to: int(r.to_seq) }));
  }

  // -- the ledger -------------------------------------------------------------

  /**
   * Reserves `amount` of an account's balance for one request, atomically: with several
   * requests at once, the total reserved never exceeds the balance.
   */
  async reserve(accountId: string, amount: bigint): Promise<ReserveResult> {
    await this.#ready;
    // Other hubs treat a holder without a heartbeat row as dead: be known before holding anything.
    if (!this.#alive) await this.heartbeat();
    if (amount < 0n) throw new RangeError("a reservation is non-negative");
    // Ledger columns hold signed 64-bit integers: no balance covers more, so refuse it as any other shortfall.
    if (amount > MAX_LEDGER_AMOUNT) return { ok: false, available: await this.available(accountId) };
    const ask: ReserveAsk = { reservationId: ledgerId("res"), accountId, amount };
    // PostgreSQL: the reservations of one turn of the event loop go in one set-based transaction.
    return this.#reserves ? this.#reserves.push(ask) : this.#reserveOne(ask);
  }

  /** One reservation in its own transaction. */
  async #reserveOne(ask: ReserveAsk): Promise<ReserveResult> {
    const { reservationId: id, accountId, amount } = ask;
    const now = Date.now();
    try {
      const discountBps = await this.#db.transaction(async (tx) => {
        const bps = discountFor(await this.#prepaid(tx, accountId, true), this.#tiers);
        await this.#hold(tx, id, accountId, amount, bps, now);
        return bps;
      });
      return { ok: true, reservationId: id, discountBps };
    } catch (error) {
      if (error instanceof InsufficientFunds) return { ok: false, available: await this.available(accountId) };
      throw error;
    }
  }

  /**
   * Reserves several amounts of one account's balance in one transaction (a batch): all
   * or none. Each reservation carries the larger of the account's prepaid discount and
   * `extraDiscountBps` (discounts do not stack: the platform never pays more than its fee).
   */
  async reserveMany(accountId: string, amounts: readonly bigint[], extraDiscountBps: number): Promise<ReserveManyResult> {
    await this.#ready;
    if (!this.#alive) await this.heartbeat();
    if (amounts.some((a) => a < 0n)) throw new RangeError("a reservation is non-negative");
    if (amounts.reduce((a, b) => a + b, 0n) > MAX_LEDGER_AMOUNT) return { ok: false, available: await this.available(accountId) };
    if (!Number.isInteger(extraDiscountBps) || extraDiscountBps < 0 || extraDiscountBps > 10_000) throw new RangeError("extraDiscountBps is within 0..10000");
    const ids = amounts.map(() => ledgerId("res"));
    const now = Date.now();
    try {
      const discountBps = await this.#db.transaction(async (tx) => {
        const bps = Math.max(discountFor(await this.#prepaid(tx, accountId, true), this.#tiers), extraDiscountBps);
        for (let i = 0; i < ids.length; i++) await this.#hold(tx, ids[i]!, accountId, amounts[i]!, bps, now);
        return bps;
      });
      return { ok: true, reservationIds: ids, discountBps };
    } catch (error) {
      if (error instanceof InsufficientFunds) return { ok: false, available: await this.available(accountId) };
      throw error;
    }
  }

  /** Records one open reservation and moves its amount from the account to its hold (a guarded posting: throws InsufficientFunds). */
  async #hold(tx: SqlExecutor, id: string, accountId: string, amount: bigint, discountBps: number, now: number): Promise<void> {
    await tx.run("INSERT INTO reservations (id, account_id, amount, discount_bps, holder, state, created_at) VALUES (?, ?, ?, ?, ?, 'open', ?)", [id, accountId, amount, discountBps, this.processId, now]);
    await this.#post(
      tx,
      {
        idempotencyKey: `reserve:${id}`,
        kind: "reserve",
        accountId,
        ref: id,
        legs: [
          { account: userAccount(accountId), amount: -amount },
          { account: holdAccount(accountId), amount },
        ],
      },
      now,
    );
  }

  /** Returns a reservation's money to the account (the request failed or was not billed). Idempotent. */
  async release(reservationId: string, reason: string): Promise<boolean> {
    await this.#ready;
    return this.#db.transaction((tx) => this.#release(tx, reservationId, reason));
  }

  async #release(tx: SqlExecutor, reservationId: string, reason: string): Promise<boolean> {
    // Claim first (see `record`): only one of concurrent settle / release calls moves the money.
    const claimed = await tx.run("UPDATE reservations SET state = 'released', closed_at = ? WHERE id = ? AND state = 'open'", [Date.now(), reservationId]);
    if (claimed !== 1) return false;
    const res = (await tx.all("SELECT account_id, amount FROM reservations WHERE id = ?", [reservationId]))[0]!;
    const accountId = String(res.account_id);
    const amount = big(res.amount);
    await this.#post(tx, {
      idempotencyKey: `release:${reservationId}`,
      kind: "release",
      accountId,
      ref: reservationId,
      memo: { reason },
      legs: [
        { account: holdAccount(accountId), amount: -amount },
        { account: userAccount(accountId), amount },
      ],
    });
    return true;
  }

  /**
   * Marks this process alive and releases the open reservations of hub processes that
   * died. On SQLite (one hub per file) that is every reservation another process holds;
   * on PostgreSQL, those of processes not seen for a minute (`all` forces the former).
   * Returns the reservations released.
   */
  async reconcile(options: { all?: boolean; now?: number } = {}): Promise<string[]> {
    await this.#ready;
    const now = options.now ?? Date.now();
    await this.heartbeat(now);
    const everyOther = options.all ?? this.#db.dialect === "sqlite";
    const rows = everyOther
      ? await this.#db.all("SELECT id FROM reservations WHERE state = 'open' AND holder <> ?", [this.processId])
      : await this.#db.all(
          "SELECT r.id FROM reservations r LEFT JOIN hub_processes p ON p.id = r.holder WHERE r.state = 'open' AND r.holder <> ? AND (p.id IS NULL OR p.seen_at < ?)",
          [this.processId, now - PROCESS_STALE_MS],
        );
    const released: string[] = [];
    for (const r of rows) {
      const id = String(r.id);
      if (await this.release(id, "the hub process holding it stopped")) released.push(id);
    }
    return released;
  }

  /** Records that this process is alive (hubs call it periodically). */
  async heartbeat(now = Date.now()): Promise<void> {
    await this.#ready;
    await this.#db.run("INSERT INTO hub_processes (id, started_at, seen_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at", [this.processId, now, now]);
    this.#alive = true;
  }

  /** Spendable balance of an account. */
  async available(accountId: string): Promise<bigint> {
    await this.#ready;
    const rows = await this.#db.all("SELECT balance FROM ledger_accounts WHERE id = ?", [userAccount(accountId)]);
    return rows[0] ? big(rows[0].balance) : 0n;
  }

  /**
   * Deposited money not yet spent or refunded: deposits less refunds (the account's
   * `funded` column), at most what the account holds. With `includeHeld`, money reserved
   * by requests in flight counts as held (for the discount tier, which must not drop
   * while a request runs); refunds use the spendable part only. One primary-key read.
   */
  async #prepaid(tx: SqlExecutor, accountId: string, includeHeld = false): Promise<bigint> {
    const row = (
      await tx.all("SELECT a.balance, a.funded, h.balance AS held FROM ledger_accounts a LEFT JOIN ledger_accounts h ON h.id = ? WHERE a.id = ?", [
        holdAccount(accountId),
        userAccount(accountId),
      ])
    )[0];
    if (!row) return 0n;
    const funded = big(row.funded);
    if (funded <= 0n) return 0n;
    const holds = big(row.balance) + (includeHeld && row.held !== null ? big(row.held) : 0n);
    return holds < funded ? holds : funded;
  }

  /**
   * Credits money that arrived from outside (an operator's credit now; x402 and on-chain
   * deposits later) to an account's prepaid balance. `reference` makes it idempotent.
   */
  async deposit(accountId: string, amount: bigint, reference: string, memo: Record<string, unknown> = {}): Promise<boolean> {
    await this.#ready;
    if (amount <= 0n) throw new RangeError("a deposit is positive");
    return this.#db.transaction(async (tx) => {
      await this.#requireAccount(tx, accountId);
      const posted = await this.#post(tx, {
        idempotencyKey: `deposit:${reference}`,
        kind: "deposit",
        accountId,
        ref: reference,
        memo,
        legs: [
          { account: EXTERNAL, amount: -amount },
          { account: userAccount(accountId), amount },
        ],
      });
      if (posted) await tx.run("UPDATE ledger_accounts SET funded = funded + ? WHERE id = ?", [amount, userAccount(accountId)]);
      return posted;
    });
  }

  /** Refunds the unused prepaid balance (at most what was deposited and not refunded) to the depositor. Returns the amount. */
  async refund(accountId: string, reference: string): Promise<bigint> {
    await this.#ready;
    return this.#db.transaction(async (tx) => {
      // Refunds of one account run one at a time (PostgreSQL: the row lock; SQLite: one writer).
      if (this.#db.dialect === "postgres") await tx.all("SELECT id FROM ledger_accounts WHERE id = ? FOR UPDATE", [userAccount(accountId)]);
      // A retry of a refund already made answers with the amount it moved.
      const done = await tx.all(
        "SELECT e.amount FROM ledger_transactions t JOIN ledger_entries e ON e.tx_id = t.id AND e.account_id = ? WHERE t.idempotency_key = ? AND t.account_id = ?",
        [EXTERNAL, `refund:${reference}`, accountId],
      );
      if (done[0]) return big(done[0].amount);
      // Money credited before its x402 settlement is not yet money: no refund until it settles.
      const pending = await tx.all("SELECT id FROM x402_payments WHERE account_id = ? AND credited = 1 AND state IN ('locked', 'unknown') LIMIT 1", [accountId]);
      if (pending[0]) throw new RefundPending(accountId);
      // A wallet that owes (a payment that did not settle) repays first: no money leaves while it owes.
      await repayDebtsIn(tx, this.#db.dialect, accountId);
      const amount = await this.#prepaid(tx, accountId);
      if (amount === 0n) return 0n;
      const posted = await this.#post(tx, {
        idempotencyKey: `refund:${reference}`,
        kind: "refund",
        accountId,
        ref: reference,
        legs: [
          { account: userAccount(accountId), amount: -amount },
          { account: EXTERNAL, amount },
        ],
      });
      if (!posted) return 0n;
      if ((await tx.run("UPDATE ledger_accounts SET funded = funded - ? WHERE id = ? AND funded >= ?", [amount, userAccount(accountId), amount])) !== 1) {
        throw new Error(`refund of ${amount} exceeds the prepaid funding of ${accountId}`);
      }
      return amount;
    });
  }

  /** Moves platform money into the bounty pool (an operator decision). */
  async fundBountyPool(amount: bigint, reference: string): Promise<boolean> {
    await this.#ready;
    if (amount <= 0n) throw new RangeError("funding is positive");
    return this.#db.transaction((tx) =>
      this.#post(tx, {
        idempotencyKey: `bounty_fund:${reference}`,
        kind: "bounty_fund",
        ref: reference,
        legs: [
          { account: PLATFORM, amount: -amount },
          { account: BOUNTY_POOL, amount },
        ],
      }),
    );
  }

  /** Balance, held money, prepaid part and discount, spend and earnings of an account. */
  async summary(accountId: string): Promise<AccountSummary> {
    await this.#ready;
    const user = userAccount(accountId);
    const [balance, held, prepaid, sums, count] = await Promise.all([
      this.available(accountId),
      this.#db.all("SELECT balance FROM ledger_accounts WHERE id = ?", [holdAccount(accountId)]).then((r) => (r[0] ? big(r[0].balance) : 0n)),
      this.#prepaid(this.#db, accountId),
      this.#db.all(
        `SELECT t.kind, COALESCE(SUM(e.amount), 0) AS s FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.tx_id
          WHERE e.account_id = ? GROUP BY t.kind`,
        [user],
      ),
      this.#db.all("SELECT COUNT(*) AS n FROM reservations WHERE account_id = ? AND state = 'settled'", [accountId]),
    ]);
    const byKind = new Map(sums.map((r) => [String(r.kind), big(r.s)]));
    const spent = await this.#db.all("SELECT COALESCE(SUM(charged), 0) AS s FROM reservations WHERE account_id = ? AND state = 'settled'", [accountId]);
    const earnedRows = await this.#db.all("SELECT COALESCE(SUM(provider_share), 0) AS s FROM receipts WHERE provider_account_id = ?", [accountId]);
    return {
      accountId,
      balance,
      held,
      prepaid,
      discountBps: discountFor(await this.#prepaid(this.#db, accountId, true), this.#tiers),
      spent: big(spent[0]!.s),
      earned: big(earnedRows[0]!.s),
      deposited: byKind.get("deposit") ?? 0n,
      refunded: -(byKind.get("refund") ?? 0n),
      requests: int(count[0]!.n),
    };
  }

  /** The discount (basis points) the account's requests get now. */
  async discountOf(accountId: string): Promise<number> {
    await this.#ready;
    return discountFor(await this.#prepaid(this.#db, accountId, true), this.#tiers);
  }

  /** Top provider earners (`earned`: provider shares credited) or consumer spenders (`spent`: charges). */
  async top(by: "earned" | "spent", limit = 10): Promise<TopEntry[]> {
    await this.#ready;
    const n = Math.max(1, Math.min(limit, 1000));
    const rows =
      by === "earned"
        ? await this.#db.all(
            "SELECT provider_account_id AS account_id, SUM(provider_share) AS amount, COUNT(*) AS jobs FROM receipts GROUP BY provider_account_id ORDER BY SUM(provider_share) DESC, provider_account_id LIMIT ?",
            [n],
          )
        : await this.#db.all(
            "SELECT account_id, SUM(charged) AS amount, COUNT(*) AS jobs FROM reservations WHERE state = 'settled' GROUP BY account_id ORDER BY SUM(charged) DESC, account_id LIMIT ?",
            [n],
          );
    return rows.map((r) => ({ accountId: String(r.account_id), amount: r.amount === null ? 0n : big(r.amount), jobs: int(r.jobs) }));
  }

  /** An account's ledger history, newest first. */
  async history(accountId: string, limit = 50, before?: { createdAt: number; txId: string }): Promise<HistoryEntry[]> {
    await this.#ready;
    return history(this.#db, accountId, Math.max(1, Math.min(limit, 500)), before);
  }

  /** Balance of any ledger account (`platform`, `bounty_pool`, `external`, `user:…`, `hold:…`). */
  async ledgerBalance(account: string): Promise<bigint> {
    await this.#ready;
    const rows = await this.#db.all("SELECT balance FROM ledger_accounts WHERE id = ?", [account]);
    return rows[0] ? big(rows[0].balance) : 0n;
  }

  // -- statements and disputes -------------------------------------------------

  /**
   * Issues a node's next statement. It covers exactly the node's receipts no earlier
   * statement covered (each receipt is marked with the statement that covers it), so no
   * receipt is ever counted twice or left out, whatever the clocks say.
   */
  async issueStatement(nodeId: string, accountId: string, sign: (body: Omit<Statement, "sig" | "hubId">) => Statement, now = Date.now(), force = false): Promise<Statement | undefined> {
    await this.#ready;
    return this.#db.transaction(async (tx) => {
      // One issuance per node at a time, and no receipt of the node lands meanwhile (PostgreSQL: the position's row lock).
      if (this.#db.dialect === "postgres") await tx.all("SELECT node_id FROM node_positions WHERE node_id = ? FOR UPDATE", [nodeId]);
      const prev = (await tx.all("SELECT period_to, balance FROM statements WHERE node_id = ? ORDER BY period_to DESC, issued_at DESC LIMIT 1", [nodeId]))[0];
      const statementId = ledgerId("stmt");
      // Mark first and count what was marked: exactly the receipts this statement covers.
      const marked = await tx.all("UPDATE receipts SET statement_id = ? WHERE node_id = ? AND statement_id IS NULL RETURNING seq, provider_share, created_at", [statementId, nodeId]);
      const covered = marked.length;
      if (covered === 0 && !force) return undefined;
      let firstSeq = 0;
      let earned = 0n;
      let firstAt = now;
      for (const m of marked) {
        const seq = int(m.seq);
        if (firstSeq === 0 || seq < firstSeq) firstSeq = seq;
        earned += m.provider_share === null ? 0n : big(m.provider_share);
        firstAt = Math.min(firstAt, int(m.created_at));
      }
      const pos = (await tx.all("SELECT last_seq, totals FROM node_positions WHERE node_id = ?", [nodeId]))[0];
      const lastSeq = pos ? int(pos.last_seq) : 0;
      const held = covered === 0 ? 0 : int((await tx.all("SELECT COUNT(*) AS n FROM receipts WHERE node_id = ? AND seq >= ? AND seq <= ?", [nodeId, firstSeq, lastSeq]))[0]!.n);
      const from = prev ? int(prev.period_to) : firstAt;
      const to = Math.max(now, from);
      const body = statementBody(
        statementId,
        nodeId,
        accountId,
        {
          from,
          to,
          lastSeq,
          totals: pos ? (JSON.parse(String(pos.totals)) as ReceiptTotals) : INITIAL_POSITION.totals,
          firstSeq,
          count: held,
          earned,
          paid: 0n,
          previousBalance: prev ? big(prev.balance) : 0n,
        },
        to,
      );
      const statement = sign(body);
      await tx.run(
        "INSERT INTO statements (id, node_id, account_id, period_from, period_to, first_seq, last_seq, receipt_count, earned, paid, balance, body, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [statementId, nodeId, accountId, from, to, body.receipts.firstSeq, lastSeq, held, BigInt(body.earned), 0n, BigInt(body.balance), JSON.stringify(statement), to],
      );
      return statement;
    });
  }

  async statements(nodeId: string): Promise<Statement[]> {
    await this.#ready;
    return (await this.#db.all("SELECT body FROM statements WHERE node_id = ? ORDER BY period_to, issued_at", [nodeId])).map((r) => JSON.parse(String(r.body)) as Statement);
  }

  async recordDispute(nodeId: string, accountId: string, dispute: Dispute): Promise<void> {
    await this.#ready;
    await this.#db.run("INSERT INTO disputes (id, node_id, account_id, kind, statement_id, body, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)", [
      ledgerId("disp"),
      nodeId,
      accountId,
      dispute.kind,
      dispute.statementId ?? null,
      JSON.stringify(dispute),
      Date.now(),
    ]);
  }

  async disputes(limit = 100): Promise<Array<{ nodeId: string; accountId: string; receivedAt: number; dispute: Dispute }>> {
    await this.#ready;
    const rows = await this.#db.all("SELECT node_id, account_id, body, received_at FROM disputes ORDER BY received_at DESC, id DESC LIMIT ?", [Math.max(1, Math.min(limit, 1000))]);
    return rows.map((r) => ({ nodeId: String(r.node_id), accountId: String(r.account_id), receivedAt: int(r.received_at), dispute: JSON.parse(String(r.body)) as Dispute }));
  }

  /** Checks every invariant of the books ({@link verifyLedger}). */
  async verify(): Promise<LedgerProblem[]> {
    await this.#ready;
    return verifyLedger(this.#db);
  }

  /** Closes the database. */
  async close(): Promise<void> {
    await this.#ready.catch(() => {});
    await this.#db.close();
  }
}
