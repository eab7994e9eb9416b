import { describe, expect, it } from "vitest";
import {
  ClientLimiter,
  clientAddress,
  clientKey,
  failureProvesPayer,
  refill,
  retryAfterSeconds,
  TokenBucket,
  TokenBuckets,
  waitFor,
} from "./limits.js";

const clock = (start = 1_000_000) => {
  const c = { t: start, now: () => c.t };
  return c;
};

describe("bucket arithmetic", () => {
  it("refills at the rate, never past the burst", () => {
    const rate = { burst: 10, perSecond: 2 };
    expect(refill({ tokens: 0, at: 0 }, rate, 1000)).toBe(2);
    expect(refill({ tokens: 9, at: 0 }, rate, 10_000)).toBe(10);
    expect(refill({ tokens: 3, at: 5000 }, rate, 4000)).toBe(3); // a clock that went back adds nothing
  });
  it("says how long to wait, and Retry-After rounds it up to whole seconds", () => {
    expect(waitFor(0.5, 1, { burst: 1, perSecond: 0.5 })).toBe(1000);
    expect(waitFor(2, 1, { burst: 2, perSecond: 1 })).toBe(0);
    expect(waitFor(0, 1, { burst: 1, perSecond: 0 })).toBe(Number.POSITIVE_INFINITY);
    expect(retryAfterSeconds(1)).toBe(1);
    expect(retryAfterSeconds(1001)).toBe(2);
  });
});

describe("TokenBuckets", () => {
  it("allows the burst, then refuses until tokens come back", () => {
    const c = clock();
    const b = new TokenBuckets({ burst: 3, perSecond: 1 }, { now: c.now });
    expect([b.take("a"), b.take("a"), b.take("a")]).toEqual([0, 0, 0]);
    expect(b.take("a")).toBe(1000);
    expect(b.take("b")).toBe(0); // keys are independent
    c.t += 1000;
    expect(b.take("a")).toBe(0);
    expect(b.take("a")).toBe(1000);
  });
  it("gives tokens back, up to the burst", () => {
    const c = clock();
    const b = new TokenBuckets({ burst: 1, perSecond: 0.001 }, { now: c.now });
    expect(b.take("a")).toBe(0);
    expect(b.peek("a")).toBeGreaterThan(0);
    b.give("a");
    b.give("a");
    expect(b.take("a")).toBe(0);
    expect(b.take("a")).toBeGreaterThan(0);
  });
  it("tracks at most maxKeys keys, forgetting the least recently used", () => {
    const c = clock();
    const b = new TokenBuckets({ burst: 1, perSecond: 0.001 }, { now: c.now, maxKeys: 100 });
    for (let i = 0; i < 10_000; i++) b.take(`k${i}`);
    expect(b.size).toBe(100);
    expect(b.peek("k9999")).toBeGreaterThan(0); // recent: still limited
    expect(b.peek("k0")).toBe(0); // forgotten: starts over
  });
  it("drops idle keys (full again) as it goes and in a sweep", () => {
    const c = clock();
    const b = new TokenBuckets({ burst: 2, perSecond: 1 }, { now: c.now });
    for (let i = 0; i < 50; i++) b.take(`k${i}`);
    expect(b.size).toBe(50);
    c.t += 1000;
    expect(b.sweep()).toBe(50);
    expect(b.size).toBe(0);
    for (let i = 0; i < 50; i++) b.take(`k${i}`);
    c.t += 1000;
    b.take("x"); // each use drops a few idle keys from the old end
    expect(b.size).toBeLessThan(51);
  });
  it("tells what it spends, and absorbs what others spent as of when they spent it, without telling", () => {
    const c = clock();
    const spent: [string, number][] = [];
    const b = new TokenBuckets({ burst: 4, perSecond: 1 }, { now: c.now, onSpend: (key, tokens) => spent.push([key, tokens]) });
    b.take("a");
    b.take("a", 3);
    b.take("a"); // refused: spends nothing
    b.give("a");
    b.give("b"); // not tracked: nothing given back
    b.charge("a", 2);
    expect(spent).toEqual([
      ["a", 1],
      ["a", 3],
      ["a", -1],
      ["a", 2],
    ]);
    spent.length = 0;
    // Spent elsewhere 2 s ago on a key new here: it has refilled since.
    b.absorb("c", 4, c.t - 2000);
    expect(b.take("c", 2)).toBe(0);
    expect(b.take("c")).toBe(1000);
    b.absorb("c", -1);
    expect(b.take("c")).toBe(0);
    b.absorb("d", -1); // given back to a key not tracked here: nothing
    expect(b.size).toBe(2);
    expect(spent).toEqual([
      ["c", 2],
      ["c", 1],
    ]);
  });
  it("a single bucket (per session) refuses once empty", () => {
    const c = clock();
    const t = new TokenBucket({ burst: 2, perSecond: 10 }, c.now);
    expect([t.take(), t.take(), t.take()]).toEqual([0, 0, 100]);
    c.t += 100;
    expect(t.take()).toBe(0);
  });
});

describe("client keys", () => {
  it("groups IPv6 by /64, keeps IPv4, unmaps IPv4-mapped addresses", () => {
    expect(clientKey("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(clientKey("2001:db8:1:2:ffff:ffff:ffff:ffff")).toBe("2001:db8:1:2::/64");
    expect(clientKey("2001:db8:1:3::1")).toBe("2001:db8:1:3::/64");
    expect(clientKey("::1")).toBe("0:0:0:0::/64");
    expect(clientKey("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
    expect(clientKey("::ffff:192.0.2.7")).toBe("192.0.2.7");
    expect(clientKey("192.0.2.7")).toBe("192.0.2.7");
    expect(clientKey(undefined)).toBe("unknown");
  });
  it("reads X-Forwarded-For only behind a trusted proxy, and then its last entry", () => {
    expect(clientAddress("10.0.0.1", "198.51.100.9, 203.0.113.5", false)).toBe("10.0.0.1");
    expect(clientAddress("10.0.0.1", "198.51.100.9, 203.0.113.5", true)).toBe("203.0.113.5");
    expect(clientAddress("10.0.0.1", "not an address", true)).toBe("10.0.0.1");
    expect(clientAddress("10.0.0.1", "[2001:db8::1]", true)).toBe("2001:db8::1");
  });
  it("ignores a port after a forwarded address (IPv4, bracketed IPv6)", () => {
    expect(clientAddress("10.0.0.1", "198.51.100.9, 203.0.113.5:5678", true)).toBe("203.0.113.5");
    expect(clientAddress("10.0.0.1", "[2001:db8::1]:5678", true)).toBe("2001:db8::1");
    expect(clientAddress("10.0.0.1", "[::1]:5678", true)).toBe("::1");
    // A bare IPv6 address is not read as one with a port.
    expect(clientAddress("10.0.0.1", "2001:db8::1:5678", true)).toBe("2001:db8::1:5678");
    expect(clientAddress("10.0.0.1", "203.0.113.5:port", true)).toBe("10.0.0.1");
    expect(clientAddress("10.0.0.1", "203.0.113.5:123456", true)).toBe("10.0.0.1");
  });
});

describe("ClientLimiter", () => {
  it("refuses payments once failures use up the client's or the payer's tokens; successes give them back", () => {
    const c = clock();
    const l = new ClientLimiter({ paymentFailures: { burst: 2, perSecond: 0.01 } }, c.now);
    for (let i = 0; i < 5; i++) {
      expect(l.payment("1.1.1.1", "0xaa")).toBeUndefined();
      l.paymentEnded("1.1.1.1", "0xaa", false);
    }
    expect(l.payment("1.1.1.1", "0xaa")).toBeUndefined();
    l.paymentEnded("1.1.1.1", "0xaa", true);
    expect(l.payment("2.2.2.2", "0xaa")).toBeUndefined();
    l.paymentEnded("2.2.2.2", "0xaa", true);
    // The payer is spent, from any address; the first address still has a token for another payer.
    expect(l.payment("3.3.3.3", "0xaa")?.reason).toMatch(/0xaa/);
    expect(l.payment("1.1.1.1", "0xbb")).toBeUndefined();
    l.paymentEnded("1.1.1.1", "0xbb", true);
    expect(l.payment("1.1.1.1", "0xcc")?.reason).toMatch(/address/);
  });
  it("gives the payer's token back after a failure that does not prove the payer signed (forgeries name any wallet)", () => {
    const c = clock();
    const l = new ClientLimiter({ paymentFailures: { burst: 2, perSecond: 0.01 } }, c.now);
    for (let i = 0; i < 5; i++) {
      const from = `10.0.0.${i}`;
      expect(l.payment(from, "0xvictim")).toBeUndefined();
      l.paymentEnded(from, "0xvictim", true, failureProvesPayer("payment.bad_signature"));
      // The forger's address keeps its failure.
      expect(l.payment(from, "0xvictim")).toBeUndefined();
      l.paymentEnded(from, "0xvictim", true, false);
      expect(l.payment(from, "0xother")?.reason).toMatch(/address/);
    }
    // Failures after the signature verified count against the payer.
    for (const [i, code] of ["payment.insufficient_funds", "payment.replayed"].entries()) {
      expect(l.payment(`10.1.0.${i}`, "0xvictim")).toBeUndefined();
      l.paymentEnded(`10.1.0.${i}`, "0xvictim", true, failureProvesPayer(code));
    }
    expect(l.payment("10.2.0.1", "0xvictim")?.reason).toMatch(/0xvictim/);
    expect(
      [
        "payment.bad_signature",
        "payment.invalid",
        "payment.wrong_amount",
        "payment.expired",
        "payment.requirements_mismatch",
        undefined,
      ].map(failureProvesPayer),
    ).toEqual([false, false, false, false, false, false]);
    expect(
      ["payment.insufficient_funds", "payment.replayed", "payment.settlement_failed", "payment.wallet_blocked"].map(failureProvesPayer),
    ).toEqual([true, true, true, true]);
  });
  it("caps unauthenticated connections of all addresses together", () => {
    const l = new ClientLimiter({ unauthenticatedConnections: 2, unauthenticatedConnectionsTotal: 3, connections: false });
    expect(l.connect("a")).toBeUndefined();
    expect(l.connect("a")).toBeUndefined();
    expect(l.connect("b")).toBeUndefined();
    expect(l.connect("c")?.reason).toMatch(/at most 3 connections/);
    l.handshakeEnded("a", false);
    expect(l.connect("c")).toBeUndefined();
    expect(l.connect("d")?.reason).toMatch(/at most 3 connections/);
    expect(
      new ClientLimiter({ unauthenticatedConnections: false, unauthenticatedConnectionsTotal: false, connections: false }).connect("a"),
    ).toBeUndefined();
  });
  it("caps unauthenticated connections per address and refuses after failed handshakes", () => {
    const c = clock();
    const l = new ClientLimiter(
      { unauthenticatedConnections: 2, connections: { burst: 100, perSecond: 100 }, handshakeFailures: { burst: 2, perSecond: 0.01 } },
      c.now,
    );
    expect(l.connect("a")).toBeUndefined();
    expect(l.connect("a")).toBeUndefined();
    expect(l.connect("a")?.reason).toMatch(/handshake at once/);
    l.handshakeEnded("a", false);
    expect(l.connect("a")).toBeUndefined();
    l.handshakeEnded("a", true);
    l.handshakeEnded("a", true);
    expect(l.unauthenticated("a")).toBe(0);
    expect(l.auth("a")?.reason).toMatch(/failed handshakes/);
    expect(l.connect("a")?.reason).toMatch(/failed handshakes/);
    expect(l.connect("b")).toBeUndefined();
  });
  it("turns a limit off with false", () => {
    const l = new ClientLimiter({
      nonces: false,
      connections: false,
      unauthenticatedConnections: false,
      unauthenticatedConnectionsTotal: false,
    });
    for (let i = 0; i < 1000; i++) {
      expect(l.nonce("a")).toBeUndefined();
      expect(l.connect("a")).toBeUndefined();
    }
    expect(l.sessionMessages).toBeDefined();
  });
});

describe("parseLimit (srp-hub serve --limit)", () => {
  it("reads rates, counts and off, and names what is wrong", async () => {
    const { parseLimit } = await import("./limits.js");
    expect(parseLimit("nonces=10:0.25")).toEqual({ nonces: { burst: 10, perSecond: 0.25 } });
    expect(parseLimit("sessionMessages=off")).toEqual({ sessionMessages: false });
    expect(parseLimit("unauthenticatedConnections=8")).toEqual({ unauthenticatedConnections: 8 });
    expect(parseLimit("unauthenticatedConnectionsTotal=256")).toEqual({ unauthenticatedConnectionsTotal: 256 });
    expect(parseLimit("unauthenticatedConnectionsTotal=off")).toEqual({ unauthenticatedConnectionsTotal: false });
    expect(() => parseLimit("nonces=10")).toThrow(/BURST:PER_SECOND/);
    expect(() => parseLimit("nonces=0:1")).toThrow(/at least 1/);
    expect(() => parseLimit("bogus=1:1")).toThrow(/unknown limit "bogus"/);
  });
});
