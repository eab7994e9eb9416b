import { describe, expect, it } from "vitest";
import { ClientLimiter } from "../limits.js";
import { decodeEntry, encodeEntry, entryTime, PendingSpending, retentionMs } from "./shared-limits.js";

describe("shared limits: entries, retention, pending spending", () => {
  it("encodes and decodes an entry, skipping what is not one of ours", () => {
    const fields = encodeEntry("proc_1", [
      ["nonces", "203.0.113.1", 2],
      ["paymentsByPayer", "0xaa", -1],
    ]);
    expect(decodeEntry(fields)).toEqual({
      processId: "proc_1",
      spent: [
        ["nonces", "203.0.113.1", 2],
        ["paymentsByPayer", "0xaa", -1],
      ],
    });
    expect(decodeEntry(["p", "proc_1", "d", '[["bogus","k",1],["nonces",1,1],["nonces","k","x"],["nonces","k",1]]'])?.spent).toEqual([
      ["nonces", "k", 1],
    ]);
    expect(decodeEntry(["p", "proc_1", "d", "{"])).toBeUndefined();
    expect(decodeEntry(["d", "[]"])).toBeUndefined();
    expect(entryTime("1700000000000-3")).toBe(1_700_000_000_000);
    expect(entryTime("nonsense")).toBeUndefined();
  });

  it("keeps the stream as long as the slowest limit takes to refill, between 1 s and 1 hour", () => {
    expect(retentionMs(new ClientLimiter())).toBe(200_000); // payment failures: 20 at 0.1/s
    expect(retentionMs(new ClientLimiter({ paymentFailures: false, handshakeFailures: false }))).toBe(60_000);
    expect(retentionMs(new ClientLimiter({ nonces: { burst: 1, perSecond: 0 } }))).toBe(3_600_000);
    expect(
      retentionMs(
        new ClientLimiter({ nonces: false, paymentFailures: false, connections: { burst: 1, perSecond: 100 }, handshakeFailures: false }),
      ),
    ).toBe(1000);
  });

  it("adds up what waits by limit and key, bounded, and hands it out in pieces", () => {
    const p = new PendingSpending(3);
    p.add("nonces", "a", 1);
    p.add("nonces", "a", 1);
    p.add("connections", "a", 1);
    p.add("paymentsByClient", "b", 1);
    p.add("paymentsByClient", "b", -1);
    p.add("nonces", "c", 1); // a fourth pair: dropped
    expect(p.size).toBe(3);
    expect(p.take(2)).toEqual([
      ["nonces", "a", 2],
      ["connections", "a", 1],
    ]);
    expect(p.take(5)).toEqual([]); // b added up to nothing
    expect(p.size).toBe(0);
  });
});
