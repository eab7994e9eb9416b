/**
 * Accounts, hashed API keys and wallet bindings of a `SqlStore`: the {@link AccountStore}
 * the hub authenticates with and the {@link AccountAdmin} operators manage. A new
 * account receives its signup credits in the transaction that creates it. On PostgreSQL
 * the API-key lookups made together go in one query (`turn-batcher.ts`), each still read
 * after it was asked for, so a revoked key is refused as soon as its revocation commits.
 */
import {
  checkAccountId,
  checkWallet,
  generateApiKey,
  hashApiKey,
  isLiveKey,
  keyPrefix,
  LastKeyError,
  newId,
  type Account,
  type AccountAdmin,
  type AccountRecord,
  type AccountStore,
  type ApiKeyChange,
  type ApiKeyRecord,
} from "../accounts.js";
import { applyPolicyPatch, decodePolicy, encodePolicy, NO_POLICY, type KeyPolicy } from "../keys/policy.js";
import { keySpendOf, type KeySpend } from "./key-spend.js";
import { post } from "../ledger/ledger.js";
import { signupPosting } from "../ledger/postings.js";
import { lostDatabase } from "./postgres-driver.js";
import { int, text, type SqlDriver, type SqlExecutor, type SqlRow } from "./sql.js";
import { TurnBatcher } from "./turn-batcher.js";
import { walletKey } from "./payment-book.js";

function keyRecord(r: SqlRow): ApiKeyRecord {
  return {
    keyId: String(r.id),
    accountId: String(r.account_id),
    prefix: String(r.prefix),
    label: text(r.label),
    createdAt: int(r.created_at),
    revokedAt: r.revoked_at === null ? null : int(r.revoked_at),
    policy: decodePolicy(text(r.policy)),
  };
}

function accountRecord(r: SqlRow): AccountRecord {
  return { id: String(r.id), name: text(r.name), createdAt: int(r.created_at) };
}

/** Throws unless the account exists. */
export async function requireAccount(tx: SqlExecutor, accountId: string): Promise<void> {
  if ((await tx.all("SELECT id FROM accounts WHERE id = ?", [accountId])).length === 0) throw new TypeError(`no account ${accountId}`);
}

/** The account an API key's row names, with the key and its policy, unless the key is revoked (or there is no row). */
function keyOwner(r: SqlRow | undefined): Account | undefined {
  if (!r || r.revoked_at !== null) return undefined;
  return { id: String(r.account_id), key: { keyId: String(r.id), policy: decodePolicy(text(r.policy)) } };
}

/** The accounts and API keys of a `SqlStore`. */
export class SqlAccountBook implements AccountStore, AccountAdmin {
  readonly #db: SqlDriver;
  readonly #ready: Promise<void>;
  readonly #signupCredits: bigint;
  /** PostgreSQL: the API-key lookups made together, in one query (by key hash). */
  readonly #lookups: TurnBatcher<string, Account | undefined> | undefined;

  /**
   * @param ready resolves once the store's migrations have run.
   * @param signupCredits credited to every new account from the platform.
   */
  constructor(db: SqlDriver, ready: Promise<void>, signupCredits: bigint) {
    this.#db = db;
    this.#ready = ready;
    this.#signupCredits = signupCredits;
    if (db.dialect === "postgres")
      this.#lookups = new TurnBatcher(
        (hashes) => this.#findMany(hashes),
        (hash) => this.#findOne(hash),
        { oneByOne: (error) => !lostDatabase(error) },
      );
  }

  async findByApiKey(apiKey: string): Promise<Account | undefined> {
    await this.#ready;
    const hash = hashApiKey(apiKey);
    return this.#lookups ? this.#lookups.push(hash) : this.#findOne(hash);
  }

  /** The owner of one key hash. */
  async #findOne(hash: string): Promise<Account | undefined> {
    return keyOwner((await this.#db.all("SELECT id, account_id, revoked_at, policy FROM api_keys WHERE hash = ?", [hash]))[0]);
  }

  /** The owners of several key hashes in one query (PostgreSQL), one per hash in order. */
  async #findMany(hashes: readonly string[]): Promise<Array<Account | undefined>> {
    const rows = await this.#db.all("SELECT id, hash, account_id, revoked_at, policy FROM api_keys WHERE hash = ANY(CAST(? AS TEXT[]))", [
      [...new Set(hashes)],
    ]);
    const byHash = new Map(rows.map((r) => [String(r.hash), r]));
    return hashes.map((h) => keyOwner(byHash.get(h)));
  }

  async findByWallet(address: string): Promise<Account | undefined> {
    await this.#ready;
    const rows = await this.#db.all("SELECT account_id FROM wallets WHERE address = ?", [walletKey(address)]);
    return rows[0] ? { id: String(rows[0].account_id) } : undefined;
  }

  /** Creates an account and credits its signup credits, in one transaction. */
  async createAccount(input: { id?: string; name?: string } = {}): Promise<AccountRecord> {
    await this.#ready;
    const id = input.id ?? newId("acct");
    checkAccountId(id);
    const record = { id, name: input.name ?? null, createdAt: Date.now() };
    await this.#db.transaction(async (tx) => {
      const inserted = await tx.run("INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING", [
        record.id,
        record.name,
        record.createdAt,
      ]);
      if (inserted === 0) throw new TypeError(`account ${id} exists`);
      if (this.#signupCredits > 0n) await post(tx, signupPosting(id, this.#signupCredits), { dialect: this.#db.dialect });
    });
    return record;
  }

  async getAccount(id: string): Promise<AccountRecord | undefined> {
    await this.#ready;
    const rows = await this.#db.all("SELECT * FROM accounts WHERE id = ?", [id]);
    return rows[0] ? accountRecord(rows[0]) : undefined;
  }

  async listAccounts(): Promise<AccountRecord[]> {
    await this.#ready;
    return (await this.#db.all("SELECT * FROM accounts ORDER BY created_at, id")).map(accountRecord);
  }

  async createApiKey(accountId: string, label?: string, policy: KeyPolicy = NO_POLICY): Promise<{ key: string; record: ApiKeyRecord }> {
    await this.#ready;
    await requireAccount(this.#db, accountId);
    const key = generateApiKey();
    return { key, record: await this.#insertKey(accountId, key, label, policy) };
  }

  /** Stores the hash of `key` for an account. */
  async #insertKey(accountId: string, key: string, label: string | undefined, policy: KeyPolicy = NO_POLICY): Promise<ApiKeyRecord> {
    const record: ApiKeyRecord = {
      keyId: newId("key"),
      accountId,
      prefix: keyPrefix(key),
      label: label ?? null,
      createdAt: Date.now(),
      revokedAt: null,
      policy,
    };
    await this.#db.run("INSERT INTO api_keys (id, account_id, hash, prefix, label, created_at, policy) VALUES (?, ?, ?, ?, ?, ?, ?)", [
      record.keyId,
      accountId,
      hashApiKey(key),
      record.prefix,
      record.label,
      record.createdAt,
      encodePolicy(policy),
    ]);
    return record;
  }

  async getApiKey(keyId: string): Promise<ApiKeyRecord | undefined> {
    await this.#ready;
    const rows = await this.#db.all("SELECT * FROM api_keys WHERE id = ?", [keyId]);
    return rows[0] ? keyRecord(rows[0]) : undefined;
  }

  /** Reads the key (locked on PostgreSQL), applies the change and writes it back, in one transaction. */
  async updateApiKey(keyId: string, change: ApiKeyChange): Promise<ApiKeyRecord | undefined> {
    await this.#ready;
    const lock = this.#db.dialect === "postgres" ? " FOR UPDATE" : "";
    return this.#db.transaction(async (tx) => {
      const row = (await tx.all(`SELECT * FROM api_keys WHERE id = ?${lock}`, [keyId]))[0];
      if (!row || row.revoked_at !== null) return undefined;
      const { label, ...patch } = change;
      const before = keyRecord(row);
      const after: ApiKeyRecord = {
        ...before,
        label: label === undefined ? before.label : label,
        policy: applyPolicyPatch(before.policy, patch),
      };
      await tx.run("UPDATE api_keys SET label = ?, policy = ? WHERE id = ?", [after.label, encodePolicy(after.policy), keyId]);
      return after;
    });
  }

  /** Stores a key chosen elsewhere (e.g. a development key kept in a file); creates the account (with its signup credits) if needed. */
  async importApiKey(accountId: string, key: string, label?: string): Promise<ApiKeyRecord> {
    await this.#ready;
    checkAccountId(accountId);
    if (!(await this.getAccount(accountId))) {
      await this.createAccount({ id: accountId }).catch(async (error: unknown) => {
        if (!(await this.getAccount(accountId))) throw error; // created meanwhile by someone else: fine
      });
    }
    const existing = await this.#db.all("SELECT * FROM api_keys WHERE hash = ?", [hashApiKey(key)]);
    if (existing[0]) {
      if (existing[0].account_id !== accountId) throw new TypeError("this key belongs to another account");
      return keyRecord(existing[0]);
    }
    return this.#insertKey(accountId, key, label);
  }

  async listApiKeys(accountId: string): Promise<ApiKeyRecord[]> {
    await this.#ready;
    return (await this.#db.all("SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at, id", [accountId])).map(keyRecord);
  }

  /**
   * Revokes a key. With `keepLastLive` the account's keys are read (its account row locked on
   * PostgreSQL, so two revocations of an account's last two keys cannot both pass) in the
   * transaction that revokes.
   */
  async revokeApiKey(keyId: string, options: { keepLastLive?: boolean } = {}): Promise<boolean> {
    await this.#ready;
    const now = Date.now();
    if (!options.keepLastLive)
      return (await this.#db.run("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [now, keyId])) === 1;
    return this.#db.transaction(async (tx) => {
      const row = (await tx.all("SELECT account_id, revoked_at FROM api_keys WHERE id = ?", [keyId]))[0];
      if (!row || row.revoked_at !== null) return false;
      const accountId = String(row.account_id);
      if (this.#db.dialect === "postgres") await tx.all("SELECT id FROM accounts WHERE id = ? FOR UPDATE", [accountId]);
      const others = await tx.all("SELECT * FROM api_keys WHERE account_id = ? AND id <> ? AND revoked_at IS NULL", [accountId, keyId]);
      if (!others.some((r) => isLiveKey(keyRecord(r), now))) throw new LastKeyError(keyId);
      return (await tx.run("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [now, keyId])) === 1;
    });
  }

  /** What each key spent and holds in the periods of `now` (zeros for a key that never spent). */
  async keySpend(keyIds: readonly string[], now: number): Promise<Map<string, KeySpend>> {
    await this.#ready;
    return keySpendOf(this.#db, keyIds, now);
  }

  async addWallet(accountId: string, address: string): Promise<void> {
    await this.#ready;
    await requireAccount(this.#db, accountId);
    await this.#db.run(
      "INSERT INTO wallets (address, account_id, created_at) VALUES (?, ?, ?) ON CONFLICT (address) DO UPDATE SET account_id = excluded.account_id",
      [checkWallet(address), accountId, Date.now()],
    );
  }
}
