/**
 * What each API key spends, per period (`api_key_spend`, migration 9): the amounts held by
 * its requests in flight (`reserved`) and charged for its settled ones (`spent`), for all
 * time, the UTC day and the UTC month a reservation was made in. A reservation adds its
 * amount to `reserved` in the transaction that holds the money, after which the key's
 * budget is checked against the rows it just locked (so concurrent requests, on any hub
 * process, can never pass a budget together); its settlement or release moves the amount
 * out of `reserved` and the charge into `spent`, in the transaction that moves the money.
 */
import { budgetExceeded, periodsAt, type KeyBudget, type SpendPeriodKind } from "../keys/policy.js";
import { big, int, type SqlExecutor } from "./sql.js";

/** Thrown inside a reservation's transaction when the key's budget would be passed: the transaction rolls back. */
export class KeyBudgetError extends Error {
  override readonly name = "KeyBudgetError";
  constructor(
    readonly period: SpendPeriodKind,
    readonly cap: bigint,
    readonly used: bigint,
  ) {
    super(`the key's ${period} budget of ${cap} units would be passed (${used} held or spent)`);
  }
}

/** The key a reservation is made with: its id and budgets. */
export interface KeyHold {
  keyId: string;
  budget: KeyBudget;
}

/** In the order of their period ids (`d:…` < `m:…` < `total`): every writer takes a key's rows in this order. */
const KINDS = ["day", "month", "total"] as const;

/**
 * Adds `amount` (of `requests` requests) to the key's held spending for the periods of `now` (creating their rows)
 * and, when the key has a budget, checks it against the rows as they now stand; throws
 * {@link KeyBudgetError} (the caller's transaction must roll back) when a cap is passed.
 */
export async function holdKeySpend(tx: SqlExecutor, key: KeyHold, amount: bigint, now: number, requests = 1): Promise<void> {
  const p = periodsAt(now);
  await tx.run(
    `INSERT INTO api_key_spend (key_id, period, reserved, spent, requests) VALUES (?, ?, ?, 0, ?), (?, ?, ?, 0, ?), (?, ?, ?, 0, ?)
     ON CONFLICT (key_id, period) DO UPDATE SET reserved = api_key_spend.reserved + excluded.reserved, requests = api_key_spend.requests + excluded.requests`,
    KINDS.flatMap((k) => [key.keyId, p[k], amount, requests]),
  );
  const b = key.budget;
  if (b.total === null && b.day === null && b.month === null) return;
  const used = await usedIn(tx, key.keyId, now);
  // `used` includes this request's amount: compare what was there before it.
  const before = Object.fromEntries(KINDS.map((k) => [k, (used[k] ?? 0n) - amount])) as Record<SpendPeriodKind, bigint>;
  const over = budgetExceeded(b, before, amount);
  if (over) throw new KeyBudgetError(over.period, over.cap, over.used);
}

/** Held plus spent, per period kind, for the periods of `now`. */
async function usedIn(tx: SqlExecutor, keyId: string, now: number): Promise<Partial<Record<SpendPeriodKind, bigint>>> {
  const p = periodsAt(now);
  const rows = await tx.all("SELECT period, reserved, spent FROM api_key_spend WHERE key_id = ? AND period IN (?, ?, ?)", [
    keyId,
    p.total,
    p.day,
    p.month,
  ]);
  const out: Partial<Record<SpendPeriodKind, bigint>> = {};
  for (const r of rows) {
    const kind = KINDS.find((k) => p[k] === String(r.period));
    if (kind) out[kind] = big(r.reserved) + big(r.spent);
  }
  return out;
}

/**
 * Closes a key's hold of `amount` made at `heldAt` (the reservation's creation): moves it
 * out of the held spending of the periods it was counted in, and `charged` into their
 * spending. Inside the transaction that settles or releases the reservation.
 */
export async function closeKeySpend(tx: SqlExecutor, keyId: string, heldAt: number, amount: bigint, charged: bigint): Promise<void> {
  const p = periodsAt(heldAt);
  await tx.run("UPDATE api_key_spend SET reserved = reserved - ?, spent = spent + ? WHERE key_id = ? AND period IN (?, ?, ?)", [
    amount,
    charged,
    keyId,
    p.total,
    p.day,
    p.month,
  ]);
}

/** What one key has spent and holds, per period of `now`, and its requests (all time). */
export interface KeySpend {
  spent: Record<SpendPeriodKind, bigint>;
  held: Record<SpendPeriodKind, bigint>;
  requests: number;
}

/** The spending of each of `keyIds` in the periods of `now` (keys without any: zeros). */
export async function keySpendOf(db: SqlExecutor, keyIds: readonly string[], now: number): Promise<Map<string, KeySpend>> {
  const out = new Map<string, KeySpend>();
  for (const id of keyIds) out.set(id, { spent: { total: 0n, day: 0n, month: 0n }, held: { total: 0n, day: 0n, month: 0n }, requests: 0 });
  if (keyIds.length === 0) return out;
  const p = periodsAt(now);
  const marks = keyIds.map(() => "?").join(", ");
  const rows = await db.all(
    `SELECT key_id, period, reserved, spent, requests FROM api_key_spend WHERE key_id IN (${marks}) AND period IN (?, ?, ?)`,
    [...keyIds, p.total, p.day, p.month],
  );
  for (const r of rows) {
    const s = out.get(String(r.key_id));
    const kind = KINDS.find((k) => p[k] === String(r.period));
    if (!s || !kind) continue;
    s.spent[kind] = big(r.spent);
    s.held[kind] = big(r.reserved);
    if (kind === "total") s.requests = int(r.requests);
  }
  return out;
}
