/**
 * Proofs that a caller controls a Solana address: a fixed text (naming the hub, the account
 * and a nonce from `GET /v1/auth/nonce`) signed with the address's Ed25519 key, the signature
 * written in base58 as Solana writes them. Solana refunds (SRP-PAY-033) and Solana payouts
 * (SRP-PAY-034) check them. Kept free of Solana libraries, so that hubs without Solana load none.
 */
import { cryptoBackend } from "@srp/core";
import type { PaymentRail } from "../payments/rail.js";
import { fail } from "./http.js";

/** Base58 of a 64-byte Ed25519 signature. */
export const SOLANA_SIGNATURE = /^[1-9A-HJ-NP-Za-km-z]{64,88}$/;
/** Base58 of a 32-byte Solana address. */
export const SOLANA_ADDRESS = /^[1-9A-HJ-NP-Za-km-z]{32,44}$/;
const BASE58_DIGITS = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/**
 * The bytes of a base58 string (Bitcoin's alphabet, as Solana writes keys and signatures), or
 * undefined when it is not base58.
 */
export function base58Bytes(text: string): Uint8Array | undefined {
  let n = 0n;
  for (const c of text) {
    const d = BASE58_DIGITS.indexOf(c);
    if (d < 0) return undefined;
    n = n * 58n + BigInt(d);
  }
  const bytes: number[] = [];
  for (; n > 0n; n >>= 8n) bytes.unshift(Number(n & 0xffn));
  // Each leading "1" is a leading zero byte.
  for (const c of text) {
    if (c !== "1") break;
    bytes.unshift(0);
  }
  return Uint8Array.from(bytes);
}

/**
 * A signature and an address as bytes when both are well-formed base58 of the right lengths
 * (64 and 32 bytes), else undefined.
 */
export function solanaProofBytes(signature: string, address: string): { signature: Uint8Array; publicKey: Uint8Array } | undefined {
  if (!SOLANA_SIGNATURE.test(signature) || !SOLANA_ADDRESS.test(address)) return undefined;
  const s = base58Bytes(signature);
  const k = base58Bytes(address);
  return s?.length === 64 && k?.length === 32 ? { signature: s, publicKey: k } : undefined;
}

/** A Solana-signed request body: the signed text, the signing (and paid) address, the network named, and the proof's bytes. */
export interface SolanaSignedBody {
  message: string;
  /** The signature as sent (base58). */
  signature: string;
  address: string;
  network: string | undefined;
  proof: { signature: Uint8Array; publicKey: Uint8Array };
}

/**
 * Reads `{ message, signature, address, network? }` (base58 signature of 64 bytes, base58
 * address of 32); the refusal `api.invalid_body` says `shape`, and `badBytes` when the
 * members are strings but not of those sizes.
 */
export function readSolanaSignedBody(body: Record<string, unknown>, shape: string, badBytes = shape): SolanaSignedBody | Response {
  const { message, signature, address, network } = body;
  if (
    typeof message !== "string" ||
    typeof signature !== "string" ||
    typeof address !== "string" ||
    (network !== undefined && typeof network !== "string")
  )
    return fail("api.invalid_body", shape);
  const proof = solanaProofBytes(signature, address);
  if (!proof) return fail("api.invalid_body", badBytes);
  return { message, signature, address, network, proof };
}

/** Whether `signature` is `address`'s Ed25519 signature of the UTF-8 bytes of `message`. */
export function verifySolanaMessage(message: string, proof: { signature: Uint8Array; publicKey: Uint8Array }): boolean {
  return cryptoBackend().verify(new TextEncoder().encode(message), proof.signature, proof.publicKey);
}

/**
 * The text a provider account signs with a Solana address's key to take its earnings there
 * (`POST /v1/payouts/solana`, SRP-PAY-034): lines joined by a single line feed, no trailing newline.
 *
 * @example
 * solanaPayoutMessage("hub1", "acct_1", "n0nce123"); // "SRP payout\nhub: hub1\naccount: acct_1\nnonce: n0nce123"
 */
export function solanaPayoutMessage(hubId: string, accountId: string, nonce: string): string {
  return `SRP payout\nhub: ${hubId}\naccount: ${accountId}\nnonce: ${nonce}`;
}

/** The fields of a payout message ({@link solanaPayoutMessage}): hub, account, nonce. */
export const SOLANA_PAYOUT_MESSAGE = /^SRP payout\nhub: (\S+)\naccount: (\S+)\nnonce: ([A-Za-z0-9]{8,64})$/;

/**
 * The Solana rail a refund or payout names (`network`, needed only when the hub takes payments
 * on several Solana clusters) among `rails`, or the answer refusing it: 503
 * `payment.unavailable` when the hub takes no Solana payments (`what` says what it then does
 * not pay), 400 `api.invalid_body` for a network it does not take or a missing one among several.
 */
export function pickSolanaRail(rails: readonly PaymentRail[], network: string | undefined, what: string): PaymentRail | Response {
  const solana = rails.filter((r) => r.network.startsWith("solana:"));
  // Wallet accounts are keyed by address alone: with several clusters, money paid on one could leave on another.
  if (solana.length > 1)
    return fail(
      "payment.unavailable",
      `this hub takes payments on several Solana networks (${solana.map((r) => r.network).join(", ")}); it pays no ${what} on Solana then`,
    );
  const named = network === undefined ? solana : solana.filter((r) => r.network === network);
  if (named.length === 0)
    return network === undefined
      ? fail("payment.unavailable", `this hub takes no Solana payments and pays no ${what} on Solana`)
      : fail(
          "api.invalid_body",
          `this hub takes no payments on ${network}; its Solana networks: ${solana.map((r) => r.network).join(", ") || "none"}`,
        );
  if (named.length > 1)
    return fail("api.invalid_body", `name the \`network\` the money was paid on: one of ${named.map((r) => r.network).join(", ")}`);
  return named[0]!;
}
