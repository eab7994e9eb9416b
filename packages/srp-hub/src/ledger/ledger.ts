/**
 * The double-entry ledger, written once against {@link SqlExecutor} so SQLite and
 * PostgreSQL behave the same. Every movement of money is one balanced transaction
 * (its entries sum to zero) with an idempotency key: posting the same key twice moves
 * money once. Balances that may not go negative are guarded inside the same statement
 * that moves them (`UPDATE ... WHERE balance + amount >= 0`), so concurrent requests
 * can never overspend, whatever the interleaving.
 */
import { randomBytes, toBase64Url } from "@srp/core";
import { big, int, text, type SqlExecutor } from "../storage/sql.js";
import { InsufficientFundsError } from "./errors.js";
import type { DiscountTier } from "./policy.js";

/** Kinds of ledger account. */
export type LedgerAccountKind = "user" | "hold" | "platform" | "bounty_pool" | "external";

/** The platform's own account: protocol fees in; signup credits, discounts beyond the fee and overruns out. It may go negative (it is the operator's equity). */
export const PLATFORM = "platform";
/** The bounty pool: funded from the platform's share, pays bounties; never negative. */
export const BOUNTY_POOL = "bounty_pool";
/** Money from and to the outside world (deposits in, refunds and payouts out); its balance is minus the money held. */
export const EXTERNAL = "external";

/** The spendable balance of a hub account. */
export function userAccount(accountId: string): string {
  return `user:${accountId}`;
}

/** Money of a hub account reserved for requests in flight. */
export function holdAccount(accountId: string): string {
  return `hold:${accountId}`;
}

/** One leg of a transaction: `amount` added to `account` (negative takes away). */
export interface Leg {
  account: string;
  amount: bigint;
}

/** A transaction to post. */
export interface Posting {
  /** Posting the same key again does nothing (and reports `duplicate`). */
  idempotencyKey: string;
  /** What kind of movement this is (`signup_credit`, `deposit`, `reserve`, `settle`, `release`, `refund`, ...). */
  kind: string;
  /** The hub account this movement is about, for its history. */
  accountId?: string;
  /** What it refers to (a reservation, a job, a deposit reference). */
  ref?: string;
  /** Free-form details, stored as JSON. */
  memo?: Record<string, unknown>;
  legs: readonly Leg[];
}

/** What a ledger account id names: its kind, its owner (for `user:` and `hold:`), and whether it may go negative. */
export function kindOf(account: string): { kind: LedgerAccountKind; owner: string | null; mayGoNegative: boolean } {
  const i = account.indexOf(":");
  if (i > 0) {
    const prefix = account.slice(0, i);
    if (prefix === "user" || prefix === "hold") return { kind: prefix, owner: account.slice(i + 1), mayGoNegative: false };
  }
  if (account === PLATFORM) return { kind: "platform", owner: null, mayGoNegative: true };
  if (account === BOUNTY_POOL) return { kind: "bounty_pool", owner: null, mayGoNegative: false };
  if (account === EXTERNAL) return { kind: "external", owner: null, mayGoNegative: true };
  throw new TypeError(`unknown ledger account ${account}`);
}

let lastStamp = 0;
let counter = 0;

/**
 * A new id with a prefix that sorts by creation time within a process (milliseconds and
 * a counter, then randomness), so ties in `created_at` still list in creation order.
 */
export function ledgerId(prefix: string): string {
  const now = Date.now();
  if (now === lastStamp) counter++;
  else {
    lastStamp = now;
    counter = 0;
  }
  return `${prefix}_${now.toString(36).padStart(9, "0")}${counter.toString(36).padStart(4, "0")}${toBase64Url(randomBytes(9))}`;
}

/** Legs merged per account, zero legs dropped; throws unless they sum to zero. */
export function balancedLegs(legs: readonly Leg[]): Leg[] {
  const sums = new Map<string, bigint>();
  let total = 0n;
  for (const l of legs) {
    sums.set(l.account, (sums.get(l.account) ?? 0n) + l.amount);
    total += l.amount;
  }
  if (total !== 0n) throw new RangeError(`transaction legs sum to ${total}, not zero`);
  return [...sums].filter(([, a]) => a !== 0n).map(([account, amount]) => ({ account, amount }));
}

/**
 * The entries a transaction writes: its legs merged per account ({@link balancedLegs}).
 * A movement of nothing (the zero reservation of a free request, its release or
 * settlement) still writes a zero entry for each account it names: otherwise it would be
 * a transaction without entries, a zero hold account would never exist, and
 * verifyLedger rightly reports both.
 */
export function writtenLegs(legs: readonly Leg[]): Leg[] {
  const merged = balancedLegs(legs);
  return merged.length > 0 ? merged : [...new Set(legs.map((l) => l.account))].map((account) => ({ account, amount: 0n }));
}

/** SQL text for `n` rows of `cols` placeholders: `(?, ?), (?, ?)`. */
function rows(n: number, row: string): string {
  return Array.from({ length: n }, () => row).join(", ");
}

/** Options of {@link post}. */
export interface PostOptions {
  /** When the movement happens (ms); default now. */
  now?: number;
  /** The engine: on PostgreSQL the accounts' rows are locked in id order first, so concurrent postings never deadlock. */
  dialect?: "sqlite" | "postgres";
}

/**
 * Posts one balanced transaction inside the caller's database transaction, in four
 * statements whatever the number of legs (five when an account is new): the
 * transaction row (a repeated idempotency key stops here: `false`, nothing moved), the
 * accounts' rows (locked in id order on PostgreSQL), every balance in one guarded
 * UPDATE, and every entry in one INSERT. Throws {@link InsufficientFundsError} when a guarded
 * balance would go negative; the caller's transaction must then roll back.
 */
export async function post(tx: SqlExecutor, p: Posting, options: PostOptions | number = {}): Promise<boolean> {
  const o: PostOptions = typeof options === "number" ? { now: options } : options;
  const now = o.now ?? Date.now();
  if (p.legs.length === 0) throw new RangeError("a transaction needs at least one leg");
  const legs = writtenLegs(p.legs);
  legs.sort((a, b) => (a.account < b.account ? -1 : a.account > b.account ? 1 : 0));
  const id = ledgerId("tx");
  const inserted = await tx.run(
    "INSERT INTO ledger_transactions (id, idempotency_key, kind, account_id, ref, memo, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
    [id, p.idempotencyKey, p.kind, p.accountId ?? null, p.ref ?? null, p.memo ? JSON.stringify(p.memo) : null, now],
  );
  if (inserted === 0) return false;
  const ids = legs.map((l) => l.account);
  const marks = ids.map(() => "?").join(", ");
  const lock = o.dialect === "postgres" ? " ORDER BY id FOR UPDATE" : "";
  const existing = new Set((await tx.all(`SELECT id FROM ledger_accounts WHERE id IN (${marks})${lock}`, ids)).map((r) => String(r.id)));
  const missing = ids.filter((a) => !existing.has(a));
  if (missing.length > 0) {
    await tx.run(
      `INSERT INTO ledger_accounts (id, kind, owner, balance, may_go_negative, created_at) VALUES ${rows(missing.length, "(?, ?, ?, 0, ?, ?)")} ON CONFLICT (id) DO NOTHING`,
      missing.flatMap((a) => {
        const k = kindOf(a);
        return [a, k.kind, k.owner, k.mayGoNegative ? 1 : 0, now];
      }),
    );
  }
  // Every balance in one statement, each guarded: an account that may not go negative moves
  // only if it stays at or above zero, so concurrent postings can never overspend it.
  const delta = "(SELECT d FROM v WHERE v.id = ledger_accounts.id)";
  const moved = await tx.run(
    `WITH v(id, d) AS (VALUES ${rows(legs.length, "(CAST(? AS TEXT), CAST(? AS BIGINT))")})
     UPDATE ledger_accounts SET balance = balance + ${delta}
      WHERE id IN (SELECT id FROM v) AND (may_go_negative = 1 OR balance + ${delta} >= 0)`,
    legs.flatMap((l) => [l.account, l.amount]),
  );
  if (moved !== legs.length) {
    const short = legs.find((l) => l.amount < 0n && kindOf(l.account).mayGoNegative === false) ?? legs[0]!;
    throw new InsufficientFundsError(short.account, -short.amount);
  }
  await tx.run(
    `INSERT INTO ledger_entries (tx_id, account_id, amount) VALUES ${rows(legs.length, "(?, ?, ?)")}`,
    legs.flatMap((l) => [id, l.account, l.amount]),
  );
  return true;
}

/** The balance of a ledger account (0 if it has never moved). */
export async function balanceOf(tx: SqlExecutor, account: string): Promise<bigint> {
  const rows = await tx.all("SELECT balance FROM ledger_accounts WHERE id = ?", [account]);
  return rows.length === 0 ? 0n : big(rows[0]!.balance);
}

/** One line of an account's history. */
export interface HistoryEntry {
  txId: string;
  kind: string;
  ref: string | null;
  /** What this transaction did to the account's spendable balance (negative: money out). */
  amount: bigint;
  /** What it did to the account's reserved money. */
  held: bigint;
  createdAt: number;
  memo: Record<string, unknown> | null;
}

/** An account's transactions, newest first, `limit` at a time before the cursor `before` (a createdAt:txId pair). */
export async function history(
  tx: SqlExecutor,
  accountId: string,
  limit: number,
  before?: { createdAt: number; txId: string },
): Promise<HistoryEntry[]> {
  const user = userAccount(accountId);
  const hold = holdAccount(accountId);
  const rows = await tx.all(
    `SELECT t.id, t.kind, t.ref, t.memo, t.created_at,
            SUM(CASE WHEN e.account_id = ? THEN e.amount ELSE 0 END) AS amount,
            SUM(CASE WHEN e.account_id = ? THEN e.amount ELSE 0 END) AS held
       FROM ledger_transactions t JOIN ledger_entries e ON e.tx_id = t.id
      WHERE e.account_id IN (?, ?) ${before ? "AND (t.created_at < ? OR (t.created_at = ? AND t.id < ?))" : ""}
      GROUP BY t.id, t.kind, t.ref, t.memo, t.created_at
      ORDER BY t.created_at DESC, t.id DESC
      LIMIT ?`,
    before ? [user, hold, user, hold, before.createdAt, before.createdAt, before.txId, limit] : [user, hold, user, hold, limit],
  );
  return rows.map((r) => ({
    txId: String(r.id),
    kind: String(r.kind),
    ref: text(r.ref),
    amount: big(r.amount),
    held: big(r.held),
    createdAt: int(r.created_at),
    memo: r.memo === null ? null : (JSON.parse(String(r.memo)) as Record<string, unknown>),
  }));
}

/** A broken invariant found by {@link verifyLedger}. */
export interface LedgerProblem {
  /** Which invariant. */
  check: string;
  /** The offending ids (transactions, accounts, reservations or jobs). */
  ids: string[];
}

/**
 * The kinds of transaction whose user-account legs change an account's prepaid funding
 * (`funded`): deposits and refunds, x402 payments (credited as prepaid balance), their
 * reversal when a payment settled after serving fails, and the repayment of the debt that
 * leaves (paid from prepaid money).
 */
export const FUNDING_KINDS = ["deposit", "refund", "x402_payment", "x402_reversal", "debt_repayment"] as const;

/**
 * Checks every invariant of the books: each transaction balances and has entries; each
 * balance equals the sum of its entries; no guarded balance is negative; each account's
 * held money equals its open reservations; each settled reservation has exactly one
 * receipt and one settlement; each receipt billed to a consumer was settled exactly once.
 * Returns the problems (none when the books are sound).
 */
export async function verifyLedger(tx: SqlExecutor): Promise<LedgerProblem[]> {
  const problems: LedgerProblem[] = [];
  const check = async (name: string, sql: string) => {
    const rows = await tx.all(sql);
    if (rows.length > 0) problems.push({ check: name, ids: rows.map((r) => String(r.id)) });
  };
  await check("transaction does not balance", "SELECT tx_id AS id FROM ledger_entries GROUP BY tx_id HAVING SUM(amount) <> 0");
  await check(
    "transaction without entries",
    "SELECT t.id FROM ledger_transactions t LEFT JOIN ledger_entries e ON e.tx_id = t.id WHERE e.tx_id IS NULL",
  );
  await check(
    "balance differs from the sum of its entries",
    "SELECT a.id FROM ledger_accounts a LEFT JOIN (SELECT account_id, SUM(amount) AS s FROM ledger_entries GROUP BY account_id) e ON e.account_id = a.id WHERE a.balance <> COALESCE(e.s, 0)",
  );
  await check(
    "negative balance on an account that may not go negative",
    "SELECT id FROM ledger_accounts WHERE may_go_negative = 0 AND balance < 0",
  );
  await check("negative prepaid funding", "SELECT id FROM ledger_accounts WHERE funded < 0");
  await check(
    "prepaid funding differs from deposits less refunds",
    `SELECT a.id FROM ledger_accounts a LEFT JOIN (
        SELECT e.account_id, SUM(e.amount) AS f
          FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.tx_id WHERE t.kind IN (${FUNDING_KINDS.map((k) => `'${k}'`).join(", ")}) GROUP BY e.account_id
      ) d ON d.account_id = a.id
      WHERE a.kind = 'user' AND a.funded <> COALESCE(d.f, 0)`,
  );
  await check(
    "held money differs from open reservations",
    `SELECT a.id FROM ledger_accounts a LEFT JOIN (SELECT account_id, SUM(amount) AS s FROM reservations WHERE state = 'open' GROUP BY account_id) r
        ON a.id = 'hold:' || r.account_id WHERE a.kind = 'hold' AND a.balance <> COALESCE(r.s, 0)
     UNION SELECT 'hold:' || r.account_id AS id FROM reservations r LEFT JOIN ledger_accounts a ON a.id = 'hold:' || r.account_id
        WHERE r.state = 'open' AND a.id IS NULL`,
  );
  await check(
    "settled reservation without exactly one receipt",
    "SELECT r.id FROM reservations r LEFT JOIN receipts c ON c.reservation_id = r.id WHERE r.state = 'settled' GROUP BY r.id HAVING COUNT(c.job_id) <> 1",
  );
  await check(
    "settled reservation without exactly one settlement",
    "SELECT r.id FROM reservations r LEFT JOIN ledger_transactions t ON t.ref = r.id AND t.kind = 'settle' WHERE r.state = 'settled' GROUP BY r.id HAVING COUNT(t.id) <> 1",
  );
  await check(
    "closed reservation with money still held or settled twice",
    // LEFT JOIN: a reservation closed without any settlement or release (COUNT 0) is the "still held" case.
    "SELECT r.id FROM reservations r LEFT JOIN ledger_transactions t ON t.ref = r.id AND t.kind IN ('settle', 'release') WHERE r.state <> 'open' GROUP BY r.id HAVING COUNT(t.id) <> 1",
  );
  await check(
    "open reservation already settled or released",
    "SELECT r.id FROM reservations r JOIN ledger_transactions t ON t.ref = r.id AND t.kind IN ('settle', 'release') WHERE r.state = 'open'",
  );
  await check(
    "billed receipt without its settlement",
    "SELECT c.job_id AS id FROM receipts c LEFT JOIN reservations r ON r.id = c.reservation_id WHERE c.reservation_id IS NOT NULL AND (r.id IS NULL OR r.state <> 'settled')",
  );
  return problems;
}

/** Outcome of a reservation: its id and the consumer's discount, or how much the account can spend. */
export type ReserveResult = { ok: true; reservationId: string; discountBps: number } | ReserveRefusal;

/**
 * Why a reservation was refused: how much the account can spend, and, when the API key's
 * budget refused it (SRP-CON-085), which period's cap and how much of it is held or spent.
 */
export interface ReserveRefusal {
  ok: false;
  available: bigint;
  keyBudget?: { period: "total" | "day" | "month"; cap: bigint; used: bigint };
}

/** Outcome of {@link HubLedger.reserveMany}: one reservation id per amount, in order, or why not. */
export type ReserveManyResult = { ok: true; reservationIds: string[]; discountBps: number } | ReserveRefusal;

/** The API key a reservation is made with (its spending is counted, and its budget enforced, with the money). */
export interface ReserveKey {
  keyId: string;
  budget: { total: bigint | null; day: bigint | null; month: bigint | null };
}

/**
 * What the hub needs from a ledger to bill consumers: reserve the worst case before
 * routing, release it when nothing is billed. Settlement happens when the receipt is
 * recorded ({@link ReceiptBook.record} of a ledger-backed book). `SqlStore` implements both.
 */
export interface HubLedger {
  /** Reserves `amount` of an account's spendable balance, atomically. */
  reserve(accountId: string, amount: bigint, key?: ReserveKey): Promise<ReserveResult>;
  /** Returns a reservation's money; false when it was already settled or released. */
  release(reservationId: string, reason: string): Promise<boolean>;
  /**
   * Reserves several amounts for one account at once (a batch): all of them or none.
   * Each reservation settles or is released on its own; each gets the larger of the
   * account's prepaid discount and `extraDiscountBps` (the batch discount).
   */
  reserveMany?(accountId: string, amounts: readonly bigint[], extraDiscountBps: number, key?: ReserveKey): Promise<ReserveManyResult>;
  /**
   * Marks this hub process alive and releases reservations left open by hub processes
   * that died. Called when the hub starts (the ledger's own rule for which holders are
   * dead) and every 15 s with `all: false` (only holders silent for a minute).
   */
  reconcile?(options?: { all?: boolean }): Promise<string[]>;
  /**
   * How a reservation was closed: settled (with the job whose receipt settled it and the
   * charge), released, or still open. Undefined for an unknown reservation. A hub reads it
   * when it cannot tell whether a receipt was stored (another process of the hub stored it,
   * and went away before saying so), so the consumer is shown what was billed.
   */
  closure?(reservationId: string): Promise<ReservationClosure | undefined>;
}

/** How a reservation ended, or that it has not (see {@link HubLedger.closure}). */
export type ReservationClosure = { state: "open" } | { state: "released" } | { state: "settled"; jobId: string; charged: bigint };

/** Whether an object (such as a receipt book) is also a {@link HubLedger}. */
export function isHubLedger(value: unknown): value is HubLedger {
  const v = value as Partial<HubLedger> | null;
  return typeof v === "object" && v !== null && typeof v.reserve === "function" && typeof v.release === "function";
}

/** An account's money, as `GET /v1/account`, the admin API and the CLI show it. */
export interface AccountSummary {
  accountId: string;
  /** Spendable now. */
  balance: bigint;
  /** Reserved by requests in flight. */
  held: bigint;
  /** Deposited money (not refunded) still unspent: it earns the discount and can be refunded. */
  prepaid: bigint;
  /** The discount in basis points new requests get. */
  discountBps: number;
  /** Everything charged to this account as a consumer. */
  spent: bigint;
  /** Everything credited to this account as a provider. */
  earned: bigint;
  /** Deposits and refunds so far. */
  deposited: bigint;
  refunded: bigint;
  /** Consumer requests settled. */
  requests: number;
}

/** One row of the top earners or spenders. */
export interface TopEntry {
  accountId: string;
  amount: bigint;
  jobs: number;
}

/**
 * The ledger's books beyond billing: balances, history, deposits, refunds and checks,
 * for the consumer account API, the admin API and the CLI. `SqlStore` implements it.
 */
export interface LedgerBooks extends HubLedger {
  /** The prepaid discount tiers in force. */
  readonly discountTiers: readonly DiscountTier[];
  /** Credited to every new account. */
  readonly signupCredits: bigint;
  summary(accountId: string): Promise<AccountSummary>;
  history(accountId: string, limit?: number, before?: { createdAt: number; txId: string }): Promise<HistoryEntry[]>;
  /** Credits money that arrived from outside; idempotent by `reference`. */
  deposit(accountId: string, amount: bigint, reference: string, memo?: Record<string, unknown>): Promise<boolean>;
  /**
   * Refunds the unused prepaid balance to the depositor, less card money still refundable to
   * cards (that leaves only through the card processor, SRP-BIL-021); idempotent by `reference`.
   * Returns the amount. `memo` is recorded on the refund's posting (a Solana refund names its
   * `network` there: the Solana money the hub holds counts it as gone, SRP-PAY-034).
   */
  refund(accountId: string, reference: string, memo?: Record<string, unknown>): Promise<bigint>;
  /** The discount (basis points) the account's requests get now. */
  discountOf(accountId: string): Promise<number>;
  /** Top provider earners (`earned`) or consumer spenders (`spent`). */
  top(by: "earned" | "spent", limit: number): Promise<TopEntry[]>;
  /** Every invariant of the books; empty when sound. */
  verify(): Promise<LedgerProblem[]>;
}

/** Whether a ledger also keeps {@link LedgerBooks}. */
export function isLedgerBooks(value: unknown): value is LedgerBooks {
  const v = value as Partial<LedgerBooks> | null;
  return isHubLedger(value) && typeof v?.summary === "function" && typeof v.history === "function" && typeof v.verify === "function";
}
