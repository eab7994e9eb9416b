import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fromBase64Url, randomBytes, sha256Hex, toBase64Url, toHex } from "./encoding.js";

describe("base64url", () => {
  it("round-trips any bytes and matches Node's encoder", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const text = toBase64Url(bytes);
        expect(text).toBe(Buffer.from(bytes).toString("base64url"));
        expect(fromBase64Url(text)).toEqual(bytes);
      }),
    );
  });

  it("rejects padding, foreign characters, impossible lengths and non-canonical trailing bits", () => {
    expect(fromBase64Url("AA==")).toBeUndefined();
    expect(fromBase64Url("A+B/")).toBeUndefined();
    expect(fromBase64Url("AAAAA")).toBeUndefined();
    expect(fromBase64Url("AB")).toBeUndefined(); // 'B' leaves a non-zero trailing bit
    expect(fromBase64Url("AA")).toEqual(new Uint8Array([0]));
  });
});

describe("sha256Hex", () => {
  it("matches the FIPS 180-2 test vector", () => {
    expect(sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});

describe("toHex", () => {
  it("matches Node's hex encoder", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(toHex(bytes)).toBe(Buffer.from(bytes).toString("hex"));
      }),
    );
  });
});

describe("randomBytes", () => {
  it("hands out each pooled byte once, across refills, and serves large requests directly", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1_000; i++) {
      const id = randomBytes(12 + (i % 21)); // 12..32 bytes: several 4 KiB refills
      expect(id.length).toBe(12 + (i % 21));
      seen.add(toHex(id));
    }
    expect(seen.size).toBe(1_000);
    const a = randomBytes(1_000);
    expect(a.length).toBe(1_000);
    expect(toHex(a)).not.toBe(toHex(randomBytes(1_000)));
    // A returned array is the caller's own: the pool does not write into it later.
    const kept = randomBytes(32);
    const copy = toHex(kept);
    for (let i = 0; i < 300; i++) randomBytes(32);
    expect(toHex(kept)).toBe(copy);
  });
});
