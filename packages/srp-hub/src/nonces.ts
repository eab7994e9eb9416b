/**
 * Memory of nonces issued in hellos, so an `auth` that replays an earlier session's
 * nonce is told apart from one that is merely wrong (SRP-AUTH-003). Entries live for
 * twice the freshness window; the memory is bounded.
 */

/**
 * Where a hub remembers the nonces its hellos issued. One process keeps them in a
 * {@link NonceMemory}; the processes of one hub share them (`RedisNonceStore`), so an
 * `auth` replaying a nonce another process issued is recognized too.
 */
export interface NonceStore {
  /** Records a nonce a hello issued now. */
  remember(nonce: string): void;
  /** Whether a nonce was issued within the retention period (asked only for an `auth` whose nonce is not its session's). */
  has(nonce: string): boolean | Promise<boolean>;
}

/** Remembers issued nonces for a while, in this process. */
export class NonceMemory implements NonceStore {
  readonly #issued = new Map<string, number>();
  readonly #ttlMs: number;
  readonly #max: number;

  /**
   * @param ttlMs How long a nonce is remembered.
   * @param max How many nonces at most; the oldest is forgotten first.
   */
  constructor(ttlMs: number, max = 100_000) {
    this.#ttlMs = ttlMs;
    this.#max = max;
  }

  /** Records a nonce issued now. */
  remember(nonce: string, now = Date.now()): void {
    this.#prune(now);
    if (this.#issued.size >= this.#max) {
      const oldest = this.#issued.keys().next().value;
      if (oldest !== undefined) this.#issued.delete(oldest);
    }
    this.#issued.set(nonce, now + this.#ttlMs);
  }

  /** Whether a nonce was issued within the retention period. */
  has(nonce: string, now = Date.now()): boolean {
    const until = this.#issued.get(nonce);
    return until !== undefined && until > now;
  }

  #prune(now: number): void {
    for (const [nonce, until] of this.#issued) {
      if (until > now) break; // insertion order is expiry order
      this.#issued.delete(nonce);
    }
  }
}
