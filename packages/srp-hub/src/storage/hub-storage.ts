/**
 * The books a hub keeps its state in, each named: `createHub({ storage })` takes them as
 * they are, with no guessing from an object's shape. A `SqlStore` (SQLite or PostgreSQL)
 * provides all of them; an embedder may pass its own, or only some.
 */
import type { AccountAdmin } from "../accounts.js";
import type { BatchStore } from "../api/batch-store.js";
import type { AsyncJobStore } from "../api/async-job-store.js";
import type { CardBook } from "./card-book.js";
import type { ResponseStore, ResponseStoreOptions } from "../api/response-store.js";
import type { HubLedger, LedgerBooks } from "../ledger/ledger.js";
import type { PaymentBook } from "../payments/book.js";
import type { ReceiptBook } from "../receipts.js";
import type { StatementBook } from "../ledger/statements.js";
import type { PayoutList } from "./payout-book.js";
import type { WalletBook } from "./wallet-book.js";

/** A store of Responses API turns that takes the hub's retention and bounds. */
export interface ResponseBook {
  /** The book with the hub's options applied. */
  withOptions(options: ResponseStoreOptions): ResponseStore;
}

/** Where a hub keeps what must outlive a request (`createHub({ storage })`). */
export interface HubStorage {
  /** Countersigned receipts and each node's receipt position. */
  readonly receipts: ReceiptBook;
  /** Reserves each request's maximum cost and settles receipts; absent: nothing is billed. */
  readonly ledger?: HubLedger;
  /** Balances, history, deposits and refunds behind the account API (`/v1/account…`). */
  readonly books?: LedgerBooks;
  /** Signed statements to nodes and their disputes (SRP-SET-004..011). */
  readonly statements?: StatementBook;
  /** x402 payment locks and wallet accounts. */
  readonly payments?: PaymentBook;
  /** Sign-in nonces and payout wallets. */
  readonly wallets?: WalletBook;
  /** On-chain payout vouchers as the admin API lists them (`GET /admin/v1/payouts`). */
  readonly payouts?: PayoutList;
  /** Stored Responses API turns (`store`, `previous_response_id`). */
  readonly responses?: ResponseBook;
  /** Operator operations on accounts and API keys: the admin API and the keys wallet sign-in issues. */
  readonly admin?: AccountAdmin;
  /** Batches and their results (`POST /v1/batch`, `GET /v1/jobs/{id}`), readable by every process sharing the storage. */
  readonly batches?: BatchStore;
  /** Async jobs (videos, runs) and their artifacts; absent: this process's memory. */
  readonly asyncJobs?: AsyncJobStore;
  /** Card deposits and refunds of card money (`createHub({ cards })`, billing.md "Card deposits"). */
  readonly cards?: CardBook;
}
