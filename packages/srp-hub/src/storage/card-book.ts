/**
 * Card deposits in the books (spec/v1/billing.md "Card deposits"): each Checkout Session
 * the hub created (its deposit id, account, amount in units and cents), credited once from
 * its signed completion, and the refunds of unused prepaid card money, each a share of one
 * card payment sent back through the card processor. Every movement of money is a ledger
 * posting in the same transaction as the row that records it, on SQLite and PostgreSQL alike.
 * Uncredited deposits are bounded per account, expire, and are swept after a retention.
 */
import { ledgerId } from "../ledger/ledger.js";
import {
  allocateCardRefund,
  cardDepositRetryAfter,
  CARD_DEPOSIT_EXPIRE_MS,
  CARD_DEPOSIT_RETENTION_MS,
  CARD_OPEN_LIMIT,
  refundableWithCards,
  sessionMismatch,
  type CompletedSession,
  type RecordedCardDeposit,
} from "../cards/card-policy.js";
import { depositIn, lockAccountIn, refundableCardDepositsIn, refundIn } from "./ledger-book.js";
import { sweepInBatches } from "./wallet-book.js";
import { big, int, text, type SqlDriver, type SqlExecutor, type SqlRow } from "./sql.js";

/** A card deposit as stored. */
export interface StoredCardDeposit extends RecordedCardDeposit {
  /** `open` (a session was asked for, not paid yet), `expired` (its session expired unpaid) or `credited`. */
  state: "open" | "expired" | "credited";
  sessionId: string | null;
  paymentIntent: string | null;
  /** The event that credited it. */
  eventId: string | null;
  /** Units of it refunded to the card (or being refunded). */
  refunded: bigint;
  /** Why a completion was refused, when one was. */
  note: string | null;
  createdAt: number;
  creditedAt: number | null;
}

/** One card payment's share of a refund, as stored. */
export interface StoredCardRefund {
  /** Also the idempotency key of the refund call. */
  id: string;
  /** The refund's reference (`POST /v1/account/refund`'s). */
  reference: string;
  depositId: string;
  accountId: string;
  paymentIntent: string;
  units: bigint;
  cents: bigint;
  /** `pending`: not confirmed by the processor yet; `sent`: the processor took it; `failed`: it did not happen, and the units were credited back. */
  state: "pending" | "sent" | "failed";
  /** The processor's refund id, once known. */
  refundId: string | null;
  note: string | null;
  /** When the share was recorded (Unix ms): a pending share older than a day is looked up before it is sent again. */
  createdAt: number;
}

/** What a signed completion did. */
export type CardCreditOutcome =
  | { kind: "credited"; deposit: StoredCardDeposit }
  | { kind: "duplicate"; deposit: StoredCardDeposit }
  | { kind: "mismatch"; deposit: StoredCardDeposit; reason: string }
  | { kind: "unknown" };

/** A refund with card money in it: the amount the ledger refunded, the card shares, and the rest (other channels). */
export interface CardRefundPlan {
  amount: bigint;
  shares: StoredCardRefund[];
  /** Refunded by the account's other channels (not card money). */
  rest: bigint;
  /** The reference was refunded before: this is that refund. */
  repeated: boolean;
}

/** What the card endpoints need from storage. `SqlStore` keeps it (`store.cards`). */
export interface CardBook {
  /**
   * Records a deposit about to get a Checkout Session (state `open`), unless the account has
   * {@link CARD_OPEN_LIMIT} uncredited deposits created within its window: then nothing is
   * recorded and the answer is how long until one leaves the window.
   */
  open(deposit: RecordedCardDeposit, now?: number): Promise<{ ok: true } | { ok: false; retryAfterMs: number }>;
  /** Marks an uncredited deposit expired (its session expired unpaid: `checkout.session.expired`). Returns whether it moved. */
  expire(by: { sessionId: string; depositId: string | null }, now?: number): Promise<boolean>;
  /**
   * Marks deposits left open past {@link CARD_DEPOSIT_EXPIRE_MS} expired and deletes uncredited
   * deposits older than {@link CARD_DEPOSIT_RETENTION_MS}, in bounded batches. Returns the rows deleted.
   */
  sweep(now?: number): Promise<number>;
  /** The account's card money still refundable to cards (credited card payments less what was refunded from them). */
  cardMoneyOpen(accountId: string): Promise<bigint>;
  /** Records the session created for a deposit. */
  attachSession(depositId: string, sessionId: string): Promise<void>;
  /** A deposit by its id. */
  get(depositId: string): Promise<StoredCardDeposit | undefined>;
  /**
   * Credits the deposit a paid session completes, once: the recorded amount, by ledger
   * reference = the session id, only when the session matches the record.
   */
  credit(session: CompletedSession, eventId: string, now?: number): Promise<CardCreditOutcome>;
  /**
   * Refunds the account's unused prepaid money (as `LedgerBooks.refund`, idempotent by
   * `reference`), its card part split over the card payments newest first and recorded as
   * `pending` shares; a repeated reference returns its earlier shares.
   */
  refund(accountId: string, reference: string, now?: number): Promise<CardRefundPlan>;
  /** Records that the processor took a share. */
  refundSent(shareId: string, refundId: string): Promise<void>;
  /**
   * A share that did not happen (refused at once, or failed later: by share id, or by the
   * processor's refund id and else the share id its metadata carries, for a share whose refund
   * id was never recorded): marked failed and its units credited back to the account, once.
   * Returns the share when this call failed it.
   */
  refundFailed(by: { shareId: string } | { refundId: string; shareId: string | null }, note: string): Promise<StoredCardRefund | undefined>;
}

function depositOf(r: SqlRow): StoredCardDeposit {
  return {
    id: String(r.id),
    accountId: String(r.account_id),
    units: big(r.amount),
    cents: big(r.cents),
    state: String(r.state) as StoredCardDeposit["state"],
    sessionId: text(r.session_id),
    paymentIntent: text(r.payment_intent),
    eventId: text(r.event_id),
    refunded: big(r.refunded),
    note: text(r.note),
    createdAt: int(r.created_at),
    creditedAt: r.credited_at === null ? null : int(r.credited_at),
  };
}

function shareOf(r: SqlRow): StoredCardRefund {
  return {
    id: String(r.id),
    reference: String(r.reference),
    depositId: String(r.deposit_id),
    accountId: String(r.account_id),
    paymentIntent: String(r.payment_intent),
    units: big(r.amount),
    cents: big(r.cents),
    state: String(r.state) as StoredCardRefund["state"],
    refundId: text(r.refund_id),
    note: text(r.note),
    createdAt: int(r.created_at),
  };
}

/** Uncredited deposits (open or expired) are swept at most this often (per process). */
const SWEEP_EVERY_MS = 60_000;

/** {@link CardBook} on a SQL database (migration 11's `card_deposits` and `card_refunds`). */
export class SqlCardBook implements CardBook {
  readonly #db: SqlDriver;
  readonly #ready: Promise<void>;
  #swept = 0;

  /** @param ready resolves once the store's migrations have run. */
  constructor(db: SqlDriver, ready: Promise<void>) {
    this.#db = db;
    this.#ready = ready;
  }

  async open(deposit: RecordedCardDeposit, now = Date.now()): Promise<{ ok: true } | { ok: false; retryAfterMs: number }> {
    await this.#ready;
    if (now - this.#swept >= SWEEP_EVERY_MS) await this.sweep(now);
    const dialect = this.#db.dialect;
    return this.#db.transaction(async (tx) => {
      // One opening per account at a time (PostgreSQL: the account row; SQLite: one writer), so the count holds.
      if (dialect === "postgres") await tx.all("SELECT id FROM accounts WHERE id = ? FOR UPDATE", [deposit.accountId]);
      const recent = await tx.all(
        "SELECT created_at FROM card_deposits WHERE account_id = ? AND state IN ('open', 'expired') AND created_at > ? ORDER BY created_at LIMIT ?",
        [deposit.accountId, now - CARD_OPEN_LIMIT.windowMs, CARD_OPEN_LIMIT.count],
      );
      const retryAfterMs = cardDepositRetryAfter(
        recent.map((r) => int(r.created_at)),
        now,
      );
      if (retryAfterMs !== undefined) return { ok: false, retryAfterMs } as const;
      await tx.run(
        "INSERT INTO card_deposits (id, account_id, amount, cents, state, refunded, created_at, updated_at) VALUES (?, ?, ?, ?, 'open', 0, ?, ?)",
        [deposit.id, deposit.accountId, deposit.units, deposit.cents, now, now],
      );
      return { ok: true } as const;
    });
  }

  async expire(by: { sessionId: string; depositId: string | null }, now = Date.now()): Promise<boolean> {
    await this.#ready;
    const moved = await this.#db.run(
      "UPDATE card_deposits SET state = 'expired', updated_at = ? WHERE state = 'open' AND (session_id = ? OR (session_id IS NULL AND id = ?))",
      [now, by.sessionId, by.depositId ?? ""],
    );
    return moved > 0;
  }

  async sweep(now = Date.now()): Promise<number> {
    await this.#ready;
    this.#swept = now;
    // Sessions expire after an hour: a deposit still open after two was never paid (a late completion still credits it).
    await sweepInBatches(
      this.#db,
      "UPDATE card_deposits SET state = 'expired', updated_at = ? WHERE id IN (SELECT id FROM card_deposits WHERE state = 'open' AND created_at <= ? LIMIT ?)",
      [now, now - CARD_DEPOSIT_EXPIRE_MS],
    );
    // Uncredited deposits carry no money: after the retention (far past the processor's redeliveries) they go.
    return sweepInBatches(
      this.#db,
      "DELETE FROM card_deposits WHERE id IN (SELECT id FROM card_deposits WHERE state IN ('open', 'expired') AND created_at <= ? LIMIT ?)",
      [now - CARD_DEPOSIT_RETENTION_MS],
    );
  }

  async cardMoneyOpen(accountId: string): Promise<bigint> {
    await this.#ready;
    return (await refundableCardDepositsIn(this.#db, accountId)).reduce((sum, d) => sum + d.open, 0n);
  }

  async attachSession(depositId: string, sessionId: string): Promise<void> {
    await this.#ready;
    await this.#db.run("UPDATE card_deposits SET session_id = ?, updated_at = ? WHERE id = ? AND session_id IS NULL", [
      sessionId,
      Date.now(),
      depositId,
    ]);
  }

  async get(depositId: string): Promise<StoredCardDeposit | undefined> {
    await this.#ready;
    const rows = await this.#db.all("SELECT * FROM card_deposits WHERE id = ?", [depositId]);
    return rows[0] ? depositOf(rows[0]) : undefined;
  }

  async credit(session: CompletedSession, eventId: string, now = Date.now()): Promise<CardCreditOutcome> {
    await this.#ready;
    const dialect = this.#db.dialect;
    return this.#db.transaction(async (tx) => {
      const row = await findDeposit(tx, session);
      if (!row) return { kind: "unknown" } as const;
      const deposit = depositOf(row);
      if (deposit.state === "credited") return { kind: "duplicate", deposit } as const;
      const gone = (await tx.all("SELECT id FROM accounts WHERE id = ?", [deposit.accountId])).length === 0;
      const reason = gone ? `account ${deposit.accountId} no longer exists` : sessionMismatch(deposit, session);
      if (reason !== undefined) {
        await tx.run("UPDATE card_deposits SET note = ?, updated_at = ? WHERE id = ?", [reason.slice(0, 500), now, deposit.id]);
        return { kind: "mismatch", deposit, reason } as const;
      }
      // The state moves first: of two deliveries at once, the second waits here and then finds nothing to move.
      // An expired deposit is credited too: a payment made just before its session expired is money received.
      const moved = await tx.run(
        "UPDATE card_deposits SET state = 'credited', session_id = ?, payment_intent = ?, event_id = ?, credited_at = ?, updated_at = ?, note = NULL WHERE id = ? AND state IN ('open', 'expired')",
        [session.sessionId, session.paymentIntent, eventId, now, now, deposit.id],
      );
      if (moved !== 1) return { kind: "duplicate", deposit } as const;
      const memo = { card_deposit: deposit.id, stripe_session: session.sessionId, payment_intent: session.paymentIntent, event: eventId };
      await depositIn(tx, dialect, deposit.accountId, deposit.units, session.sessionId, memo);
      const credited = { ...deposit, state: "credited" as const, sessionId: session.sessionId, paymentIntent: session.paymentIntent };
      return { kind: "credited", deposit: { ...credited, eventId, creditedAt: now, note: null } } as const;
    });
  }

  async refund(accountId: string, reference: string, now = Date.now()): Promise<CardRefundPlan> {
    await this.#ready;
    const dialect = this.#db.dialect;
    return this.#db.transaction(async (tx) => {
      // One refund of an account at a time, before the card payments are read (refundIn takes the same lock).
      await lockAccountIn(tx, dialect, accountId);
      const open = await refundableCardDepositsIn(tx, accountId);
      const done = await refundIn(tx, dialect, accountId, reference, refundableWithCards);
      if (done.repeated) {
        const shares = (await tx.all(SHARES_OF_REFERENCE, [reference, accountId])).map(shareOf);
        // Every share was part of the refunded amount, failed ones too (their money came back separately).
        const card = shares.reduce((sum, s) => sum + s.units, 0n);
        return { amount: done.amount, shares, rest: done.amount - card, repeated: true };
      }
      const { shares, rest } = allocateCardRefund(done.amount, open);
      for (const s of shares) {
        const moved = await tx.run(
          "UPDATE card_deposits SET refunded = refunded + ?, updated_at = ? WHERE id = ? AND refunded + ? <= amount",
          [s.units, now, s.depositId, s.units],
        );
        if (moved !== 1) throw new Error(`card deposit ${s.depositId} cannot take a refund of ${s.units}`);
        await tx.run(
          `INSERT INTO card_refunds (id, reference, deposit_id, account_id, amount, cents, state, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)`,
          [ledgerId("crf"), reference, s.depositId, accountId, s.units, s.cents, now, now],
        );
      }
      const stored = (await tx.all(SHARES_OF_REFERENCE, [reference, accountId])).map(shareOf);
      return { amount: done.amount, shares: stored, rest, repeated: false };
    });
  }

  async refundSent(shareId: string, refundId: string): Promise<void> {
    await this.#ready;
    await this.#db.run("UPDATE card_refunds SET state = 'sent', refund_id = ?, updated_at = ? WHERE id = ? AND state = 'pending'", [
      refundId,
      Date.now(),
      shareId,
    ]);
  }

  async refundFailed(
    by: { shareId: string } | { refundId: string; shareId: string | null },
    note: string,
  ): Promise<StoredCardRefund | undefined> {
    await this.#ready;
    const dialect = this.#db.dialect;
    return this.#db.transaction(async (tx) => {
      const found = await findShare(tx, by);
      if (!found || found.state === "failed") return undefined;
      // The account's ledger row first, as a refund takes it, then the share and the deposit (no lock-order deadlock).
      await lockAccountIn(tx, dialect, found.accountId);
      const rows = await tx.all(`${SHARE_SELECT} WHERE r.id = ?`, [found.id]);
      const share = shareOf(rows[0]!);
      if (share.state === "failed") return undefined;
      const now = Date.now();
      const moved = await tx.run("UPDATE card_refunds SET state = 'failed', note = ?, updated_at = ? WHERE id = ? AND state = ?", [
        note.slice(0, 500),
        now,
        share.id,
        share.state,
      ]);
      if (moved !== 1) return undefined;
      await tx.run("UPDATE card_deposits SET refunded = refunded - ?, updated_at = ? WHERE id = ?", [share.units, now, share.depositId]);
      // The money did not leave: it is prepaid balance again (and the card payment can take a refund again).
      await depositIn(tx, dialect, share.accountId, share.units, `card-refund-failed:${share.id}`, {
        card_refund: share.id,
        reason: note.slice(0, 200),
      });
      return { ...share, state: "failed" as const, note };
    });
  }
}

const SHARE_SELECT = "SELECT r.*, d.payment_intent FROM card_refunds r JOIN card_deposits d ON d.id = r.deposit_id";
const SHARES_OF_REFERENCE = `${SHARE_SELECT} WHERE r.reference = ? AND r.account_id = ? ORDER BY r.created_at, r.id`;

/**
 * The share a failure names: by its id; or by the processor's refund id, else by the share id
 * in the refund's metadata when the share never recorded a refund id (the call timed out).
 */
async function findShare(
  tx: SqlExecutor,
  by: { shareId: string } | { refundId: string; shareId: string | null },
): Promise<StoredCardRefund | undefined> {
  if (!("refundId" in by)) return (await tx.all(`${SHARE_SELECT} WHERE r.id = ?`, [by.shareId])).map(shareOf)[0];
  const byRefund = await tx.all(`${SHARE_SELECT} WHERE r.refund_id = ?`, [by.refundId]);
  if (byRefund[0]) return shareOf(byRefund[0]);
  if (by.shareId === null) return undefined;
  return (await tx.all(`${SHARE_SELECT} WHERE r.id = ? AND r.refund_id IS NULL`, [by.shareId])).map(shareOf)[0];
}

/** The deposit a completed session is for: by its session id, else by the deposit id in its metadata (a session not yet attached). */
async function findDeposit(tx: SqlExecutor, session: CompletedSession): Promise<SqlRow | undefined> {
  const bySession = await tx.all("SELECT * FROM card_deposits WHERE session_id = ?", [session.sessionId]);
  if (bySession[0]) return bySession[0];
  if (session.depositId === null) return undefined;
  const byId = await tx.all("SELECT * FROM card_deposits WHERE id = ? AND session_id IS NULL", [session.depositId]);
  return byId[0];
}
