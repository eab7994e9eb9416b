/**
 * Accounts as the handshake sees them: a node binds to an account by one of the
 * account's API keys or by the account's wallet. The hub stores only SHA-256 hashes of
 * API keys. `AccountStore` is the seam where the database-backed store plugs in.
 */
import { randomBytes, sha256Hex, toBase64Url } from "@srp/core";

/** An account a node can bind to. */
export interface Account {
  /** Stable account id. */
  id: string;
}

/** Looks accounts up by credential. Implementations may be backed by any database. */
export interface AccountStore {
  /** The account owning this API key, if any. */
  findByApiKey(apiKey: string): Promise<Account | undefined>;
  /** The account owning this wallet address (lowercase 0x hex), if any. */
  findByWallet(address: string): Promise<Account | undefined>;
}

/** Hash under which an API key is stored. */
export function hashApiKey(apiKey: string): string {
  return sha256Hex(`srp-api-key\n${apiKey}`);
}

/** Creates a new random API key (`srp_` followed by 32 base64url characters). */
export function generateApiKey(): string {
  return `srp_${toBase64Url(randomBytes(24))}`;
}

/** An in-memory {@link AccountStore} for tests, examples and single-process hubs. */
export class MemoryAccountStore implements AccountStore {
  readonly #byKeyHash = new Map<string, Account>();
  readonly #byWallet = new Map<string, Account>();

  /**
   * Adds an account with the given API keys and wallets.
   * @example
   * const store = new MemoryAccountStore();
   * store.add({ id: "acct_1", apiKeys: ["srp_example_key_123"] });
   */
  add(entry: { id: string; apiKeys?: readonly string[]; wallets?: readonly string[] }): Account {
    const account: Account = { id: entry.id };
    for (const key of entry.apiKeys ?? []) this.#byKeyHash.set(hashApiKey(key), account);
    for (const w of entry.wallets ?? []) this.#byWallet.set(w.toLowerCase(), account);
    return account;
  }

  async findByApiKey(apiKey: string): Promise<Account | undefined> {
    return this.#byKeyHash.get(hashApiKey(apiKey));
  }

  async findByWallet(address: string): Promise<Account | undefined> {
    return this.#byWallet.get(address.toLowerCase());
  }
}
