/**
 * The ledger of a `SqlStore`: reservations of requests in flight and their release
 * (with the reconciliation of reservations held by dead hub processes), deposits,
 * refunds, bounty funding, and the account API's reads. Every movement is a posting from
 * `ledger/postings.ts`; on PostgreSQL the reservations of one event-loop turn go in one
 * set-based transaction (`pg-batch.ts`).
 */
import {
  EXTERNAL,
  history,
  ledgerId,
  post,
  userAccount,
  balanceOf,
  verifyLedger,
  type AccountSummary,
  type HistoryEntry,
  type LedgerBooks,
  type LedgerProblem,
  type Posting,
  type ReservationClosure,
  type ReserveManyResult,
  type ReserveKey,
  type ReserveRefusal,
  type ReserveResult,
  type TopEntry,
} from "../ledger/ledger.js";
import { InsufficientFundsError, RefundPendingError } from "../ledger/errors.js";
import { bountyFundPosting, depositPosting, refundPosting, releasePosting, reservePosting } from "../ledger/postings.js";
import { discountFor, type DiscountTier } from "../ledger/policy.js";
import { requireAccount } from "./account-book.js";
import { accountSummary, discountIn, prepaidIn, topAccounts } from "./ledger-reports.js";
import { repayDebtsIn } from "./payment-book.js";
import { reserveBatch, type ReserveAsk } from "./pg-batch.js";
import { lostDatabase } from "./postgres-driver.js";
import { releaseUntilDone } from "../ledger/release-retry.js";
import { refundableWithoutCards, type RefundableCardDeposit } from "../cards/card-policy.js";
import { big, int, type SqlDriver, type SqlExecutor } from "./sql.js";
import { closeKeySpend, holdKeySpend, KeyBudgetError } from "./key-spend.js";
import { TurnBatcher } from "./turn-batcher.js";

/** The largest amount a ledger column holds (a signed 64-bit integer, about 9.2 trillion USD in atomic units). */
export const MAX_LEDGER_AMOUNT = 2n ** 63n - 1n;

/** A hub process silent this long is dead: its reservations are released (and its batches ended). */
export const PROCESS_STALE_MS = 60_000;

/** Options of {@link SqlLedgerBook}. */
export interface SqlLedgerBookOptions {
  /** Credited to every new account (reported only: the account book posts it). */
  signupCredits: bigint;
  /** The prepaid discount tiers in force. */
  discountTiers: readonly DiscountTier[];
}

/** Reservations, deposits, refunds and the account reads of a `SqlStore`. */
export class SqlLedgerBook implements LedgerBooks {
  readonly #db: SqlDriver;
  readonly #ready: Promise<void>;
  readonly #tiers: readonly DiscountTier[];
  readonly #signupCredits: bigint;
  /** This process, as the holder of the reservations it makes. */
  readonly processId = ledgerId("proc");
  /** Whether this process's heartbeat row exists. */
  #alive = false;
  /** PostgreSQL: reservations batched per turn of the event loop. */
  readonly #reserves: TurnBatcher<ReserveAsk, ReserveResult> | undefined;

  /** @param ready resolves once the store's migrations have run. */
  constructor(db: SqlDriver, ready: Promise<void>, options: SqlLedgerBookOptions) {
    this.#db = db;
    this.#ready = ready;
    this.#tiers = options.discountTiers;
    this.#signupCredits = options.signupCredits;
    if (db.dialect === "postgres") {
      this.#reserves = new TurnBatcher(
        (asks) => this.#db.transaction((tx) => reserveBatch(tx, asks, { tiers: this.#tiers, processId: this.processId, now: Date.now() })),
        (ask) => this.#reserveOne(ask),
        { oneByOne: (error) => !lostDatabase(error) },
      );
    }
  }

  /** The prepaid discount tiers in force. */
  get discountTiers(): readonly DiscountTier[] {
    return this.#tiers;
  }

  /** Credited to every new account (atomic units). */
  get signupCredits(): bigint {
    return this.#signupCredits;
  }

  /** Posts a transaction on this book's engine (see {@link post}). */
  #post(tx: SqlExecutor, p: Posting, now = Date.now()): Promise<boolean> {
    return post(tx, p, { now, dialect: this.#db.dialect });
  }

  /**
   * Reserves `amount` of an account's balance for one request, atomically: with several
   * requests at once, the total reserved never exceeds the balance.
   */
  async reserve(accountId: string, amount: bigint, key?: ReserveKey): Promise<ReserveResult> {
    await this.#ready;
    // Other hubs treat a holder without a heartbeat row as dead: be known before holding anything.
    if (!this.#alive) await this.heartbeat();
    if (amount < 0n) throw new RangeError("a reservation is non-negative");
    // Ledger columns hold signed 64-bit integers: no balance covers more, so refuse it as any other shortfall.
    if (amount > MAX_LEDGER_AMOUNT) return { ok: false, available: await this.available(accountId) };
    const ask: ReserveAsk = { reservationId: ledgerId("res"), accountId, amount, ...(key ? { key } : {}) };
    // PostgreSQL: the reservations of one turn of the event loop go in one set-based transaction.
    if (!this.#reserves) return this.#reserveOne(ask);
    return this.#reserves.push(ask).catch((error: unknown) => {
      // The connection may have dropped after the batch committed: the request is refused, so its
      // reservation (if it exists) is released once the database answers (a release of none moves nothing).
      if (lostDatabase(error)) void releaseUntilDone(this, ask.reservationId, "the request was refused: its outcome was unknown", () => {});
      throw error;
    });
  }

  /** One reservation in its own transaction. */
  async #reserveOne(ask: ReserveAsk): Promise<ReserveResult> {
    const { reservationId, accountId, amount } = ask;
    // Not synced before the request goes on (SqlDriver's `durable: false`): a reservation a
    // power cut undid was never settled either, and restart releases every open one (SRP-BIL-015).
    const result = await this.#holdAll(accountId, [reservationId], [amount], 0, ask.key, false);
    return result.ok ? { ok: true, reservationId, discountBps: result.discountBps } : result;
  }

  /**
   * Reserves several amounts of one account's balance in one transaction (a batch): all
   * or none. Each reservation carries the larger of the account's prepaid discount and
   * `extraDiscountBps` (discounts do not stack: the platform never pays more than its fee).
   */
  async reserveMany(accountId: string, amounts: readonly bigint[], extraDiscountBps: number, key?: ReserveKey): Promise<ReserveManyResult> {
    await this.#ready;
    if (!this.#alive) await this.heartbeat();
    if (amounts.some((a) => a < 0n)) throw new RangeError("a reservation is non-negative");
    if (amounts.reduce((a, b) => a + b, 0n) > MAX_LEDGER_AMOUNT) return { ok: false, available: await this.available(accountId) };
    if (!Number.isInteger(extraDiscountBps) || extraDiscountBps < 0 || extraDiscountBps > 10_000)
      throw new RangeError("extraDiscountBps is within 0..10000");
    const ids = amounts.map(() => ledgerId("res"));
    const result = await this.#holdAll(accountId, ids, amounts, extraDiscountBps, key);
    return result.ok ? { ok: true, reservationIds: ids, discountBps: result.discountBps } : result;
  }

  /**
   * Holds each amount under its reservation id in one transaction, at the account's discount
   * (at least `minDiscountBps`), counted against `key`'s spending; all or none.
   */
  async #holdAll(
    accountId: string,
    ids: readonly string[],
    amounts: readonly bigint[],
    minDiscountBps: number,
    key: ReserveKey | undefined,
    durable = true,
  ): Promise<{ ok: true; discountBps: number } | ReserveRefusal> {
    const now = Date.now();
    try {
      const discountBps = await this.#db.transaction(
        async (tx) => {
          const bps = Math.max(discountFor(await prepaidIn(tx, accountId, true), this.#tiers), minDiscountBps);
          for (let i = 0; i < ids.length; i++) await this.#hold(tx, ids[i]!, accountId, amounts[i]!, bps, now, key?.keyId);
          // The key's budget, checked against its rows as this transaction left them (SRP-CON-085).
          if (key)
            await holdKeySpend(
              tx,
              key,
              amounts.reduce((a, b) => a + b, 0n),
              now,
              amounts.length,
            );
          return bps;
        },
        { durable },
      );
      return { ok: true, discountBps };
    } catch (error) {
      if (error instanceof InsufficientFundsError) return { ok: false, available: await this.available(accountId) };
      if (error instanceof KeyBudgetError)
        return {
          ok: false,
          available: await this.available(accountId),
          keyBudget: { period: error.period, cap: error.cap, used: error.used },
        };
      throw error;
    }
  }

  /** Records one open reservation and moves its amount from the account to its hold (a guarded posting: throws InsufficientFundsError). */
  async #hold(
    tx: SqlExecutor,
    id: string,
    accountId: string,
    amount: bigint,
    discountBps: number,
    now: number,
    keyId: string | undefined,
  ): Promise<void> {
    await tx.run(
      "INSERT INTO reservations (id, account_id, amount, discount_bps, holder, state, created_at, key_id) VALUES (?, ?, ?, ?, ?, 'open', ?, ?)",
      [id, accountId, amount, discountBps, this.processId, now, keyId ?? null],
    );
    await this.#post(tx, reservePosting(id, accountId, amount), now);
  }

  /** Returns a reservation's money to the account (the request failed or was not billed). Idempotent. */
  /** How a reservation was closed, or that it is open (`HubLedger.closure`). */
  async closure(reservationId: string): Promise<ReservationClosure | undefined> {
    const row = (await this.#db.all("SELECT state, job_id, charged FROM reservations WHERE id = ?", [reservationId]))[0];
    if (!row) return undefined;
    if (row.state === "settled" && row.job_id !== null)
      return { state: "settled", jobId: String(row.job_id), charged: big(row.charged ?? 0) };
    return row.state === "open" ? { state: "open" } : { state: "released" };
  }

  async release(reservationId: string, reason: string): Promise<boolean> {
    await this.#ready;
    // Not synced before it is reported, as a reservation: a release a power cut undid is done again at restart (SRP-BIL-015).
    const durable = false;
    return this.#db.transaction(
      async (tx) => {
        // Claim first (see `record`): only one of concurrent settle / release calls moves the money.
        const res = (
          await tx.all(
            "UPDATE reservations SET state = 'released', closed_at = ? WHERE id = ? AND state = 'open' RETURNING account_id, amount, key_id, created_at",
            [Date.now(), reservationId],
          )
        )[0];
        if (!res) return false;
        await this.#post(tx, releasePosting(reservationId, String(res.account_id), big(res.amount), reason));
        if (res.key_id !== null) await closeKeySpend(tx, String(res.key_id), int(res.created_at), big(res.amount), 0n);
        return true;
      },
      { durable },
    );
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
    await this.#db.run(
      "INSERT INTO hub_processes (id, started_at, seen_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
      [this.processId, now, now],
    );
    this.#alive = true;
  }

  /** Spendable balance of an account. */
  async available(accountId: string): Promise<bigint> {
    await this.#ready;
    return balanceOf(this.#db, userAccount(accountId));
  }

  /**
   * Credits money that arrived from outside (an operator's credit now; x402 and on-chain
   * deposits later) to an account's prepaid balance. `reference` makes it idempotent.
   */
  async deposit(accountId: string, amount: bigint, reference: string, memo: Record<string, unknown> = {}): Promise<boolean> {
    await this.#ready;
    if (amount <= 0n) throw new RangeError("a deposit is positive");
    return this.#db.transaction((tx) => depositIn(tx, this.#db.dialect, accountId, amount, reference, memo));
  }

  /**
   * Refunds the unused prepaid balance (at most what was deposited and not refunded) to the
   * depositor, less the card money still refundable to the cards (that goes back only through
   * the card processor, `POST /v1/account/refund`). Returns the amount.
   */
  async refund(accountId: string, reference: string, memo?: Record<string, unknown>): Promise<bigint> {
    await this.#ready;
    return this.#db.transaction(async (tx) => (await refundIn(tx, this.#db.dialect, accountId, reference, undefined, memo)).amount);
  }

  /** Moves platform money into the bounty pool (an operator decision). */
  async fundBountyPool(amount: bigint, reference: string): Promise<boolean> {
    await this.#ready;
    if (amount <= 0n) throw new RangeError("funding is positive");
    return this.#db.transaction((tx) => this.#post(tx, bountyFundPosting(amount, reference)));
  }

  /** Balance, held money, prepaid part and discount, spend and earnings of an account. */
  async summary(accountId: string): Promise<AccountSummary> {
    await this.#ready;
    return accountSummary(this.#db, accountId, this.#tiers);
  }

  /** The discount (basis points) the account's requests get now. */
  async discountOf(accountId: string): Promise<number> {
    await this.#ready;
    return discountIn(this.#db, accountId, this.#tiers);
  }

  /** Top provider earners (`earned`: provider shares credited) or consumer spenders (`spent`: charges). */
  async top(by: "earned" | "spent", limit = 10): Promise<TopEntry[]> {
    await this.#ready;
    return topAccounts(this.#db, by, limit);
  }

  /** An account's ledger history, newest first. */
  async history(accountId: string, limit = 50, before?: { createdAt: number; txId: string }): Promise<HistoryEntry[]> {
    await this.#ready;
    return history(this.#db, accountId, Math.max(1, Math.min(limit, 500)), before);
  }

  /** Balance of any ledger account (`platform`, `bounty_pool`, `external`, `user:…`, `hold:…`). */
  async ledgerBalance(account: string): Promise<bigint> {
    await this.#ready;
    return balanceOf(this.#db, account);
  }

  /** Checks every invariant of the books ({@link verifyLedger}). */
  async verify(): Promise<LedgerProblem[]> {
    await this.#ready;
    return verifyLedger(this.#db);
  }
}

/**
 * Credits money that arrived from outside to an account's prepaid balance, inside the
 * caller's transaction (see {@link SqlLedgerBook.deposit}). Returns false when `reference`
 * was credited already (nothing moves).
 */
export async function depositIn(
  tx: SqlExecutor,
  dialect: "sqlite" | "postgres",
  accountId: string,
  amount: bigint,
  reference: string,
  memo: Record<string, unknown> = {},
): Promise<boolean> {
  if (amount <= 0n) throw new RangeError("a deposit is positive");
  await requireAccount(tx, accountId);
  const posted = await post(tx, depositPosting(accountId, amount, reference, memo), { dialect });
  if (posted) await tx.run("UPDATE ledger_accounts SET funded = funded + ? WHERE id = ?", [amount, userAccount(accountId)]);
  return posted;
}

/**
 * The card payments of an account that can still take refunds (credited, less what was
 * refunded from them), newest first. Read it under the account's `ledger_accounts` row lock
 * ({@link lockAccountIn}) so that no refund moves it meanwhile.
 */
export async function refundableCardDepositsIn(tx: SqlExecutor, accountId: string): Promise<RefundableCardDeposit[]> {
  const rows = await tx.all(
    "SELECT id, amount, refunded FROM card_deposits WHERE account_id = ? AND state = 'credited' AND refunded < amount ORDER BY credited_at DESC, id DESC",
    [accountId],
  );
  return rows.map((r) => ({ id: String(r.id), open: big(r.amount) - big(r.refunded) }));
}

/** Takes the account's `ledger_accounts` row lock (PostgreSQL; SQLite has one writer): refunds and card refund failures of one account run one at a time. */
export async function lockAccountIn(tx: SqlExecutor, dialect: "sqlite" | "postgres", accountId: string): Promise<void> {
  if (dialect === "postgres") await tx.all("SELECT id FROM ledger_accounts WHERE id = ? FOR UPDATE", [userAccount(accountId)]);
}

/**
 * Refunds the unused prepaid balance inside the caller's transaction (see
 * {@link SqlLedgerBook.refund}): `limit` turns the refundable amount and the card money still
 * refundable to cards (read under the same lock) into the amount refunded (never more); by
 * default the card money stays ({@link refundableWithoutCards}); `memo` goes on the refund's
 * posting. `repeated`: `reference` was
 * refunded before, and `amount` is what that refund moved.
 */
export async function refundIn(
  tx: SqlExecutor,
  dialect: "sqlite" | "postgres",
  accountId: string,
  reference: string,
  limit: (prepaid: bigint, cardOpen: bigint) => bigint = refundableWithoutCards,
  memo?: Record<string, unknown>,
): Promise<{ amount: bigint; repeated: boolean }> {
  // Refunds of one account run one at a time (PostgreSQL: the row lock; SQLite: one writer).
  await lockAccountIn(tx, dialect, accountId);
  // A retry of a refund already made answers with the amount it moved.
  const done = await tx.all(
    "SELECT e.amount FROM ledger_transactions t JOIN ledger_entries e ON e.tx_id = t.id AND e.account_id = ? WHERE t.idempotency_key = ? AND t.account_id = ?",
    [EXTERNAL, `refund:${reference}`, accountId],
  );
  if (done[0]) return { amount: big(done[0].amount), repeated: true };
  // Money credited before its x402 settlement is not yet money: no refund until it settles.
  const pending = await tx.all(
    "SELECT id FROM x402_payments WHERE account_id = ? AND credited = 1 AND state IN ('locked', 'unknown') LIMIT 1",
    [accountId],
  );
  if (pending[0]) throw new RefundPendingError(accountId);
  // A wallet that owes (a payment that did not settle) repays first: no money leaves while it owes.
  await repayDebtsIn(tx, dialect, accountId);
  const prepaid = await prepaidIn(tx, accountId);
  const cardOpen = (await refundableCardDepositsIn(tx, accountId)).reduce((sum, d) => sum + d.open, 0n);
  const amount = limit(prepaid, cardOpen);
  if (amount > prepaid || amount < 0n) throw new RangeError(`a refund of ${amount} is outside the prepaid ${prepaid}`);
  if (amount === 0n) return { amount: 0n, repeated: false };
  if (!(await post(tx, refundPosting(accountId, amount, reference, memo), { dialect }))) return { amount: 0n, repeated: false };
  if (
    (await tx.run("UPDATE ledger_accounts SET funded = funded - ? WHERE id = ? AND funded >= ?", [
      amount,
      userAccount(accountId),
      amount,
    ])) !== 1
  ) {
    throw new Error(`refund of ${amount} exceeds the prepaid funding of ${accountId}`);
  }
  return { amount, repeated: false };
}
