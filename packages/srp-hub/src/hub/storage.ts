/**
 * Which book the hub keeps each kind of state in, read from named options only: an explicit
 * option (`receipts`, `ledger`, `x402.book`, `responses.store`, `batches.store`, `admin`) wins over the member
 * of `storage` of that name; what neither names is kept in memory or not kept at all.
 */
import type { AccountAdmin } from "../accounts.js";
import { MemoryBatchStore, type BatchStore } from "../api/batch-store.js";
import { MemoryAsyncJobStore, type AsyncJobStore } from "../api/async-job-store.js";
import { MemoryResponseStore, type ResponseStore } from "../api/response-store.js";
import type { HubLedger, LedgerBooks } from "../ledger/ledger.js";
import type { PaymentBook } from "../payments/book.js";
import { MemoryReceiptBook, type ReceiptBook } from "../receipts.js";
import type { StatementBook } from "../ledger/statements.js";
import { SqlStore } from "../storage/sql-store.js";
import { isSolanaPayoutBook, type PayoutList, type SolanaPayoutBook } from "../storage/payout-book.js";
import type { WalletBook } from "../storage/wallet-book.js";
import type { CardBook } from "../storage/card-book.js";
import type { HubOptions } from "./options.js";

/** The books a hub works with, each resolved from its options. */
export interface HubBooks {
  /** Countersigned receipts and node positions; default in memory. */
  readonly receipts: ReceiptBook;
  /** Reserves and settles consumers' money; absent: nothing is billed. */
  readonly ledger: HubLedger | undefined;
  /** Balances, history, deposits and refunds behind the account API. */
  readonly books: LedgerBooks | undefined;
  /** Statements to nodes and their disputes. */
  readonly statements: StatementBook | undefined;
  /** x402 payment locks and wallet accounts. */
  readonly payments: PaymentBook | undefined;
  /** Sign-in nonces and payout wallets. */
  readonly wallets: WalletBook | undefined;
  /** Payout vouchers as the admin API lists them. */
  readonly payouts: PayoutList | undefined;
  /** Providers' payouts on Solana (SRP-PAY-034), in the same books as the vouchers. */
  readonly solanaPayouts: SolanaPayoutBook | undefined;
  /** Stored Responses API turns; default in memory. */
  readonly responses: ResponseStore;
  /** Operator operations (admin API, wallet sign-in's API keys). */
  readonly admin: AccountAdmin | undefined;
  /** Batches and their results; default in memory (this process's batches only). */
  readonly batches: BatchStore;
  /** Async jobs and their artifacts; default in memory (this process's jobs only). */
  readonly asyncJobs: AsyncJobStore;
  /** Card deposits and refunds of card money; absent: the hub takes no cards. */
  readonly cards: CardBook | undefined;
}

/** The books named by a hub's options (pure apart from creating the in-memory defaults). */
export function hubBooks(options: HubOptions): HubBooks {
  // A SQL store is storage for every book, not only receipts: passed as `receipts` it would
  // record receipts and bill nobody.
  if (options.receipts instanceof SqlStore)
    throw new TypeError("pass a SqlStore as `storage` (every book: receipts, ledger, statements, payments…), not as `receipts`");
  const storage = options.storage;
  const { store, ...policy } = options.responses ?? {};
  return {
    receipts: options.receipts ?? storage?.receipts ?? new MemoryReceiptBook(),
    ledger: options.ledger ?? storage?.ledger,
    books: storage?.books,
    statements: storage?.statements,
    payments: options.x402?.book ?? storage?.payments,
    wallets: storage?.wallets,
    payouts: storage?.payouts,
    solanaPayouts: isSolanaPayoutBook(storage?.payouts) ? storage.payouts : undefined,
    responses: store ?? storage?.responses?.withOptions(policy) ?? new MemoryResponseStore(policy),
    admin: options.admin ?? storage?.admin,
    batches: options.batches?.store ?? storage?.batches ?? new MemoryBatchStore(),
    asyncJobs: (options.asyncJobs ? options.asyncJobs.store : undefined) ?? storage?.asyncJobs ?? new MemoryAsyncJobStore(),
    cards: storage?.cards,
  };
}
