/**
 * The limits on strangers shared by the processes of one hub through a real redis-server
 * (spec/v1/security.md SRP-SEC-014..): what one process's buckets spend is charged to the
 * others', so a client spread over several processes gets the limits once, not once per
 * process; a starting process reads back recent spending; with Redis down each process
 * still limits on its own; the stream is bounded and expires.
 */
import { afterEach, describe, expect, it } from "vitest";
import { generateIdentity } from "@srp/core";
import { ClientLimiter, failureProvesPayer, type HubLimits } from "../packages/srp-hub/src/limits.js";
import { connectRedis, type RedisConnection } from "../packages/srp-hub/src/cluster/redis.js";
import { LIMITS_STREAM, SharedLimits, type SharedLimitsOptions } from "../packages/srp-hub/src/cluster/shared-limits.js";
import { startNet, type Net } from "./helpers.js";
import { skipWithoutRedis, startRedis, type TestRedis } from "./support/redis.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function redisServer(): Promise<TestRedis> {
  const redis = await startRedis();
  cleanups.push(() => redis.stop());
  return redis;
}

async function connection(url: string, prefix: string): Promise<RedisConnection> {
  const c = connectRedis(url, { keyPrefix: prefix });
  cleanups.push(() => c.close());
  await c.ready();
  return c;
}

/** A process's limiter sharing its spending over `c` (synced by hand: no timer), and what it reported. */
function sharing(
  c: RedisConnection,
  limits: HubLimits,
  options: Partial<SharedLimitsOptions> = {},
): { limiter: ClientLimiter; shared: SharedLimits; failures: string[] } {
  const failures: string[] = [];
  const limiter = new ClientLimiter(limits);
  const shared = new SharedLimits(limiter, c.commands, {
    processId: `proc_${Math.random().toString(36).slice(2)}`,
    onError: (operation) => failures.push(operation),
    ...options,
  });
  cleanups.push(async () => shared.stop());
  return { limiter, shared, failures };
}

/** Nonces `limiter` gives `client` before refusing (at most `max`). */
function noncesUntilRefused(limiter: ClientLimiter, client: string, max = 100): number {
  let n = 0;
  while (n < max && limiter.nonce(client) === undefined) n++;
  return n;
}

const SLOW = { burst: 10, perSecond: 0.001 };

describe.skipIf(skipWithoutRedis())("limits on strangers shared through Redis", () => {
  it("what one process spends is charged to another of the same hub, not to another hub", async () => {
    const redis = await redisServer();
    const [a, b, other] = await Promise.all([
      connection(redis.url, "srp:hub1:"),
      connection(redis.url, "srp:hub1:"),
      connection(redis.url, "srp:hub2:"),
    ]);
    const first = sharing(a, { nonces: SLOW });
    const second = sharing(b, { nonces: SLOW });
    const third = sharing(other, { nonces: SLOW });
    for (let i = 0; i < 6; i++) expect(first.limiter.nonce("203.0.113.7")).toBeUndefined();
    await first.shared.sync();
    await Promise.all([second.shared.sync(), third.shared.sync()]);
    expect(noncesUntilRefused(second.limiter, "203.0.113.7")).toBe(4);
    await second.shared.sync();
    await first.shared.sync();
    // The second process's 4 came back to the first: the client has nothing left anywhere.
    expect(first.limiter.nonce("203.0.113.7")?.reason).toMatch(/nonces/);
    // Another address, and another hub, are untouched.
    expect(noncesUntilRefused(second.limiter, "203.0.113.8")).toBe(10);
    expect(noncesUntilRefused(third.limiter, "203.0.113.7")).toBe(10);
    expect([...first.failures, ...second.failures, ...third.failures]).toEqual([]);
  });

  it("tokens given back (a payment that did not fail) are given back on the other processes too", async () => {
    const redis = await redisServer();
    const [a, b] = await Promise.all([connection(redis.url, "srp:hub1:"), connection(redis.url, "srp:hub1:")]);
    const limits = { paymentFailures: { burst: 2, perSecond: 0.001 } };
    const first = sharing(a, limits);
    const second = sharing(b, limits);
    // A payment that failed, proven against its payer, from one address...
    expect(first.limiter.payment("10.0.0.1", "0xaa")).toBeUndefined();
    first.limiter.paymentEnded("10.0.0.1", "0xaa", true, failureProvesPayer("payment.insufficient_funds"));
    // ... and one that succeeded: it spends nothing in the end, on either process.
    expect(first.limiter.payment("10.0.0.2", "0xbb")).toBeUndefined();
    await first.shared.sync();
    await second.shared.sync();
    first.limiter.paymentEnded("10.0.0.2", "0xbb", false);
    await first.shared.sync();
    await second.shared.sync();
    // The second process sees one failure of 10.0.0.1 and of 0xaa: one more each, then refused.
    expect(second.limiter.payment("10.0.0.1", "0xcc")).toBeUndefined();
    second.limiter.paymentEnded("10.0.0.1", "0xcc", true);
    expect(second.limiter.payment("10.0.0.1", "0xdd")?.reason).toMatch(/address/);
    expect(second.limiter.payment("10.0.0.3", "0xaa")).toBeUndefined();
    second.limiter.paymentEnded("10.0.0.3", "0xaa", true);
    expect(second.limiter.payment("10.0.0.4", "0xaa")?.reason).toMatch(/0xaa/);
    // 10.0.0.2 and 0xbb have their whole burst.
    for (let i = 0; i < 2; i++) {
      expect(second.limiter.payment("10.0.0.2", "0xbb")).toBeUndefined();
      second.limiter.paymentEnded("10.0.0.2", "0xbb", true);
    }
    expect(second.limiter.payment("10.0.0.2", "0xbb")).toBeDefined();
  });

  it("a process that starts reads back what the others spent recently; what it spent itself it does not charge twice", async () => {
    const redis = await redisServer();
    const [a, b] = await Promise.all([connection(redis.url, "srp:hub1:"), connection(redis.url, "srp:hub1:")]);
    const limits = { nonces: SLOW, handshakeFailures: { burst: 3, perSecond: 0.001 } };
    const first = sharing(a, limits);
    for (let i = 0; i < 7; i++) first.limiter.nonce("198.51.100.1");
    for (let i = 0; i < 3; i++) first.limiter.handshakeEnded("198.51.100.1", true);
    await first.shared.sync();
    await first.shared.sync();
    expect(noncesUntilRefused(first.limiter, "198.51.100.1")).toBe(3);
    await first.shared.sync();
    const restarted = sharing(b, limits);
    await restarted.shared.sync();
    expect(restarted.limiter.auth("198.51.100.1")?.reason).toMatch(/failed handshakes/);
    expect(noncesUntilRefused(restarted.limiter, "198.51.100.1")).toBe(0);
  });

  it("each process limits as a lone process would, synced or not", async () => {
    const redis = await redisServer();
    const c = await connection(redis.url, "srp:hub1:");
    const limits: HubLimits = {
      nonces: { burst: 5, perSecond: 0.001 },
      paymentFailures: { burst: 2, perSecond: 0.001 },
      connections: { burst: 4, perSecond: 0.001 },
      handshakeFailures: { burst: 2, perSecond: 0.001 },
      unauthenticatedConnections: 3,
    };
    /** The same uses, against a limiter: what each answered. */
    const scenario = async (limiter: ClientLimiter, sync: () => Promise<void>): Promise<unknown[]> => {
      const seen: unknown[] = [];
      for (let i = 0; i < 7; i++) {
        seen.push(limiter.nonce("a")?.reason);
        if (i % 2 === 0) await sync();
      }
      for (let i = 0; i < 4; i++) {
        seen.push(limiter.payment("a", "0xpayer")?.reason);
        limiter.paymentEnded("a", "0xpayer", i !== 1);
        await sync();
      }
      for (let i = 0; i < 6; i++) {
        seen.push(limiter.connect("b")?.reason, limiter.unauthenticated("b"));
        if (i % 2 === 1) limiter.handshakeEnded("b", true);
        await sync();
      }
      seen.push(limiter.auth("b")?.reason);
      return seen;
    };
    const alone = await scenario(new ClientLimiter(limits), async () => {});
    const { limiter, shared, failures } = sharing(c, limits);
    expect(await scenario(limiter, () => shared.sync())).toEqual(alone);
    expect(alone.filter((r) => typeof r === "string").length).toBeGreaterThan(3);
    expect(failures).toEqual([]);
  });

  it("the stream is bounded (keys per entry, entries) and expires once the slowest limit would have refilled", async () => {
    const redis = await redisServer();
    const c = await connection(redis.url, "srp:hub1:");
    const { limiter, shared } = sharing(
      c,
      {
        nonces: { burst: 10, perSecond: 0.5 },
        paymentFailures: false,
        connections: false,
        handshakeFailures: { burst: 20, perSecond: 0.2 },
      },
      { maxKeysPerSync: 3, maxPending: 5, maxEntries: 2 },
    );
    for (let i = 0; i < 8; i++) limiter.nonce(`192.0.2.${i}`);
    expect(shared.pending).toBe(5); // spending on further keys is not shared
    await shared.sync();
    expect(shared.pending).toBe(2);
    const ttl = await c.commands.pttl(LIMITS_STREAM);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(100_000); // handshake failures: 20 tokens at 0.2/s
    await shared.sync();
    limiter.nonce("192.0.2.100");
    await shared.sync();
    expect(shared.pending).toBe(0);
    expect(await c.commands.xlen(LIMITS_STREAM)).toBe(2);
    const entries = await c.commands.xrange(LIMITS_STREAM, "-", "+");
    for (const [, fields] of entries) expect((JSON.parse(fields[3]!) as unknown[]).length).toBeLessThanOrEqual(3);
  });

  it("with Redis down each process limits on its own and reports the outage once; after a restart they share again", async () => {
    const redis = await redisServer();
    const [a, b] = await Promise.all([connection(redis.url, "srp:hub1:"), connection(redis.url, "srp:hub1:")]);
    const first = sharing(a, { nonces: SLOW });
    const second = sharing(b, { nonces: SLOW });
    await redis.down();
    expect(noncesUntilRefused(first.limiter, "203.0.113.9")).toBe(10);
    for (let i = 0; i < 3; i++) await Promise.all([first.shared.sync(), second.shared.sync()]);
    expect(noncesUntilRefused(second.limiter, "203.0.113.9")).toBe(10);
    expect(first.failures).toEqual(["write"]);
    expect(second.failures).toEqual(["read"]); // it had nothing to write
    await redis.up();
    await Promise.all([a.ready(), b.ready()]);
    for (let i = 0; i < 4; i++) first.limiter.nonce("203.0.113.10");
    await first.shared.sync();
    await second.shared.sync();
    expect(noncesUntilRefused(second.limiter, "203.0.113.10")).toBe(6);
  });

  describe("two hub processes behind a round-robin balancer", () => {
    const limits: HubLimits = { trustProxy: true, nonces: SLOW };

    async function pair(redis: TestRedis): Promise<[Net, Net]> {
      const identity = generateIdentity();
      const nets: Net[] = [];
      for (let i = 0; i < 2; i++) {
        const net = await startNet({ identity, limits, cluster: { redisUrl: redis.url } });
        cleanups.push(() => net.close());
        nets.push(net);
      }
      await Promise.all(nets.map((n) => n.hub.ready()));
      return [nets[0]!, nets[1]!];
    }

    /** Asks `url` for a sign-in nonce as `client`: whether it was refused (429). */
    const refused = async (url: string, client: string) =>
      (await fetch(`${url}/v1/auth/nonce`, { headers: { "x-forwarded-for": client } })).status === 429;

    it("a stranger asking both in turn gets about the burst in all, not twice it; with Redis down, each process still limits", async () => {
      const redis = await redisServer();
      const [a, b] = await pair(redis);
      let given = 0;
      const stillRefusing = { a: false, b: false };
      for (let i = 0; !(stillRefusing.a && stillRefusing.b); i++) {
        const side = i % 2 === 0 ? "a" : "b";
        const no = await refused(side === "a" ? a.url : b.url, "203.0.113.50");
        if (!no) given++;
        stillRefusing[side] = no;
        expect(given).toBeLessThan(20);
        await new Promise((r) => setTimeout(r, 40));
      }
      expect(given).toBeGreaterThanOrEqual(10);
      const stream = `srp:${a.identity.id}:${LIMITS_STREAM}`;
      const probe = await connection(redis.url, "");
      expect(await probe.commands.pttl(stream)).toBeGreaterThan(0);

      await redis.down();
      for (const url of [a.url, b.url]) {
        let n = 0;
        while (!(await refused(url, "203.0.113.51"))) n++;
        expect(n).toBe(10);
      }
    });
  });
});
