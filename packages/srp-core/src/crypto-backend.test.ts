import { afterEach, describe, expect, it } from "vitest";
import fc from "fast-check";
import { cryptoBackend, PORTABLE_CRYPTO, setCryptoBackend } from "./crypto-backend.js";
import { NODE_CRYPTO, useNodeCrypto } from "./node.js";
import { identityFromSeed } from "./identity.js";
import { signDetached, verifyDetached } from "./signing.js";
import { sha256Hex } from "./encoding.js";

afterEach(() => setCryptoBackend(undefined));

describe("crypto backends", () => {
  it("native and portable Ed25519 produce identical keys and signatures and verify each other", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 300 }), (seed, message) => {
        const pub = PORTABLE_CRYPTO.publicKeyFromSeed(seed);
        expect(NODE_CRYPTO.publicKeyFromSeed(seed)).toEqual(pub);
        const secret = new Uint8Array([...seed, ...pub]);
        const sig = PORTABLE_CRYPTO.sign(message, secret);
        expect(NODE_CRYPTO.sign(message, secret)).toEqual(sig);
        expect(NODE_CRYPTO.verify(message, sig, pub)).toBe(true);
        const bad = sig.slice();
        bad[0]! ^= 1;
        expect(NODE_CRYPTO.verify(message, bad, pub)).toBe(false);
        expect(PORTABLE_CRYPTO.verify(message, bad, pub)).toBe(false);
        expect(NODE_CRYPTO.sha256(message)).toEqual(PORTABLE_CRYPTO.sha256(message));
      }),
      { numRuns: 25 },
    );
  });

  it("rejects malformed keys and signatures without throwing", () => {
    expect(NODE_CRYPTO.verify(new Uint8Array(1), new Uint8Array(63), new Uint8Array(32))).toBe(false);
    expect(NODE_CRYPTO.verify(new Uint8Array(1), new Uint8Array(64), new Uint8Array(31))).toBe(false);
    expect(NODE_CRYPTO.verify(new Uint8Array(1), new Uint8Array(64), new Uint8Array(32).fill(255))).toBe(false);
  });

  it("useNodeCrypto switches the signing functions without changing their output", () => {
    const id = identityFromSeed(new Uint8Array(32).fill(1));
    const portable = signDetached("hello", { a: 1 }, id);
    const hash = sha256Hex("abc");
    useNodeCrypto();
    expect(cryptoBackend().name).toBe("node:crypto");
    expect(signDetached("hello", { a: 1 }, id)).toBe(portable);
    expect(verifyDetached("hello", { a: 1 }, portable, id.id)).toBe(true);
    expect(sha256Hex("abc")).toBe(hash);
    expect(identityFromSeed(new Uint8Array(32).fill(1)).id).toBe(id.id);
  });
});
