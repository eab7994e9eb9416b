/**
 * API key rate limits shared by the processes of one hub through Redis, exact across them:
 * each admission is one Lua script that reads, decides and charges atomically (the same
 * token buckets and decision as `key-limits.ts`, on Redis's clock), and each release one
 * more. Keys (under the connection's prefix `srp:<hub id>:`), per API key:
 * `klim:{<key id>}:r` and `klim:{<key id>}:t`, the request and token buckets (a hash of the
 * load and when it was counted, expiring once the bucket is full again), and
 * `klim:{<key id>}:c`, the requests in flight: a sorted set of slots scored by when each
 * expires. The process holding a slot pushes its expiry forward every `leaseMs / 3`, so the
 * slots of a process that crashed free themselves after `leaseMs` at most; the set expires
 * with its last slot.
 *
 * While Redis is unreachable each process limits on its own (`fallback`, in memory by
 * default); the first failure of each outage is reported. A release that cannot reach Redis
 * loses its token correction and leaves its slot to expire.
 */
import { randomUUID } from "node:crypto";
import {
  type Admission,
  CONCURRENCY_RETRY_MS,
  type KeyLimits,
  type LimitReason,
  limitHeaders,
  normalizeLimits,
  type RateLimits,
  tokenCount,
} from "./key-limits.js";
import { MemoryKeyLimits } from "./memory-limits.js";

/** The Redis command the limits use; an ioredis client (`connectRedis(...).commands`) has it. */
export interface KeyLimitsRedis {
  /** `EVAL script numkeys key... arg...` */
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

/** How a {@link RedisKeyLimits} behaves. */
export interface RedisKeyLimitsOptions {
  /** This process's id, in the names of its slots; a random one by default. */
  processId?: string;
  /** How long a slot outlives its last refresh (ms): a crashed process's requests in flight are freed after this; 30 000 by default. */
  leaseMs?: number;
  /** The wait suggested when only the concurrency limit refuses (ms); 1000 by default. */
  concurrencyRetryMs?: number;
  /** Clock (ms); Redis's own clock by default (the same for every process). */
  now?: () => number;
  /** The limits used while Redis is unreachable; a {@link MemoryKeyLimits} by default. */
  fallback?: KeyLimits;
  /** Told of the first failure of each Redis outage. */
  onError?: (operation: "admit" | "release" | "refresh", error: unknown) => void;
}

/** The Redis keys of an API key's request bucket, token bucket and slots (pure). */
export function keyLimitKeys(keyId: string): [requests: string, tokens: string, slots: string] {
  const tag = `klim:{${keyId}}`;
  return [`${tag}:r`, `${tag}:t`, `${tag}:c`];
}

/** The Lua shared by the scripts: the clock (ARGV[1], or Redis's when empty) and the bucket arithmetic of `key-limits.ts`. */
const PRELUDE = `
local W = 60000
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
local function num(x) return string.format('%.0f', x) end
local function load(key, limit)
  local s = redis.call('HMGET', key, 'l', 't')
  if not s[1] then return 0 end
  return math.max(0, tonumber(s[1]) - math.max(0, now - tonumber(s[2])) * limit)
end
local function put(key, l, limit)
  if l <= 0 then
    redis.call('DEL', key)
    return
  end
  redis.call('HSET', key, 'l', num(l), 't', num(now))
  redis.call('PEXPIRE', key, math.ceil(l / limit) + 1000)
end`;

/**
 * Admits or refuses. KEYS: request bucket, token bucket, slots. ARGV: now, rpm, tpm,
 * concurrency (0: none), tokens, slot, leaseMs, concurrency retry hint. Returns
 * `{reason or 'ok', wait (-1: never), request load, token load, slots}`, the loads after the
 * charge when admitted.
 */
const ADMIT = `${PRELUDE}
local rpm, tpm, conc, cost = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local lease, hint = tonumber(ARGV[7]), tonumber(ARGV[8])
local function wait(l, c, limit)
  local over = l + c * W - limit * W
  if over <= 0 then return 0 end
  if c > limit then return -1 end
  return math.ceil(over / limit)
end
local reason, worst = 'ok', 0
local function consider(r, w)
  if w == 0 or worst == -1 then return end
  if w == -1 or w > worst then reason, worst = r, w end
end
local rl, tl, n = 0, 0, 0
if rpm > 0 then
  rl = load(KEYS[1], rpm)
  consider('requests', wait(rl, 1, rpm))
end
if tpm > 0 then
  tl = load(KEYS[2], tpm)
  consider('tokens', wait(tl, cost, tpm))
end
if conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  n = redis.call('ZCARD', KEYS[3])
  if n >= conc then consider('concurrency', math.max(1, hint)) end
end
if reason ~= 'ok' then return {reason, worst, num(rl), num(tl), n} end
if rpm > 0 then
  rl = rl + W
  put(KEYS[1], rl, rpm)
end
if tpm > 0 then
  tl = tl + cost * W
  put(KEYS[2], tl, tpm)
end
if conc > 0 then
  redis.call('ZADD', KEYS[3], now + lease, ARGV[6])
  redis.call('PEXPIRE', KEYS[3], lease)
  n = n + 1
end
return {reason, 0, num(rl), num(tl), n}`;

/** Ends a request. KEYS: token bucket, slots. ARGV: now, tpm (0: none), token correction, slot (or ''). */
const RELEASE = `${PRELUDE}
if ARGV[4] ~= '' then redis.call('ZREM', KEYS[2], ARGV[4]) end
local tpm, c = tonumber(ARGV[2]), tonumber(ARGV[3])
if tpm > 0 and c ~= 0 then put(KEYS[1], math.max(0, load(KEYS[1], tpm) + c * W), tpm) end
return 1`;

/** Pushes slots' expiry forward (those still there). KEYS: the slots' sets. ARGV: now, leaseMs, then one slot per key. */
const REFRESH = `${PRELUDE}
local lease = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + lease, ARGV[i + 2])
  redis.call('PEXPIRE', key, lease)
end
return 1`;

/** API key rate limits kept in Redis for every process of a hub. */
export class RedisKeyLimits implements KeyLimits {
  readonly #redis: KeyLimitsRedis;
  readonly #processId: string;
  readonly #leaseMs: number;
  readonly #concurrencyRetryMs: number;
  readonly #now: (() => number) | undefined;
  readonly #fallback: KeyLimits;
  readonly #onError: NonNullable<RedisKeyLimitsOptions["onError"]>;
  /** The slots this process holds, by slot id: the key of their set. */
  readonly #held = new Map<string, string>();
  readonly #timer: NodeJS.Timeout;
  #next = 0;
  #failing = false;

  /**
   * Starts refreshing the slots it will hold (every `leaseMs / 3`, call {@link close} to stop).
   *
   * @param redis The connection; keys go under its prefix (one prefix per hub identity).
   * @param options This process's id, the slot lease, the clock, the fallback, error reporting.
   */
  constructor(redis: KeyLimitsRedis, options: RedisKeyLimitsOptions = {}) {
    this.#redis = redis;
    this.#processId = options.processId ?? randomUUID();
    this.#leaseMs = Math.max(10, options.leaseMs ?? 30_000);
    this.#concurrencyRetryMs = options.concurrencyRetryMs ?? CONCURRENCY_RETRY_MS;
    this.#now = options.now;
    this.#fallback =
      options.fallback ??
      new MemoryKeyLimits({ concurrencyRetryMs: this.#concurrencyRetryMs, ...(options.now ? { now: options.now } : {}) });
    this.#onError = options.onError ?? (() => {});
    this.#timer = setInterval(() => void this.refresh(), Math.max(1, Math.floor(this.#leaseMs / 3)));
    this.#timer.unref();
  }

  /** Slots this process holds now. */
  get held(): number {
    return this.#held.size;
  }

  /** Admits or refuses in one round trip (see {@link KeyLimits.admit}); the fallback decides while Redis is unreachable. */
  async admit(keyId: string, limits: RateLimits, estimatedTokens: number, now?: number): Promise<Admission> {
    const l = normalizeLimits(limits);
    const tokens = tokenCount(estimatedTokens);
    const keys = keyLimitKeys(keyId);
    const slot = l.concurrency ? `${this.#processId}:${++this.#next}` : "";
    let answer: unknown;
    try {
      answer = await this.#redis.eval(
        ADMIT,
        3,
        ...keys,
        this.#clock(now),
        l.rpm ?? 0,
        l.tpm ?? 0,
        l.concurrency ?? 0,
        tokens,
        slot,
        this.#leaseMs,
        this.#concurrencyRetryMs,
      );
      this.#failing = false;
    } catch (error) {
      this.#report("admit", error);
      return this.#fallback.admit(keyId, limits, estimatedTokens, now);
    }
    const [reason, wait, requests, tokensLoad] = answer as [string, number, string, string, number];
    const loads = { requests: Number(requests), tokens: Number(tokensLoad) };
    if (reason !== "ok") {
      const refusal = { retryAfterMs: wait < 0 ? Number.POSITIVE_INFINITY : Number(wait), tooLarge: wait < 0 };
      return { ok: false, reason: reason as LimitReason, ...refusal, headers: limitHeaders(l, loads, refusal) };
    }
    if (slot) this.#held.set(slot, keys[2]);
    let released = false;
    return {
      ok: true,
      headers: limitHeaders(l, loads),
      release: (actualTokens, at) => {
        if (released) return;
        released = true;
        if (slot) this.#held.delete(slot);
        const correction = l.tpm ? tokenCount(actualTokens) - tokens : 0;
        if (!slot && correction === 0) return;
        this.#redis.eval(RELEASE, 2, keys[1], keys[2], this.#clock(at), l.tpm ?? 0, correction, slot).then(
          () => (this.#failing = false),
          (error: unknown) => this.#report("release", error),
        );
      },
    };
  }

  /** Pushes the expiry of every slot this process holds forward by `leaseMs` (its timer does this every `leaseMs / 3`); never rejects. */
  async refresh(): Promise<void> {
    if (this.#held.size === 0) return;
    const slots = [...this.#held];
    try {
      await this.#redis.eval(
        REFRESH,
        slots.length,
        ...slots.map(([, key]) => key),
        this.#clock(),
        this.#leaseMs,
        ...slots.map(([slot]) => slot),
      );
      this.#failing = false;
    } catch (error) {
      this.#report("refresh", error);
    }
  }

  /** Stops refreshing (slots still held expire after `leaseMs` unless released) and closes the fallback. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#fallback.close();
  }

  /** The clock argument of a script: `now`, else this limiter's clock, else '' (Redis's). */
  #clock(now?: number): string {
    const t = now ?? this.#now?.();
    return t === undefined ? "" : String(Math.floor(t));
  }

  #report(operation: "admit" | "release" | "refresh", error: unknown): void {
    if (!this.#failing) this.#onError(operation, error);
    this.#failing = true;
  }
}
