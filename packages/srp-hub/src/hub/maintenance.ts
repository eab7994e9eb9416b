/**
 * The hub's housekeeping: reconciles reservations at start and then every 15 s (with x402
 * payments), credits online time to instances every minute, and sweeps expired nonces,
 * failed payment locks, stored responses and idle limit keys every minute.
 */
import type { ResponseStore } from "../api/response-store.js";
import type { HubLedger } from "../ledger/ledger.js";
import type { ClientLimiter } from "../limits.js";
import type { PaymentBook } from "../payments/book.js";
import type { X402Payments } from "../payments/x402-flow.js";
import type { Router } from "../routing/router.js";
import type { WalletBook } from "../storage/wallet-book.js";
import type { StorageErrorSink } from "./types.js";

/** How often the hub sweeps expired nonces and failed payment locks from storage. */
const SWEEP_INTERVAL_MS = 60_000;
/** How often reservations of hubs that died are released (shared databases). */
const RECONCILE_INTERVAL_MS = 15_000;
/** How often instances online are credited their time (bounty eligibility). */
const ONLINE_CREDIT_MS = 60_000;

/** What the housekeeping works on. */
export interface MaintenanceOptions {
  readonly router: Router;
  readonly ledger: HubLedger | undefined;
  readonly payments: X402Payments | undefined;
  readonly limiter: ClientLimiter;
  readonly wallets: WalletBook | undefined;
  readonly paymentBook: PaymentBook | undefined;
  readonly responses: ResponseStore;
  readonly storageError: StorageErrorSink;
}

/** The hub's running housekeeping. */
export interface Maintenance {
  /** Resolves when the ledger has reconciled at start (requests reserve only after it). */
  readonly ledgerReady: Promise<void>;
  /** Stops every timer. */
  stop(): void;
}

/** Deletes expired sign-in nonces and failed, never-credited payment locks (bounded batches), and drops idle limit keys. */
function sweep(o: MaintenanceOptions): void {
  o.limiter.sweep();
  o.wallets?.sweep?.().catch((e: unknown) => o.storageError("sweep wallet nonces", e));
  o.paymentBook?.sweep?.().catch((e: unknown) => o.storageError("sweep failed payments", e));
  o.responses.sweep?.().catch((e: unknown) => o.storageError("sweep stored responses", e));
}

/** Starts the housekeeping. */
export function startMaintenance(o: MaintenanceOptions): Maintenance {
  const ledger = o.ledger;
  // At start: release what dead processes held (on SQLite, every other holder). Requests
  // reserve only after this, so this process is known alive before it holds anything.
  const ledgerReady: Promise<void> = ledger?.reconcile
    ? ledger.reconcile().then(
        () => undefined,
        (e: unknown) => o.storageError("reconcile reservations", e),
      )
    : Promise.resolve();
  // Then keep this process alive in the books and release what hubs that died since held
  // (shared databases; the start-time rule for SQLite is not repeated).
  const reconcile = () => {
    ledger!.reconcile!({ all: false }).catch((e: unknown) => o.storageError("reconcile reservations", e));
    o.payments?.reconcile().catch((e: unknown) => o.storageError("reconcile x402 payments", e));
  };
  const timers = [
    ledger?.reconcile ? setInterval(reconcile, RECONCILE_INTERVAL_MS) : undefined,
    setInterval(() => o.router.creditOnline(ONLINE_CREDIT_MS), ONLINE_CREDIT_MS),
    setInterval(() => sweep(o), SWEEP_INTERVAL_MS),
  ];
  for (const t of timers) t?.unref();
  return {
    ledgerReady,
    stop() {
      for (const t of timers) clearInterval(t);
    },
  };
}
