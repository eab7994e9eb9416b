import { afterEach, describe, expect, it } from "vitest";
import fc from "fast-check";
import { cryptoBackend, PORTABLE_CRYPTO, setCryptoBackend } from "./crypto-backend.js";
import { NODE_CRYPTO, nativeCrypto, sodiumCrypto, useNodeCrypto } from "./node.js";
import { identityFromSeed } from "./identity.js";
import { signDetached, verifyDetached } from "./signing.js";
import { sha256Hex } from "./encoding.js";

afterEach(() => {
  setCryptoBackend(undefined);
  delete process.env.SRP_CRYPTO;
});

// sodium-native is an optional dependency of @srp/core; npm installs it on this project's
// platforms, so the tests require it rather than skip quietly.
const SODIUM = sodiumCrypto();

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

  it("libsodium loads, and signs, verifies and derives keys exactly as OpenSSL and tweetnacl do", () => {
    expect(SODIUM?.name).toBe("libsodium");
    const sodium = SODIUM!;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 300 }), (seed, message) => {
        const pub = PORTABLE_CRYPTO.publicKeyFromSeed(seed);
        expect(sodium.publicKeyFromSeed(seed)).toEqual(pub);
        const secret = new Uint8Array([...seed, ...pub]);
        const sig = NODE_CRYPTO.sign(message, secret);
        expect(sodium.sign(message, secret)).toEqual(sig);
        expect(sodium.verify(message, sig, pub)).toBe(true);
        // A view into a larger buffer verifies like a copy.
        const framed = new Uint8Array(message.length + 8);
        framed.set(message, 4);
        expect(sodium.verify(framed.subarray(4, 4 + message.length), sig, pub)).toBe(true);
        const bad = sig.slice();
        bad[message.length % 64]! ^= 1;
        expect(sodium.verify(message, bad, pub)).toBe(false);
        expect(NODE_CRYPTO.verify(message, bad, pub)).toBe(false);
        const other = pub.slice();
        other[0]! ^= 1;
        expect(sodium.verify(message, sig, other)).toBe(false);
        expect(sodium.sha256(message)).toEqual(PORTABLE_CRYPTO.sha256(message));
      }),
      { numRuns: 50 },
    );
    expect(sodium.verify(new Uint8Array(1), new Uint8Array(63), new Uint8Array(32))).toBe(false);
    expect(sodium.verify(new Uint8Array(1), new Uint8Array(64), new Uint8Array(31))).toBe(false);
    expect(sodium.verify(new Uint8Array(1), new Uint8Array(64), new Uint8Array(32).fill(255))).toBe(false);
    // The all-zero signature under a small-order key (the identity point) verifies any
    // message under lax rules; libsodium refuses it, as it should.
    const identityPoint = new Uint8Array(32);
    identityPoint[0] = 1;
    const zeroSig = new Uint8Array(64);
    zeroSig[0] = 1;
    expect(sodium.verify(new Uint8Array([1, 2, 3]), zeroSig, identityPoint)).toBe(false);
  });

  it("useNodeCrypto installs libsodium, or node:crypto when SRP_CRYPTO says so", () => {
    expect(nativeCrypto().name).toBe("libsodium");
    useNodeCrypto();
    expect(cryptoBackend().name).toBe("libsodium");
    process.env.SRP_CRYPTO = "node:crypto";
    expect(nativeCrypto()).toBe(NODE_CRYPTO);
    useNodeCrypto();
    expect(cryptoBackend().name).toBe("node:crypto");
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
    for (const backend of [NODE_CRYPTO, SODIUM!]) {
      setCryptoBackend(backend);
      expect(signDetached("hello", { a: 1 }, id)).toBe(portable);
      expect(verifyDetached("hello", { a: 1 }, portable, id.id)).toBe(true);
      expect(sha256Hex("abc")).toBe(hash);
      expect(identityFromSeed(new Uint8Array(32).fill(1)).id).toBe(id.id);
    }
    useNodeCrypto();
    expect(cryptoBackend().name).toBe("libsodium");
    expect(signDetached("hello", { a: 1 }, id)).toBe(portable);
    expect(verifyDetached("hello", { a: 1 }, portable, id.id)).toBe(true);
    expect(sha256Hex("abc")).toBe(hash);
    expect(identityFromSeed(new Uint8Array(32).fill(1)).id).toBe(id.id);
  });
});
