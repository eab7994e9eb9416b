/**
 * The node's side of async jobs (`spec/v1/jobs.md#async-jobs`): runs a `videos` or `runs` job
 * on its backend, relays `progress` (never decreasing, at most once a second, 100 only when
 * the result is complete), sends the result as contiguous `result` parts and then `done`
 * with the `srp.result` manifest, keeps the job across a lost session for the hub's resume
 * window, and goes on from the hub's `resume {received}` (or answers `job.lost`). The
 * provider (`provider.ts`) owns the connection, the slots and the receipts; it reaches this
 * class through {@link AsyncJobsHost}.
 */
import { encode, ERROR_TABLE, requestHash, responseHash, resultFrames, sha256Hex, type AsyncApi } from "@srp/core";
import type { AsyncJobsAnnouncement, Job, Receipt, ResultManifest, Resume, SrpMessage, Usage } from "@srp/core/schema";
import { BackendError, type AsyncResult, type Backend } from "./backends/types.js";

/** What the async-job runner needs from the provider. */
export interface AsyncJobsHost {
  /** Sends an encoded frame on the current session; false when it is not open. */
  sendEncoded(frame: string): boolean;
  /** The current session's async-job announcement, when it is open and announced one. */
  announcement(): AsyncJobsAnnouncement | undefined;
  /** Waits while the WebSocket send buffer is full. */
  drain(): Promise<void>;
  /**
   * Numbers, signs and durably records the receipt of a finished job (SRP-ATT-006), then
   * calls `then` with it at once when the record is written (as the provider sends a `done`,
   * so receipts leave in `seq` order); with undefined when no session is open, or the error.
   */
  signReceipt(
    job: Job,
    usage: Usage,
    requestHash: string,
    responseHash: string,
    startedAt: number,
    then: (receipt: Receipt | undefined, error?: unknown) => void,
  ): void;
  /** The job took a slot of its instance. */
  occupy(job: Job): void;
  /** The job left its slot, having ended as described (emits the provider's `job.end`). */
  release(job: Job, outcome: { ok: boolean; code?: string; usage?: Usage; cost?: string; startedAt: number }): void;
}

/** One async job the node runs or keeps. */
interface AsyncRun {
  job: Job;
  backend: Backend;
  upstreamModel: string;
  controller: AbortController;
  startedAt: number;
  requestHash: string;
  /** The largest progress seen, and what was last sent and when. */
  progress: number;
  sentProgress: number;
  sentProgressAt: number;
  /** The result, once the backend produced it. */
  result?: { stream: Uint8Array; manifest: ResultManifest; usage: Usage };
  /** Bytes of the stream the current session holds (what to send from). */
  sent: number;
  /** Bytes of the stream ever sent, on any session. */
  sentMax: number;
  /** The job's end frame (`done` or `job_error`) once decided, and whether it went out on the current session. */
  end?: { frame: string; ok: boolean; usage?: Usage; cost?: string; code?: string };
  endSent: boolean;
  /** Whether it left its slot. */
  released: boolean;
  /** Kept after its session ended, waiting for a `resume`. */
  suspended: boolean;
  keepTimer?: ReturnType<typeof setTimeout>;
  deadlineTimer?: ReturnType<typeof setTimeout>;
  /** Changes on every suspend and resume, so a send loop of an earlier session stops. */
  epoch: number;
  /** Its receipt is being signed and recorded. */
  signing: boolean;
  /** The epoch on which its end went out. */
  endSentEpoch: number;
  /** The announcement of the session it started on (its result bound). */
  limits: AsyncJobsAnnouncement;
  cancelled: boolean;
}

/** The smallest time between two `progress` frames of one job, in ms (SRP-JOB-041). */
export const PROGRESS_INTERVAL_MS = 1000;

/** Concatenates byte arrays. */
function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The `srp.result` manifest and result stream of what a backend produced (SRP-JOB-042). */
export function resultOf(api: AsyncApi, r: AsyncResult): { stream: Uint8Array; manifest: ResultManifest } {
  const manifest: ResultManifest = {
    object: "srp.result",
    artifacts: r.artifacts.map((a) => ({ name: a.name, content_type: a.contentType, bytes: a.bytes.length, sha256: sha256Hex(a.bytes) })),
    ...(api === "videos" && r.video ? { video: r.video } : {}),
    output: api === "videos" ? null : (r.output ?? null),
  };
  return { stream: concat(r.artifacts.map((a) => a.bytes)), manifest };
}

/** The async jobs of one provider node, across its sessions. */
export class AsyncJobs {
  readonly #host: AsyncJobsHost;
  readonly #runs = new Map<string, AsyncRun>();

  constructor(host: AsyncJobsHost) {
    this.#host = host;
  }

  /** Async jobs occupying a slot now (running, or suspended before their end). */
  get active(): number {
    return [...this.#runs.values()].filter((r) => !r.released).length;
  }

  /** Whether the node keeps or runs this job. */
  has(jobId: string): boolean {
    return this.#runs.has(jobId);
  }

  /** The receipt numbers of kept jobs whose `done` was signed (not missing at welcome: SRP-JOB-047). */
  keptReceiptSeqs(): number[] {
    const out: number[] = [];
    for (const r of this.#runs.values()) if (r.end?.ok) out.push((JSON.parse(r.end.frame) as { receipt: Receipt }).receipt.seq);
    return out;
  }

  /** Starts an async job the provider accepted (instance, model, API and slot checked). */
  start(job: Job, backend: Backend, upstreamModel: string): void {
    const limits = this.#host.announcement();
    let reqHash: string;
    try {
      reqHash = requestHash(job.request);
    } catch (error) {
      return void this.#host.sendEncoded(
        encode(this.#error(job, "job.invalid_request", `the request has no canonical JSON form: ${(error as Error).message}`)),
      );
    }
    if (!limits)
      return void this.#host.sendEncoded(encode(this.#error(job, "job.unsupported_api", "this session announced no async jobs")));
    const run: AsyncRun = {
      job,
      backend,
      upstreamModel,
      controller: new AbortController(),
      startedAt: Date.now(),
      requestHash: reqHash,
      progress: 0,
      sentProgress: -1,
      sentProgressAt: 0,
      sent: 0,
      sentMax: 0,
      endSent: false,
      released: false,
      suspended: false,
      epoch: 0,
      signing: false,
      endSentEpoch: -1,
      limits,
      cancelled: false,
    };
    this.#runs.set(job.jobId, run);
    this.#host.occupy(job);
    run.deadlineTimer = setTimeout(
      () => run.controller.abort(new BackendError("job.deadline_exceeded", "the job passed its deadline")),
      Math.max(0, job.deadline - Date.now()),
    );
    void this.#execute(run);
  }

  /** A `job_error` for `job` (chunks 0: an async job sends none, SRP-JOB-040). */
  #error(job: Job, code: string, message: string, upstreamStatus?: number): SrpMessage {
    const retryable = (ERROR_TABLE as Record<string, { retryable: boolean } | undefined>)[code]?.retryable ?? true;
    return {
      type: "job_error",
      jobId: job.jobId,
      code,
      message: message.slice(0, 2000),
      retryable,
      chunks: 0,
      ...(upstreamStatus === undefined ? {} : { upstreamStatus }),
    };
  }

  async #execute(run: AsyncRun): Promise<void> {
    const { job } = run;
    try {
      if (!run.backend.runAsync) throw new BackendError("job.unsupported_api", `the backend does not run ${job.api} jobs`);
      const request: Record<string, unknown> = { ...job.request, model: run.upstreamModel };
      const produced = await run.backend.runAsync(request, {
        signal: run.controller.signal,
        ...(job.ext ? { ext: job.ext } : {}),
        onProgress: (p) => this.#onProgress(run, Math.min(99, p)),
      });
      if (run.cancelled || !this.#runs.has(job.jobId)) return;
      const { stream, manifest } = resultOf(job.api as AsyncApi, produced);
      if (stream.length > run.limits.maxResultBytes)
        return this.#finish(
          run,
          this.#error(job, "job.result_too_large", `the result is ${stream.length} bytes, more than ${run.limits.maxResultBytes}`),
        );
      run.result = { stream, manifest, usage: produced.usage };
      this.#onProgress(run, 100);
      await this.#pump(run);
    } catch (error) {
      if (run.cancelled || !this.#runs.has(job.jobId)) return;
      const signal = run.controller.signal;
      const reason = signal.aborted ? signal.reason : error;
      const e =
        reason instanceof BackendError
          ? reason
          : new BackendError("job.upstream_error", `backend failed: ${(reason as Error)?.message ?? String(reason)}`);
      this.#finish(run, this.#error(job, e.code, e.message, e.upstreamStatus));
    }
  }

  /** Records progress and sends it when due (never smaller, at most once a second, SRP-JOB-041). */
  #onProgress(run: AsyncRun, progress: number): void {
    if (!(progress > run.progress)) return;
    run.progress = progress;
    this.#sendProgress(run, false);
  }

  #sendProgress(run: AsyncRun, force: boolean): void {
    if (run.suspended || run.progress <= run.sentProgress) return;
    const now = Date.now();
    if (!force && run.progress < 100 && now - run.sentProgressAt < PROGRESS_INTERVAL_MS) return;
    if (this.#host.sendEncoded(encode({ type: "progress", jobId: run.job.jobId, progress: run.progress }))) {
      run.sentProgress = run.progress;
      run.sentProgressAt = now;
    }
  }

  /** Sends the result from `run.sent` on, then the job's `done` (signing it the first time). */
  async #pump(run: AsyncRun): Promise<void> {
    const epoch = run.epoch;
    const stale = () => run.suspended || run.epoch !== epoch || !this.#runs.has(run.job.jobId);
    const result = run.result;
    if (!result || stale()) return;
    const limits = this.#host.announcement();
    if (!limits) return;
    for (const frame of resultFrames(run.job.jobId, result.stream, limits.partBytes, run.sent)) {
      if (stale()) return;
      if (!this.#host.sendEncoded(encode(frame))) return;
      run.sent = Math.min(frame.offset + limits.partBytes, result.stream.length);
      run.sentMax = Math.max(run.sentMax, run.sent);
      await this.#host.drain();
    }
    if (stale()) return;
    if (run.end) return this.#sendEnd(run);
    if (run.signing) return; // its callback sends the done
    // Signed once: a done sent again after a resume carries the same receipt (SRP-JOB-047).
    run.signing = true;
    this.#host.signReceipt(run.job, result.usage, run.requestHash, responseHash(result.manifest), run.startedAt, (receipt, error) => {
      run.signing = false;
      if (!this.#runs.has(run.job.jobId)) return;
      if (error !== undefined)
        return this.#finish(
          run,
          this.#error(run.job, "internal", `the receipt position could not be stored: ${String((error as Error)?.message ?? error)}`),
        );
      if (!receipt) return; // no session: nothing was signed; the resumed pump signs
      const done: SrpMessage = { type: "done", jobId: run.job.jobId, chunks: 0, usage: result.usage, response: result.manifest, receipt };
      run.end = { frame: encode(done), ok: true, usage: result.usage, cost: receipt.cost };
      if (run.sent === result.stream.length) this.#sendEnd(run); // else a resumed pump is still sending the result, and sends it after
    });
  }

  /** Decides a failed job's end and sends it now, or keeps it for a resume. */
  #finish(run: AsyncRun, error: SrpMessage): void {
    run.end = { frame: encode(error), ok: false, code: (error as { code: string }).code };
    this.#sendEnd(run);
  }

  /** Sends the decided end on the current session; a sent `job_error` ends the job, a sent `done` waits for its receipt (SRP-JOB-049). */
  #sendEnd(run: AsyncRun): void {
    if (run.suspended || !run.end || run.endSentEpoch === run.epoch || !this.#host.sendEncoded(run.end.frame)) return;
    run.endSent = true;
    run.endSentEpoch = run.epoch;
    this.#release(run);
    if (!run.end.ok) this.#forget(run);
  }

  #release(run: AsyncRun): void {
    if (run.released) return;
    run.released = true;
    clearTimeout(run.deadlineTimer);
    const e = run.end;
    this.#host.release(run.job, {
      ok: e?.ok ?? false,
      ...(e?.code ? { code: e.code } : e ? {} : { code: "job.lost" }),
      ...(e?.usage ? { usage: e.usage } : {}),
      ...(e?.cost ? { cost: e.cost } : {}),
      startedAt: run.startedAt,
    });
  }

  #forget(run: AsyncRun): void {
    clearTimeout(run.keepTimer);
    clearTimeout(run.deadlineTimer);
    this.#runs.delete(run.job.jobId);
  }

  /** The hub countersigned the `done` of a kept job: its result may go (SRP-JOB-049). */
  receipted(jobId: string): void {
    const run = this.#runs.get(jobId);
    if (run?.endSent) this.#forget(run);
  }

  /** Handles `cancel` for an async job; false when the job is not one of these. */
  cancel(jobId: string): boolean {
    const run = this.#runs.get(jobId);
    if (!run) return false;
    if (run.endSent || run.suspended) return true; // ended (SRP-JOB-018), or not ours to answer on this session
    run.cancelled = true;
    run.controller.abort(new Error("cancelled by the hub"));
    run.end = { frame: encode(this.#error(run.job, "job.cancelled", "cancelled by the hub")), ok: false, code: "job.cancelled" };
    this.#sendEnd(run);
    this.#forget(run);
    return true;
  }

  /**
   * The session ended: with a resume window (the ended session's `resumeWindowMs` > 0) every
   * job is kept, suspended, for the window (SRP-JOB-045); without one it is aborted
   * (SRP-JOB-015).
   */
  sessionEnded(windowMs: number): void {
    for (const run of [...this.#runs.values()]) {
      if (windowMs <= 0) {
        this.#drop(run);
        continue;
      }
      run.suspended = true;
      run.epoch++;
      clearTimeout(run.keepTimer);
      run.keepTimer = setTimeout(() => this.#drop(run), windowMs); // SRP-JOB-048: the window passed without a resume
    }
  }

  /** Aborts a job and discards its result. */
  #drop(run: AsyncRun): void {
    run.controller.abort(new Error("the async job was dropped"));
    this.#release(run);
    this.#forget(run);
  }

  /** Handles `resume` (SRP-JOB-047). */
  resume(m: Resume): void {
    const run = this.#runs.get(m.jobId);
    if (!run) {
      this.#host.sendEncoded(
        encode({
          type: "job_error",
          jobId: m.jobId,
          code: "job.lost",
          message: "this node does not keep that job",
          retryable: true,
          chunks: 0,
        }),
      );
      return;
    }
    if (!run.suspended) return; // running on this session already
    if (m.received > run.sentMax) {
      this.#host.sendEncoded(encode(this.#error(run.job, "job.lost", `the hub holds ${m.received} bytes; this node sent ${run.sentMax}`)));
      return this.#drop(run);
    }
    clearTimeout(run.keepTimer);
    run.suspended = false;
    run.epoch++;
    run.sent = m.received;
    run.sentProgress = -1;
    this.#sendProgress(run, true);
    if (run.result) void this.#pump(run);
    else if (run.end) this.#sendEnd(run);
  }

  /** The node stops: every job is aborted and forgotten. */
  abortAll(): void {
    for (const run of [...this.#runs.values()]) this.#drop(run);
  }
}
