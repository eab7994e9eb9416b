/**
 * What the x402 payment flow needs from storage: the durable lock on each authorization,
 * its settlement state, the ledger movements it causes, and wallets' debts. `SqlStore`
 * implements it on SQLite and PostgreSQL (`store.payments`).
 */

/** Where a payment stands. */
export type PaymentState =
  /** Verified and locked; settlement not yet attempted or in flight. */
  | "locked"
  /** Settled on-chain. */
  | "settled"
  /** The settlement was submitted but its outcome is not known (a time-out); reconciled on-chain. */
  | "unknown"
  /** Definitely not settled (reverted, refused, or expired unsettled). */
  | "failed";

/** When the hub settles: before the request is served, or after it (see the hub README). */
export type SettleMode = "before" | "after";

/** A payment as stored. */
export interface PaymentRecord {
  id: string;
  network: string;
  /** Token contract, lowercase. */
  asset: string;
  /** The authorizing wallet, lowercase. */
  payer: string;
  /** The EIP-3009 nonce, lowercase hex. */
  nonce: string;
  /** Atomic units authorized. */
  amount: bigint;
  /** Unix seconds after which the authorization cannot settle. */
  validBefore: number;
  /** The payer's wallet account. */
  accountId: string;
  mode: SettleMode;
  state: PaymentState;
  /** Whether the amount was credited to the account's prepaid balance. */
  credited: boolean;
  /** Whether a request was served for it. */
  served: boolean;
  txHash: string | null;
  error: string | null;
  /** The resource paid for. */
  resource: string | null;
  /** The `PAYMENT-SIGNATURE` document (JSON), to settle again after a restart. */
  payload: string;
  createdAt: number;
  updatedAt: number;
}

/** A payment to lock. */
export type NewPayment = Omit<PaymentRecord, "id" | "state" | "credited" | "served" | "txHash" | "error" | "createdAt" | "updatedAt">;

/** The storage side of x402 payments. */
export interface PaymentBook {
  /** The account keyed by a wallet (created, without signup credits, on first use). */
  walletAccount(address: string): Promise<string>;
  /** Locks an authorization: `locked: false` with the existing row when it was locked before. */
  lock(payment: NewPayment): Promise<{ locked: boolean; record: PaymentRecord }>;
  /** One payment. */
  get(id: string): Promise<PaymentRecord | undefined>;
  /** Credits a payment's amount to its account's prepaid balance (once). */
  credit(id: string): Promise<void>;
  /** Marks a payment settled (with its transaction), crediting it if it was not. */
  settled(id: string, txHash: string | null): Promise<void>;
  /** Marks a settlement's outcome unknown. */
  unknown(id: string, error: string): Promise<void>;
  /**
   * Marks a payment failed. When it was credited (settled after serving), takes the
   * credit back from the account as far as its spendable balance allows; the rest is
   * the wallet's debt, which the platform carries, and it blocks the wallet.
   * Returns the debt recorded.
   */
  failed(id: string, error: string): Promise<bigint>;
  /** Claims the one request a payment buys: true once, false after. */
  claimService(id: string): Promise<boolean>;
  /** Payments whose settlement is unfinished (locked or unknown) and older than `olderThanMs`. */
  unfinished(olderThanMs: number, now?: number): Promise<PaymentRecord[]>;
  /** What an account owes from failed settlements. */
  debtOf(accountId: string): Promise<bigint>;
  /** The accounts that owe anything. */
  indebtedAccounts(): Promise<string[]>;
  /**
   * Repays an account's debt from its prepaid balance (oldest debt first), as far as that
   * balance goes: the platform, which carried the debt, gets the money back. Returns the
   * amount repaid; the wallet is unblocked once nothing is owed.
   */
  repayDebts(accountId: string): Promise<bigint>;
  /**
   * Deletes the locks of payments that failed without moving money (never credited, never
   * served) and have not changed for {@link FAILED_PAYMENT_RETENTION_MS}, in bounded
   * batches; returns how many (SRP-SEC-016). Settled, credited and pending rows stay.
   */
  sweep?(now?: number): Promise<number>;
  /**
   * Payments newest first (by creation, then id), at most `limit` (1..500), those strictly
   * before `before` when given: the admin API's list (`GET /admin/v1/payments`). Absent: the
   * book lists none.
   */
  page?(limit: number, before?: { createdAt: number; id: string }): Promise<PaymentRecord[]>;
}

/** How long the lock of a payment that failed without moving money is kept: 1 hour. */
export const FAILED_PAYMENT_RETENTION_MS = 3_600_000;
