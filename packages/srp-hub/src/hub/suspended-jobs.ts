/**
 * Async jobs between two sessions of their node (SRP-JOB-045..048): when a session ends
 * under a hub that announced a resume window W, its async jobs are kept here, their slots
 * and result bytes held, nothing billed or released; when the node's next session has its
 * first offer acknowledged they move to it (`resume`, SRP-JOB-046); when W passes they are
 * lost as with their session (SRP-JOB-048), and the relay fails them over. A job the relay
 * cancels meanwhile (its deadline, its consumer) is found here or on the session it moved to.
 */
import type { AsyncJobState, ProviderSession } from "../session.js";

/** A suspended job and its window's timer. */
interface Suspended {
  nodeId: string;
  state: AsyncJobState;
  timer: ReturnType<typeof setTimeout>;
}

/** The hub's suspended async jobs, by job id. */
export class SuspendedJobs {
  readonly #windowMs: number;
  readonly #jobs = new Map<string, Suspended>();
  /** Jobs resumed on a newer session, until they end there: a cancel sent to the old session goes on to it. */
  readonly #movedTo = new Map<string, ProviderSession>();
  #closed = false;

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** Jobs suspended now. */
  get size(): number {
    return this.#jobs.size;
  }

  /** Keeps a job of a session that ended; false when the hub is closing (the job is then lost with its session). */
  suspend(nodeId: string, state: AsyncJobState): boolean {
    if (this.#closed || this.#windowMs <= 0) return false;
    const jobId = state.job.jobId;
    const timer = setTimeout(() => {
      if (this.#jobs.get(jobId)?.timer !== timer) return;
      this.#jobs.delete(jobId);
      state.result.release();
      state.handle.onLost(`the node did not come back within the ${this.#windowMs} ms resume window`);
    }, this.#windowMs);
    timer.unref?.();
    this.#jobs.set(jobId, { nodeId, state, timer });
    return true;
  }

  /** Takes the node's suspended jobs (to resume them on its new session), oldest first. */
  take(nodeId: string): AsyncJobState[] {
    const out: AsyncJobState[] = [];
    for (const [id, s] of this.#jobs) {
      if (s.nodeId !== nodeId) continue;
      clearTimeout(s.timer);
      this.#jobs.delete(id);
      out.push(s.state);
    }
    return out;
  }

  /** Records that a job now runs on `session`. */
  moved(jobId: string, session: ProviderSession): void {
    this.#movedTo.set(jobId, session);
  }

  /** A moved job ended on the session it moved to. */
  ended(jobId: string): void {
    this.#movedTo.delete(jobId);
  }

  /**
   * Cancels a job its old session no longer runs: a suspended one is dropped (its node is not
   * connected: nothing to send; its bytes given back), a resumed one is cancelled on its new
   * session. Whether the job was found.
   */
  cancel(jobId: string, reason: Parameters<ProviderSession["cancelJob"]>[1], message?: string): boolean {
    const s = this.#jobs.get(jobId);
    if (s) {
      clearTimeout(s.timer);
      this.#jobs.delete(jobId);
      s.state.result.release();
      return true;
    }
    const session = this.#movedTo.get(jobId);
    return session ? session.cancelJob(jobId, reason, message) : false;
  }

  /** The hub is closing: every suspended job is lost now, and none is suspended again. */
  close(): void {
    this.#closed = true;
    for (const [id, s] of this.#jobs) {
      clearTimeout(s.timer);
      this.#jobs.delete(id);
      s.state.result.release();
      s.state.handle.onLost("shutdown");
    }
  }
}
