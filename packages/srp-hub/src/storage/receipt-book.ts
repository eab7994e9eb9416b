/**
 * The countersigned receipts of a `SqlStore` and each node's recorded position
 * (SRP-ATT-010). Recording a receipt that names a reservation settles it in the same
 * transaction ({@link jobSettlement}); on PostgreSQL the receipts of one event-loop turn
 * are recorded in one set-based transaction (`pg-batch.ts`).
 */
import { closeKeySpend } from "./key-spend.js";
import { INITIAL_POSITION, type ReceiptPosition } from "@srp/core";
import type { Receipt, ReceiptTotals } from "@srp/core/schema";
import { BOUNTY_POOL, post } from "../ledger/ledger.js";
import { jobSettlement, type SettledJob } from "../ledger/postings.js";
import type { ReceiptBook, StoredReceipt } from "../receipts.js";
import { recordBatch } from "./pg-batch.js";
import { lostDatabase } from "./postgres-driver.js";
import { big, int, type SqlDriver, type SqlExecutor, type SqlRow } from "./sql.js";
import { TurnBatcher } from "./turn-batcher.js";

function storedReceipt(r: SqlRow): StoredReceipt {
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

/** Receipts, positions and gaps of a `SqlStore`; recording a billed receipt settles its reservation. */
export class SqlReceiptBook implements ReceiptBook {
  readonly #db: SqlDriver;
  readonly #ready: Promise<void>;
  /** Node positions, cached once read (one session per node writes them). */
  readonly #positions = new Map<string, ReceiptPosition>();
  /** PostgreSQL: receipts batched per turn of the event loop. */
  readonly #records: TurnBatcher<StoredReceipt, SettledJob | undefined> | undefined;

  /** @param ready resolves once the store's migrations have run. */
  constructor(db: SqlDriver, ready: Promise<void>) {
    this.#db = db;
    this.#ready = ready;
    if (db.dialect === "postgres") {
      this.#records = new TurnBatcher(
        async (entries) => {
          const results = await this.#db.transaction((tx) =>
            recordBatch(
              tx,
              entries.map((entry) => ({ entry })),
              Date.now(),
            ),
          );
          for (const e of entries) this.#advance(e.receipt);
          return results;
        },
        (entry) => this.#recordOne(entry),
        { oneByOne: (error) => !lostDatabase(error) },
      );
    }
  }

  /** Forgets a node's cached position (another hub process records its receipts now): read from the table next time. */
  forgetPosition(nodeId: string): void {
    this.#positions.delete(nodeId);
  }

  async position(nodeId: string): Promise<ReceiptPosition> {
    const cached = this.#positions.get(nodeId);
    if (cached) return cached;
    await this.#ready;
    const rows = await this.#db.all("SELECT last_seq, totals FROM node_positions WHERE node_id = ?", [nodeId]);
    const pos = rows[0]
      ? { lastSeq: int(rows[0].last_seq), totals: JSON.parse(String(rows[0].totals)) as ReceiptTotals }
      : INITIAL_POSITION;
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
    const settled = await this.#db.transaction(async (tx) => {
      const job = entry.reservationId === undefined ? undefined : await this.#settle(tx, entry, entry.reservationId, now);
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
          job ? job.reservationId : null,
          job ? job.provider : 0n,
          job ? job.bounty : 0n,
          job ? job.reduction : 0n,
        ],
      );
      await tx.run(
        "INSERT INTO node_positions (node_id, last_seq, totals) VALUES (?, ?, ?) ON CONFLICT (node_id) DO UPDATE SET last_seq = excluded.last_seq, totals = excluded.totals WHERE node_positions.last_seq < excluded.last_seq",
        [r.nodeId, r.seq, JSON.stringify(r.totals)],
      );
      return job;
    });
    this.#advance(r);
    return settled;
  }

  /** Claims the reservation and posts its settlement inside `tx`; undefined when it was already settled or released. */
  async #settle(tx: SqlExecutor, entry: StoredReceipt, reservationId: string, now: number): Promise<SettledJob | undefined> {
    // Claim the reservation first: the conditional update waits for a concurrent claim and
    // then sees its result, so a reservation is settled or released exactly once.
    const res = (
      await tx.all(
        "UPDATE reservations SET state = 'settled', job_id = ?, closed_at = ? WHERE id = ? AND state = 'open' RETURNING account_id, amount, discount_bps, key_id, created_at",
        [entry.receipt.jobId, now, reservationId],
      )
    )[0];
    if (!res) return undefined;
    // The pool's row is locked first (PostgreSQL), so concurrent bounties never overdraw it.
    const poolRows = await tx.all(
      `SELECT balance FROM ledger_accounts WHERE id = ?${this.#db.dialect === "postgres" ? " FOR UPDATE" : ""}`,
      [BOUNTY_POOL],
    );
    const job = jobSettlement({
      receipt: entry.receipt,
      reservationId,
      consumerAccountId: String(res.account_id),
      providerAccountId: entry.providerAccountId,
      reserved: big(res.amount),
      discountBps: int(res.discount_bps),
      ...(entry.terms ? { terms: entry.terms } : {}),
      poolBalance: poolRows[0] ? big(poolRows[0].balance) : 0n,
    });
    await post(tx, job.posting, { now, dialect: this.#db.dialect });
    await tx.run("UPDATE reservations SET charged = ? WHERE id = ?", [job.settled.charge, reservationId]);
    // The key's spending: the hold out, the charge in (SRP-CON-085).
    if (res.key_id !== null) await closeKeySpend(tx, String(res.key_id), int(res.created_at), big(res.amount), job.settled.charge);
    return job.settled;
  }

  async get(jobId: string): Promise<StoredReceipt | undefined> {
    await this.#ready;
    const rows = await this.#db.all("SELECT * FROM receipts WHERE job_id = ?", [jobId]);
    return rows[0] ? storedReceipt(rows[0]) : undefined;
  }

  async recordGap(nodeId: string, from: number, to: number): Promise<void> {
    await this.#ready;
    await this.#db.run(
      "INSERT INTO receipt_gaps (node_id, from_seq, to_seq, noted_at) VALUES (?, ?, ?, ?) ON CONFLICT (node_id, from_seq) DO NOTHING",
      [nodeId, from, to, Date.now()],
    );
  }

  async gaps(nodeId: string): Promise<{ from: number; to: number }[]> {
    await this.#ready;
    return (await this.#db.all("SELECT from_seq, to_seq FROM receipt_gaps WHERE node_id = ? ORDER BY from_seq", [nodeId])).map((r) => ({
      from: int(r.from_seq),
      to: int(r.to_seq),
    }));
  }
}
