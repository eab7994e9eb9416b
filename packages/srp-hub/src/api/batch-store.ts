/**
 * Where a hub keeps its batches (spec/v1/consumer.md, "Batches"): the {@link BatchStore}
 * `POST /v1/batch` writes each admitted batch to and `GET /v1/jobs/{id}` reads it from, its
 * in-memory implementation (one hub process; the SQL one, shared by every process of a
 * hub, is `storage/batch-book.ts`), and the pure rules both follow: when a batch ends and
 * is forgotten, and what becomes of the items of a batch whose running process stopped.
 */
import { formatAmount, formatUsdc } from "@srp/core";
import type { BatchObject } from "@srp/core/schema";

/** A batch as the hub keeps it: what `GET /v1/jobs/{id}` shows, who may read it, and the reservation of each item. */
export interface BatchRecord {
  /** The batch as `GET /v1/jobs/{id}` shows it. */
  view: BatchObject;
  /** The account that pays for it. */
  accountId: string;
  /** Whether only an API key of that account may read it (a batch paid with x402 is read by its id). */
  keyed: boolean;
  /** The reservation of each item, in item order. */
  reservationIds: readonly string[];
}

/** How many batches are kept (running, or finished and not yet forgotten). */
export interface KeptBatches {
  /** Of one account. */
  account: number;
  /** In all. */
  total: number;
}

/**
 * Where a hub keeps its batches. The process that admits a batch runs it and writes its
 * state after each change; any process of the hub reads it. A batch is kept while it runs
 * and for the retention time after it ends (its view's `expires_at`).
 */
export interface BatchStore {
  /** Keeps a batch just admitted by this process, which runs it. */
  add(record: BatchRecord, now?: number): Promise<void>;
  /**
   * Writes the state of a batch this process runs. False when the batch is no longer this
   * process's to write (another process found this one stopped and ended the batch): then
   * the stored state stands and this process starts no more of its items.
   */
  update(view: BatchObject, now?: number): Promise<boolean>;
  /** A kept batch (whoever runs it), unless unknown or forgotten at `now`. */
  get(id: string, now?: number): Promise<BatchRecord | undefined>;
  /** The batches kept at `now` (those of `accountId`, and all). */
  kept(accountId: string, now?: number): Promise<KeptBatches>;
  /** Forgets the batches whose retention has passed (bounded batches); returns how many. */
  sweep(now?: number): Promise<number>;
  /**
   * Ends the batches of hub processes that stopped (shared databases): their unfinished items
   * fail unbilled, their reservations released; an item that was billed before its process
   * stopped keeps its charge. `all`: every other process's batches (SQLite at start, where one
   * hub process holds a file); default: those of processes not seen for a minute. Returns the
   * ids of the batches ended.
   */
  reconcile?(options: { retentionMs: number; all?: boolean; now?: number }): Promise<string[]>;
}

/** Whether a batch has ended (its results are then kept until `expires_at`). */
export const batchEnded = (view: BatchObject): boolean => view.expires_at !== null;

/** When a batch is forgotten, Unix ms; undefined while it runs. */
export const batchExpiry = (view: BatchObject): number | undefined => (view.expires_at === null ? undefined : view.expires_at * 1000);

/** Ends a batch at `now`: `completed` when an item succeeded, else `failed`; its results are kept `retentionMs`. */
export function endBatch(view: BatchObject, now: number, retentionMs: number): void {
  view.status = view.counts.completed > 0 ? "completed" : "failed";
  view.completed_at = Math.floor(now / 1000);
  view.expires_at = Math.floor((now + retentionMs) / 1000);
}

/** What became of the reservation of an item whose process stopped: billed (the charge, and the receipt's job id) or not. */
export type ItemOutcome = { billed: true; charged: bigint; receiptId: string | null } | { billed: false };

/** The answer of an item whose hub process stopped before it ended. */
export const STOPPED_ITEM_ERROR = Object.freeze({
  error: {
    message: "the hub process running this batch item stopped before it ended; it was not billed",
    type: "api_error",
    param: null,
    code: "session.shutdown",
  },
});

/**
 * The batch of a hub process that stopped, ended: each unfinished item (queued or running)
 * becomes failed and unbilled, unless its reservation was settled before the process stopped
 * (`outcomes` by item index): then it is completed with its charge and receipt, its answer
 * lost. The counts and the charged total follow; the items already ended are kept as they are.
 */
export function abandonBatch(view: BatchObject, outcomes: ReadonlyMap<number, ItemOutcome>, now: number, retentionMs: number): BatchObject {
  const out = structuredClone(view);
  let charged = BigInt(out.charged_units);
  for (const item of out.items) {
    if (item.status !== "queued" && item.status !== "running") continue;
    out.counts[item.status]--;
    const outcome = outcomes.get(item.index) ?? { billed: false };
    const units = outcome.billed ? outcome.charged : 0n;
    charged += units;
    const status = outcome.billed ? "completed" : "failed";
    item.status = status;
    item.status_code = outcome.billed ? 200 : 503;
    item.response = outcome.billed ? null : structuredClone(STOPPED_ITEM_ERROR);
    item.cost_units = formatAmount(units);
    item.cost = formatUsdc(units);
    item.receipt_id = outcome.billed ? outcome.receiptId : null;
    out.counts[status]++;
  }
  out.charged_units = formatAmount(charged);
  out.charged = formatUsdc(charged);
  endBatch(out, now, retentionMs);
  return out;
}

/** Batches kept in this process's memory: a hub without a SQL store (the embedded default). */
export class MemoryBatchStore implements BatchStore {
  readonly #batches = new Map<string, BatchRecord>();

  /** Keeps the record itself: the running batch's view is what `get` shows, live. */
  async add(record: BatchRecord): Promise<void> {
    this.#batches.set(record.view.id, record);
  }

  /** The view kept is the running one: nothing to write. */
  async update(view: BatchObject): Promise<boolean> {
    return this.#batches.has(view.id);
  }

  async get(id: string, now = Date.now()): Promise<BatchRecord | undefined> {
    const record = this.#batches.get(id);
    const expiry = record ? batchExpiry(record.view) : undefined;
    return record && (expiry === undefined || expiry > now) ? record : undefined;
  }

  async kept(accountId: string, now = Date.now()): Promise<KeptBatches> {
    await this.sweep(now);
    let account = 0;
    for (const b of this.#batches.values()) if (b.accountId === accountId) account++;
    return { account, total: this.#batches.size };
  }

  async sweep(now = Date.now()): Promise<number> {
    let n = 0;
    for (const [id, b] of this.#batches) {
      const expiry = batchExpiry(b.view);
      if (expiry !== undefined && expiry <= now) {
        this.#batches.delete(id);
        n++;
      }
    }
    return n;
  }
}
