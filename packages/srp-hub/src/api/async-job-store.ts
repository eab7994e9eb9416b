/**
 * Where a hub keeps its async jobs (spec/v1/consumer.md, "Async jobs"): the
 * {@link AsyncJobStore} that `POST /v1/videos` and `POST /v1/runs` write each admitted job to
 * and `GET /v1/jobs/{id}` reads it from, with the finished job's artifacts; its in-memory
 * implementation (one hub process; the SQL one, shared by every process of a hub, is
 * `storage/async-job-book.ts`); and the pure rules both follow: when a job ends and is
 * forgotten.
 */
import type { AsyncJobObject } from "@srp/core/schema";

/** An async job as the hub keeps it: what `GET /v1/jobs/{id}` shows, who may read it, its reservation and webhook. */
export interface AsyncJobRecord {
  /** The job as `GET /v1/jobs/{id}` shows it. */
  view: AsyncJobObject;
  /** The account that pays for it. */
  accountId: string;
  /** Whether only an API key of that account may read it (a job paid with x402 is read by its id). */
  keyed: boolean;
  /** Its reservation (a billing hub). */
  reservationId: string | null;
  /** Where the finished job is posted, and the secret its signature is made with. */
  webhook: { url: string; secret: string } | null;
}

/** One file of a finished job's result. */
export interface StoredArtifact {
  name: string;
  contentType: string;
  bytes: Uint8Array;
}

/** How many async jobs are kept (running, or finished and not yet forgotten). */
export interface KeptJobs {
  /** Of one account. */
  account: number;
  /** In all. */
  total: number;
}

/**
 * Where a hub keeps its async jobs. The process that admits a job runs it and writes its
 * state as it changes; any process of the hub reads it. A job is kept while it runs and for
 * the retention time after it ends (its view's `expires_at`), with its artifacts.
 */
export interface AsyncJobStore {
  /** Keeps a job just admitted by this process, which runs it. */
  add(record: AsyncJobRecord, now?: number): Promise<void>;
  /**
   * Writes the state of a job this process runs, with its artifacts when it has just
   * completed. False when the job is no longer this process's to write (another process
   * found this one stopped and ended it, or it was deleted).
   */
  update(view: AsyncJobObject, artifacts?: readonly StoredArtifact[], now?: number): Promise<boolean>;
  /** A kept job, unless unknown or forgotten at `now`. */
  get(id: string, now?: number): Promise<AsyncJobRecord | undefined>;
  /** One artifact of a kept job. */
  artifact(id: string, name: string, now?: number): Promise<StoredArtifact | undefined>;
  /** An account's kept jobs of one kind (`video`, `srp.run`), newest first, at most `limit`, created before the job `after` when given. */
  list(accountId: string, object: AsyncJobObject["object"], limit: number, after?: string, now?: number): Promise<AsyncJobObject[]>;
  /** Forgets a job and its artifacts; whether it was kept. */
  remove(id: string): Promise<boolean>;
  /** The jobs kept at `now`: those of `accountId`, and all but the failed ones. */
  kept(accountId: string, now?: number): Promise<KeptJobs>;
  /** Forgets the jobs whose retention has passed (bounded batches); returns how many. */
  sweep(now?: number): Promise<number>;
  /**
   * Ends the jobs of hub processes that stopped (shared databases): each fails unbilled and
   * its reservation is released, unless it was billed before its process stopped. `all`: every
   * other process's jobs (SQLite at start); default: those of processes not seen for a minute.
   * Returns the ids of the jobs ended.
   */
  reconcile?(options: { retentionMs: number; all?: boolean; now?: number }): Promise<string[]>;
}

/** When a job is forgotten, Unix ms; undefined while it runs. */
export const jobExpiry = (view: AsyncJobObject): number | undefined => (view.expires_at === null ? undefined : view.expires_at * 1000);

/** Whether a job has ended. */
export const jobEnded = (view: AsyncJobObject): boolean => view.status === "completed" || view.status === "failed";

/** Ends a job at `now`, completed or failed; its result is kept `retentionMs`. */
export function endJob(
  view: AsyncJobObject,
  now: number,
  retentionMs: number,
  outcome: { ok: true } | { ok: false; code: string; message: string },
): void {
  view.status = outcome.ok ? "completed" : "failed";
  if (outcome.ok) view.progress = 100;
  view.error = outcome.ok ? null : { code: outcome.code, message: outcome.message };
  view.completed_at = Math.floor(now / 1000);
  view.expires_at = Math.floor((now + retentionMs) / 1000);
}

/** The error of a job whose hub process stopped before it ended. */
export const STOPPED_JOB_ERROR = Object.freeze({
  code: "session.shutdown",
  message: "the hub process running this job stopped before it ended; it was not billed",
});

/** The error of a job billed before its hub process stopped, whose result was not kept. */
export const STOPPED_BILLED_JOB_ERROR = Object.freeze({
  code: "internal",
  message: "the hub process running this job stopped after its receipt was billed and before its result was kept",
});

/** Artifact bytes a {@link MemoryAsyncJobStore} keeps by default (256 MiB). */
export const MEMORY_ARTIFACT_BYTES = 256 * 1024 * 1024;

/**
 * Async jobs kept in this process's memory: a hub without a SQL store (the embedded default).
 * It keeps at most `maxBytes` of artifacts: a job that completes beyond that makes room by
 * forgetting the oldest finished jobs.
 */
export class MemoryAsyncJobStore implements AsyncJobStore {
  readonly #jobs = new Map<string, { record: AsyncJobRecord; artifacts: readonly StoredArtifact[] }>();
  readonly #maxBytes: number;
  #bytes = 0;

  constructor(options: { maxBytes?: number } = {}) {
    this.#maxBytes = options.maxBytes ?? MEMORY_ARTIFACT_BYTES;
  }

  #size(artifacts: readonly StoredArtifact[]): number {
    return artifacts.reduce((n, a) => n + a.bytes.length, 0);
  }

  /** Forgets a kept job and its bytes. */
  #forget(id: string): boolean {
    const kept = this.#jobs.get(id);
    if (!kept) return false;
    this.#bytes -= this.#size(kept.artifacts);
    return this.#jobs.delete(id);
  }

  /** Forgets the oldest finished jobs until `incoming` more bytes fit. */
  #makeRoom(incoming: number, keep: string): void {
    for (const [id, j] of this.#jobs) {
      if (this.#bytes + incoming <= this.#maxBytes) return;
      if (id !== keep && j.record.view.expires_at !== null) this.#forget(id);
    }
  }

  /** Keeps a copy of the record: what `get` shows is what was last written. */
  async add(record: AsyncJobRecord): Promise<void> {
    this.#jobs.set(record.view.id, { record: { ...record, view: structuredClone(record.view) }, artifacts: [] });
  }

  async update(view: AsyncJobObject, artifacts?: readonly StoredArtifact[]): Promise<boolean> {
    const kept = this.#jobs.get(view.id);
    // A job that ended is not written again (as in the SQL store).
    if (!kept || kept.record.view.expires_at !== null) return false;
    kept.record.view = structuredClone(view);
    if (artifacts) {
      const size = this.#size(artifacts);
      this.#makeRoom(size, view.id);
      kept.artifacts = artifacts;
      this.#bytes += size;
    }
    return true;
  }

  #live(id: string, now: number) {
    const kept = this.#jobs.get(id);
    const expiry = kept ? jobExpiry(kept.record.view) : undefined;
    return kept && (expiry === undefined || expiry > now) ? kept : undefined;
  }

  async get(id: string, now = Date.now()): Promise<AsyncJobRecord | undefined> {
    const kept = this.#live(id, now);
    return kept ? { ...kept.record, view: structuredClone(kept.record.view) } : undefined;
  }

  async artifact(id: string, name: string, now = Date.now()): Promise<StoredArtifact | undefined> {
    return this.#live(id, now)?.artifacts.find((a) => a.name === name);
  }

  async list(
    accountId: string,
    object: AsyncJobObject["object"],
    limit: number,
    after?: string,
    now = Date.now(),
  ): Promise<AsyncJobObject[]> {
    const mine = [...this.#jobs.values()]
      .filter((j) => j.record.accountId === accountId && j.record.view.object === object && this.#live(j.record.view.id, now))
      .map((j) => j.record.view)
      .reverse();
    const from = after === undefined ? 0 : mine.findIndex((v) => v.id === after) + 1;
    return mine.slice(from, from + Math.max(1, limit)).map((v) => structuredClone(v));
  }

  async remove(id: string): Promise<boolean> {
    return this.#forget(id);
  }

  async kept(accountId: string, now = Date.now()): Promise<KeptJobs> {
    await this.sweep(now);
    let account = 0;
    let total = 0;
    for (const j of this.#jobs.values()) {
      if (j.record.accountId === accountId) account++;
      // Failed jobs do not count against the hub's cap: a stranger's failures cannot lock everyone out.
      if (j.record.view.status !== "failed") total++;
    }
    return { account, total };
  }

  async sweep(now = Date.now()): Promise<number> {
    let n = 0;
    for (const [id, j] of this.#jobs) {
      const expiry = jobExpiry(j.record.view);
      if (expiry !== undefined && expiry <= now) {
        this.#forget(id);
        n++;
      }
    }
    return n;
  }
}
