import { describe, expect, it } from "vitest";
import { canonicalize, CanonicalizationError } from "./canonical.js";

describe("canonicalize (RFC 8785)", () => {
  it("matches the RFC 8785 section 3.2.3 example", () => {
    const input = JSON.parse(
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
    );
    expect(canonicalize(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it("sorts member names by UTF-16 code units (RFC 8785 section 3.2.3 sorting example)", () => {
    const input = {
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis",
    };
    const text = canonicalize(input);
    const order = ["\\r", '"1"', "\u0080", "\u00f6", "\u20ac", "\ud83d\ude00", "\ufb33"].map((k) => text.indexOf(k));
    expect(order.every((pos) => pos > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it("serializes numbers as ECMAScript does (RFC 8785 appendix B samples)", () => {
    const cases: Array<[number, string]> = [
      [0, "0"],
      [-0, "0"],
      [1e21, "1e+21"],
      [9007199254740992, "9007199254740992"],
      [295147905179352830000, "295147905179352830000"],
      [1e-7, "1e-7"],
      [0.000001, "0.000001"],
      [-1.5, "-1.5"],
    ];
    for (const [n, s] of cases) expect(canonicalize(n)).toBe(s);
  });

  it("omits undefined members and writes undefined array items as null", () => {
    expect(canonicalize({ a: undefined, b: [undefined, 1] })).toBe('{"b":[null,1]}');
  });

  it("rejects values without a JSON form", () => {
    expect(() => canonicalize(Number.NaN)).toThrow(CanonicalizationError);
    expect(() => canonicalize(Infinity)).toThrow(CanonicalizationError);
    expect(() => canonicalize(1n)).toThrow(CanonicalizationError);
    expect(() => canonicalize("\ud800")).toThrow(/lone surrogate/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalize(cyclic)).toThrow(/cyclic/);
  });

  it("is independent of member insertion order", () => {
    expect(canonicalize({ b: { d: 1, c: 2 }, a: 0 })).toBe(canonicalize({ a: 0, b: { c: 2, d: 1 } }));
  });
});
