/**
 * Ed25519 identities. A hub and every provider node are identified by their public key,
 * written as 43 characters of base64url; the 32-byte seed is the only secret to store.
 */
import { cryptoBackend } from "./crypto-backend.js";
import { fromBase64Url, randomBytes, toBase64Url } from "./encoding.js";

/** An Ed25519 keypair with its SRP id (the base64url public key). */
export interface Identity {
  /** Base64url of the 32-byte public key: the hub id or node id. */
  readonly id: string;
  /** The 32-byte public key. */
  readonly publicKey: Uint8Array;
  /** The 64-byte tweetnacl secret key (seed followed by public key). */
  readonly secretKey: Uint8Array;
}

function fromSeed(seed: Uint8Array): Identity {
  const publicKey = cryptoBackend().publicKeyFromSeed(seed);
  const secretKey = new Uint8Array(64);
  secretKey.set(seed, 0);
  secretKey.set(publicKey, 32);
  return Object.freeze({ id: toBase64Url(publicKey), publicKey, secretKey });
}

/** Creates a fresh random identity. */
export function generateIdentity(): Identity {
  return fromSeed(randomBytes(32));
}

/**
 * Derives an identity from a 32-byte seed. The same seed always gives the same identity,
 * which is how the spec's published test keys are made.
 */
export function identityFromSeed(seed: Uint8Array): Identity {
  if (seed.length !== 32) throw new TypeError("an Ed25519 seed is 32 bytes");
  return fromSeed(seed);
}

/** Serializes an identity's secret seed as base64url, for a key file. Keep it secret. */
export function exportIdentity(identity: Identity): string {
  return toBase64Url(identity.secretKey.subarray(0, 32));
}

/**
 * Restores an identity from {@link exportIdentity} output.
 * @throws TypeError when the text is not a base64url 32-byte seed.
 */
export function importIdentity(text: string): Identity {
  const seed = fromBase64Url(text.trim());
  if (!seed || seed.length !== 32) throw new TypeError("not an SRP identity seed (expected 43 base64url characters)");
  return identityFromSeed(seed);
}

/** Decodes an SRP id to its public key, or `undefined` if it is not a 32-byte base64url key. */
export function publicKeyFromId(id: string): Uint8Array | undefined {
  const key = fromBase64Url(id);
  return key && key.length === 32 ? key : undefined;
}
