/**
 * API key rate limits (issue 19): one behaviour suite run against both implementations, the
 * in-process one and the one shared through a real redis-server; then what only the shared
 * one does: two limiters on one Redis acting as one (two hub processes), the slots of a
 * crashed process freeing themselves, keys that expire on their own, and limiting locally
 * while Redis is down. Every clock is injected: nothing here depends on how fast it runs.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connectRedis, type RedisConnection } from "../packages/srp-hub/src/cluster/redis.js";
import type { Admission, Admitted, KeyLimits, Refused } from "../packages/srp-hub/src/limits/key-limits.js";
import { MemoryKeyLimits } from "../packages/srp-hub/src/limits/memory-limits.js";
import { keyLimitKeys, RedisKeyLimits, type RedisKeyLimitsOptions } from "../packages/srp-hub/src/limits/redis-limits.js";
import { skipWithoutRedis, startRedis, type TestRedis } from "./support/redis.js";

const T = 1_800_000_000_000;

/** A clock the test moves. */
interface Clock {
  t: number;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function admitted(a: Admission): Admitted {
  expect(a.ok).toBe(true);
  return a as Admitted;
}

function refused(a: Admission): Refused {
  expect(a.ok).toBe(false);
  return a as Refused;
}

/** The behaviour every implementation shares; `make` gives a fresh limiter (fresh state) on `clock`. */
function behaviour(make: (clock: Clock) => Promise<KeyLimits>) {
  async function limiter(): Promise<{ limits: KeyLimits; clock: Clock }> {
    const clock = { t: T };
    const limits = await make(clock);
    cleanups.push(() => limits.close());
    return { limits, clock };
  }

  it("refuses the request over the requests per minute, with retry-after and OpenAI's headers", async () => {
    const { limits, clock } = await limiter();
    const seen = [];
    for (let i = 0; i < 3; i++) seen.push(admitted(await limits.admit("key_a", { rpm: 3 }, 50)).headers);
    expect(seen).toEqual(
      [1, 2, 3].map((n) => ({
        "x-ratelimit-limit-requests": "3",
        "x-ratelimit-remaining-requests": String(3 - n),
        "x-ratelimit-reset-requests": ["20s", "40s", "1m0s"][n - 1],
      })),
    );
    const no = refused(await limits.admit("key_a", { rpm: 3 }, 50));
    expect(no).toMatchObject({ reason: "requests", retryAfterMs: 20_000, tooLarge: false });
    expect(no.headers).toEqual({
      "x-ratelimit-limit-requests": "3",
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": "1m0s",
      "retry-after": "20",
    });
    // Another key has its own limit.
    admitted(await limits.admit("key_b", { rpm: 3 }, 50));
    clock.t += 19_999;
    expect(refused(await limits.admit("key_a", { rpm: 3 }, 50))).toMatchObject({ retryAfterMs: 1, headers: { "retry-after": "1" } });
    clock.t += 1;
    expect(admitted(await limits.admit("key_a", { rpm: 3 }, 50)).headers["x-ratelimit-remaining-requests"]).toBe("0");
  });

  it("charges the estimated tokens, then replaces them by the actual count once (an overestimate is given back)", async () => {
    const { limits } = await limiter();
    const a = admitted(await limits.admit("key_a", { tpm: 1000 }, 800));
    expect(a.headers).toEqual({
      "x-ratelimit-limit-tokens": "1000",
      "x-ratelimit-remaining-tokens": "200",
      "x-ratelimit-reset-tokens": "48s",
    });
    const no = refused(await limits.admit("key_a", { tpm: 1000 }, 300));
    expect(no).toMatchObject({
      reason: "tokens",
      retryAfterMs: 6000,
      headers: { "retry-after": "6", "x-ratelimit-remaining-tokens": "200" },
    });
    a.release(100);
    a.release(100); // idempotent: nothing more is given back
    expect(admitted(await limits.admit("key_a", { tpm: 1000 }, 300)).headers["x-ratelimit-remaining-tokens"]).toBe("600");
    expect(admitted(await limits.admit("key_a", { tpm: 1000 }, 600)).headers["x-ratelimit-remaining-tokens"]).toBe("0");
    expect(refused(await limits.admit("key_a", { tpm: 1000 }, 1)).reason).toBe("tokens");
    // An underestimate is charged.
    const b = admitted(await limits.admit("key_b", { tpm: 1000 }, 100));
    b.release(900);
    expect(refused(await limits.admit("key_b", { tpm: 1000 }, 200))).toMatchObject({ reason: "tokens", retryAfterMs: 6000 });
  });

  it("refuses for good a request whose estimate alone is over the tokens per minute", async () => {
    const { limits } = await limiter();
    const no = refused(await limits.admit("key_a", { rpm: 10, tpm: 1000 }, 1001));
    expect(no).toMatchObject({ reason: "tokens", tooLarge: true, retryAfterMs: Number.POSITIVE_INFINITY });
    expect(no.headers["x-should-retry"]).toBe("false");
    expect(no.headers["retry-after"]).toBeUndefined();
    // It charged nothing.
    expect(admitted(await limits.admit("key_a", { rpm: 10, tpm: 1000 }, 1000)).headers["x-ratelimit-remaining-requests"]).toBe("9");
  });

  it("holds a concurrency slot until release, and a second release frees nothing more", async () => {
    const { limits } = await limiter();
    const a = admitted(await limits.admit("key_a", { concurrency: 2 }, 10));
    expect(a.headers).toEqual({});
    admitted(await limits.admit("key_a", { concurrency: 2 }, 10));
    const no = refused(await limits.admit("key_a", { concurrency: 2 }, 10));
    expect(no).toMatchObject({ reason: "concurrency", retryAfterMs: 1000, headers: { "retry-after": "1" } });
    a.release(10);
    a.release(10);
    admitted(await limits.admit("key_a", { concurrency: 2 }, 10));
    expect(refused(await limits.admit("key_a", { concurrency: 2 }, 10)).reason).toBe("concurrency");
  });

  it("charges nothing for a refused request, and names the limit with the longest wait", async () => {
    const { limits } = await limiter();
    admitted(await limits.admit("key_a", { rpm: 2, tpm: 100 }, 100));
    expect(refused(await limits.admit("key_a", { rpm: 2, tpm: 100 }, 50))).toMatchObject({ reason: "tokens", retryAfterMs: 30_000 });
    admitted(await limits.admit("key_a", { rpm: 2, tpm: 100 }, 0));
    // Both over now: tokens wait 60 s, requests 30 s.
    expect(refused(await limits.admit("key_a", { rpm: 2, tpm: 100 }, 100))).toMatchObject({ reason: "tokens", retryAfterMs: 60_000 });
    expect(refused(await limits.admit("key_a", { rpm: 2, tpm: 100 }, 0))).toMatchObject({ reason: "requests", retryAfterMs: 30_000 });
  });

  it("never admits more than the limits under 200 concurrent admissions", async () => {
    const { limits } = await limiter();
    const flood = (key: string, l: Parameters<KeyLimits["admit"]>[1], tokens: number) =>
      Promise.all(Array.from({ length: 200 }, () => limits.admit(key, l, tokens)));
    const inFlight = await flood("key_c", { rpm: 1000, tpm: 5000, concurrency: 30 }, 10);
    expect(inFlight.filter((a) => a.ok)).toHaveLength(30);
    expect(new Set(inFlight.filter((a) => !a.ok).map((a) => (a as Refused).reason))).toEqual(new Set(["concurrency"]));
    expect((await flood("key_r", { rpm: 50 }, 0)).filter((a) => a.ok)).toHaveLength(50);
    expect((await flood("key_t", { tpm: 1000 }, 7)).filter((a) => a.ok)).toHaveLength(142);
    for (const a of inFlight) if (a.ok) a.release(10);
    expect((await flood("key_c", { concurrency: 30 }, 10)).filter((a) => a.ok)).toHaveLength(30);
  });
}

describe("MemoryKeyLimits", () => {
  behaviour(async (clock) => new MemoryKeyLimits({ now: () => clock.t }));
});

describe.skipIf(skipWithoutRedis())("RedisKeyLimits", () => {
  let redis: TestRedis;
  let prefixes = 0;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  async function connection(prefix: string, server = redis): Promise<RedisConnection> {
    const c = connectRedis(server.url, { keyPrefix: prefix });
    cleanups.push(() => c.close());
    await c.ready();
    return c;
  }

  /** A limiter of one more hub process on `prefix` (its own connection). */
  async function hubProcess(
    prefix: string,
    clock: Clock,
    options: RedisKeyLimitsOptions = {},
  ): Promise<RedisKeyLimits & { connection: RedisConnection }> {
    const c = await connection(prefix);
    const limits = new RedisKeyLimits(c.commands, { now: () => clock.t, ...options });
    cleanups.push(() => limits.close());
    return Object.assign(limits, { connection: c });
  }

  const freshPrefix = () => `klt${++prefixes}:`;

  describe("behaviour", () => {
    behaviour(async (clock) => new RedisKeyLimits((await connection(freshPrefix())).commands, { now: () => clock.t }));
  });

  it("on Redis's own clock by default", async () => {
    const limits = new RedisKeyLimits((await connection(freshPrefix())).commands);
    cleanups.push(() => limits.close());
    admitted(await limits.admit("key_a", { rpm: 1 }, 0));
    expect(refused(await limits.admit("key_a", { rpm: 1 }, 0))).toMatchObject({ reason: "requests" });
  });

  it("two limiters on one Redis act as one: 200 admissions spread over them, slots and corrections", async () => {
    const clock = { t: T };
    const prefix = freshPrefix();
    const [a, b] = [await hubProcess(prefix, clock), await hubProcess(prefix, clock)];
    const all = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).admit("key_a", { rpm: 50 }, 0)));
    expect(all.filter((x) => x.ok)).toHaveLength(50);
    const slot = admitted(await a.admit("key_c", { concurrency: 1, tpm: 1000 }, 900));
    expect(a.held).toBe(1);
    expect(refused(await b.admit("key_c", { concurrency: 1, tpm: 1000 }, 0)).reason).toBe("concurrency");
    slot.release(100);
    expect(a.held).toBe(0);
    // The release is sent without waiting: the next admission on the same connection follows it.
    await a.admit("key_other", {}, 0);
    expect(admitted(await b.admit("key_c", { concurrency: 1, tpm: 1000 }, 900)).headers["x-ratelimit-remaining-tokens"]).toBe("0");
  });

  it("frees the slots of a crashed process after their lease, and keeps those of a live one", async () => {
    const clock = { t: T };
    const prefix = freshPrefix();
    const leaseMs = 60_000;
    const crashed = await hubProcess(prefix, clock, { leaseMs });
    const live = await hubProcess(prefix, clock, { leaseMs });
    const other = await hubProcess(prefix, clock, { leaseMs });
    admitted(await crashed.admit("key_a", { concurrency: 1 }, 0));
    admitted(await live.admit("key_b", { concurrency: 1 }, 0));
    // The crashed process stops refreshing; the live one refreshes (as its timer does).
    await crashed.close();
    await crashed.connection.close();
    clock.t = T + leaseMs - 1_000;
    await live.refresh();
    clock.t = T + leaseMs - 1;
    expect(refused(await other.admit("key_a", { concurrency: 1 }, 0)).reason).toBe("concurrency");
    clock.t = T + leaseMs;
    admitted(await other.admit("key_a", { concurrency: 1 }, 0));
    expect(refused(await other.admit("key_b", { concurrency: 1 }, 0)).reason).toBe("concurrency");
  });

  it("leaves only keys that expire on their own", async () => {
    const clock = { t: T };
    const prefix = freshPrefix();
    const limits = await hubProcess(prefix, clock);
    const a = admitted(await limits.admit("key_a", { rpm: 60, tpm: 1000, concurrency: 2 }, 500));
    admitted(await limits.admit("key_b", { rpm: 60, tpm: 1000, concurrency: 2 }, 0));
    const raw = await connection("");
    const keys = (await raw.commands.keys(`${prefix}*`)).sort();
    expect(keys).toEqual(
      [...keyLimitKeys("key_a"), ...keyLimitKeys("key_b")]
        .filter((k) => k !== keyLimitKeys("key_b")[1])
        .map((k) => prefix + k)
        .sort(),
    );
    for (const key of keys) {
      const ttl = await raw.commands.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(61_000);
    }
    // Released with nothing left to count: the token bucket and the slot set go.
    a.release(0);
    await limits.admit("key_other", {}, 0);
    expect(await raw.commands.exists(prefix + keyLimitKeys("key_a")[1], prefix + keyLimitKeys("key_a")[2])).toBe(0);
  });

  it("limits each process on its own while Redis is down, and reports the outage once", async () => {
    const server = await startRedis();
    cleanups.push(() => server.stop());
    const clock = { t: T };
    const c = connectRedis(server.url, { keyPrefix: freshPrefix(), commandTimeoutMs: 500 });
    cleanups.push(() => c.close());
    await c.ready();
    const errors: string[] = [];
    const limits = new RedisKeyLimits(c.commands, { now: () => clock.t, onError: (operation) => errors.push(operation) });
    cleanups.push(() => limits.close());
    admitted(await limits.admit("key_a", { rpm: 2 }, 0));
    await server.down();
    admitted(await limits.admit("key_a", { rpm: 2 }, 0));
    admitted(await limits.admit("key_a", { rpm: 2 }, 0));
    expect(refused(await limits.admit("key_a", { rpm: 2 }, 0))).toMatchObject({ reason: "requests", retryAfterMs: 30_000 });
    expect(errors).toEqual(["admit"]);
  });
});
