import type { Address, Hex, TypedDataDomain } from "viem";

/** EIP-712 `types` for EIP-3009 `TransferWithAuthorization`, as viem's `signTypedData` takes them. */
export const transferWithAuthorizationTypes = {
  TransferWithAuthorization: [
    { name: "from", type: "address" },
    { name: "to", type: "address" },
    { name: "value", type: "uint256" },
    { name: "validAfter", type: "uint256" },
    { name: "validBefore", type: "uint256" },
    { name: "nonce", type: "bytes32" },
  ],
} as const;

/**
 * EIP-712 `types` for an SrpSettlement voucher: `Payout(address payee,uint256 total)`, where
 * `total` is the cumulative amount the provider has been owed so far (it never decreases).
 */
export const payoutTypes = {
  Payout: [
    { name: "payee", type: "address" },
    { name: "total", type: "uint256" },
  ],
} as const;

/** The EIP-712 domain name of SrpSettlement. */
export const SETTLEMENT_DOMAIN_NAME = "SRP Settlement";
/** The EIP-712 domain version of SrpSettlement. */
export const SETTLEMENT_DOMAIN_VERSION = "1";

/** An EIP-3009 token's EIP-712 domain parameters (USDC: name "USD Coin", version "2"). */
export interface Eip3009Token {
  /** EIP-712 domain name. */
  name: string;
  /** EIP-712 domain version. */
  version: string;
  /** The chain the token lives on. */
  chainId: number | bigint;
  /** The token contract. */
  address: Address;
}

/** An EIP-3009 `TransferWithAuthorization` message: `value` moves from `from` to `to`. */
export interface TransferAuthorization {
  /** The payer, who signs. */
  from: Address;
  /** The recipient. */
  to: Address;
  /** Amount in the token's smallest unit. */
  value: bigint;
  /** Valid only in blocks with a timestamp strictly greater than this (seconds). */
  validAfter: bigint;
  /** Valid only in blocks with a timestamp strictly less than this (seconds). */
  validBefore: bigint;
  /** A unique 32-byte nonce chosen by the payer. */
  nonce: Hex;
}

/** The EIP-712 domain of an EIP-3009 token. */
export function eip3009Domain(token: Eip3009Token): TypedDataDomain {
  return { name: token.name, version: token.version, chainId: token.chainId, verifyingContract: token.address };
}

/** The EIP-712 domain of the SrpSettlement contract at `address` on `chainId`. */
export function settlementDomain(chainId: number | bigint, address: Address): TypedDataDomain {
  return { name: SETTLEMENT_DOMAIN_NAME, version: SETTLEMENT_DOMAIN_VERSION, chainId, verifyingContract: address };
}

/**
 * The protocol's cumulative share accompanying a cumulative provider total: `ceil(total / 9)`,
 * so provider and protocol split 90 : 10. The same rule as `SrpSettlement.protocolShare`.
 */
export function protocolShare(total: bigint): bigint {
  if (total < 0n) throw new RangeError("total must not be negative");
  return (total + 8n) / 9n;
}

/**
 * What `SrpSettlement.claim` pays for a voucher `total` when `paid` was already paid to the
 * provider: nothing if `total <= paid`, else the provider's increase and the matching
 * increase of the protocol's share.
 */
export function claimAmounts(paid: bigint, total: bigint): { providerAmount: bigint; protocolAmount: bigint } {
  if (total <= paid) return { providerAmount: 0n, protocolAmount: 0n };
  return { providerAmount: total - paid, protocolAmount: protocolShare(total) - protocolShare(paid) };
}
