/**
 * The hub's book of jobs in flight: which consumer account (and reservation) each job is
 * for, each node's receipt position, and what happens to a reservation when the hub
 * cancels a job. It checks and countersigns a node's receipt and records it (SRP-ATT-*),
 * and releases a cancelled job's reservation once the node ends the job or a grace period
 * passes (SRP-JOB-016, SRP-JOB-021).
 */
import { countersignReceipt, INITIAL_POSITION, jobRequestId, type Identity, type ReceiptPosition } from "@srp/core";
import type { HubLedger } from "../ledger/ledger.js";
import { releaseUntilDone } from "../ledger/release-retry.js";
import type { PayoutTracker } from "../ledger/payout-tracker.js";
import { checkNodeReceipt, type ReceiptBook } from "../receipts.js";
import type { RelayContext } from "../relay.js";
import { instanceKey, type Router } from "../routing/router.js";
import type { SessionContext } from "../session.js";
import type { LedgerWatch } from "./ledger-watch.js";
import type { HubEmitter, StorageErrorSink } from "./types.js";

/** How long a job's owner is remembered when its receipt never comes. */
const OWNER_TTL_MS = 3_600_000;
/** How often owners older than {@link OWNER_TTL_MS} are forgotten. */
const OWNER_SWEEP_MS = 60_000;

/** What job dispatch works with. */
export interface JobDispatchOptions {
  readonly identity: Identity;
  readonly router: Router;
  readonly receipts: ReceiptBook;
  readonly ledger: HubLedger | undefined;
  readonly payouts: PayoutTracker;
  readonly emitter: HubEmitter;
  readonly storageError: StorageErrorSink;
  /** How long a cancelled job's reservation waits for the node's end of the job. */
  readonly cancelGraceMs: number;
  /** Reports each recorded receipt's settlement on the hub's `ledger` event. */
  readonly ledgerWatch?: LedgerWatch;
}

/** The receipt of a `done` as settled (the session's `settleReceipt`). */
type Settled = ReturnType<SessionContext["settleReceipt"]>;

/** Jobs in flight, their owners and the reservations of cancelled ones. */
export interface JobDispatch {
  /** What a provider session tells about its jobs' ends and receipts. */
  readonly sessionHooks: Pick<SessionContext, "settleReceipt" | "receiptPosition" | "onCancelledEnd">;
  /** Remembers which consumer account (and reservation) a job is for. */
  setJobOwner(jobId: string, accountId: string, reservationId: string | undefined): void;
  /** Forgets a node's receipt position (the node is connected to another process, which records its receipts now): read from storage next time. */
  forgetPosition(nodeId: string): void;
  /** Takes (and forgets) the payer of a job: the job is sent to another process of the hub, whose dispatch settles it. */
  takeOwner(jobId: string): { accountId: string; reservationId?: string } | undefined;
  /** Keeps a cancelled job's reservation until the node ends the job, or the grace period passes. */
  releaseAfterCancel(reservationId: string): void;
  /** Cancels a job on its session; `failed`: the cancel counted as the instance's failure. */
  cancel: RelayContext["cancel"];
  /** Stops the sweep and releases every reservation still waiting for a cancelled job's end. */
  close(): Promise<void>;
}

/** The state of job dispatch. */
interface JobState {
  /** Which consumer account (and reservation) each job in flight is for, oldest first. */
  readonly owners: Map<string, { accountId: string; reservationId: string | undefined; at: number }>;
  /** Each node's receipt position, authoritative in this process once loaded. */
  readonly positions: Map<string, ReceiptPosition>;
  /** Reservations of cancelled jobs, released when the node ends the job without a receipt or after a grace period. */
  readonly releaseLater: Map<string, ReturnType<typeof setTimeout>>;
  /** Cancelled jobs whose cancel already counted as a failure of their instance (a missed deadline): at most one per job. */
  readonly failureCounted: Set<string>;
}

/** Releases a reservation, reporting a storage failure and retrying until the database takes it. */
function release(o: JobDispatchOptions, id: string, reason: string): Promise<unknown> | undefined {
  return o.ledger ? releaseUntilDone(o.ledger, id, reason, (e: unknown) => o.storageError(`release ${id}`, e)) : undefined;
}

/** The `requestId` member of a job's events: the consumer request the job served, when its `ext` names it (SRP-JOB-037). */
function requestOf(ext: Readonly<Record<string, unknown>> | undefined): { requestId?: string } {
  const requestId = jobRequestId(ext);
  return requestId === undefined ? {} : { requestId };
}

/** Checks a node's receipt; countersigns and records it when it passes (the session's `settleReceipt`). */
function settleReceipt(
  o: JobDispatchOptions,
  s: JobState,
  ...[session, job, done, requestHash, responseHash, plausibility]: Parameters<SessionContext["settleReceipt"]>
): Settled {
  const nodeId = session.nodeId!;
  const verdict = checkNodeReceipt({
    job,
    done,
    nodeId,
    hubId: o.identity.id,
    requestHash,
    responseHash,
    position: s.positions.get(nodeId) ?? INITIAL_POSITION,
    ...plausibility,
  });
  if (!verdict.countersign) {
    if (verdict.error)
      o.emitter.emit("receipt.rejected", {
        jobId: job.jobId,
        nodeId,
        code: verdict.error.code,
        message: verdict.error.message,
        ...requestOf(job.ext),
      });
    // An implausible bill is the instance's failure (SRP-ATT-017), recorded once, here, whether or not the job was cancelled.
    // A job cancelled at the hub's deadline already counted as a failure then: at most one per job.
    if (verdict.error?.code === "receipt.implausible_usage" && !s.failureCounted.has(job.jobId))
      o.router.outcome(instanceKey(nodeId, job.instanceId), job.model, "failure");
    return verdict.error ? { error: verdict.error } : {};
  }
  const gap = verdict.error?.details as { from?: number; to?: number } | undefined;
  if (gap?.from !== undefined && gap.to !== undefined) {
    o.receipts.recordGap(nodeId, gap.from, gap.to).catch((e: unknown) => o.storageError("record a receipt gap", e));
    o.emitter.emit("receipt.gap", { jobId: job.jobId, nodeId, from: gap.from, to: gap.to, ...requestOf(job.ext) });
  }
  const receipt = countersignReceipt(done.receipt, o.identity);
  const owner = s.owners.get(job.jobId);
  s.owners.delete(job.jobId);
  s.positions.set(nodeId, { lastSeq: receipt.seq, totals: receipt.totals });
  const key = instanceKey(nodeId, job.instanceId);
  const settled = o.receipts.record({
    receipt,
    terms: o.payouts.terms(key, job.model, o.router.standing(key), o.router.count(job.model)),
    providerAccountId: session.account!.id,
    ...(owner ? { consumerAccountId: owner.accountId } : {}),
    ...(owner?.reservationId ? { reservationId: owner.reservationId } : {}),
  });
  settled.catch((e: unknown) => o.storageError(`record receipt ${job.jobId}`, e));
  o.ledgerWatch?.settlement(settled);
  return verdict.error ? { receipt, error: verdict.error, settled } : { receipt, settled };
}

/** A job the hub cancelled has ended on the node's side: release its reservation unless its receipt settled it. */
function cancelledEnd(o: JobDispatchOptions, s: JobState, jobId: string, end: "done" | "error" | "lost"): void {
  s.failureCounted.delete(jobId);
  const owner = s.owners.get(jobId);
  s.owners.delete(jobId);
  const id = owner?.reservationId;
  if (id === undefined) return;
  clearTimeout(s.releaseLater.get(id));
  s.releaseLater.delete(id);
  // A late done whose receipt was countersigned was settled by recording it (and its
  // owner entry is gone by now); anything else (a job_error, a lost session, a late done
  // whose receipt failed its checks) will never be billed: release now.
  void release(o, id, `the cancelled job ended without a billable receipt (${end})`);
}

/** A node's receipt position: this process's, else the stored one. */
async function receiptPosition(o: JobDispatchOptions, s: JobState, nodeId: string): Promise<ReceiptPosition> {
  const known = s.positions.get(nodeId);
  if (known) return known;
  const stored = await o.receipts.position(nodeId);
  if (!s.positions.has(nodeId)) s.positions.set(nodeId, stored);
  return s.positions.get(nodeId)!;
}

/** Forgets the owners of jobs older than {@link OWNER_TTL_MS} (their receipt never came). */
function forgetStaleOwners(s: JobState, now: number): void {
  for (const [id, owner] of s.owners) {
    if (now - owner.at < OWNER_TTL_MS) break;
    s.owners.delete(id);
  }
}

/** Creates the hub's job dispatch; its owner sweep runs until `close()`. */
export function createJobDispatch(o: JobDispatchOptions): JobDispatch {
  const s: JobState = { owners: new Map(), positions: new Map(), releaseLater: new Map(), failureCounted: new Set() };
  const sweep = setInterval(() => forgetStaleOwners(s, Date.now()), OWNER_SWEEP_MS);
  sweep.unref();
  return {
    sessionHooks: {
      settleReceipt: (...args) => settleReceipt(o, s, ...args),
      receiptPosition: (nodeId) => receiptPosition(o, s, nodeId),
      onCancelledEnd: (jobId, end) => cancelledEnd(o, s, jobId, end),
    },
    setJobOwner(jobId, accountId, reservationId) {
      s.owners.set(jobId, { accountId, reservationId, at: Date.now() });
    },
    forgetPosition(nodeId) {
      s.positions.delete(nodeId);
      o.receipts.forgetPosition?.(nodeId);
    },
    takeOwner(jobId) {
      const owner = s.owners.get(jobId);
      if (!owner) return undefined;
      s.owners.delete(jobId);
      return owner.reservationId === undefined
        ? { accountId: owner.accountId }
        : { accountId: owner.accountId, reservationId: owner.reservationId };
    },
    releaseAfterCancel(reservationId) {
      if (!o.ledger || s.releaseLater.has(reservationId)) return;
      const timer = setTimeout(() => {
        s.releaseLater.delete(reservationId);
        void release(o, reservationId, "the cancelled job did not end in time");
      }, o.cancelGraceMs);
      timer.unref();
      s.releaseLater.set(reservationId, timer);
    },
    cancel(live, jobId, reason, failed) {
      // A node on another process: that process counts the failure once, where the receipt is checked.
      if (live.session.cancelJob(jobId, reason, undefined, failed) && failed && live.session.local) s.failureCounted.add(jobId);
    },
    async close() {
      clearInterval(sweep);
      // Nothing more will be billed: reservations still waiting for a cancelled job's end are released now.
      const waiting = [...s.releaseLater];
      s.releaseLater.clear();
      await Promise.all(
        waiting.map(([id, timer]) => {
          clearTimeout(timer);
          return release(o, id, "the hub closed before the cancelled job ended");
        }),
      );
    },
  };
}
