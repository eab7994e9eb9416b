/**
 * `@srp/hub/storage`: the SQL layer under `SqlStore`, for those who run their own database
 * layout or tools beside the hub. The SQLite and PostgreSQL drivers, the schema migrations,
 * the value helpers (`int`, `big`, `text`) and each book on its own (accounts, receipts,
 * ledger, statements, x402 payments, payouts, wallets, stored responses, batches), and the
 * write-behind routing and payout state (`SqlRoutingStore`, `SqlPayoutState`). Most embedders
 * need only `SqliteStore`, `SqlStore` or `openStore` from `@srp/hub`.
 *
 * Every export of this entry is public API: a new export is a promise to keep it.
 *
 * @module @srp/hub/storage
 */
export { openSqlite, type SqliteOptions } from "./sqlite-driver.js";
export { openPostgres, type PostgresOptions } from "./postgres-driver.js";
export { MIGRATIONS } from "./migrations.js";
export { int, big, text, type SqlDriver, type SqlExecutor, type SqlRow, type SqlValue, type TransactionOptions } from "./sql.js";
export { SqlAccountBook } from "./account-book.js";
export { SqlReceiptBook } from "./receipt-book.js";
export { SqlLedgerBook, type SqlLedgerBookOptions } from "./ledger-book.js";
export { SqlStatementBook } from "./statement-book.js";
export { SqlPaymentBook } from "./payment-book.js";
export { SqlPayoutBook, type PayoutList, type PayoutRecord, type PayoutTarget } from "./payout-book.js";
export { SqlWalletBook, WALLET_NONCE_TTL_MS, type WalletBook, type PayoutWalletBinding } from "./wallet-book.js";
export { SqlResponseBook } from "./response-book.js";
export { SqlBatchBook, type BatchLedger } from "./batch-book.js";
export { SqlAsyncJobBook } from "./async-job-book.js";
export { SqlCardBook, type CardBook } from "./card-book.js";
export { depositIn, refundIn } from "./ledger-book.js";
export { SqlRoutingStore, encodeHealth, decodeHealth, type SqlRoutingStoreOptions } from "./routing-book.js";
export { SqlPayoutState, type SqlPayoutStateOptions } from "./payout-state-book.js";
