/**
 * Set-based reservations and settlements for PostgreSQL: the `reserve` (or `record`)
 * calls batched by `turn-batcher.ts` become one database transaction of a fixed number of
 * round trips, whatever the batch's size: the rows locked in id order, then every
 * reservation, transaction, balance, entry and receipt written with `unnest` in one
 * combined statement ({@link combinedWrite}); four round trips for a batch of reservations
 * (BEGIN, lock, write, COMMIT) and five for a batch of receipts (BEGIN, claim, lock, write,
 * COMMIT), plus one the first time an account is moved. The admission rule is the same
 * as one at a time, applied in arrival order under the rows' locks: a request is admitted
 * while the account's spendable balance covers it. `SqlStore`'s books use it on
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
  type ReserveKey,
  type ReserveResult,
} from "../ledger/ledger.js";
import { budgetExceeded, periodsAt, type SpendPeriodKind } from "../keys/policy.js";
import { discountFor, prepaidOf, type DiscountTier } from "../ledger/policy.js";
import { jobSettlement, reservePosting, type SettledJob } from "../ledger/postings.js";
import type { StoredReceipt } from "../receipts.js";
import { big, int, type SqlExecutor, type SqlValue } from "./sql.js";

/** One reservation asked for. */
export interface ReserveAsk {
  reservationId: string;
  accountId: string;
  amount: bigint;
  /** The API key it is made with (its spending counted, its budget enforced). */
  key?: ReserveKey;
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
  // The budgeted keys' spending rows, locked after the accounts (the order of one at a time).
  const used = await lockKeySpend(tx, asks, ctx.now);
  // Admission in arrival order, under the locks: the balance covers it and the key's budget allows it.
  const results: ReserveResult[] = [];
  const admitted: ReserveAsk[] = [];
  for (const ask of asks) {
    const left = spendable.get(ask.accountId)!;
    if (ask.amount > left) {
      results.push({ ok: false, available: left });
      continue;
    }
    const keyUsed = ask.key ? used.get(ask.key.keyId) : undefined;
    const over = ask.key && keyUsed ? budgetExceeded(ask.key.budget, keyUsed, ask.amount) : undefined;
    if (over) {
      results.push({ ok: false, available: left, keyBudget: over });
      continue;
    }
    if (keyUsed) for (const k of PERIOD_KINDS) keyUsed[k] = (keyUsed[k] ?? 0n) + ask.amount;
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
  const txIds = admitted.map(() => ledgerId("tx"));
  // Every balance moved once, by its summed delta (each account: user −total, hold +total).
  const entries = admitted.flatMap((a, i) =>
    reservePosting(a.reservationId, a.accountId, a.amount).legs.map((l) => ({ txId: txIds[i]!, ...l })),
  );
  const balances = moveBalances(entries, false);
  // One statement (one round trip) for every row of the batch.
  const moved = await writeAll(tx, [
    [
      "reservations",
      `INSERT INTO reservations (id, account_id, amount, discount_bps, holder, state, created_at, key_id)
       SELECT r.id, r.account_id, r.amount, r.bps, ?, 'open', ?, r.key_id FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS BIGINT[]), CAST(? AS INTEGER[]), CAST(? AS TEXT[])) AS r(id, account_id, amount, bps, key_id)`,
      [
        ctx.processId,
        ctx.now,
        admitted.map((a) => a.reservationId),
        admitted.map((a) => a.accountId),
        text(admitted.map((a) => a.amount)),
        text(admitted.map((a) => bps.get(a.accountId)!)),
        admitted.map((a) => a.key?.keyId ?? null),
      ],
    ],
    [
      "transactions",
      `INSERT INTO ledger_transactions (id, idempotency_key, kind, account_id, ref, memo, created_at)
       SELECT t.id, 'reserve:' || t.ref, 'reserve', t.account_id, t.ref, NULL, ? FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[])) AS t(id, ref, account_id)`,
      [ctx.now, txIds, admitted.map((a) => a.reservationId), admitted.map((a) => a.accountId)],
    ],
    balances.part,
    insertEntries(entries),
    ...holdKeySpendPart(admitted, ctx.now),
  ]);
  if (moved !== balances.expected) throw new Error(`a reservation batch moved ${moved} of ${balances.expected} balances`);
  return results;
}

const PERIOD_KINDS = ["total", "day", "month"] as const;

/**
 * Creates (when missing) and locks, in (key, period) order, the spending rows of the
 * budgeted keys among `asks` for the periods of `now`; answers each key's held plus spent
 * amount per period kind.
 */
async function lockKeySpend(
  tx: SqlExecutor,
  asks: readonly ReserveAsk[],
  now: number,
): Promise<Map<string, Partial<Record<SpendPeriodKind, bigint>>>> {
  const used = new Map<string, Partial<Record<SpendPeriodKind, bigint>>>();
  const budgeted = [...new Set(asks.filter((a) => a.key && hasCap(a.key)).map((a) => a.key!.keyId))].sort();
  if (budgeted.length === 0) return used;
  const p = periodsAt(now);
  const keys = budgeted.flatMap((k) => PERIOD_KINDS.map(() => k));
  const periods = budgeted.flatMap(() => PERIOD_KINDS.map((kind) => p[kind]));
  await tx.run(
    `INSERT INTO api_key_spend (key_id, period) SELECT k, p FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[])) AS v(k, p) ORDER BY k, p
     ON CONFLICT (key_id, period) DO NOTHING`,
    [keys, periods],
  );
  const rows = await tx.all(
    `SELECT s.key_id, s.period, s.reserved, s.spent FROM api_key_spend s JOIN unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[])) AS v(k, p)
       ON s.key_id = v.k AND s.period = v.p ORDER BY s.key_id, s.period FOR UPDATE OF s`,
    [keys, periods],
  );
  for (const r of rows) {
    const kind = PERIOD_KINDS.find((k) => p[k] === String(r.period));
    if (!kind) continue;
    const m = used.get(String(r.key_id)) ?? {};
    m[kind] = big(r.reserved) + big(r.spent);
    used.set(String(r.key_id), m);
  }
  return used;
}

function hasCap(key: ReserveKey): boolean {
  return key.budget.total !== null || key.budget.day !== null || key.budget.month !== null;
}

/** Orders per-(key, period) sums by key, then period: the order the rows are written in. */
const byKeyPeriod = (x: { keyId: string; period: string }, y: { keyId: string; period: string }): number =>
  x.keyId < y.keyId ? -1 : x.keyId > y.keyId ? 1 : x.period < y.period ? -1 : x.period > y.period ? 1 : 0;

/** Adds `amount` per (key, period) to a sum map (pure helper). */
function addTo(
  sums: Map<string, { keyId: string; period: string; a: bigint; b: bigint; n: number }>,
  keyId: string,
  period: string,
  a: bigint,
  b: bigint,
): void {
  const id = `${keyId}\n${period}`;
  const s = sums.get(id) ?? { keyId, period, a: 0n, b: 0n, n: 0 };
  s.a += a;
  s.b += b;
  s.n += 1;
  sums.set(id, s);
}

/** The admitted keyed reservations' spending, summed per (key, period), as a part of the combined write (none without keys). */
function holdKeySpendPart(admitted: readonly ReserveAsk[], now: number): WritePart[] {
  const sums = new Map<string, { keyId: string; period: string; a: bigint; b: bigint; n: number }>();
  const p = periodsAt(now);
  for (const ask of admitted) if (ask.key) for (const k of PERIOD_KINDS) addTo(sums, ask.key.keyId, p[k], ask.amount, 0n);
  if (sums.size === 0) return [];
  const rows = [...sums.values()].sort(byKeyPeriod);
  return [
    [
      "key_spend",
      `INSERT INTO api_key_spend (key_id, period, reserved, spent, requests)
       SELECT k, p, r, 0, n FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS BIGINT[]), CAST(? AS BIGINT[])) AS v(k, p, r, n)
       ON CONFLICT (key_id, period) DO UPDATE SET reserved = api_key_spend.reserved + excluded.reserved, requests = api_key_spend.requests + excluded.requests`,
      [rows.map((r) => r.keyId), rows.map((r) => r.period), text(rows.map((r) => r.a)), text(rows.map((r) => r.n))],
    ],
  ];
}

/** The settled keyed reservations' spending moved from held to spent, summed per (key, period), as a part of the combined write. */
function closeKeySpendPart(closed: ReadonlyArray<{ keyId: string; heldAt: number; reserved: bigint; charged: bigint }>): WritePart[] {
  const sums = new Map<string, { keyId: string; period: string; a: bigint; b: bigint; n: number }>();
  for (const c of closed) {
    const p = periodsAt(c.heldAt);
    for (const k of PERIOD_KINDS) addTo(sums, c.keyId, p[k], c.reserved, c.charged);
  }
  if (sums.size === 0) return [];
  const rows = [...sums.values()].sort(byKeyPeriod);
  return [
    [
      "key_spend",
      `UPDATE api_key_spend AS s SET reserved = s.reserved - v.r, spent = s.spent + v.c
         FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS BIGINT[]), CAST(? AS BIGINT[])) AS v(k, p, r, c)
        WHERE s.key_id = v.k AND s.period = v.p`,
      [rows.map((r) => r.keyId), rows.map((r) => r.period), text(rows.map((r) => r.a)), text(rows.map((r) => r.b))],
    ],
  ];
}

/** One ledger entry of a batch. */
interface BatchEntry extends Leg {
  txId: string;
}

/**
 * One data-modifying statement of a combined write: its name in the `WITH` list, its SQL
 * with `?` placeholders, and its parameters in order.
 */
export type WritePart = readonly [name: string, sql: string, params: readonly SqlValue[]];

/** The name of the balance update in a combined write: the rows it returns are the balances it moved. */
const MOVED = "balances";

/**
 * Several data-modifying statements as one (pure): each becomes an entry of a `WITH` list,
 * and the statement returns, as `moved`, how many balances the {@link MOVED} part moved (0
 * without one). PostgreSQL runs every entry exactly once and checks the foreign keys at the
 * end of the statement, so entries may reference rows another entry inserts; they see the
 * same snapshot, so no two entries may write the same row.
 */
export function combinedWrite(parts: readonly WritePart[]): { sql: string; params: SqlValue[] } {
  const names = new Set(parts.map(([name]) => name));
  if (names.size !== parts.length) throw new Error("combinedWrite: two parts with one name");
  const moved = names.has(MOVED) ? `(SELECT count(*) FROM ${MOVED})` : "0";
  return {
    sql: `WITH ${parts.map(([name, sql]) => `${name} AS (${sql})`).join(",\n")}\nSELECT ${moved} AS moved`,
    params: parts.flatMap(([, , params]) => params),
  };
}

/** Runs a {@link combinedWrite} in one round trip; resolves to the number of balances it moved. */
async function writeAll(tx: SqlExecutor, parts: readonly WritePart[]): Promise<number> {
  const { sql, params } = combinedWrite(parts);
  const rows = await tx.all(sql, params);
  return int(rows[0]?.moved ?? 0);
}

/**
 * Adds each account's summed delta to its balance (`guarded`: accounts that may not go
 * negative move only if they stay at or above zero), as the {@link MOVED} part of a
 * combined write; `expected` is how many balances it must move.
 */
function moveBalances(entries: readonly BatchEntry[], guarded: boolean): { part: WritePart; expected: number } {
  const delta = new Map<string, bigint>();
  for (const e of entries) delta.set(e.account, (delta.get(e.account) ?? 0n) + e.amount);
  const part: WritePart = [
    MOVED,
    `UPDATE ledger_accounts AS a SET balance = a.balance + v.d
       FROM unnest(CAST(? AS TEXT[]), CAST(? AS BIGINT[])) AS v(id, d)
      WHERE a.id = v.id${guarded ? " AND (a.may_go_negative = 1 OR a.balance + v.d >= 0)" : ""}
      RETURNING a.id`,
    [[...delta.keys()], text([...delta.values()])],
  ];
  return { part, expected: delta.size };
}

/** The entries of a batch, as a part of a combined write. */
function insertEntries(entries: readonly BatchEntry[]): WritePart {
  return [
    "entries",
    `INSERT INTO ledger_entries (tx_id, account_id, amount) SELECT * FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS BIGINT[]))`,
    [entries.map((e) => e.txId), entries.map((e) => e.account), text(entries.map((e) => e.amount))],
  ];
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
  /** The API key the reservation was made with, and when (its spending periods). */
  keyId?: string;
  heldAt?: number;
}

/** Records a batch of countersigned receipts and settles their reservations, in the caller's transaction; one result per ask, in order. */
export async function recordBatch(tx: SqlExecutor, asks: readonly RecordAsk[], now: number): Promise<Array<SettledJob | undefined>> {
  const { claims, locked } = await claimAndLock(tx, asks, now);
  const settled = await settleClaims(tx, asks, claims, locked, now);
  // One statement (one round trip) for every row of the batch.
  const moved = await writeAll(tx, [...settled.parts, insertReceipts(asks, settled.results, now), advancePositions(asks)]);
  if (moved !== settled.expected) throw new Error(`a settlement batch moved ${moved} of ${settled.expected} balances`);
  return settled.results;
}

/** The accounts a settlement moves, in the ledger's ids (pure). */
function settlementAccounts(consumer: string, provider: string): string[] {
  return [holdAccount(consumer), userAccount(consumer), userAccount(provider), PLATFORM, BOUNTY_POOL];
}

/** The claims of a batch and the balances of the accounts locked for their settlements (those that exist). */
interface ClaimsAndLocks {
  claims: Array<Claim | undefined>;
  locked: Map<string, bigint>;
}

/**
 * Claims each reservation once, for the first receipt that names it (as one at a time
 * would), and locks, in id order and in the same round trip, every account the settlements
 * will move as the receipts name their consumer; should a claimed reservation belong to
 * another account than its receipt names, that account is locked by one more statement.
 */
async function claimAndLock(tx: SqlExecutor, asks: readonly RecordAsk[], now: number): Promise<ClaimsAndLocks> {
  const firstFor = new Map<string, number>();
  asks.forEach((a, i) => {
    const id = a.entry.reservationId;
    if (id !== undefined && !firstFor.has(id)) firstFor.set(id, i);
  });
  const claimIds = [...firstFor.keys()];
  const locked = new Map<string, bigint>();
  if (claimIds.length === 0) return { claims: asks.map(() => undefined), locked };
  const expected = new Set<string>();
  for (const i of firstFor.values()) {
    const { consumerAccountId, providerAccountId } = asks[i]!.entry;
    if (consumerAccountId !== undefined) for (const id of settlementAccounts(consumerAccountId, providerAccountId)) expected.add(id);
  }
  // The claim first, then the locks (the order of one at a time): Append reads its branches in order.
  const rows = await tx.all(
    `WITH claimed AS (
       UPDATE reservations AS r SET state = 'settled', job_id = v.job_id, closed_at = ?
         FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[])) AS v(id, job_id)
        WHERE r.id = v.id AND r.state = 'open'
        RETURNING r.id, r.account_id, r.amount, r.discount_bps, r.key_id, r.created_at),
     locked AS (SELECT id, balance FROM ledger_accounts WHERE id = ANY(CAST(? AS TEXT[])) ORDER BY id FOR UPDATE)
     SELECT 'claim' AS row_kind, id, account_id, amount, discount_bps, CAST(NULL AS BIGINT) AS balance, key_id, created_at FROM claimed
     UNION ALL
     SELECT 'lock', id, NULL, NULL, NULL, balance, NULL, NULL FROM locked`,
    [now, claimIds, claimIds.map((id) => asks[firstFor.get(id)!]!.entry.receipt.jobId), [...expected].sort()],
  );
  const claimed = new Map<string, Claim>();
  for (const r of rows) {
    if (r.row_kind === "lock") locked.set(String(r.id), big(r.balance));
    else
      claimed.set(String(r.id), {
        consumer: String(r.account_id),
        reserved: big(r.amount),
        discountBps: int(r.discount_bps),
        ...(r.key_id === null ? {} : { keyId: String(r.key_id), heldAt: int(r.created_at) }),
      });
  }
  const claims = asks.map((a, i) =>
    a.entry.reservationId !== undefined && firstFor.get(a.entry.reservationId) === i ? claimed.get(a.entry.reservationId) : undefined,
  );
  const extra = new Set<string>();
  claims.forEach((c, i) => {
    if (c) for (const id of settlementAccounts(c.consumer, asks[i]!.entry.providerAccountId)) if (!expected.has(id)) extra.add(id);
  });
  if (extra.size > 0) {
    const more = await tx.all("SELECT id, balance FROM ledger_accounts WHERE id = ANY(CAST(? AS TEXT[])) ORDER BY id FOR UPDATE", [
      [...extra].sort(),
    ]);
    for (const r of more) locked.set(String(r.id), big(r.balance));
  }
  return { claims, locked };
}

/** The settlements of a batch: one result per ask, the parts that write them, and how many balances they must move. */
interface Settlements {
  results: Array<SettledJob | undefined>;
  parts: WritePart[];
  expected: number;
}

/**
 * Posts each settlement in arrival order, the pool carried from one to the next, over the
 * accounts {@link claimAndLock} locked (`locked`: their balances), and creates those that
 * do not exist yet; the rows are written by the returned parts, in the batch's combined write.
 */
async function settleClaims(
  tx: SqlExecutor,
  asks: readonly RecordAsk[],
  claims: ReadonlyArray<Claim | undefined>,
  locked: ReadonlyMap<string, bigint>,
  now: number,
): Promise<Settlements> {
  if (claims.every((c) => c === undefined)) return { results: claims.map(() => undefined), parts: [], expected: 0 };
  let pool = locked.get(BOUNTY_POOL) ?? 0n;
  const results: Array<SettledJob | undefined> = [];
  const txRows: SettleRow[] = [];
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
  await createMissingAccounts(tx, entries, new Set(locked.keys()), now);
  const balances = moveBalances(entries, true);
  const charged = results.filter((r): r is SettledJob => r !== undefined);
  const parts: WritePart[] = [
    [
      "transactions",
      `INSERT INTO ledger_transactions (id, idempotency_key, kind, account_id, ref, memo, created_at)
       SELECT t.id, 'settle:' || t.ref, 'settle', t.account_id, t.ref, t.memo, ? FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[])) AS t(id, ref, account_id, memo)`,
      [now, txRows.map((t) => t.id), txRows.map((t) => t.reservationId), txRows.map((t) => t.consumer), txRows.map((t) => t.memo)],
    ],
    balances.part,
    insertEntries(entries),
    [
      "charged",
      "UPDATE reservations AS r SET charged = v.charge FROM unnest(CAST(? AS TEXT[]), CAST(? AS BIGINT[])) AS v(id, charge) WHERE r.id = v.id",
      [charged.map((r) => r.reservationId), text(charged.map((r) => r.charge))],
    ],
    ...closeKeySpendPart(
      claims.flatMap((c, i) =>
        c?.keyId !== undefined ? [{ keyId: c.keyId, heldAt: c.heldAt!, reserved: c.reserved, charged: results[i]!.charge }] : [],
      ),
    ),
  ];
  return { results, parts, expected: balances.expected };
}

/** One settle transaction of a batch. */
interface SettleRow {
  id: string;
  reservationId: string;
  consumer: string;
  memo: string;
}

/** Creates the accounts the entries move that do not exist yet (before the combined write, whose balance update must find them). */
async function createMissingAccounts(
  tx: SqlExecutor,
  entries: readonly BatchEntry[],
  exists: ReadonlySet<string>,
  now: number,
): Promise<void> {
  const missing = [...new Set(entries.map((e) => e.account))].filter((id) => !exists.has(id)).sort();
  if (missing.length === 0) return;
  const kinds = missing.map(kindOf);
  await tx.run(
    `INSERT INTO ledger_accounts (id, kind, owner, balance, may_go_negative, created_at)
     SELECT m.id, m.kind, NULLIF(m.owner, ''), 0, m.neg, ? FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS INTEGER[])) AS m(id, kind, owner, neg)
     ON CONFLICT (id) DO NOTHING`,
    [now, missing, kinds.map((k) => k.kind), kinds.map((k) => k.owner ?? ""), kinds.map((k) => (k.mayGoNegative ? "1" : "0"))],
  );
}

/** Every receipt of the batch, settled or not, as a part of a combined write. */
function insertReceipts(asks: readonly RecordAsk[], results: ReadonlyArray<SettledJob | undefined>, now: number): WritePart {
  const col = <T>(f: (a: RecordAsk, i: number) => T) => asks.map(f);
  return [
    "receipts",
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
  ];
}

/** Each node's highest position of the batch (positions move forward only), as a part of a combined write. */
function advancePositions(asks: readonly RecordAsk[]): WritePart {
  const highest = new Map<string, RecordAsk["entry"]["receipt"]>();
  for (const a of asks) {
    const r = a.entry.receipt;
    if ((highest.get(r.nodeId)?.seq ?? -1) < r.seq) highest.set(r.nodeId, r);
  }
  const tops = [...highest.values()];
  return [
    "positions",
    `INSERT INTO node_positions (node_id, last_seq, totals) SELECT * FROM unnest(CAST(? AS TEXT[]), CAST(? AS BIGINT[]), CAST(? AS TEXT[]))
     ON CONFLICT (node_id) DO UPDATE SET last_seq = excluded.last_seq, totals = excluded.totals WHERE node_positions.last_seq < excluded.last_seq`,
    [tops.map((r) => r.nodeId), tops.map((r) => String(r.seq)), tops.map((r) => JSON.stringify(r.totals))],
  ];
}
