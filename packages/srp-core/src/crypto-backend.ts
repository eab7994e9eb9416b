/**
 * The primitives SRP's signatures and hashes run on, behind a small seam. The default
 * is portable pure JavaScript (tweetnacl for Ed25519, @noble/hashes for SHA-256), which
 * runs in browsers and edge runtimes. In Node, `useNodeCrypto()` from `@srp/core/node`
 * installs the native implementations (libsodium or OpenSSL), a hundred times faster; the hub and
 * provider packages do so when they load. Ed25519 is deterministic, so every backend
 * produces the same bytes.
 */
import { sha256 as nobleSha256 } from "@noble/hashes/sha2";
import nacl from "tweetnacl";

/** Ed25519 and SHA-256 as SRP uses them. */
export interface CryptoBackend {
  /** Name for diagnostics, e.g. `tweetnacl` or `node:crypto`. */
  readonly name: string;
  /** Signs with a 64-byte secret key (seed followed by public key); returns 64 bytes. */
  sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array;
  /** Verifies a 64-byte signature with a 32-byte public key; never throws. */
  verify(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean;
  /** The 32-byte public key of a 32-byte seed. */
  publicKeyFromSeed(seed: Uint8Array): Uint8Array;
  /** SHA-256. */
  sha256(data: Uint8Array): Uint8Array;
}

/** The portable backend: tweetnacl and @noble/hashes. */
export const PORTABLE_CRYPTO: CryptoBackend = Object.freeze({
  name: "tweetnacl",
  sign: (message: Uint8Array, secretKey: Uint8Array) => nacl.sign.detached(message, secretKey),
  verify: (message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array) => {
    try {
      return nacl.sign.detached.verify(message, signature, publicKey);
    } catch {
      return false;
    }
  },
  publicKeyFromSeed: (seed: Uint8Array) => nacl.sign.keyPair.fromSeed(seed).publicKey,
  sha256: (data: Uint8Array) => nobleSha256(data),
});

// Kept on a global symbol so that every copy of this module (ESM and CJS builds loaded
// side by side) sees the same choice.
const SLOT = Symbol.for("srp.core.crypto-backend");
type Slot = { [SLOT]?: CryptoBackend };

/** The backend in use. */
export function cryptoBackend(): CryptoBackend {
  return (globalThis as Slot)[SLOT] ?? PORTABLE_CRYPTO;
}

/** Installs a backend (or restores the portable one with `undefined`). */
export function setCryptoBackend(backend: CryptoBackend | undefined): void {
  if (backend === undefined) delete (globalThis as Slot)[SLOT];
  else (globalThis as Slot)[SLOT] = backend;
}
