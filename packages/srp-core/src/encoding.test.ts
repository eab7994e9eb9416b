import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fromBase64Url, sha256Hex, toBase64Url } from "./encoding.js";

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
