import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ceilDiv, cost, formatAmount, formatUsdc, parseAmount, split } from "./money.js";

describe("amounts", () => {
  it("parses only canonical non-negative decimal strings", () => {
    expect(parseAmount("0")).toBe(0n);
    expect(parseAmount("1234567")).toBe(1234567n);
    for (const bad of ["", "-1", "01", "1.5", "1e3", " 1", "0x10"]) expect(() => parseAmount(bad)).toThrow(TypeError);
  });

  it("never writes a negative amount", () => {
    expect(() => formatAmount(-1n)).toThrow(RangeError);
  });

  it("formats USDC for people", () => {
    expect(formatUsdc(1_500_000n)).toBe("1.50");
    expect(formatUsdc(1n)).toBe("0.000001");
    expect(formatUsdc(-2_000_000n)).toBe("-2.00");
  });
});

describe("cost (spec/v1/money.md test vectors)", () => {
  const vectors: Array<[string, Parameters<typeof cost>[0], Parameters<typeof cost>[1], bigint]> = [
    ["exact", { promptTokens: 1000, completionTokens: 500 }, { input: "150000", output: "600000" }, 450n],
    ["rounds up a fraction", { promptTokens: 1, completionTokens: 0 }, { input: "150000", output: "600000" }, 1n],
    ["zero usage costs nothing", { promptTokens: 0, completionTokens: 0 }, { input: "150000", output: "600000" }, 0n],
    ["rounds once, not per class", { promptTokens: 3, completionTokens: 3 }, { input: "100000", output: "100000" }, 1n],
    [
      "cached tokens at the cached price",
      { promptTokens: 10000, completionTokens: 0, cachedTokens: 8000 },
      { input: "1000000", output: "0", cachedInput: "100000" },
      2800n,
    ],
    [
      "cached tokens default to the input price",
      { promptTokens: 10000, completionTokens: 0, cachedTokens: 8000 },
      { input: "1000000", output: "0" },
      10000n,
    ],
    [
      "cache writes at the cache-write price",
      { promptTokens: 10000, completionTokens: 0, cachedTokens: 6000, cacheWriteTokens: 3000 },
      { input: "1000000", output: "0", cachedInput: "100000", cacheWrite: "1250000" },
      5350n,
    ],
    [
      "cache writes default to the input price",
      { promptTokens: 10000, completionTokens: 0, cacheWriteTokens: 3000 },
      { input: "1000000", output: "0" },
      10000n,
    ],
    [
      "images, characters and seconds at their unit prices",
      { promptTokens: 0, completionTokens: 0, images: 2, characters: 1000, seconds: 61 },
      { input: "0", output: "0", image: "40000000000", character: "15000000", second: "100000000" },
      80_000n + 15_000n + 6_100n,
    ],
    [
      "seconds and runs of an async job (SRP-MON-008, vector 11)",
      { promptTokens: 0, completionTokens: 0, seconds: 12, runs: 1 },
      { input: "0", output: "0", second: "1000000000", run: "50000000000" },
      62_000n,
    ],
    [
      "a run price alone, rounded up once (SRP-MON-008, vector 12)",
      { promptTokens: 0, completionTokens: 0, runs: 3 },
      { input: "0", output: "0", run: "333333" },
      1n,
    ],
    ["runs without a run price cost nothing", { promptTokens: 0, completionTokens: 0, runs: 1 }, { input: "0", output: "0" }, 0n],
    [
      "large counts stay exact",
      { promptTokens: 1_000_000_000, completionTokens: 1_000_000_000 },
      { input: "2500000", output: "10000000" },
      12_500_000_000n,
    ],
  ];
  for (const [name, usage, price, expected] of vectors) {
    it(name, () => expect(cost(usage, price)).toBe(expected));
  }

  it("rejects impossible usage", () => {
    expect(() => cost({ promptTokens: 1, completionTokens: 0, cachedTokens: 2 }, { input: "1", output: "1" })).toThrow(RangeError);
    expect(() => cost({ promptTokens: 4, completionTokens: 0, cachedTokens: 2, cacheWriteTokens: 3 }, { input: "1", output: "1" })).toThrow(
      RangeError,
    );
    expect(() => cost({ promptTokens: 0, completionTokens: 0, images: -1 }, { input: "1", output: "1", image: "1" })).toThrow(RangeError);
    expect(() => cost({ promptTokens: 1.5, completionTokens: 0 }, { input: "1", output: "1" })).toThrow(RangeError);
    expect(() => cost({ promptTokens: -1, completionTokens: 0 }, { input: "1", output: "1" })).toThrow(RangeError);
  });

  it("is never below the exact price and less than one unit above it", () => {
    fc.assert(
      fc.property(fc.nat(10_000_000), fc.nat(10_000_000), fc.bigInt(0n, 100_000_000n), fc.bigInt(0n, 100_000_000n), (p, c, i, o) => {
        const charged = cost({ promptTokens: p, completionTokens: c }, { input: i.toString(), output: o.toString() });
        const exactMicro = BigInt(p) * i + BigInt(c) * o; // in units * 1e6
        expect(charged * 1_000_000n >= exactMicro).toBe(true);
        expect((charged - 1n) * 1_000_000n < exactMicro || charged === 0n).toBe(true);
      }),
    );
  });
});

describe("split (90 / 10)", () => {
  it("test vectors", () => {
    expect(split(0n)).toEqual({ provider: 0n, protocol: 0n });
    expect(split(1n)).toEqual({ provider: 0n, protocol: 1n });
    expect(split(10n)).toEqual({ provider: 9n, protocol: 1n });
    expect(split(455n)).toEqual({ provider: 409n, protocol: 46n });
    expect(split(1_000_000n)).toEqual({ provider: 900_000n, protocol: 100_000n });
  });

  it("never creates or loses a unit, and the provider share is the floor of 90 %", () => {
    fc.assert(
      fc.property(fc.bigInt(0n, 10n ** 30n), (charge) => {
        const { provider, protocol } = split(charge);
        expect(provider + protocol).toBe(charge);
        expect(provider * 10n <= charge * 9n).toBe(true);
        expect((provider + 1n) * 10n > charge * 9n).toBe(true);
        expect(protocol >= 0n).toBe(true);
      }),
    );
  });

  it("conserves money over many jobs: sum of splits equals sum of charges", () => {
    fc.assert(
      fc.property(fc.array(fc.bigInt(0n, 10n ** 12n), { maxLength: 200 }), (charges) => {
        let total = 0n;
        let paid = 0n;
        for (const c of charges) {
          const s = split(c);
          total += c;
          paid += s.provider + s.protocol;
        }
        expect(paid).toBe(total);
      }),
    );
  });

  it("rejects bad inputs", () => {
    expect(() => split(-1n)).toThrow(RangeError);
    expect(() => split(1n, 10_001n)).toThrow(RangeError);
    expect(ceilDiv(7n, 2n)).toBe(4n);
    expect(() => ceilDiv(1n, 0n)).toThrow(RangeError);
  });
});
