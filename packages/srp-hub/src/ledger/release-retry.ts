/**
 * Releasing a reservation that must not stay held: a release that fails (the database
 * cannot be reached) is tried again in the background, with a growing pause, until it goes
 * through, so a consumer's money held for a request that was never billed comes back once
 * the database does, without a restart (SRP-BIL-006, SRP-BIL-017). Release is idempotent:
 * a retry after a release that did commit, or after a settlement, moves nothing.
 */
import type { HubLedger } from "./ledger.js";

/** Pauses between attempts: doubling from the first, capped at the last (ms); and how many attempts in all. */
export interface ReleaseRetryTimings {
  /** Pause before the first retry. */
  firstMs: number;
  /** Longest pause between retries. */
  maxMs: number;
  /** Attempts in all, the first included; then the reservation is left to the reconciliation of SRP-BIL-015. */
  attempts: number;
}

/** Default {@link ReleaseRetryTimings}: 500 ms, doubling, at most 30 s, for about 20 minutes (45 attempts). */
export const RELEASE_RETRY: ReleaseRetryTimings = Object.freeze({ firstMs: 500, maxMs: 30_000, attempts: 45 });

/** The pause before retry `attempt` (1, 2, ...) (pure). */
export function releaseRetryDelay(attempt: number, t: ReleaseRetryTimings = RELEASE_RETRY): number {
  return Math.min(t.firstMs * 2 ** Math.min(Math.max(0, attempt - 1), 16), t.maxMs);
}

/**
 * Releases `reservationId`; when that fails, reports the error to `onError` and tries again
 * after {@link releaseRetryDelay}, up to `timings.attempts` in all, while this process lives
 * (the timers do not keep it alive; what is left then is released by the reconciliation of
 * SRP-BIL-015).
 * Resolves after the first attempt: true when it released the reservation.
 */
export async function releaseUntilDone(
  ledger: Pick<HubLedger, "release">,
  reservationId: string,
  reason: string,
  onError: (error: unknown) => void,
  timings: ReleaseRetryTimings = RELEASE_RETRY,
): Promise<boolean> {
  const attempt = async (n: number): Promise<boolean> => {
    try {
      return await ledger.release(reservationId, reason);
    } catch (error) {
      onError(error);
      if (n >= timings.attempts) return false;
      const timer = setTimeout(() => void attempt(n + 1), releaseRetryDelay(n, timings));
      timer.unref();
      return false;
    }
  };
  return attempt(1);
}
