/**
 * Closing a consumer request's billing once its job has ended: the reservation of its worst
 * case (SRP-BIL-003) is charged by the job's settled receipt, or released with the reason it
 * was not, or, when the hub cancelled the job (consumer gone, deadline), kept until the node
 * ends the job so that a late `done` is still billed. What the consumer is then shown is what
 * was billed (SRP-ATT-019).
 */
import type { HubLedger } from "../ledger/ledger.js";
import { releaseUntilDone } from "../ledger/release-retry.js";
import type { JobEvent } from "../relay.js";

/** What the consumer's answer says about billing: the charge, and whether a stored receipt backs it. */
export interface Billed {
  /** Units charged (a billing hub), or undefined when the hub bills nobody (then the receipt's cost is shown). */
  charged: bigint | undefined;
  /** Whether the receipt was stored; when not, there is nothing to point at. */
  recorded: boolean;
}

/** What closing a request's billing needs from its hub. */
export interface BillingHub {
  /** Bills consumers; absent when the hub bills nobody. */
  ledger: HubLedger | undefined;
  /** Keeps a cancelled job's reservation until the node ends the job (a late `done` is billed), then releases it. */
  releaseAfterCancel(reservationId: string): void;
  /** Reports a storage failure that the request could not report itself. */
  storageError(what: string, error: unknown): void;
}

/** The reservation a request's billing closes, and what happens to it when the hub cancels the job. */
export interface RequestReservation {
  /** The reservation of the request's worst case (a billing hub). */
  reservationId: string | undefined;
  /** Release at once when the hub cancels the job, instead of waiting for a late `done` (batch items). */
  releaseOnCancel?: boolean;
}

/** Closes a request's billing for the event that ended its job (undefined: no event); `consumerLeft` when the consumer cancelled. */
export type CloseBilling = (e: JobEvent | undefined, consumerLeft?: boolean) => Promise<Billed>;

/** The consumer's charge from a settlement, when this request's reservation was the one settled. */
export function chargeOf(settled: unknown, reservationId: string | undefined): bigint | undefined {
  if (reservationId === undefined || typeof settled !== "object" || settled === null) return undefined;
  const s = settled as { reservationId?: unknown; charge?: unknown };
  return s.reservationId === reservationId && typeof s.charge === "bigint" ? s.charge : undefined;
}

/** Whether the hub gave up on the job (its deadline passed, or the consumer went away) rather than the node ending it. */
export function cancelledByHub(e: JobEvent | undefined): boolean {
  return e?.type === "lost" && (e.reason === "deadline" || e.reason === "consumer_gone");
}

/** Why a request's reservation is released unbilled, for the ledger's record. */
export function releaseReason(e: JobEvent | undefined): string {
  if (e === undefined) return "not served";
  if (e.type === "done") return "no countersigned receipt";
  if (e.type === "error") return "the provider failed";
  if (e.type === "lost") return `the job ended: ${e.reason}`;
  return "the stream ended early";
}

/** The settlement a `done` carries, and whether its receipt was recorded (false when storing it failed). */
async function settlementOf(e: JobEvent | undefined): Promise<{ settled: unknown; recorded: boolean }> {
  if (e?.type !== "done" || !e.settled) return { settled: undefined, recorded: true };
  let recorded = true;
  const settled = await e.settled.catch(() => ((recorded = false), undefined));
  return { settled, recorded };
}

/** The charge of a settled reservation; undefined when it was not settled (or cannot be read now). */
async function billedOn(ledger: HubLedger, reservationId: string): Promise<bigint | undefined> {
  const closure = await ledger.closure?.(reservationId).catch(() => undefined);
  return closure?.state === "settled" ? closure.charged : undefined;
}

/**
 * Ends a request's billing (SRP-BIL-003): the charge when the job's receipt settled this
 * reservation; else, when the hub cancelled the job and the request does not release on
 * cancel, the reservation is handed to `releaseAfterCancel` (the node may still end the job
 * with a `done`, which is billed); else, on a billing hub, it is released with the reason.
 * A billing hub reports what it charged (nothing, when the reservation was not settled).
 */
export async function closeBilling(
  hub: BillingHub,
  reservation: RequestReservation,
  e: JobEvent | undefined,
  consumerLeft = false,
): Promise<Billed> {
  const { reservationId } = reservation;
  const cancelled = consumerLeft || cancelledByHub(e);
  const { settled, recorded } = await settlementOf(e);
  const found = chargeOf(settled, reservationId);
  const charged = hub.ledger ? (found ?? 0n) : undefined;
  if (found === undefined && reservationId !== undefined && cancelled && !reservation.releaseOnCancel) {
    hub.releaseAfterCancel(reservationId);
    return { charged, recorded };
  }
  if (found === undefined && reservationId !== undefined && hub.ledger) {
    // A release the database cannot take now is retried until it can: the money comes back without a restart.
    const released = await releaseUntilDone(hub.ledger, reservationId, releaseReason(e), (err: unknown) =>
      hub.storageError(`release ${reservationId}`, err),
    );
    // The reservation was closed already: a receipt settled it (this job's, whose settlement another hub process stored
    // without saying so; or an earlier attempt's, ended on a lost link after its receipt was stored). That is what was billed.
    if (!released) {
      const billed = await billedOn(hub.ledger, reservationId);
      if (billed !== undefined) return { charged: billed, recorded: true };
    }
  }
  return { charged, recorded };
}

/**
 * `close`, run at most once (a stream's billing ends on the first of its done, its failure,
 * its events running out or the consumer cancelling); later calls bill nothing and answer
 * an unrecorded, uncharged result.
 */
export function closeOnce(close: CloseBilling): CloseBilling {
  let closed = false;
  return (e, consumerLeft = false) => {
    if (closed) return Promise.resolve({ charged: undefined, recorded: false });
    closed = true;
    return close(e, consumerLeft);
  };
}
