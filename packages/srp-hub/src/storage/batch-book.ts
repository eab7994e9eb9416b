/**
 * Batches on SQLite and PostgreSQL (`store.batches` of a `SqlStore`), in the `batches` table
 * of migration 8, so every process of a hub answers `GET /v1/jobs/{id}` and counts the same
 * batches against the caps. The process that admitted a batch (its `holder`, the ledger's
 * process id) writes its state; only while it holds the batch and the batch runs. When a
 * holder stops (its `hub_processes` heartbeat is stale, as for its reservations), another
 * process's reconcile takes the batch over, releases the reservations of its unfinished
 * items, and ends it: those items fail unbilled, and one billed before the stop keeps its
 * charge (see `abandonBatch`). No item runs twice, and a late answer bills nothing.
 */
import { abandonBatch, batchExpiry, type BatchRecord, type BatchStore, type ItemOutcome, type KeptBatches } from "../api/batch-store.js";
import type { BatchObject } from "@srp/core/schema";
import { PROCESS_STALE_MS } from "./ledger-book.js";
import { big, int, text, type SqlDriver, type SqlRow } from "./sql.js";
import { sweepInBatches } from "./wallet-book.js";

/** What the batch book needs of the ledger: this process's id (the holder of what it runs) and releasing a reservation. */
export interface BatchLedger {
  /** This process, as the holder of its reservations and batches. */
  readonly processId: string;
  /** Returns a reservation's money to its account unless it is already settled or released; true when this call released it. */
  release(reservationId: string, reason: string): Promise<boolean>;
}

/** Why the reservation of an item of a stopped process's batch is released. */
const RELEASE_REASON = "the hub process running the batch item stopped";

function record(r: SqlRow): BatchRecord {
  return {
    view: JSON.parse(String(r.state)) as BatchObject,
    accountId: String(r.account_id),
    keyed: int(r.keyed) === 1,
    reservationIds: JSON.parse(String(r.reservations)) as string[],
  };
}

/** The batches of a `SqlStore`. */
export class SqlBatchBook implements BatchStore {
  readonly #db: SqlDriver;
  readonly #ready: Promise<void>;
  readonly #ledger: BatchLedger;

  /** @param ready resolves once the store's migrations have run. @param ledger the store's ledger (process id, releases). */
  constructor(db: SqlDriver, ready: Promise<void>, ledger: BatchLedger) {
    this.#db = db;
    this.#ready = ready;
    this.#ledger = ledger;
  }

  async add(r: BatchRecord, now = Date.now()): Promise<void> {
    await this.#ready;
    await this.#db.run(
      "INSERT INTO batches (id, account_id, keyed, holder, reservations, state, created_at, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      [
        r.view.id,
        r.accountId,
        r.keyed ? 1 : 0,
        this.#ledger.processId,
        JSON.stringify(r.reservationIds),
        JSON.stringify(r.view),
        now,
        now,
        batchExpiry(r.view) ?? null,
      ],
    );
  }

  async update(view: BatchObject, now = Date.now()): Promise<boolean> {
    await this.#ready;
    // Only the holder writes, and only while the batch runs: a batch another process ended stays as it ended it.
    const changed = await this.#db.run(
      "UPDATE batches SET state = ?, updated_at = ?, expires_at = ? WHERE id = ? AND holder = ? AND expires_at IS NULL",
      [JSON.stringify(view), now, batchExpiry(view) ?? null, view.id, this.#ledger.processId],
    );
    return changed === 1;
  }

  async get(id: string, now = Date.now()): Promise<BatchRecord | undefined> {
    await this.#ready;
    const rows = await this.#db.all(
      "SELECT account_id, keyed, reservations, state FROM batches WHERE id = ? AND (expires_at IS NULL OR expires_at > ?)",
      [id, now],
    );
    return rows[0] ? record(rows[0]) : undefined;
  }

  async kept(accountId: string, now = Date.now()): Promise<KeptBatches> {
    await this.#ready;
    const [account, total] = await Promise.all([
      this.#db.all("SELECT COUNT(*) AS n FROM batches WHERE account_id = ? AND (expires_at IS NULL OR expires_at > ?)", [accountId, now]),
      this.#db.all("SELECT COUNT(*) AS n FROM batches WHERE expires_at IS NULL OR expires_at > ?", [now]),
    ]);
    return { account: int(account[0]?.n ?? 0), total: int(total[0]?.n ?? 0) };
  }

  async sweep(now = Date.now()): Promise<number> {
    await this.#ready;
    return sweepInBatches(this.#db, "DELETE FROM batches WHERE id IN (SELECT id FROM batches WHERE expires_at <= ? LIMIT ?)", [now]);
  }

  async reconcile(options: { retentionMs: number; all?: boolean; now?: number }): Promise<string[]> {
    await this.#ready;
    const now = options.now ?? Date.now();
    const me = this.#ledger.processId;
    const everyOther = options.all ?? this.#db.dialect === "sqlite";
    const rows = everyOther
      ? await this.#db.all("SELECT id, holder FROM batches WHERE expires_at IS NULL AND holder <> ?", [me])
      : await this.#db.all(
          "SELECT b.id, b.holder FROM batches b LEFT JOIN hub_processes p ON p.id = b.holder WHERE b.expires_at IS NULL AND b.holder <> ? AND (p.id IS NULL OR p.seen_at < ?)",
          [me, now - PROCESS_STALE_MS],
        );
    const ended: string[] = [];
    for (const row of rows) {
      if (await this.#takeOver(String(row.id), String(row.holder), now, options.retentionMs)) ended.push(String(row.id));
    }
    return ended;
  }

  /**
   * Takes a stopped process's batch over (one process wins: the holder changes only from the
   * stopped one), releases its unfinished items' reservations, and writes it ended. If this
   * process stops half-way, the batch is still unended and held by a process that stopped:
   * the next reconcile finishes the work (releases are idempotent).
   */
  async #takeOver(id: string, stopped: string, now: number, retentionMs: number): Promise<boolean> {
    const me = this.#ledger.processId;
    const claimed = await this.#db.run("UPDATE batches SET holder = ?, updated_at = ? WHERE id = ? AND holder = ? AND expires_at IS NULL", [
      me,
      now,
      id,
      stopped,
    ]);
    if (claimed !== 1) return false;
    const row = (await this.#db.all("SELECT account_id, keyed, reservations, state FROM batches WHERE id = ?", [id]))[0];
    if (!row) return false;
    const batch = record(row);
    const open = batch.view.items.filter((i) => i.status === "queued" || i.status === "running").map((i) => i.index);
    const outcomes = await this.#outcomes(open.map((index) => [index, batch.reservationIds[index]] as const));
    const ended = abandonBatch(batch.view, outcomes, now, retentionMs);
    const written = await this.#db.run(
      "UPDATE batches SET state = ?, updated_at = ?, expires_at = ? WHERE id = ? AND holder = ? AND expires_at IS NULL",
      [JSON.stringify(ended), now, batchExpiry(ended) ?? null, id, me],
    );
    return written === 1;
  }

  /**
   * Releases each item's reservation (a no-op for one already settled or released), then
   * reads how each was closed: settled (billed: its charge and receipt) or not. After the
   * release no reservation of these items is open, so the answer is final.
   */
  async #outcomes(items: readonly (readonly [number, string | undefined])[]): Promise<Map<number, ItemOutcome>> {
    const outcomes = new Map<number, ItemOutcome>();
    const ids = items.flatMap(([, r]) => (r === undefined ? [] : [r]));
    for (const r of ids) await this.#ledger.release(r, RELEASE_REASON);
    if (ids.length === 0) return outcomes;
    const rows = await this.#db.all(
      `SELECT id, state, charged, job_id FROM reservations WHERE id IN (${ids.map(() => "?").join(", ")})`,
      ids,
    );
    const closed = new Map(rows.map((r) => [String(r.id), r]));
    for (const [index, reservationId] of items) {
      const r = reservationId === undefined ? undefined : closed.get(reservationId);
      outcomes.set(
        index,
        r && String(r.state) === "settled" ? { billed: true, charged: big(r.charged ?? 0), receiptId: text(r.job_id) } : { billed: false },
      );
    }
    return outcomes;
  }
}
