/**
 * Versioned schema migrations, one script per version, in SQL both SQLite and PostgreSQL
 * run unchanged. A database records the versions it has applied in `schema_migrations`;
 * a hub refuses a database newer than itself. Never edit a released migration: add one.
 */

/** The migrations, in order; the index plus one is the version. */
export const MIGRATIONS: readonly string[] = [
  // 1: accounts, hashed API keys, wallets, countersigned receipts, node positions.
  `CREATE TABLE accounts (id TEXT PRIMARY KEY, name TEXT, created_at BIGINT NOT NULL);
   CREATE TABLE api_keys (
     id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), hash TEXT NOT NULL UNIQUE,
     prefix TEXT NOT NULL, label TEXT, created_at BIGINT NOT NULL, revoked_at BIGINT);
   CREATE INDEX api_keys_account ON api_keys(account_id);
   CREATE TABLE wallets (address TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), created_at BIGINT NOT NULL);
   CREATE TABLE receipts (
     job_id TEXT PRIMARY KEY, node_id TEXT NOT NULL, seq BIGINT NOT NULL,
     consumer_account_id TEXT, provider_account_id TEXT NOT NULL, cost TEXT NOT NULL,
     body TEXT NOT NULL, created_at BIGINT NOT NULL, UNIQUE (node_id, seq));
   CREATE TABLE node_positions (node_id TEXT PRIMARY KEY, last_seq BIGINT NOT NULL, totals TEXT NOT NULL);`,
  // 2: receipt numbers a node skipped (SRP-ATT-010).
  `CREATE TABLE receipt_gaps (node_id TEXT NOT NULL, from_seq BIGINT NOT NULL, to_seq BIGINT NOT NULL, noted_at BIGINT NOT NULL, PRIMARY KEY (node_id, from_seq));`,
  // 3: the double-entry ledger. A balance column is kept in the same transaction as the
  // entries that move it; `ledger verify` checks that it equals the sum of its entries.
  // `funded` (user accounts) is deposits less refunds, kept the same way and checked too.
  `CREATE TABLE ledger_accounts (
     id TEXT PRIMARY KEY, kind TEXT NOT NULL, owner TEXT, balance BIGINT NOT NULL DEFAULT 0,
     may_go_negative INTEGER NOT NULL DEFAULT 0, funded BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL);
   CREATE TABLE ledger_transactions (
     id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
     account_id TEXT, ref TEXT, memo TEXT, created_at BIGINT NOT NULL);
   CREATE INDEX ledger_transactions_account ON ledger_transactions(account_id, created_at);
   CREATE INDEX ledger_transactions_ref ON ledger_transactions(ref);
   CREATE TABLE ledger_entries (
     tx_id TEXT NOT NULL REFERENCES ledger_transactions(id), account_id TEXT NOT NULL REFERENCES ledger_accounts(id),
     amount BIGINT NOT NULL, PRIMARY KEY (tx_id, account_id));
   CREATE INDEX ledger_entries_account ON ledger_entries(account_id);
   CREATE TABLE reservations (
     id TEXT PRIMARY KEY, account_id TEXT NOT NULL, amount BIGINT NOT NULL, discount_bps INTEGER NOT NULL,
     holder TEXT NOT NULL, state TEXT NOT NULL, job_id TEXT, charged BIGINT, created_at BIGINT NOT NULL, closed_at BIGINT);
   CREATE INDEX reservations_open ON reservations(state, holder);
   CREATE TABLE hub_processes (id TEXT PRIMARY KEY, started_at BIGINT NOT NULL, seen_at BIGINT NOT NULL);
   ALTER TABLE receipts ADD COLUMN reservation_id TEXT;
   ALTER TABLE receipts ADD COLUMN provider_share BIGINT;
   ALTER TABLE receipts ADD COLUMN statement_id TEXT;
   ALTER TABLE receipts ADD COLUMN payout_bounty BIGINT;
   ALTER TABLE receipts ADD COLUMN payout_reduction BIGINT;
   CREATE INDEX receipts_unstated ON receipts(node_id, statement_id);
   CREATE TABLE statements (
     id TEXT PRIMARY KEY, node_id TEXT NOT NULL, account_id TEXT NOT NULL, period_from BIGINT NOT NULL, period_to BIGINT NOT NULL,
     first_seq BIGINT NOT NULL, last_seq BIGINT NOT NULL, receipt_count BIGINT NOT NULL, earned BIGINT NOT NULL, paid BIGINT NOT NULL,
     balance BIGINT NOT NULL, body TEXT NOT NULL, issued_at BIGINT NOT NULL);
   CREATE INDEX statements_node ON statements(node_id, period_to);
   CREATE TABLE disputes (
     id TEXT PRIMARY KEY, node_id TEXT NOT NULL, account_id TEXT NOT NULL, kind TEXT NOT NULL, statement_id TEXT,
     body TEXT NOT NULL, received_at BIGINT NOT NULL);`,
  // 4: x402 payments. One row per EIP-3009 authorization, unique by (network, asset,
  // payer, nonce): the row is the durable lock that lets an authorization buy one request.
  // A debt is what a payment settled after serving failed to bring in; it blocks the wallet.
  `CREATE TABLE x402_payments (
     id TEXT PRIMARY KEY, network TEXT NOT NULL, asset TEXT NOT NULL, payer TEXT NOT NULL, nonce TEXT NOT NULL,
     amount BIGINT NOT NULL, valid_before BIGINT NOT NULL, account_id TEXT NOT NULL, mode TEXT NOT NULL, state TEXT NOT NULL,
     credited INTEGER NOT NULL DEFAULT 0, served INTEGER NOT NULL DEFAULT 0, tx_hash TEXT, error TEXT, resource TEXT,
     payload TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
     UNIQUE (network, asset, payer, nonce));
   CREATE INDEX x402_payments_state ON x402_payments(state, updated_at);
   CREATE TABLE wallet_debts (
     payment_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, amount BIGINT NOT NULL, repaid BIGINT NOT NULL DEFAULT 0,
     created_at BIGINT NOT NULL, cleared_at BIGINT);
   CREATE INDEX wallet_debts_account ON wallet_debts(account_id, cleared_at);
   CREATE TABLE payout_wallets (
     node_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, address TEXT NOT NULL, signature TEXT NOT NULL, bound_at BIGINT NOT NULL);
   CREATE INDEX payout_wallets_account ON payout_wallets(account_id, bound_at);
   CREATE TABLE payouts (
     id TEXT PRIMARY KEY, account_id TEXT NOT NULL, payee TEXT NOT NULL, amount BIGINT NOT NULL, fee BIGINT NOT NULL,
     total BIGINT NOT NULL, signature TEXT NOT NULL, settlement TEXT NOT NULL, chain_id BIGINT NOT NULL,
     funded_tx TEXT, claim_tx TEXT, created_at BIGINT NOT NULL, UNIQUE (settlement, payee, total));
   CREATE INDEX payouts_account ON payouts(account_id, created_at);
   CREATE TABLE wallet_nonces (nonce TEXT PRIMARY KEY, expires_at BIGINT NOT NULL, used_at BIGINT);`,
  // 5: the sweeps of expired sign-in nonces find them by expiry (SRP-SEC-016).
  `CREATE INDEX wallet_nonces_expiry ON wallet_nonces(expires_at);`,
  // 6: stored responses of the Responses API (SRP-CON-050..), one row per turn, per account;
  // `depth` and `chain_bytes` (its conversation's turns and bytes) bound a continuation, an
  // account's turns by expiry bound the account; `response_items` finds an item_reference's turn.
  `CREATE TABLE responses (
     id TEXT PRIMARY KEY, account_id TEXT NOT NULL, previous_id TEXT, depth BIGINT NOT NULL, bytes BIGINT NOT NULL,
     chain_bytes BIGINT NOT NULL, input TEXT NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL);
   CREATE INDEX responses_expiry ON responses(expires_at);
   CREATE INDEX responses_account ON responses(account_id, expires_at);
   CREATE TABLE response_items (
     account_id TEXT NOT NULL, item_id TEXT NOT NULL, response_id TEXT NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
     PRIMARY KEY (account_id, item_id, response_id));
   CREATE INDEX response_items_response ON response_items(response_id);`,
  // 7: routing and payout state that must outlive a restart (written behind, never money):
  // each instance's routing state as JSON with its first-seen time; demand per model per
  // minute; the models each node offered last; each instance's last model switch.
  `CREATE TABLE routing_state (instance_key TEXT PRIMARY KEY, first_seen BIGINT NOT NULL, state TEXT NOT NULL, updated_at BIGINT NOT NULL);
   CREATE INDEX routing_state_updated ON routing_state(updated_at);
   CREATE TABLE payout_demand (model TEXT NOT NULL, minute BIGINT NOT NULL, requests BIGINT NOT NULL, PRIMARY KEY (model, minute));
   CREATE INDEX payout_demand_minute ON payout_demand(minute);
   CREATE TABLE payout_offers (node_id TEXT PRIMARY KEY, offers TEXT NOT NULL, updated_at BIGINT NOT NULL);
   CREATE INDEX payout_offers_updated ON payout_offers(updated_at);
   CREATE TABLE payout_switches (instance_key TEXT PRIMARY KEY, switched_at BIGINT NOT NULL);
   CREATE INDEX payout_switches_at ON payout_switches(switched_at);`,
  // 8: batches (SRP-CON-012, SRP-CON-013), so any hub process answers `GET /v1/jobs/{id}`:
  // the batch as shown (JSON, amounts as strings), its account, each item's reservation and
  // the process running it (`holder`, as in `reservations`); `expires_at` (Unix ms) is null
  // while it runs. Batches of a stopped holder are ended by another process's reconcile.
  `CREATE TABLE batches (
     id TEXT PRIMARY KEY, account_id TEXT NOT NULL, keyed INTEGER NOT NULL, holder TEXT NOT NULL, reservations TEXT NOT NULL,
     state TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, expires_at BIGINT);
   CREATE INDEX batches_account ON batches(account_id, expires_at);
   CREATE INDEX batches_expiry ON batches(expires_at);
   CREATE INDEX batches_holder ON batches(holder, expires_at);`,
  // 9: API keys with spending controls (SRP-CON-083..087): each key's policy as JSON (tags,
  // expiry, allowed models, budgets in atomic units as strings, rate limits); the key each
  // reservation was made with; and each key's spending per period (`total`, `d:YYYY-MM-DD`,
  // `m:YYYY-MM`, UTC): held by requests in flight and spent by settled ones, so a budget is
  // checked and moved under the same lock as the money.
  `ALTER TABLE api_keys ADD COLUMN policy TEXT;
   ALTER TABLE reservations ADD COLUMN key_id TEXT;
   CREATE TABLE api_key_spend (
     key_id TEXT NOT NULL, period TEXT NOT NULL, reserved BIGINT NOT NULL DEFAULT 0, spent BIGINT NOT NULL DEFAULT 0,
     requests BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (key_id, period));`,
  // 10: the admin API lists x402 payments and payout vouchers newest first, a page at a time
  // (`GET /admin/v1/payments`, `GET /admin/v1/payouts`), by creation time and id.
  `CREATE INDEX x402_payments_created ON x402_payments(created_at, id);
   CREATE INDEX payouts_created ON payouts(created_at, id);`,
  // 11: card deposits (billing.md "Card deposits"): each Checkout Session the hub created, by
  // its deposit id (the session id once known), credited once from its signed completion
  // (`state`, the crediting event); `refunded` is what of it went back to the card. Each
  // refund of card money is a share per card payment, `pending` until the processor takes it.
  // Uncredited deposits expire and are swept by age (`card_deposits_age`).
  `CREATE TABLE card_deposits (
     id TEXT PRIMARY KEY, account_id TEXT NOT NULL, amount BIGINT NOT NULL, cents BIGINT NOT NULL, state TEXT NOT NULL,
     session_id TEXT UNIQUE, payment_intent TEXT, event_id TEXT, refunded BIGINT NOT NULL DEFAULT 0, note TEXT,
     created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, credited_at BIGINT);
   CREATE INDEX card_deposits_account ON card_deposits(account_id, state, credited_at);
   CREATE INDEX card_deposits_age ON card_deposits(state, created_at);
   CREATE TABLE card_refunds (
     id TEXT PRIMARY KEY, reference TEXT NOT NULL, deposit_id TEXT NOT NULL, account_id TEXT NOT NULL, amount BIGINT NOT NULL,
     cents BIGINT NOT NULL, state TEXT NOT NULL, refund_id TEXT UNIQUE, note TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
   CREATE INDEX card_refunds_reference ON card_refunds(reference, account_id);`,
  // 12: async jobs (consumer.md "Async jobs"): each video or run as shown (JSON), its status,
  // account, reservation, webhook and the process running it (`holder`); `expires_at` (Unix ms)
  // is null while it runs. A finished job's artifacts are kept beside it, base64, until it expires.
  `CREATE TABLE async_jobs (
     id TEXT PRIMARY KEY, object TEXT NOT NULL, status TEXT NOT NULL, account_id TEXT NOT NULL, keyed INTEGER NOT NULL, holder TEXT NOT NULL,
     reservation_id TEXT, webhook TEXT, state TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, expires_at BIGINT);
   CREATE INDEX async_jobs_account ON async_jobs(account_id, object, created_at);
   CREATE INDEX async_jobs_expiry ON async_jobs(expires_at);
   CREATE INDEX async_jobs_holder ON async_jobs(holder, expires_at);
   CREATE TABLE async_artifacts (
     job_id TEXT NOT NULL, name TEXT NOT NULL, content_type TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (job_id, name));`,
];
