/**
 * The failed-handshake limit (SRP-SEC-018) made exact across the processes of one hub: the
 * other limits on strangers are shared every 100 ms (`shared-limits.ts`), which lets a quick
 * burst of failures spread over the processes pass this one. Failed handshakes are rare and
 * the `auth` path already waits for the account look-up, so here each `auth` reads the
 * address's bucket in Redis before its signature is checked (one round trip), and a
 * handshake that fails is charged to it at once. Honest handshakes take nothing, so many at
 * once never crowd each other out. A failure's charge goes on the same connection before the
 * node hears of its refusal, so the next `auth` from the address reads it.
 *
 * Key (under the connection's prefix `srp:<hub id>:`): `hsfail:<client key>`, a hash of the
 * bucket's tokens and when they were counted (Redis's clock), deleted once full again and
 * expiring once it would be. While Redis is unreachable each process's own bucket decides.
 */
import type { Rate, Refusal } from "../limits.js";

/** The Redis command the shared limit uses; an ioredis client (`connectRedis(...).commands`) has it. */
export interface HandshakeRedis {
  /** `EVAL script numkeys key... arg...` */
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

/** The hub-wide failed-handshake limit, as the session registry uses it. */
export interface HandshakeFailureGate {
  /**
   * Whether an `auth` from `client` may be checked: undefined when the address's bucket has
   * a token, the refusal when its failed handshakes are over the limit, `unknown` when the
   * shared bucket could not answer (the process's own bucket decides). Takes nothing.
   */
  reserve(client: string): Promise<Refusal | undefined | "unknown">;
  /** Charges a failed handshake to the address. */
  charge(client: string): void;
}

/** The key of an address's bucket (under the connection's prefix). */
export function handshakeBucketKey(client: string): string {
  return `hsfail:${client}`;
}

/**
 * One operation on a bucket, on Redis's clock. KEYS: bucket. ARGV: `peek` | `charge`,
 * burst, tokens per second. Returns 0, or for a `peek` without a token the ms until one is
 * there (-1: never).
 */
const BUCKET = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local burst, rate = tonumber(ARGV[2]), tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = burst
if s[1] then tokens = math.min(burst, tonumber(s[1]) + math.max(0, now - tonumber(s[2])) * rate / 1000) end
local wait = 0
if ARGV[1] == 'peek' then
  if tokens < 1 then
    if rate > 0 then wait = math.ceil((1 - tokens) * 1000 / rate) else wait = -1 end
  end
  return wait
end
tokens = math.max(0, tokens - 1)
if tokens >= burst then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
  local ttl = 3600000
  if rate > 0 then ttl = math.min(ttl, math.ceil((burst - tokens) * 1000 / rate) + 1000) end
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return wait`;

/** The refusal's reason, as the process's own limit words it. */
const REASON = "too many failed handshakes from this address";

/** The failed-handshake limit of a hub's processes, in Redis. */
export class SharedHandshakeFailures implements HandshakeFailureGate {
  readonly #redis: HandshakeRedis;
  readonly #rate: Rate;
  readonly #onError: (error: unknown) => void;
  #failing = false;

  /**
   * @param redis The connection; keys go under its prefix (one prefix per hub identity).
   * @param rate The limit (`limits.handshakeFailures`), the same in every process.
   * @param onError Told of the first failure of each Redis outage.
   */
  constructor(redis: HandshakeRedis, rate: Rate, onError: (error: unknown) => void = () => {}) {
    this.#redis = redis;
    this.#rate = rate;
    this.#onError = onError;
  }

  async reserve(client: string): Promise<Refusal | undefined | "unknown"> {
    const wait = await this.#run("peek", client);
    if (wait === undefined) return "unknown";
    if (wait === 0) return undefined;
    return { retryAfterMs: wait < 0 ? Number.POSITIVE_INFINITY : wait, reason: REASON };
  }

  charge(client: string): void {
    void this.#run("charge", client);
  }

  async #run(op: "peek" | "charge", client: string): Promise<number | undefined> {
    try {
      const wait = Number(await this.#redis.eval(BUCKET, 1, handshakeBucketKey(client), op, this.#rate.burst, this.#rate.perSecond));
      this.#failing = false;
      return wait;
    } catch (error) {
      if (!this.#failing) this.#onError(error);
      this.#failing = true;
      return undefined;
    }
  }
}
