/**
 * Detached Ed25519 signatures over RFC 8785 canonical JSON, with a domain-separation
 * prefix per signed message kind so that a signature made for one kind of message can
 * never be replayed as another. The signed bytes are
 * `UTF-8(domain + "\n" + canonicalize(body))`, where `body` is the message without its
 * signature field(s).
 */
import { cryptoBackend } from "./crypto-backend.js";
import { canonicalize } from "./canonical.js";
import { fromBase64Url, toBase64Url, utf8 } from "./encoding.js";
import { publicKeyFromId, type Identity } from "./identity.js";

/** The domain-separation prefix of each signed message kind. */
export const SIGNATURE_DOMAINS = {
  hello: "SRP-v1/hello",
  auth: "SRP-v1/auth",
  receiptNode: "SRP-v1/receipt/node",
  receiptHub: "SRP-v1/receipt/hub",
  statement: "SRP-v1/statement",
} as const;

/** A kind of signed SRP message. */
export type SignatureDomain = keyof typeof SIGNATURE_DOMAINS;

/** The exact bytes signed for `body` in `domain`. */
export function signingBytes(domain: SignatureDomain, body: unknown): Uint8Array {
  return utf8(`${SIGNATURE_DOMAINS[domain]}\n${canonicalize(body)}`);
}

/** Signs `body` for `domain`; returns the 64-byte signature as base64url (86 characters). */
export function signDetached(domain: SignatureDomain, body: unknown, identity: Identity): string {
  return toBase64Url(cryptoBackend().sign(signingBytes(domain, body), identity.secretKey));
}

/**
 * Verifies a detached signature by the identity `signerId` over `body` in `domain`.
 * Returns `false` (never throws) for malformed keys, malformed signatures or bodies that
 * have no canonical form.
 */
export function verifyDetached(domain: SignatureDomain, body: unknown, signature: string, signerId: string): boolean {
  const key = publicKeyFromId(signerId);
  const sig = fromBase64Url(signature);
  if (!key || !sig || sig.length !== 64) return false;
  let bytes: Uint8Array;
  try {
    bytes = signingBytes(domain, body);
  } catch {
    return false;
  }
  return cryptoBackend().verify(bytes, sig, key);
}

/** Returns a copy of `message` without the named fields. */
export function omitFields<T extends object, K extends keyof T>(message: T, ...fields: K[]): Omit<T, K> {
  const copy = { ...message } as Record<string, unknown>;
  for (const f of fields) delete copy[f as string];
  return copy as Omit<T, K>;
}
