/**
 * Set-based reservations and settlements for PostgreSQL: the `reserve` (or `record`)
 * calls of one turn of the event loop become one database transaction of a fixed number
 * of statements (the rows locked in id order, then every reservation, transaction,
 * balance, entry and receipt written with `unnest`), instead of some ten round trips each. The admission rule is
 * the same as one at a time, applied in arrival order under the rows' locks: a request is
 * admitted while the account's spendable balance covers it. `SqlStore`'s books use it on
 * PostgreSQL; SQLite group-commits instead (see the SQLite driver).
 */
import {
  BOUNTY_POOL,
  holdAccount,
  kindOf,
  ledgerId,
  PLATFORM,
  userAccount,
  writtenLegs,
  type Leg,
  type ReserveResult,
} from "../ledger/ledger.js";
import { discountFor, prepaidOf, type DiscountTier } from "../ledger/policy.js";
import { jobSettlement, reservePosting, type SettledJob } from "../ledger/postings.js";
import type { StoredReceipt } from "../receipts.js";
import { big, int, type SqlExecutor } from "./sql.js";

/** One reservation asked for. */
export interface ReserveAsk {
  reservationId: string;
  accountId: string;
  amount: bigint;
}

/** What the batch needs from its store. */
export interface ReserveBatchContext {
  tiers: readonly DiscountTier[];
  processId: string;
  now: number;
}

const text = (xs: readonly (string | bigint | number)[]): string[] => xs.map((x) => x.toString());

/** Runs a batch of reservations in the caller's transaction; one result per ask, in order. */
export async function reserveBatch(tx: SqlExecutor, asks: readonly ReserveAsk[], ctx: ReserveBatchContext): Promise<ReserveResult[]> {
  const accounts = [...new Set(asks.map((a) => a.accountId))];
  const ids = accounts.flatMap((a) => [userAccount(a), holdAccount(a)]).sort();
  const rows = await tx.all("SELECT id, balance, funded FROM ledger_accounts WHERE id = ANY(CAST(? AS TEXT[])) ORDER BY id FOR UPDATE", [
    ids,
  ]);
  const row = new Map(rows.map((r) => [String(r.id), { balance: big(r.balance), funded: big(r.funded) }]));
  // The discount of each account, as one-at-a-time reservations would see it (held money counts).
  const bps = new Map<string, number>();
  const spendable = new Map<string, bigint>();
  for (const a of accounts) {
    const user = row.get(userAccount(a));
    const held = row.get(holdAccount(a))?.balance ?? 0n;
    const balance = user?.balance ?? 0n;
    const funded = user?.funded ?? 0n;
    bps.set(a, discountFor(prepaidOf(balance + held, funded), ctx.tiers));
    spendable.set(a, balance);
  }
  // Admission in arrival order, under the locks.
  const results: ReserveResult[] = [];
  const admitted: ReserveAsk[] = [];
  for (const ask of asks) {
    const left = spendable.get(ask.accountId)!;
    if (ask.amount > left) {
      results.push({ ok: false, available: left });
      continue;
    }
    spendable.set(ask.accountId, left - ask.amount);
    admitted.push(ask);
    results.push({ ok: true, reservationId: ask.reservationId, discountBps: bps.get(ask.accountId)! });
  }
  if (admitted.length === 0) return results;
  // Rows the postings need that do not exist yet (a first reservation creates the hold account).
  const needed = [...new Set(admitted.flatMap((a) => [userAccount(a.accountId), holdAccount(a.accountId)]))]
    .filter((id) => !row.has(id))
    .sort();
  if (needed.length > 0) {
    await tx.run(
      `INSERT INTO ledger_accounts (id, kind, owner, balance, may_go_negative, created_at)
       SELECT id, split_part(id, ':', 1), substr(id, strpos(id, ':') + 1), 0, 0, ? FROM unnest(CAST(? AS TEXT[])) AS n(id)
       ON CONFLICT (id) DO NOTHING`,
      [ctx.now, needed],
    );
  }
  await tx.run(
    `INSERT INTO reservations (id, account_id, amount, discount_bps, holder, state, created_at)
     SELECT r.id, r.account_id, r.amount, r.bps, ?, 'open', ? FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS BIGINT[]), CAST(? AS INTEGER[])) AS r(id, account_id, amount, bps)`,
    [
      ctx.processId,
      ctx.now,
      admitted.map((a) => a.reservationId),
      admitted.map((a) => a.accountId),
      text(admitted.map((a) => a.amount)),
      text(admitted.map((a) => bps.get(a.accountId)!)),
    ],
  );
  const txIds = admitted.map(() => ledgerId("tx"));
  await tx.run(
    `INSERT INTO ledger_transactions (id, idempotency_key, kind, account_id, ref, memo, created_at)
     SELECT t.id, 'reserve:' || t.ref, 'reserve', t.account_id, t.ref, NULL, ? FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[])) AS t(id, ref, account_id)`,
    [ctx.now, txIds, admitted.map((a) => a.reservationId), admitted.map((a) => a.accountId)],
  );
  // Every balance moved once, by its summed delta (each account: user −total, hold +total).
  const entries = admitted.flatMap((a, i) =>
    reservePosting(a.reservationId, a.accountId, a.amount).legs.map((l) => ({ txId: txIds[i]!, ...l })),
  );
  const moved = await moveBalances(tx, entries, false);
  if (moved.moved !== moved.expected) throw new Error(`a reservation batch moved ${moved.moved} of ${moved.expected} balances`);
  await insertEntries(tx, entries);
  return results;
}

/** One ledger entry of a batch. */
interface BatchEntry extends Leg {
  txId: string;
}

/** Adds each account's summed delta to its balance in one statement (`guarded`: accounts that may not go negative move only if they stay at or above zero). */
async function moveBalances(
  tx: SqlExecutor,
  entries: readonly BatchEntry[],
  guarded: boolean,
): Promise<{ moved: number; expected: number }> {
  const delta = new Map<string, bigint>();
  for (const e of entries) delta.set(e.account, (delta.get(e.account) ?? 0n) + e.amount);
  const moved = await tx.run(
    `UPDATE ledger_accounts AS a SET balance = a.balance + v.d
       FROM unnest(CAST(? AS TEXT[]), CAST(? AS BIGINT[])) AS v(id, d)
      WHERE a.id = v.id${guarded ? " AND (a.may_go_negative = 1 OR a.balance + v.d >= 0)" : ""}`,
    [[...delta.keys()], text([...delta.values()])],
  );
  return { moved, expected: delta.size };
}

/** Writes the entries of a batch in one statement. */
async function insertEntries(tx: SqlExecutor, entries: readonly BatchEntry[]): Promise<void> {
  await tx.run(
    `INSERT INTO ledger_entries (tx_id, account_id, amount) SELECT * FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS BIGINT[]))`,
    [entries.map((e) => e.txId), entries.map((e) => e.account), text(entries.map((e) => e.amount))],
  );
}

/** One receipt to record, with what its settlement needs. */
export interface RecordAsk {
  entry: StoredReceipt;
}

/** A reservation claimed for a receipt of the batch. */
interface Claim {
  consumer: string;
  reserved: bigint;
  discountBps: number;
}

/** Records a batch of countersigned receipts and settles their reservations, in the caller's transaction; one result per ask, in order. */
export async function recordBatch(tx: SqlExecutor, asks: readonly RecordAsk[], now: number): Promise<Array<SettledJob | undefined>> {
  const claims = await claimReservations(tx, asks, now);
  const results = await settleClaims(tx, asks, claims, now);
  await insertReceipts(tx, asks, results, now);
  await advancePositions(tx, asks);
  return results;
}

/** Claims each reservation once, for the first receipt that names it (as one at a time would); one claim or undefined per ask. */
async function claimReservations(tx: SqlExecutor, asks: readonly RecordAsk[], now: number): Promise<Array<Claim | undefined>> {
  const firstFor = new Map<string, number>();
  asks.forEach((a, i) => {
    const id = a.entry.reservationId;
    if (id !== undefined && !firstFor.has(id)) firstFor.set(id, i);
  });
  const claimIds = [...firstFor.keys()];
  const claimed = new Map<string, Claim>();
  if (claimIds.length > 0) {
    const rows = await tx.all(
      `UPDATE reservations AS r SET state = 'settled', job_id = v.job_id, closed_at = ?
         FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[])) AS v(id, job_id)
        WHERE r.id = v.id AND r.state = 'open'
        RETURNING r.id, r.account_id, r.amount, r.discount_bps`,
      [now, claimIds, claimIds.map((id) => asks[firstFor.get(id)!]!.entry.receipt.jobId)],
    );
    for (const r of rows)
      claimed.set(String(r.id), { consumer: String(r.account_id), reserved: big(r.amount), discountBps: int(r.discount_bps) });
  }
  return asks.map((a, i) =>
    a.entry.reservationId !== undefined && firstFor.get(a.entry.reservationId) === i ? claimed.get(a.entry.reservationId) : undefined,
  );
}

/** Locks every account the settlements move, in id order, and posts each settlement in arrival order, the pool carried from one to the next. */
async function settleClaims(
  tx: SqlExecutor,
  asks: readonly RecordAsk[],
  claims: ReadonlyArray<Claim | undefined>,
  now: number,
): Promise<Array<SettledJob | undefined>> {
  const touched = new Set<string>();
  claims.forEach((c, i) => {
    if (!c) return;
    touched
      .add(holdAccount(c.consumer))
      .add(userAccount(c.consumer))
      .add(userAccount(asks[i]!.entry.providerAccountId))
      .add(PLATFORM)
      .add(BOUNTY_POOL);
  });
  if (touched.size === 0) return claims.map(() => undefined);
  const locked = await tx.all("SELECT id, balance FROM ledger_accounts WHERE id = ANY(CAST(? AS TEXT[])) ORDER BY id FOR UPDATE", [
    [...touched].sort(),
  ]);
  let pool = big(locked.find((r) => String(r.id) === BOUNTY_POOL)?.balance ?? 0);
  const results: Array<SettledJob | undefined> = [];
  const txRows: { id: string; reservationId: string; consumer: string; memo: string }[] = [];
  const entries: BatchEntry[] = [];
  claims.forEach((c, i) => {
    if (!c) return void results.push(undefined);
    const entry = asks[i]!.entry;
    const reservationId = entry.reservationId!;
    const job = jobSettlement({
      receipt: entry.receipt,
      reservationId,
      consumerAccountId: c.consumer,
      providerAccountId: entry.providerAccountId,
      reserved: c.reserved,
      discountBps: c.discountBps,
      ...(entry.terms ? { terms: entry.terms } : {}),
      poolBalance: pool,
    });
    pool += job.poolChange;
    const txId = ledgerId("tx");
    txRows.push({ id: txId, reservationId, consumer: c.consumer, memo: JSON.stringify(job.posting.memo) });
    for (const l of writtenLegs(job.posting.legs)) entries.push({ txId, ...l });
    results.push(job.settled);
  });
  await writeSettlements(tx, txRows, entries, new Set(locked.map((r) => String(r.id))), now);
  const settled = results.filter((r): r is SettledJob => r !== undefined);
  await tx.run(
    "UPDATE reservations AS r SET charged = v.charge FROM unnest(CAST(? AS TEXT[]), CAST(? AS BIGINT[])) AS v(id, charge) WHERE r.id = v.id",
    [settled.map((r) => r.reservationId), text(settled.map((r) => r.charge))],
  );
  return results;
}

/** Writes the settle transactions of a batch: accounts that do not exist yet, the transactions, every guarded balance, every entry. */
async function writeSettlements(
  tx: SqlExecutor,
  txRows: ReadonlyArray<{ id: string; reservationId: string; consumer: string; memo: string }>,
  entries: readonly BatchEntry[],
  exists: ReadonlySet<string>,
  now: number,
): Promise<void> {
  const missing = [...new Set(entries.map((e) => e.account))].filter((id) => !exists.has(id)).sort();
  if (missing.length > 0) {
    const kinds = missing.map(kindOf);
    await tx.run(
      `INSERT INTO ledger_accounts (id, kind, owner, balance, may_go_negative, created_at)
       SELECT m.id, m.kind, NULLIF(m.owner, ''), 0, m.neg, ? FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS INTEGER[])) AS m(id, kind, owner, neg)
       ON CONFLICT (id) DO NOTHING`,
      [now, missing, kinds.map((k) => k.kind), kinds.map((k) => k.owner ?? ""), kinds.map((k) => (k.mayGoNegative ? "1" : "0"))],
    );
  }
  await tx.run(
    `INSERT INTO ledger_transactions (id, idempotency_key, kind, account_id, ref, memo, created_at)
     SELECT t.id, 'settle:' || t.ref, 'settle', t.account_id, t.ref, t.memo, ? FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[])) AS t(id, ref, account_id, memo)`,
    [now, txRows.map((t) => t.id), txRows.map((t) => t.reservationId), txRows.map((t) => t.consumer), txRows.map((t) => t.memo)],
  );
  const moved = await moveBalances(tx, entries, true);
  if (moved.moved !== moved.expected) throw new Error(`a settlement batch moved ${moved.moved} of ${moved.expected} balances`);
  await insertEntries(tx, entries);
}

/** Every receipt of the batch, settled or not. */
async function insertReceipts(
  tx: SqlExecutor,
  asks: readonly RecordAsk[],
  results: ReadonlyArray<SettledJob | undefined>,
  now: number,
): Promise<void> {
  const col = <T>(f: (a: RecordAsk, i: number) => T) => asks.map(f);
  await tx.run(
    `INSERT INTO receipts (job_id, node_id, seq, consumer_account_id, provider_account_id, cost, body, created_at, reservation_id, provider_share, payout_bounty, payout_reduction)
     SELECT r.job_id, r.node_id, r.seq, NULLIF(r.consumer, ''), r.provider, r.cost, r.body, ?, NULLIF(r.reservation, ''), r.share, r.bounty, r.reduction
       FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS BIGINT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]),
                   CAST(? AS TEXT[]), CAST(? AS BIGINT[]), CAST(? AS BIGINT[]), CAST(? AS BIGINT[]))
         AS r(job_id, node_id, seq, consumer, provider, cost, body, reservation, share, bounty, reduction)`,
    [
      now,
      col((a) => a.entry.receipt.jobId),
      col((a) => a.entry.receipt.nodeId),
      col((a) => String(a.entry.receipt.seq)),
      col((a) => a.entry.consumerAccountId ?? ""),
      col((a) => a.entry.providerAccountId),
      col((a) => a.entry.receipt.cost),
      col((a) => JSON.stringify(a.entry.receipt)),
      col((_a, i) => (results[i] ? results[i].reservationId : "")),
      col((_a, i) => (results[i]?.provider ?? 0n).toString()),
      col((_a, i) => (results[i]?.bounty ?? 0n).toString()),
      col((_a, i) => (results[i]?.reduction ?? 0n).toString()),
    ],
  );
}

/** Each node's highest position of the batch (positions move forward only). */
async function advancePositions(tx: SqlExecutor, asks: readonly RecordAsk[]): Promise<void> {
  const highest = new Map<string, RecordAsk["entry"]["receipt"]>();
  for (const a of asks) {
    const r = a.entry.receipt;
    if ((highest.get(r.nodeId)?.seq ?? -1) < r.seq) highest.set(r.nodeId, r);
  }
  const tops = [...highest.values()];
  await tx.run(
    `INSERT INTO node_positions (node_id, last_seq, totals) SELECT * FROM unnest(CAST(? AS TEXT[]), CAST(? AS BIGINT[]), CAST(? AS TEXT[]))
     ON CONFLICT (node_id) DO UPDATE SET last_seq = excluded.last_seq, totals = excluded.totals WHERE node_positions.last_seq < excluded.last_seq`,
    [tops.map((r) => r.nodeId), tops.map((r) => String(r.seq)), tops.map((r) => JSON.stringify(r.totals))],
  );
}
