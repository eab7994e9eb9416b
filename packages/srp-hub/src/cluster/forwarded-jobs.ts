/**
 * Jobs another process of the hub sent to a node connected here: each runs on the node's
 * session like a local job, with its payer recorded so that its receipt settles the
 * consumer's reservation here (one issuer of receipts and statements per node), and its
 * events go back on the link it came on. A job the node's session cannot take is
 * refused with a retryable `job.busy`, so the sender tries another instance.
 */
import { OutputMeter, type OutputMeasurer } from "@srp/core/metering";
import { SrpError } from "@srp/core";
import type { Chunk, Done, Job, JobError, Price, Receipt } from "@srp/core/schema";
import { translatedMeter as messagesMeter } from "../api/anthropic.js";
import type { MeterSpec } from "../api/meters.js";
import { translatedMeter as responsesMeter } from "../api/responses.js";
import { chargeOf } from "../api/run-billing.js";
import type { LiveInstance } from "../routing/router.js";
import { instanceKey } from "../routing/router.js";
import type { JobHandle, ProviderSession } from "../session.js";
import type { ForwardCancel, ForwardJob } from "./link-protocol.js";
import type { Link } from "./links.js";
import { snapshotOf } from "./snapshot.js";

/** What serving forwarded jobs needs from the hub. */
export interface ForwardedJobsDeps {
  /** The open session of a node connected to this process. */
  session(nodeId: string): ProviderSession | undefined;
  /** Records a job's payer, whose reservation its receipt settles. */
  setJobOwner(jobId: string, accountId: string, reservationId: string | undefined): void;
  /** Forgets a job's payer: its receipt, if one still comes, settles nothing. */
  takeOwner(jobId: string): unknown;
  /** This process's id (in the snapshots sent with refusals). */
  readonly processId: string;
  /** Cancels a job on its session (the hub's job dispatch: a missed deadline counts once). */
  cancel(live: LiveInstance, jobId: string, reason: ForwardCancel["reason"], failed?: boolean): void;
}

/** The meter a forwarded job is measured with, from the kind its sender's surface built. */
export function meterFromSpec(spec: MeterSpec | undefined, job: Job): OutputMeasurer | undefined {
  switch (spec?.kind) {
    case "completions":
      return new OutputMeter({ api: "completions", stream: job.stream, choices: spec.choices });
    case "responses":
      return responsesMeter(job);
    case "messages":
      return messagesMeter(job);
    default:
      return undefined;
  }
}

/** Whether two prices are the same, member by member (pure). */
function samePrice(a: Price, b: Price | undefined): boolean {
  if (!b) return false;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if ((a as Record<string, unknown>)[k] !== (b as Record<string, unknown>)[k]) return false;
  return true;
}

/** A job error for a job that never ran here. */
function refusal(jobId: string, code: string, message: string, retryable: boolean): JobError {
  return { type: "job_error", jobId, code, message, retryable, chunks: 0 } as JobError;
}

/** The handle of a forwarded job: its events go back on the link. */
function linkHandle(link: Link, f: ForwardJob, ended: () => void): JobHandle {
  const jobId = f.job.jobId;
  const reservationId = f.owner?.reservationId;
  return {
    bounds: f.bounds,
    meter: meterFromSpec(f.meter, f.job),
    onChunk: (chunk: Chunk) => void link.send({ t: "chunk", chunk }),
    onDone(done: Done, receipt: Receipt | undefined, settled?: Promise<unknown>, rejected?: SrpError) {
      ended();
      link.send({
        t: "done",
        done,
        ...(receipt ? { receipt } : {}),
        ...(rejected ? { rejected: { code: rejected.code, message: rejected.message } } : {}),
        settles: settled !== undefined,
      });
      settled?.then(
        (value) => {
          const charge = chargeOf(value, reservationId);
          link.send({
            t: "settled",
            jobId,
            ok: true,
            ...(charge === undefined ? {} : { reservationId: reservationId!, charge: charge.toString() }),
          });
        },
        () => link.send({ t: "settled", jobId, ok: false }),
      );
    },
    onError(error: JobError) {
      ended();
      link.send({ t: "error", error });
    },
    onLost(reason: string) {
      ended();
      link.send({ t: "lost", jobId, reason });
    },
  };
}

/** The forwarded jobs running here, by link. */
export class ForwardedJobs {
  readonly #deps: ForwardedJobsDeps;
  readonly #running = new Map<string, { link: Link; session: ProviderSession; job: Job }>();

  constructor(deps: ForwardedJobsDeps) {
    this.#deps = deps;
  }

  /** Starts a forwarded job on its node's session, or refuses it on the link (the sender then routes it again). */
  start(f: ForwardJob, link: Link): void {
    const jobId = f.job.jobId;
    if (this.#running.has(jobId))
      return void link.send({ t: "error", error: refusal(jobId, "job.invalid_request", "a job with this id already runs", false) });
    const session = this.#deps.session(f.nodeId);
    if (!session || session.state !== "open")
      return void link.send({ t: "refused", jobId, reason: `node ${f.nodeId} is not connected to this hub process`, gone: true });
    const refused = (reason: string) => link.send({ t: "refused", jobId, reason, snapshot: snapshotOf(session, this.#deps.processId) });
    // The sender's snapshot may be older than the node's last offer: the job's quote must be the price in force (SRP-JOB-003).
    const instance = session.instances.get(f.job.instanceId);
    if (!instance) return void refused(`node ${f.nodeId} no longer offers ${f.job.instanceId}`);
    if (!samePrice(instance.price, f.job.quote)) return void refused(`node ${f.nodeId} re-offered ${f.job.instanceId} at another price`);
    if (f.owner) this.#deps.setJobOwner(jobId, f.owner.accountId, f.owner.reservationId);
    const handle = linkHandle(link, f, () => this.#running.delete(jobId));
    this.#running.set(jobId, { link, session, job: f.job });
    let started: boolean;
    try {
      started = session.startJob(f.job, f.requestHash, handle);
    } catch (error) {
      this.#running.delete(jobId);
      this.#deps.takeOwner(jobId);
      const e = error instanceof SrpError ? error : new SrpError("internal", "the job could not be sent to its node");
      link.send({ t: "error", error: refusal(jobId, e.code, e.message, false) });
      return;
    }
    if (!started) {
      this.#running.delete(jobId);
      this.#deps.takeOwner(jobId);
      refused(`every slot of ${f.job.instanceId} on ${f.nodeId} is taken`);
    }
  }

  /** Cancels a forwarded job at its sender's request. */
  cancel(c: ForwardCancel, link: Link): void {
    const running = this.#running.get(c.jobId);
    if (!running || running.link !== link) return;
    this.#running.delete(c.jobId);
    const { session, job } = running;
    const instance = session.instances.get(job.instanceId);
    if (!instance || session.nodeId === undefined) return void session.cancelJob(c.jobId, c.reason);
    this.#deps.cancel({ key: instanceKey(session.nodeId, job.instanceId), session, instance }, c.jobId, c.reason, c.failed);
  }

  /**
   * The link to a sender closed: its jobs are cancelled, and their payers forgotten. The
   * sender has failed the request over to another instance (or is gone, and its
   * reservations are released when its heartbeat goes stale), so a late `done` of such a
   * job is recorded but bills nobody: a request is billed at most once, for what reached
   * its consumer.
   */
  linkClosed(link: Link): void {
    for (const [jobId, running] of [...this.#running]) {
      if (running.link !== link) continue;
      this.#deps.takeOwner(jobId);
      this.cancel({ t: "cancel", jobId, reason: "consumer_gone" }, link);
    }
  }
}
