/**
 * Read-only questions to the ledger of a `SqlStore`: an account's prepaid part and
 * summary, and the top earners and spenders. Plain functions over a {@link SqlExecutor},
 * so they run on the database or inside a caller's transaction.
 */
import { balanceOf, holdAccount, userAccount, type AccountSummary, type TopEntry } from "../ledger/ledger.js";
import { discountFor, prepaidOf, type DiscountTier } from "../ledger/policy.js";
import { big, int, type SqlExecutor } from "./sql.js";

/**
 * Deposited money not yet spent or refunded: deposits less refunds (the account's
 * `funded` column), at most what the account holds. With `includeHeld`, money reserved
 * by requests in flight counts as held (for the discount tier, which must not drop
 * while a request runs); refunds use the spendable part only. One primary-key read.
 */
export async function prepaidIn(tx: SqlExecutor, accountId: string, includeHeld = false): Promise<bigint> {
  const row = (
    await tx.all(
      "SELECT a.balance, a.funded, h.balance AS held FROM ledger_accounts a LEFT JOIN ledger_accounts h ON h.id = ? WHERE a.id = ?",
      [holdAccount(accountId), userAccount(accountId)],
    )
  )[0];
  if (!row) return 0n;
  return prepaidOf(big(row.balance) + (includeHeld && row.held !== null ? big(row.held) : 0n), big(row.funded));
}

/** The discount (basis points) an account's requests get now: its tier by prepaid money, held money included. */
export async function discountIn(tx: SqlExecutor, accountId: string, tiers: readonly DiscountTier[]): Promise<number> {
  return discountFor(await prepaidIn(tx, accountId, true), tiers);
}

/** Balance, held money, prepaid part and discount, spend and earnings of an account. */
export async function accountSummary(db: SqlExecutor, accountId: string, tiers: readonly DiscountTier[]): Promise<AccountSummary> {
  const user = userAccount(accountId);
  const [balance, held, prepaid, sums, count] = await Promise.all([
    balanceOf(db, user),
    balanceOf(db, holdAccount(accountId)),
    prepaidIn(db, accountId),
    db.all(
      `SELECT t.kind, COALESCE(SUM(e.amount), 0) AS s FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.tx_id
        WHERE e.account_id = ? GROUP BY t.kind`,
      [user],
    ),
    db.all("SELECT COUNT(*) AS n FROM reservations WHERE account_id = ? AND state = 'settled'", [accountId]),
  ]);
  const byKind = new Map(sums.map((r) => [String(r.kind), big(r.s)]));
  const spent = await db.all("SELECT COALESCE(SUM(charged), 0) AS s FROM reservations WHERE account_id = ? AND state = 'settled'", [
    accountId,
  ]);
  const earnedRows = await db.all("SELECT COALESCE(SUM(provider_share), 0) AS s FROM receipts WHERE provider_account_id = ?", [accountId]);
  return {
    accountId,
    balance,
    held,
    prepaid,
    discountBps: await discountIn(db, accountId, tiers),
    spent: big(spent[0]!.s),
    earned: big(earnedRows[0]!.s),
    deposited: byKind.get("deposit") ?? 0n,
    refunded: -(byKind.get("refund") ?? 0n),
    requests: int(count[0]!.n),
  };
}

/** Top provider earners (`earned`: provider shares credited) or consumer spenders (`spent`: charges), at most `limit` (1..1000). */
export async function topAccounts(db: SqlExecutor, by: "earned" | "spent", limit: number): Promise<TopEntry[]> {
  const n = Math.max(1, Math.min(limit, 1000));
  const rows =
    by === "earned"
      ? await db.all(
          "SELECT provider_account_id AS account_id, SUM(provider_share) AS amount, COUNT(*) AS jobs FROM receipts GROUP BY provider_account_id ORDER BY SUM(provider_share) DESC, provider_account_id LIMIT ?",
          [n],
        )
      : await db.all(
          "SELECT account_id, SUM(charged) AS amount, COUNT(*) AS jobs FROM reservations WHERE state = 'settled' GROUP BY account_id ORDER BY SUM(charged) DESC, account_id LIMIT ?",
          [n],
        );
  return rows.map((r) => ({ accountId: String(r.account_id), amount: r.amount === null ? 0n : big(r.amount), jobs: int(r.jobs) }));
}
