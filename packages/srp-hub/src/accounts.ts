/**
 * Accounts: one account both spends (as a consumer, by API key) and earns (as the owner
 * of provider nodes, which bind to it by API key or wallet). The hub stores only SHA-256
 * hashes of API keys; a key's plaintext is shown once, when it is created.
 * `AccountStore` is what the hub reads; `AccountAdmin` is what operators change.
 */
import { randomBytes, sha256Hex, toBase64Url } from "@srp/core";
import { applyPolicyPatch, NO_POLICY, type KeyPolicy, type KeyPolicyPatch, type RequestKey } from "./keys/policy.js";
import type { KeySpend } from "./storage/key-spend.js";

/** An account a node can bind to and a consumer can spend from. */
export interface Account {
  /** Stable account id. */
  id: string;
  /**
   * The API key the request was authenticated with and its spending controls (absent for
   * a wallet or a store without key policies). An expired key is returned as found: the
   * caller refuses it with `api.key_expired`.
   */
  key?: RequestKey;
}

/** Looks accounts up by credential. Implementations may be backed by any database. */
export interface AccountStore {
  /** The account owning this API key (not revoked), if any. */
  findByApiKey(apiKey: string): Promise<Account | undefined>;
  /** The account owning this wallet address (lowercase 0x hex), if any. */
  findByWallet(address: string): Promise<Account | undefined>;
}

/** An account as operators see it. */
export interface AccountRecord {
  id: string;
  name: string | null;
  createdAt: number;
}

/** An API key as operators see it (never the key itself). */
export interface ApiKeyRecord {
  keyId: string;
  accountId: string;
  /** The first characters of the key, to recognise it. */
  prefix: string;
  label: string | null;
  createdAt: number;
  revokedAt: number | null;
  /** The key's spending controls (tags, expiry, models, budgets, rate limits). */
  policy: KeyPolicy;
}

/** A change to a key: its label (`null` clears it) and members of its policy (see {@link KeyPolicyPatch}). */
export type ApiKeyChange = KeyPolicyPatch & { label?: string | null };

/** Thrown by `revokeApiKey(id, { keepLastLive: true })` when the key is its account's last live one. */
export class LastKeyError extends Error {
  override readonly name = "LastKeyError";
  constructor(readonly keyId: string) {
    super(`${keyId} is the account's last live key: create another before revoking it`);
  }
}

/** The account, unless the key it was found by is past its expiry at `now` (pure; SRP-CON-084). */
export function unexpired(account: Account | undefined, now: number): Account | undefined {
  const expiresAt = account?.key?.policy.expiresAt ?? null;
  return expiresAt !== null && now >= expiresAt ? undefined : account;
}

/** Whether a key works at `now`: not revoked and not past its expiry (pure). */
export function isLiveKey(record: Pick<ApiKeyRecord, "revokedAt" | "policy">, now: number): boolean {
  return record.revokedAt === null && (record.policy.expiresAt === null || now < record.policy.expiresAt);
}

/** Operator operations on accounts and keys (library calls, CLI and HTTP admin API). */
export interface AccountAdmin {
  /** Creates an account (id generated unless given). */
  createAccount(input?: { id?: string; name?: string }): Promise<AccountRecord>;
  /** One account. */
  getAccount(id: string): Promise<AccountRecord | undefined>;
  /** Every account, oldest first. */
  listAccounts(): Promise<AccountRecord[]>;
  /** Creates an API key for an account, with spending controls if given; the plaintext is returned only here. */
  createApiKey(accountId: string, label?: string, policy?: KeyPolicy): Promise<{ key: string; record: ApiKeyRecord }>;
  /** One key (revoked ones too). */
  getApiKey(keyId: string): Promise<ApiKeyRecord | undefined>;
  /** Changes a key's label and policy in one step; the new record, or undefined if there is no such unrevoked key. */
  updateApiKey(keyId: string, change: ApiKeyChange): Promise<ApiKeyRecord | undefined>;
  /** The keys of an account. */
  listApiKeys(accountId: string): Promise<ApiKeyRecord[]>;
  /**
   * Revokes a key; returns false if there is no such active key. With `keepLastLive`, throws
   * {@link LastKeyError} instead when no other key of the account would still work.
   */
  revokeApiKey(keyId: string, options?: { keepLastLive?: boolean }): Promise<boolean>;
  /**
   * What each key spent and holds in the periods of `now` (stores that bill; absent: nothing
   * is billed per key, so nothing is spent).
   */
  keySpend?(keyIds: readonly string[], now: number): Promise<Map<string, KeySpend>>;
  /** Binds a wallet address to an account (nodes may then bind by wallet signature). */
  addWallet(accountId: string, address: string): Promise<void>;
}

/** Hash under which an API key is stored. */
export function hashApiKey(apiKey: string): string {
  return sha256Hex(`srp-api-key\n${apiKey}`);
}

/** Creates a new random API key (`srp_` followed by 32 base64url characters). */
export function generateApiKey(): string {
  return `srp_${toBase64Url(randomBytes(24))}`;
}

/** A new random id with a prefix, e.g. `acct_…`. */
export function newId(prefix: string): string {
  return `${prefix}_${toBase64Url(randomBytes(12))}`;
}

/** The display prefix of a key. */
export function keyPrefix(apiKey: string): string {
  return `${apiKey.slice(0, 8)}…`;
}

const ACCOUNT_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const WALLET = /^0x[0-9a-fA-F]{40}$/;

/** Checks an account id given by an operator. */
export function checkAccountId(id: string): void {
  if (!ACCOUNT_ID.test(id)) throw new TypeError("account ids are 1-128 characters of A-Z a-z 0-9 . _ : -");
}

/** Checks a wallet address given by an operator. */
export function checkWallet(address: string): string {
  if (!WALLET.test(address)) throw new TypeError("a wallet is a 0x-prefixed 20-byte hex address");
  return address.toLowerCase();
}

/** An in-memory account store for tests, examples and single-process hubs. */
export class MemoryAccountStore implements AccountStore, AccountAdmin {
  readonly #accounts = new Map<string, AccountRecord>();
  readonly #keys = new Map<string, ApiKeyRecord & { hash: string }>();
  readonly #byKeyHash = new Map<string, ApiKeyRecord & { hash: string }>();
  readonly #byWallet = new Map<string, string>();

  /**
   * Adds an account with the given API keys and wallets (a shortcut for tests and examples).
   * @example
   * const store = new MemoryAccountStore();
   * store.add({ id: "acct_1", apiKeys: ["srp_example_key_123"] });
   */
  add(entry: { id: string; apiKeys?: readonly string[]; wallets?: readonly string[] }): Account {
    checkAccountId(entry.id);
    if (!this.#accounts.has(entry.id)) this.#accounts.set(entry.id, { id: entry.id, name: null, createdAt: Date.now() });
    for (const key of entry.apiKeys ?? []) this.#insertKey(entry.id, key, null);
    for (const w of entry.wallets ?? []) this.#byWallet.set(checkWallet(w), entry.id);
    return { id: entry.id };
  }

  #insertKey(accountId: string, key: string, label: string | null, policy: KeyPolicy = NO_POLICY): ApiKeyRecord {
    const record: ApiKeyRecord & { hash: string } = {
      keyId: newId("key"),
      accountId,
      prefix: keyPrefix(key),
      label,
      createdAt: Date.now(),
      revokedAt: null,
      policy,
      hash: hashApiKey(key),
    };
    this.#keys.set(record.keyId, record);
    this.#byKeyHash.set(record.hash, record);
    const { hash: _hash, ...pub } = record;
    return pub;
  }

  async findByApiKey(apiKey: string): Promise<Account | undefined> {
    const k = this.#byKeyHash.get(hashApiKey(apiKey));
    return k && k.revokedAt === null ? { id: k.accountId, key: { keyId: k.keyId, policy: k.policy } } : undefined;
  }

  async findByWallet(address: string): Promise<Account | undefined> {
    const id = this.#byWallet.get(address.toLowerCase());
    return id === undefined ? undefined : { id };
  }

  async createAccount(input: { id?: string; name?: string } = {}): Promise<AccountRecord> {
    const id = input.id ?? newId("acct");
    checkAccountId(id);
    if (this.#accounts.has(id)) throw new TypeError(`account ${id} exists`);
    const record = { id, name: input.name ?? null, createdAt: Date.now() };
    this.#accounts.set(id, record);
    return record;
  }

  async getAccount(id: string): Promise<AccountRecord | undefined> {
    return this.#accounts.get(id);
  }

  async listAccounts(): Promise<AccountRecord[]> {
    return [...this.#accounts.values()];
  }

  async createApiKey(accountId: string, label?: string, policy?: KeyPolicy): Promise<{ key: string; record: ApiKeyRecord }> {
    if (!this.#accounts.has(accountId)) throw new TypeError(`no account ${accountId}`);
    const key = generateApiKey();
    return { key, record: this.#insertKey(accountId, key, label ?? null, policy) };
  }

  async getApiKey(keyId: string): Promise<ApiKeyRecord | undefined> {
    const k = this.#keys.get(keyId);
    if (!k) return undefined;
    const { hash: _hash, ...pub } = k;
    return pub;
  }

  async updateApiKey(keyId: string, change: ApiKeyChange): Promise<ApiKeyRecord | undefined> {
    const k = this.#keys.get(keyId);
    if (!k || k.revokedAt !== null) return undefined;
    const { label, ...patch } = change;
    if (label !== undefined) k.label = label;
    k.policy = applyPolicyPatch(k.policy, patch);
    return this.getApiKey(keyId);
  }

  async listApiKeys(accountId: string): Promise<ApiKeyRecord[]> {
    return [...this.#keys.values()].filter((k) => k.accountId === accountId).map(({ hash: _hash, ...pub }) => pub);
  }

  async revokeApiKey(keyId: string, options: { keepLastLive?: boolean } = {}): Promise<boolean> {
    const k = this.#keys.get(keyId);
    if (!k || k.revokedAt !== null) return false;
    const now = Date.now();
    if (options.keepLastLive && ![...this.#keys.values()].some((o) => o !== k && o.accountId === k.accountId && isLiveKey(o, now)))
      throw new LastKeyError(keyId);
    k.revokedAt = now;
    return true;
  }

  async addWallet(accountId: string, address: string): Promise<void> {
    if (!this.#accounts.has(accountId)) throw new TypeError(`no account ${accountId}`);
    this.#byWallet.set(checkWallet(address), accountId);
  }
}
