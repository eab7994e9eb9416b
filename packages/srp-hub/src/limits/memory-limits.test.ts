/**
 * The in-process API key limits: what only they do (bounded memory, a synchronous admission).
 * Their behaviour under each limit is the shared suite in test/key-limits.test.ts.
 */
import { describe, expect, it } from "vitest";
import type { Admitted } from "./key-limits.js";
import { MemoryKeyLimits } from "./memory-limits.js";

const T = 1_000_000;

describe("MemoryKeyLimits", () => {
  it("drops the keys that are idle again, a few at each admission, and keeps busy ones", () => {
    const limits = new MemoryKeyLimits();
    for (let i = 0; i < 100; i++) expect(limits.admitNow(`key_${i}`, { rpm: 10, tpm: 1000 }, 1000, T).ok).toBe(true);
    const busy = limits.admitNow("key_busy", { concurrency: 1 }, 0, T) as Admitted;
    expect(limits.size).toBe(101);
    // Before their buckets are full again nothing goes.
    for (let i = 0; i < 20; i++) limits.admitNow("key_hot", { rpm: 1000 }, 0, T + 59_000);
    expect(limits.size).toBe(102);
    // A minute later the hundred are the same as never seen: twenty admissions sweep them out.
    for (let i = 0; i < 20; i++) limits.admitNow("key_hot", { rpm: 1000 }, 0, T + 61_000);
    expect(limits.size).toBe(2); // key_busy (in flight) and key_hot
    busy.release(0, T + 61_000);
    expect(limits.sweep(T + 200_000)).toBe(2);
    expect(limits.size).toBe(0);
  });

  it("keeps within maxKeys, never dropping a key with requests in flight", () => {
    const limits = new MemoryKeyLimits({ maxKeys: 10 });
    const held = limits.admitNow("key_held", { concurrency: 1 }, 0, T) as Admitted;
    for (let i = 0; i < 50; i++) limits.admitNow(`key_${i}`, { rpm: 10 }, 0, T);
    expect(limits.size).toBe(10);
    // The held slot still counts.
    expect(limits.admitNow("key_held", { concurrency: 1 }, 0, T)).toMatchObject({ ok: false, reason: "concurrency" });
    held.release(0, T);
    expect(limits.admitNow("key_held", { concurrency: 1 }, 0, T).ok).toBe(true);
  });

  it("charges an underestimate to a key dropped meanwhile", () => {
    const limits = new MemoryKeyLimits();
    const a = limits.admitNow("key_a", { tpm: 1000 }, 0, T) as Admitted;
    expect(limits.sweep(T)).toBe(1);
    a.release(600, T);
    expect(limits.admitNow("key_a", { tpm: 1000 }, 500, T)).toMatchObject({ ok: false, reason: "tokens", retryAfterMs: 6000 });
  });
});
