/**
 * Async jobs on SQLite and PostgreSQL (`store.asyncJobs` of a `SqlStore`), in the `async_jobs`
 * and `async_artifacts` tables of migration 12, so every process of a hub answers
 * `GET /v1/jobs/{id}` and serves a finished job's artifacts. The process that admitted a job
 * (its `holder`, the ledger's process id) writes its state while it runs. When a holder stops
 * (its `hub_processes` heartbeat is stale), another process's reconcile takes the job over,
 * releases its reservation and ends it failed (or, when its receipt was billed before the
 * stop, failed with its charge shown). Artifact bytes are kept as base64 text, which both
 * engines store alike.
 */
import { formatAmount, formatUsdc, fromBase64, toBase64 } from "@srp/core";
import type { AsyncJobObject } from "@srp/core/schema";
import {
  endJob,
  jobExpiry,
  STOPPED_BILLED_JOB_ERROR,
  STOPPED_JOB_ERROR,
  type AsyncJobRecord,
  type AsyncJobStore,
  type KeptJobs,
  type StoredArtifact,
} from "../api/async-job-store.js";
import type { BatchLedger } from "./batch-book.js";
import { PROCESS_STALE_MS } from "./ledger-book.js";
import { big, int, text, type SqlDriver, type SqlRow } from "./sql.js";
import { sweepInBatches } from "./wallet-book.js";

/** Why the reservation of a job of a stopped process is released. */
const RELEASE_REASON = "the hub process running the async job stopped";

function record(r: SqlRow): AsyncJobRecord {
  const webhook = text(r.webhook);
  return {
    view: JSON.parse(String(r.state)) as AsyncJobObject,
    accountId: String(r.account_id),
    keyed: int(r.keyed) === 1,
    reservationId: text(r.reservation_id),
    webhook: webhook === null ? null : (JSON.parse(webhook) as AsyncJobRecord["webhook"]),
  };
}

/** The async jobs of a `SqlStore`. */
export class SqlAsyncJobBook implements AsyncJobStore {
  readonly #db: SqlDriver;
  readonly #ready: Promise<void>;
  readonly #ledger: BatchLedger;

  /** @param ready resolves once the store's migrations have run. @param ledger the store's ledger (process id, releases). */
  constructor(db: SqlDriver, ready: Promise<void>, ledger: BatchLedger) {
    this.#db = db;
    this.#ready = ready;
    this.#ledger = ledger;
  }

  async add(r: AsyncJobRecord, now = Date.now()): Promise<void> {
    await this.#ready;
    await this.#db.run(
      "INSERT INTO async_jobs (id, object, status, account_id, keyed, holder, reservation_id, webhook, state, created_at, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      [
        r.view.id,
        r.view.object,
        r.view.status,
        r.accountId,
        r.keyed ? 1 : 0,
        this.#ledger.processId,
        r.reservationId,
        r.webhook ? JSON.stringify(r.webhook) : null,
        JSON.stringify(r.view),
        now,
        now,
        jobExpiry(r.view) ?? null,
      ],
    );
  }

  async update(view: AsyncJobObject, artifacts?: readonly StoredArtifact[], now = Date.now()): Promise<boolean> {
    await this.#ready;
    return this.#db.transaction(async (tx) => {
      // Only the holder writes, and only while the job runs: a job another process ended stays as it ended it.
      const changed = await tx.run(
        "UPDATE async_jobs SET state = ?, status = ?, updated_at = ?, expires_at = ? WHERE id = ? AND holder = ? AND expires_at IS NULL",
        [JSON.stringify(view), view.status, now, jobExpiry(view) ?? null, view.id, this.#ledger.processId],
      );
      if (changed !== 1) return false;
      for (const a of artifacts ?? [])
        await tx.run("INSERT INTO async_artifacts (job_id, name, content_type, data) VALUES (?, ?, ?, ?)", [
          view.id,
          a.name,
          a.contentType,
          toBase64(a.bytes),
        ]);
      return true;
    });
  }

  async get(id: string, now = Date.now()): Promise<AsyncJobRecord | undefined> {
    await this.#ready;
    const rows = await this.#db.all(
      "SELECT account_id, keyed, reservation_id, webhook, state FROM async_jobs WHERE id = ? AND (expires_at IS NULL OR expires_at > ?)",
      [id, now],
    );
    return rows[0] ? record(rows[0]) : undefined;
  }

  async artifact(id: string, name: string, now = Date.now()): Promise<StoredArtifact | undefined> {
    await this.#ready;
    const rows = await this.#db.all(
      "SELECT a.content_type, a.data FROM async_artifacts a JOIN async_jobs j ON j.id = a.job_id WHERE a.job_id = ? AND a.name = ? AND j.expires_at > ?",
      [id, name, now],
    );
    const row = rows[0];
    const bytes = row ? fromBase64(String(row.data)) : undefined;
    return row && bytes ? { name, contentType: String(row.content_type), bytes } : undefined;
  }

  async list(
    accountId: string,
    object: AsyncJobObject["object"],
    limit: number,
    after?: string,
    now = Date.now(),
  ): Promise<AsyncJobObject[]> {
    await this.#ready;
    const n = Math.max(1, Math.min(Math.trunc(limit), 100));
    const cursor = after === undefined ? undefined : (await this.#db.all("SELECT created_at FROM async_jobs WHERE id = ?", [after]))[0];
    const rows = await this.#db.all(
      `SELECT state FROM async_jobs WHERE account_id = ? AND object = ? AND (expires_at IS NULL OR expires_at > ?)${
        cursor ? " AND (created_at < ? OR (created_at = ? AND id < ?))" : ""
      } ORDER BY created_at DESC, id DESC LIMIT ?`,
      cursor ? [accountId, object, now, int(cursor.created_at), int(cursor.created_at), after!, n] : [accountId, object, now, n],
    );
    return rows.map((r) => JSON.parse(String(r.state)) as AsyncJobObject);
  }

  async remove(id: string): Promise<boolean> {
    await this.#ready;
    return this.#db.transaction(async (tx) => {
      await tx.run("DELETE FROM async_artifacts WHERE job_id = ?", [id]);
      return (await tx.run("DELETE FROM async_jobs WHERE id = ?", [id])) === 1;
    });
  }

  async kept(accountId: string, now = Date.now()): Promise<KeptJobs> {
    await this.#ready;
    const [account, total] = await Promise.all([
      this.#db.all("SELECT COUNT(*) AS n FROM async_jobs WHERE account_id = ? AND (expires_at IS NULL OR expires_at > ?)", [
        accountId,
        now,
      ]),
      // Failed jobs do not count against the hub's cap: a stranger's failures cannot lock everyone out.
      this.#db.all("SELECT COUNT(*) AS n FROM async_jobs WHERE status <> 'failed' AND (expires_at IS NULL OR expires_at > ?)", [now]),
    ]);
    return { account: int(account[0]?.n ?? 0), total: int(total[0]?.n ?? 0) };
  }

  async sweep(now = Date.now()): Promise<number> {
    await this.#ready;
    await sweepInBatches(
      this.#db,
      "DELETE FROM async_artifacts WHERE job_id IN (SELECT id FROM async_jobs WHERE expires_at <= ? LIMIT ?)",
      [now],
    );
    return sweepInBatches(this.#db, "DELETE FROM async_jobs WHERE id IN (SELECT id FROM async_jobs WHERE expires_at <= ? LIMIT ?)", [now]);
  }

  async reconcile(options: { retentionMs: number; all?: boolean; now?: number }): Promise<string[]> {
    await this.#ready;
    const now = options.now ?? Date.now();
    const me = this.#ledger.processId;
    const everyOther = options.all ?? this.#db.dialect === "sqlite";
    const rows = everyOther
      ? await this.#db.all("SELECT id, holder FROM async_jobs WHERE expires_at IS NULL AND holder <> ?", [me])
      : await this.#db.all(
          "SELECT j.id, j.holder FROM async_jobs j LEFT JOIN hub_processes p ON p.id = j.holder WHERE j.expires_at IS NULL AND j.holder <> ? AND (p.id IS NULL OR p.seen_at < ?)",
          [me, now - PROCESS_STALE_MS],
        );
    const ended: string[] = [];
    for (const row of rows)
      if (await this.#takeOver(String(row.id), String(row.holder), now, options.retentionMs)) ended.push(String(row.id));
    return ended;
  }

  /**
   * Takes a stopped process's job over (one process wins), releases its reservation (a no-op
   * when it was settled), and writes it ended: failed unbilled, or failed with the charge of
   * a receipt billed before the stop.
   */
  async #takeOver(id: string, stopped: string, now: number, retentionMs: number): Promise<boolean> {
    const me = this.#ledger.processId;
    const claimed = await this.#db.run(
      "UPDATE async_jobs SET holder = ?, updated_at = ? WHERE id = ? AND holder = ? AND expires_at IS NULL",
      [me, now, id, stopped],
    );
    if (claimed !== 1) return false;
    const row = (await this.#db.all("SELECT account_id, keyed, reservation_id, webhook, state FROM async_jobs WHERE id = ?", [id]))[0];
    if (!row) return false;
    const job = record(row);
    let billed: { charged: bigint; receiptId: string | null } | undefined;
    if (job.reservationId !== null) {
      await this.#ledger.release(job.reservationId, RELEASE_REASON);
      const r = (await this.#db.all("SELECT state, charged, job_id FROM reservations WHERE id = ?", [job.reservationId]))[0];
      if (r && String(r.state) === "settled") billed = { charged: big(r.charged ?? 0), receiptId: text(r.job_id) };
    }
    const view = structuredClone(job.view);
    if (billed) {
      view.cost_units = formatAmount(billed.charged);
      view.cost = formatUsdc(billed.charged);
      view.receipt_id = billed.receiptId;
    }
    endJob(view, now, retentionMs, { ok: false, ...(billed ? STOPPED_BILLED_JOB_ERROR : STOPPED_JOB_ERROR) });
    const written = await this.#db.run(
      "UPDATE async_jobs SET state = ?, status = ?, updated_at = ?, expires_at = ? WHERE id = ? AND holder = ? AND expires_at IS NULL",
      [JSON.stringify(view), view.status, now, jobExpiry(view) ?? null, id, me],
    );
    return written === 1;
  }
}
