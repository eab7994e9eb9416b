/**
 * Handshake nonce memory shared by the processes of one hub (SRP-AUTH-003): an `auth` that
 * replays a nonce any process issued is refused as `auth.replayed_nonce`, whichever process
 * it reaches. Each nonce is one Redis key (`nonce:<nonce>`, under the connection's key
 * prefix) living as long as a local memory would keep it; every process also keeps its own
 * nonces in memory.
 *
 * While Redis is unreachable the hub keeps accepting handshakes: `remember` reports the
 * failed write and goes on, and `has` answers from the local memory alone. A replay of
 * another process's nonce is then refused as `auth.nonce_mismatch` rather than
 * `auth.replayed_nonce`: still refused, only under the less specific code.
 */
import { HANDSHAKE_TIMING } from "@srp/core";
import { NonceMemory, type NonceStore } from "../nonces.js";

/** The two Redis commands the store uses; an ioredis client (`connectRedis(...).commands`) has them. */
export interface NonceRedis {
  /** `SET key value PX milliseconds`. */
  set(key: string, value: string, px: "PX", milliseconds: number): Promise<unknown>;
  /** `EXISTS key`: how many of the keys exist. */
  exists(key: string): Promise<number>;
}

/** How a {@link RedisNonceStore} behaves. */
export interface RedisNonceStoreOptions {
  /** How long a nonce is remembered; twice the handshake freshness window by default. */
  ttlMs?: number;
  /** Told when Redis could not be written or read (the store then works from its local memory). */
  onError?: (operation: "remember" | "has", error: unknown) => void;
}

/** The Redis key of a nonce (pure). */
export function nonceKey(nonce: string): string {
  return `nonce:${nonce}`;
}

/** Nonces remembered in Redis for every process of a hub, and in this process's memory. */
export class RedisNonceStore implements NonceStore {
  readonly #redis: NonceRedis;
  readonly #local: NonceMemory;
  readonly #ttlMs: number;
  readonly #onError: (operation: "remember" | "has", error: unknown) => void;

  /**
   * @param redis The connection; keys go under its prefix (one prefix per hub identity).
   * @param options Retention and error reporting.
   */
  constructor(redis: NonceRedis, options: RedisNonceStoreOptions = {}) {
    this.#redis = redis;
    this.#ttlMs = options.ttlMs ?? 2 * HANDSHAKE_TIMING.freshnessWindowMs;
    this.#local = new NonceMemory(this.#ttlMs);
    this.#onError = options.onError ?? (() => {});
  }

  /** Records a nonce issued now: in memory at once, in Redis without waiting (a failure is reported, not thrown). */
  remember(nonce: string): void {
    this.#local.remember(nonce);
    this.#redis.set(nonceKey(nonce), "1", "PX", this.#ttlMs).catch((error: unknown) => this.#onError("remember", error));
  }

  /** Whether any process issued the nonce within the retention period; this process's memory alone while Redis is unreachable. */
  async has(nonce: string): Promise<boolean> {
    if (this.#local.has(nonce)) return true;
    try {
      return (await this.#redis.exists(nonceKey(nonce))) > 0;
    } catch (error) {
      this.#onError("has", error);
      return false;
    }
  }
}
