/**
 * The embedded default storage: one SQLite file (WAL mode) in the hub's data directory,
 * holding accounts, hashed API keys, wallets, countersigned receipts and each node's
 * receipt position. Versioned migrations run at open. Several processes (a running
 * `srp-hub serve` and the admin CLI) may open the same file.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { INITIAL_POSITION, type Receipt, type ReceiptPosition, type ReceiptTotals } from "@srp/core";
import {
  checkAccountId,
  checkWallet,
  generateApiKey,
  hashApiKey,
  keyPrefix,
  newId,
  type Account,
  type AccountAdmin,
  type AccountRecord,
  type AccountStore,
  type ApiKeyRecord,
} from "../accounts.js";
import type { ReceiptBook, StoredReceipt } from "../receipts.js";

/** Schema migrations, in order; the index plus one is the version. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE accounts (id TEXT PRIMARY KEY, name TEXT, created_at INTEGER NOT NULL);
   CREATE TABLE api_keys (
     id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), hash TEXT NOT NULL UNIQUE,
     prefix TEXT NOT NULL, label TEXT, created_at INTEGER NOT NULL, revoked_at INTEGER);
   CREATE INDEX api_keys_account ON api_keys(account_id);
   CREATE TABLE wallets (address TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), created_at INTEGER NOT NULL);
   CREATE TABLE receipts (
     job_id TEXT PRIMARY KEY, node_id TEXT NOT NULL, seq INTEGER NOT NULL,
     consumer_account_id TEXT, provider_account_id TEXT NOT NULL, cost TEXT NOT NULL,
     body TEXT NOT NULL, created_at INTEGER NOT NULL, UNIQUE (node_id, seq));
   CREATE TABLE node_positions (node_id TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, totals TEXT NOT NULL);`,
  `CREATE TABLE receipt_gaps (node_id TEXT NOT NULL, from_seq INTEGER NOT NULL, to_seq INTEGER NOT NULL, noted_at INTEGER NOT NULL, PRIMARY KEY (node_id, from_seq));`,
];

type Row = Record<string, unknown>;

function keyRecord(r: Row): ApiKeyRecord {
  return {
    keyId: r.id as string,
    accountId: r.account_id as string,
    prefix: r.prefix as string,
    label: (r.label as string | null) ?? null,
    createdAt: r.created_at as number,
    revokedAt: (r.revoked_at as number | null) ?? null,
  };
}

function accountRecord(r: Row): AccountRecord {
  return { id: r.id as string, name: (r.name as string | null) ?? null, createdAt: r.created_at as number };
}

/** Accounts, keys and receipts in one SQLite file. */
export class SqliteStore implements AccountStore, AccountAdmin, ReceiptBook {
  readonly #db: Database.Database;
  readonly #positions = new Map<string, ReceiptPosition>();
  readonly #stmts;

  /** Opens (creating if needed) the database at `path` and migrates it; `:memory:` for tests. */
  constructor(path: string) {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.#db = new Database(path);
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma("synchronous = NORMAL");
    this.#db.pragma("foreign_keys = ON");
    this.#db.pragma("busy_timeout = 5000");
    this.#migrate();
    const db = this.#db;
    this.#stmts = {
      keyByHash: db.prepare("SELECT account_id, revoked_at FROM api_keys WHERE hash = ?"),
      wallet: db.prepare("SELECT account_id FROM wallets WHERE address = ?"),
      insertAccount: db.prepare("INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)"),
      account: db.prepare("SELECT * FROM accounts WHERE id = ?"),
      accounts: db.prepare("SELECT * FROM accounts ORDER BY created_at, id"),
      insertKey: db.prepare("INSERT INTO api_keys (id, account_id, hash, prefix, label, created_at) VALUES (?, ?, ?, ?, ?, ?)"),
      keys: db.prepare("SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at"),
      revoke: db.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"),
      insertWallet: db.prepare("INSERT OR REPLACE INTO wallets (address, account_id, created_at) VALUES (?, ?, ?)"),
      position: db.prepare("SELECT last_seq, totals FROM node_positions WHERE node_id = ?"),
      upsertPosition: db.prepare(
        "INSERT INTO node_positions (node_id, last_seq, totals) VALUES (?, ?, ?) ON CONFLICT(node_id) DO UPDATE SET last_seq = excluded.last_seq, totals = excluded.totals",
      ),
      insertReceipt: db.prepare(
        "INSERT INTO receipts (job_id, node_id, seq, consumer_account_id, provider_account_id, cost, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      receipt: db.prepare("SELECT * FROM receipts WHERE job_id = ?"),
      insertGap: db.prepare("INSERT OR IGNORE INTO receipt_gaps (node_id, from_seq, to_seq, noted_at) VALUES (?, ?, ?, ?)"),
      gaps: db.prepare("SELECT from_seq, to_seq FROM receipt_gaps WHERE node_id = ? ORDER BY from_seq"),
    };
  }

  #migrate(): void {
    this.#db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
    const current = (this.#db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as { v: number | null }).v ?? 0;
    if (current > MIGRATIONS.length) throw new Error(`database schema version ${current} is newer than this hub (${MIGRATIONS.length})`);
    const apply = this.#db.transaction((version: number, sql: string) => {
      this.#db.exec(sql);
      this.#db.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)").run(version, Date.now());
    });
    for (let v = current + 1; v <= MIGRATIONS.length; v++) apply(v, MIGRATIONS[v - 1]!);
  }

  /** The schema version of the open database. */
  get schemaVersion(): number {
    return (this.#db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as { v: number }).v;
  }

  async findByApiKey(apiKey: string): Promise<Account | undefined> {
    const r = this.#stmts.keyByHash.get(hashApiKey(apiKey)) as Row | undefined;
    return r && r.revoked_at === null ? { id: r.account_id as string } : undefined;
  }

  async findByWallet(address: string): Promise<Account | undefined> {
    const r = this.#stmts.wallet.get(address.toLowerCase()) as Row | undefined;
    return r ? { id: r.account_id as string } : undefined;
  }

  async createAccount(input: { id?: string; name?: string } = {}): Promise<AccountRecord> {
    const id = input.id ?? newId("acct");
    checkAccountId(id);
    if (this.#stmts.account.get(id)) throw new TypeError(`account ${id} exists`);
    const record = { id, name: input.name ?? null, createdAt: Date.now() };
    this.#stmts.insertAccount.run(record.id, record.name, record.createdAt);
    return record;
  }

  async getAccount(id: string): Promise<AccountRecord | undefined> {
    const r = this.#stmts.account.get(id) as Row | undefined;
    return r ? accountRecord(r) : undefined;
  }

  async listAccounts(): Promise<AccountRecord[]> {
    return (this.#stmts.accounts.all() as Row[]).map(accountRecord);
  }

  async createApiKey(accountId: string, label?: string): Promise<{ key: string; record: ApiKeyRecord }> {
    if (!this.#stmts.account.get(accountId)) throw new TypeError(`no account ${accountId}`);
    const key = generateApiKey();
    const record: ApiKeyRecord = { keyId: newId("key"), accountId, prefix: keyPrefix(key), label: label ?? null, createdAt: Date.now(), revokedAt: null };
    this.#stmts.insertKey.run(record.keyId, accountId, hashApiKey(key), record.prefix, record.label, record.createdAt);
    return { key, record };
  }

  /** Stores a key chosen elsewhere (e.g. a development key kept in a file). */
  importApiKey(accountId: string, key: string, label?: string): ApiKeyRecord {
    const existing = this.#stmts.keyByHash.get(hashApiKey(key)) as Row | undefined;
    if (existing) {
      if (existing.account_id !== accountId) throw new TypeError("this key belongs to another account");
      return (this.#stmts.keys.all(accountId) as Row[]).map(keyRecord).find((k) => k.prefix === keyPrefix(key))!;
    }
    const record: ApiKeyRecord = { keyId: newId("key"), accountId, prefix: keyPrefix(key), label: label ?? null, createdAt: Date.now(), revokedAt: null };
    this.#stmts.insertKey.run(record.keyId, accountId, hashApiKey(key), record.prefix, record.label, record.createdAt);
    return record;
  }

  async listApiKeys(accountId: string): Promise<ApiKeyRecord[]> {
    return (this.#stmts.keys.all(accountId) as Row[]).map(keyRecord);
  }

  async revokeApiKey(keyId: string): Promise<boolean> {
    return this.#stmts.revoke.run(Date.now(), keyId).changes === 1;
  }

  async addWallet(accountId: string, address: string): Promise<void> {
    if (!this.#stmts.account.get(accountId)) throw new TypeError(`no account ${accountId}`);
    this.#stmts.insertWallet.run(checkWallet(address), accountId, Date.now());
  }

  position(nodeId: string): ReceiptPosition {
    const cached = this.#positions.get(nodeId);
    if (cached) return cached;
    const r = this.#stmts.position.get(nodeId) as Row | undefined;
    const pos = r ? { lastSeq: r.last_seq as number, totals: JSON.parse(r.totals as string) as ReceiptTotals } : INITIAL_POSITION;
    this.#positions.set(nodeId, pos);
    return pos;
  }

  /** Stores the receipt and the node's new position in one transaction. */
  record(entry: StoredReceipt): void {
    const r = entry.receipt;
    const write = this.#db.transaction(() => {
      this.#stmts.insertReceipt.run(r.jobId, r.nodeId, r.seq, entry.consumerAccountId ?? null, entry.providerAccountId, r.cost, JSON.stringify(r), Date.now());
      this.#stmts.upsertPosition.run(r.nodeId, r.seq, JSON.stringify(r.totals));
    });
    write();
    this.#positions.set(r.nodeId, { lastSeq: r.seq, totals: r.totals });
  }

  get(jobId: string): StoredReceipt | undefined {
    const r = this.#stmts.receipt.get(jobId) as Row | undefined;
    if (!r) return undefined;
    const out: StoredReceipt = { receipt: JSON.parse(r.body as string) as Receipt, providerAccountId: r.provider_account_id as string };
    if (r.consumer_account_id !== null) out.consumerAccountId = r.consumer_account_id as string;
    return out;
  }

  recordGap(nodeId: string, from: number, to: number): void {
    this.#stmts.insertGap.run(nodeId, from, to, Date.now());
  }

  gaps(nodeId: string): { from: number; to: number }[] {
    return (this.#stmts.gaps.all(nodeId) as Row[]).map((r) => ({ from: r.from_seq as number, to: r.to_seq as number }));
  }

  /** Closes the database. */
  close(): void {
    this.#db.close();
  }
}
