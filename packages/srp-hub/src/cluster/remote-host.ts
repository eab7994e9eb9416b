/**
 * A node connected to another process of the hub, as this process's router and relay see
 * it: a {@link JobHost} whose offers and load come from the directory's snapshots and
 * whose jobs go over the link to the process holding the node's session. Its events come
 * back on that link and are handed to the job's handle as a local session would; when the
 * link closes, its jobs are lost (the relay fails over while nothing reached the consumer).
 */
import { isAsyncApi, SrpError, type ErrorCode } from "@srp/core";
import type { Cancel, Instance, Job } from "@srp/core/schema";
import type { Account } from "../accounts.js";
import { meterSpecOf } from "../api/meters.js";
import type { JobHandle, JobHost, SessionState } from "../session.js";
import type { JobEventOnLink, JobOwner } from "./link-protocol.js";
import type { NodeSnapshot } from "./snapshot.js";

export type { NodeSnapshot };
import type { Link } from "./links.js";

/** What a remote host needs from the cluster. */
export interface RemoteHostDeps {
  /** The link to a process of the hub (undefined when it is not alive). */
  link(process: string): Link | undefined;
  /** The process holding a host refused a job: the node is not there (`gone`), or here is its current snapshot. */
  refused(host: RemoteHost, gone: boolean): void;
  /** A job was sent to a host: the events that come back for it go to that host. */
  sent(host: RemoteHost, jobId: string): void;
  /** Takes the payer of a job this process admitted (set by the relay right after `startJob`). */
  takeOwner(jobId: string): JobOwner | undefined;
  /** A job of this host started or ended here: its instance's load changed. */
  loadChanged(host: RemoteHost, instanceId: string): void;
}

/** A job this process sent to a remote host. */
interface SentJob {
  readonly job: Job;
  readonly handle: JobHandle;
  readonly link: Link;
  /** Settles the promise handed out with `done`, once the receipt is stored over there. */
  settle?: (value: { reservationId?: string; charge?: bigint } | undefined, ok: boolean) => void;
}

/** The error a `rejected` receipt came with. */
function rejection(r: { code: string; message: string } | undefined): SrpError | undefined {
  if (!r) return undefined;
  try {
    return new SrpError(r.code as ErrorCode, r.message);
  } catch {
    return new SrpError("receipt.field_mismatch", r.message);
  }
}

/** A node connected to another process of this hub. */
export class RemoteHost implements JobHost {
  readonly local = false;
  readonly nodeId: string;
  readonly account: Account;
  state: SessionState = "open";
  readonly instances = new Map<string, Instance>();
  readonly active = new Map<string, number>();
  readonly reportedCapacity = new Map<string, number>();
  /** The process holding the node, and its session there. */
  process: string;
  sessionId: string;
  readonly #deps: RemoteHostDeps;
  /** Jobs sent from here and not yet counted in a snapshot, per instance. */
  readonly #unseen = new Map<string, number>();
  /** Snapshot load per instance. */
  #snapshotActive: Record<string, number> = {};
  readonly #jobs = new Map<string, SentJob>();
  /** Jobs whose `done` arrived and whose settlement has not. */
  readonly #settling = new Map<string, SentJob>();

  constructor(snapshot: NodeSnapshot, deps: RemoteHostDeps) {
    this.nodeId = snapshot.nodeId;
    this.account = { id: snapshot.accountId };
    this.process = snapshot.process;
    this.sessionId = snapshot.sessionId;
    this.#deps = deps;
    this.update(snapshot);
  }

  /** Takes a newer snapshot: offers, load and reported capacity. */
  update(snapshot: NodeSnapshot): void {
    this.process = snapshot.process;
    this.sessionId = snapshot.sessionId;
    this.instances.clear();
    for (const i of snapshot.instances) this.instances.set(i.instanceId, i);
    this.reportedCapacity.clear();
    for (const [id, n] of Object.entries(snapshot.capacity)) this.reportedCapacity.set(id, n);
    this.#snapshotActive = snapshot.active;
    this.#unseen.clear();
    this.#recount();
  }

  /** Takes a newer load: jobs running per instance over there, and the capacities reported. */
  updateLoad(active: Record<string, number>, capacity: Record<string, number>): void {
    this.#snapshotActive = active;
    for (const [id, n] of Object.entries(capacity)) this.reportedCapacity.set(id, n);
    this.#unseen.clear();
    this.#recount();
  }

  #recount(): void {
    this.active.clear();
    for (const id of this.instances.keys()) {
      const n = (this.#snapshotActive[id] ?? 0) + (this.#unseen.get(id) ?? 0);
      if (n > 0) this.active.set(id, n);
    }
  }

  #count(instanceId: string, delta: number): void {
    const unseen = Math.max(0, (this.#unseen.get(instanceId) ?? 0) + delta);
    if (unseen === 0) this.#unseen.delete(instanceId);
    else this.#unseen.set(instanceId, unseen);
    const n = Math.max(0, (this.active.get(instanceId) ?? 0) + delta);
    if (n === 0) this.active.delete(instanceId);
    else this.active.set(instanceId, n);
    this.#deps.loadChanged(this, instanceId);
  }

  /**
   * Sends a job over the link. The payer is read a microtask later: the relay records it
   * right after this returns. A process that cannot take the job answers with a retryable
   * `job_error` (`job.busy`), so the relay tries another instance. An async job (`videos`,
   * `runs`) is not taken: its result stream stays with the process that admitted it.
   */
  startJob(job: Job, requestHash: string, handle: JobHandle): boolean {
    // An async job's result stream does not cross the link: it runs on a node connected to the process that admitted it.
    if (this.state !== "open" || isAsyncApi(job.api)) return false;
    const instance = this.instances.get(job.instanceId);
    const link = this.#deps.link(this.process);
    if (!instance || !link) return false;
    if ((this.active.get(job.instanceId) ?? 0) >= instance.maxConcurrency) return false;
    this.#jobs.set(job.jobId, { job, handle, link });
    this.#deps.sent(this, job.jobId);
    this.#count(job.instanceId, 1);
    queueMicrotask(() => {
      if (!this.#jobs.has(job.jobId)) return;
      const owner = this.#deps.takeOwner(job.jobId);
      const meter = meterSpecOf(handle.meter);
      const sent = link.send({
        t: "job",
        nodeId: this.nodeId,
        job,
        requestHash,
        ...(owner ? { owner } : {}),
        ...(handle.bounds ? { bounds: handle.bounds } : {}),
        ...(meter ? { meter } : {}),
      });
      if (!sent) this.#end(job.jobId)?.handle.onLost("the hub process holding the node is unreachable");
    });
    return true;
  }

  /** Tells the process holding the node that this process gave up on a job; `failed`: a missed deadline counted against the instance. */
  cancelJob(jobId: string, reason: Cancel["reason"], _message?: string, failed?: boolean): boolean {
    const sent = this.#end(jobId);
    if (!sent) return false;
    sent.link.send({ t: "cancel", jobId, reason, ...(failed ? { failed } : {}) });
    return true;
  }

  #end(jobId: string): SentJob | undefined {
    const sent = this.#jobs.get(jobId);
    if (!sent) return undefined;
    this.#jobs.delete(jobId);
    this.#count(sent.job.instanceId, -1);
    return sent;
  }

  /** Whether a job sent from here has not ended, or its settlement is still owed. */
  pending(jobId: string): boolean {
    return this.#jobs.has(jobId) || this.#settling.has(jobId);
  }

  /** Hands an event of one of this host's jobs to its handle; only events arriving on the link the job was sent on count. */
  deliver(e: JobEventOnLink, jobId: string, link: Link): void {
    if (e.t === "settled") return this.#settled(e.jobId, e, link);
    const sent = this.#jobs.get(jobId);
    if (!sent || sent.link !== link) return;
    switch (e.t) {
      case "refused": {
        this.#end(jobId);
        if (e.snapshot && e.snapshot.sessionId === this.sessionId) this.update(e.snapshot);
        this.#deps.refused(this, e.gone === true);
        if (sent.handle.onNotStarted) return sent.handle.onNotStarted(e.reason);
        return sent.handle.onError({ type: "job_error", jobId, code: "job.busy", message: e.reason, retryable: true, chunks: 0 });
      }
      case "chunk":
        return sent.handle.onChunk(e.chunk);
      case "done": {
        this.#end(jobId);
        let settled: Promise<unknown> | undefined;
        if (e.settles) {
          settled = new Promise((resolve, reject) => {
            sent.settle = (value, ok) => (ok ? resolve(value) : reject(new Error("the receipt could not be stored")));
          });
          settled.catch(() => {});
          this.#settling.set(jobId, sent);
        }
        return sent.handle.onDone(e.done, e.receipt, settled, rejection(e.rejected));
      }
      case "error":
        this.#end(jobId);
        return sent.handle.onError(e.error);
      case "lost":
        this.#end(jobId);
        return sent.handle.onLost(e.reason);
    }
  }

  #settled(jobId: string, e: { ok: boolean; reservationId?: string; charge?: string }, link: Link): void {
    const sent = this.#settling.get(jobId);
    if (!sent || sent.link !== link) return;
    this.#settling.delete(jobId);
    const value = e.reservationId === undefined ? undefined : { reservationId: e.reservationId, charge: BigInt(e.charge ?? "0") };
    sent.settle?.(value, e.ok);
  }

  /** A link closed: the jobs sent on it are lost, and settlements still owed on it are unknown (not recorded, as far as this process knows). */
  linkClosed(link: Link): void {
    for (const [jobId, sent] of [...this.#jobs]) {
      if (sent.link !== link) continue;
      this.#end(jobId);
      sent.handle.onLost("the hub process holding the node went away");
    }
    for (const [jobId, sent] of [...this.#settling]) {
      if (sent.link !== link) continue;
      this.#settling.delete(jobId);
      sent.settle?.(undefined, false);
    }
  }

  /** The node left (or moved to this process): its jobs are lost. */
  close(reason: string): void {
    this.state = "closed";
    for (const jobId of [...this.#jobs.keys()]) this.#end(jobId)?.handle.onLost(reason);
  }
}
