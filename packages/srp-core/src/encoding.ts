/**
 * Byte encodings used on the SRP wire: base64url without padding for keys, nonces and
 * signatures; lowercase hex SHA-256 for hashes; UTF-8 for text. Runtime-neutral (no
 * `Buffer`), so the core runs in Node, browsers and edge runtimes alike.
 */
import { cryptoBackend } from "./crypto-backend.js";
import nacl from "tweetnacl";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const LOOKUP = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) LOOKUP[ALPHABET.charCodeAt(i)] = i;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Encodes bytes as base64url without padding (RFC 4648 section 5). */
export function toBase64Url(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + ALPHABET[(n >>> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + ALPHABET[(n >>> 6) & 63]!;
  }
  return out;
}

/**
 * Decodes unpadded base64url. Returns `undefined` for any character outside the
 * alphabet, for padding, for an impossible length, or for non-zero trailing bits, so
 * every byte string has exactly one accepted encoding.
 */
export function fromBase64Url(text: string): Uint8Array | undefined {
  if (text.length % 4 === 1) return undefined;
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? LOOKUP[c]! : -1;
    if (v < 0) return undefined;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >>> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) return undefined;
  return out;
}

/** UTF-8 encodes a string. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Strictly decodes UTF-8; returns `undefined` for invalid sequences. */
export function fromUtf8(bytes: Uint8Array): string | undefined {
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

const HEX_BYTES = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

/** Lowercase hex of the bytes. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX_BYTES[bytes[i]!];
  return out;
}

/** SHA-256 of bytes, or of the UTF-8 encoding of a string, as 64 lowercase hex digits. */
export function sha256Hex(data: Uint8Array | string): string {
  return toHex(cryptoBackend().sha256(typeof data === "string" ? utf8(data) : data));
}

// Ids and nonces are drawn from a pool filled by the platform's CSPRNG 4 KiB at a time: one
// system call per ~128 ids instead of one each. Every byte is handed out once, then zeroed.
const POOL_SIZE = 4096;
const POOLED_MAX = 256;
const pool = new Uint8Array(POOL_SIZE);
let poolOffset = POOL_SIZE;

/** `n` cryptographically random bytes. */
export function randomBytes(n: number): Uint8Array {
  if (n > POOLED_MAX) return nacl.randomBytes(n);
  if (poolOffset + n > POOL_SIZE) {
    pool.set(nacl.randomBytes(POOL_SIZE));
    poolOffset = 0;
  }
  const out = pool.slice(poolOffset, poolOffset + n);
  pool.fill(0, poolOffset, poolOffset + n);
  poolOffset += n;
  return out;
}

/** A fresh 32-byte nonce, base64url (43 characters). */
export function randomNonce(): string {
  return toBase64Url(randomBytes(32));
}
