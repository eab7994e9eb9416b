/**
 * Wallets in the books: the one-time nonces a hub issues for wallet signatures (Sign-In
 * with Ethereum, refunds), and the payout wallet bound to each provider node. `SqlStore`
 * keeps them on SQLite and PostgreSQL (`store.wallets`).
 */
import { randomBytes } from "@srp/core";
import { int, type SqlDriver, type SqlRow } from "./sql.js";

/** How long an issued nonce can be used: 10 minutes. */
export const WALLET_NONCE_TTL_MS = 600_000;

/** Characters of an issued nonce (EIP-4361 wants at least 8 alphanumerics). */
const NONCE_LENGTH = 24;
const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A random alphanumeric string of `length` characters (uniform: bytes past the last whole multiple of 62 are dropped). */
export function alphanumericNonce(length = NONCE_LENGTH): string {
  let out = "";
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b >= 248) continue; // 248 = 4 * 62
      out += ALPHANUMERIC[b % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/** A node's payout wallet as stored. */
export interface PayoutWalletBinding {
  nodeId: string;
  /** The account the node belonged to when the wallet was bound. */
  accountId: string;
  /** The wallet, lowercase. */
  address: string;
  /** The wallet's EIP-191 signature over `payoutWalletMessage(nodeId)`. */
  signature: string;
  /** Unix ms. */
  boundAt: number;
}

/** What the wallet routes need from storage. */
export interface WalletBook {
  /** Issues a one-time nonce valid for `ttlMs` (default 10 minutes). */
  issueNonce(ttlMs?: number, now?: number): Promise<{ nonce: string; expiresAt: number }>;
  /** Uses a nonce up: true once for a nonce this hub issued that has not expired, false otherwise. Atomic across processes. */
  consumeNonce(nonce: string, now?: number): Promise<boolean>;
  /** Binds (or rebinds) a node's payout wallet. */
  bindPayoutWallet(binding: Omit<PayoutWalletBinding, "boundAt">, now?: number): Promise<PayoutWalletBinding>;
  /** A node's payout wallet binding. */
  payoutBinding(nodeId: string): Promise<PayoutWalletBinding | undefined>;
  /** The wallet an account is paid to: its most recently bound node payout wallet, else its sign-in wallet. */
  payoutWallet(accountId: string): Promise<string | undefined>;
  /** Whether a node has receipts that credited this account (it served jobs for it). */
  nodeServedAccount(nodeId: string, accountId: string): Promise<boolean>;
  /** Deletes expired nonces (used or not), in bounded batches; returns how many (SRP-SEC-016). */
  sweep?(now?: number): Promise<number>;
}

function binding(r: SqlRow): PayoutWalletBinding {
  return {
    nodeId: String(r.node_id),
    accountId: String(r.account_id),
    address: String(r.address),
    signature: String(r.signature),
    boundAt: int(r.bound_at),
  };
}

/** Expired nonces are swept at most this often (per process). */
const SWEEP_EVERY_MS = 60_000;

/** Rows one sweep statement deletes at most, and statements one sweep runs at most. */
export const SWEEP_BATCH = { rows: 1000, batches: 20 } as const;

/**
 * Runs a bounded `DELETE ... IN (SELECT ... LIMIT ?)` until it deletes fewer rows than a
 * batch or the batches run out; returns how many rows went. Short statements keep other
 * writers waiting only briefly (SQLite has one writer).
 */
export async function sweepInBatches(db: SqlDriver, sql: string, params: readonly (string | number)[]): Promise<number> {
  let total = 0;
  for (let i = 0; i < SWEEP_BATCH.batches; i++) {
    const n = await db.run(sql, [...params, SWEEP_BATCH.rows]);
    total += n;
    if (n < SWEEP_BATCH.rows) break;
  }
  return total;
}

/** The wallet storage of a `SqlStore`. */
export class SqlWalletBook implements WalletBook {
  readonly #db: SqlDriver;
  readonly #ready: Promise<void>;
  #swept = 0;

  /** @param ready resolves once the store's migrations have run. */
  constructor(db: SqlDriver, ready: Promise<void>) {
    this.#db = db;
    this.#ready = ready;
  }

  async issueNonce(ttlMs = WALLET_NONCE_TTL_MS, now = Date.now()): Promise<{ nonce: string; expiresAt: number }> {
    await this.#ready;
    if (now - this.#swept >= SWEEP_EVERY_MS) await this.sweep(now);
    const nonce = alphanumericNonce();
    const expiresAt = now + ttlMs;
    await this.#db.run("INSERT INTO wallet_nonces (nonce, expires_at) VALUES (?, ?)", [nonce, expiresAt]);
    return { nonce, expiresAt };
  }

  async sweep(now = Date.now()): Promise<number> {
    await this.#ready;
    this.#swept = now;
    // Expired nonces (used or not) can never be used again: keep the table small.
    return sweepInBatches(
      this.#db,
      "DELETE FROM wallet_nonces WHERE nonce IN (SELECT nonce FROM wallet_nonces WHERE expires_at <= ? LIMIT ?)",
      [now],
    );
  }

  async consumeNonce(nonce: string, now = Date.now()): Promise<boolean> {
    await this.#ready;
    return (
      (await this.#db.run("UPDATE wallet_nonces SET used_at = ? WHERE nonce = ? AND used_at IS NULL AND expires_at > ?", [
        now,
        nonce,
        now,
      ])) === 1
    );
  }

  async bindPayoutWallet(b: Omit<PayoutWalletBinding, "boundAt">, now = Date.now()): Promise<PayoutWalletBinding> {
    await this.#ready;
    const row: PayoutWalletBinding = { ...b, address: b.address.toLowerCase(), boundAt: now };
    await this.#db.run(
      `INSERT INTO payout_wallets (node_id, account_id, address, signature, bound_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (node_id) DO UPDATE SET account_id = excluded.account_id, address = excluded.address, signature = excluded.signature, bound_at = excluded.bound_at`,
      [row.nodeId, row.accountId, row.address, row.signature, row.boundAt],
    );
    return row;
  }

  async payoutBinding(nodeId: string): Promise<PayoutWalletBinding | undefined> {
    await this.#ready;
    const rows = await this.#db.all("SELECT * FROM payout_wallets WHERE node_id = ?", [nodeId]);
    return rows[0] ? binding(rows[0]) : undefined;
  }

  async payoutWallet(accountId: string): Promise<string | undefined> {
    await this.#ready;
    const bound = await this.#db.all("SELECT address FROM payout_wallets WHERE account_id = ? ORDER BY bound_at DESC, node_id LIMIT 1", [
      accountId,
    ]);
    if (bound[0]) return String(bound[0].address);
    const own = await this.#db.all("SELECT address FROM wallets WHERE account_id = ? ORDER BY created_at DESC, address LIMIT 1", [
      accountId,
    ]);
    return own[0] ? String(own[0].address) : undefined;
  }

  async nodeServedAccount(nodeId: string, accountId: string): Promise<boolean> {
    await this.#ready;
    return (
      (await this.#db.all("SELECT 1 AS one FROM receipts WHERE node_id = ? AND provider_account_id = ? LIMIT 1", [nodeId, accountId]))
        .length > 0
    );
  }
}
