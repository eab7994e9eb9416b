/**
 * x402 for consumers: which of a hub's payment requirements a client agrees to pay, and the
 * `PAYMENT-SIGNATURE` header that pays them (an EIP-3009 `TransferWithAuthorization` signed
 * by the client's wallet, for the `exact` scheme on an EVM network), and the EIP-4361
 * sign-in text of a wallet. viem is an optional peer dependency: only its types are
 * imported statically, and the modules that need viem at run time are loaded the first
 * time a payment or a sign-in is made, so clients that use an API key never load it.
 */
import type { Address, Hex, LocalAccount } from "viem";
import {
  encodeX402Header,
  evmChainId,
  X402_VERSION,
  type PaymentRequired,
  type PaymentRequirements,
  type SettlementResponse,
} from "@srp/core/x402";

/**
 * The wallet a client pays and signs in with: a viem `LocalAccount` (for example from
 * `privateKeyToAccount`) fits. It signs EIP-712 typed data (payments) and EIP-191
 * messages (sign-in and refunds).
 */
export type X402Account = Pick<LocalAccount, "address" | "signTypedData" | "signMessage">;

/** A payment the client made: what it paid, and how the hub says it settled. */
export interface X402PaymentInfo {
  /** The requirements paid, exactly as the hub offered them (`amount` in the asset's atomic units). */
  requirements: PaymentRequirements;
  /** The hub's `PAYMENT-RESPONSE`, decoded; absent when the hub sent none (or it did not decode). */
  response?: SettlementResponse;
}

/**
 * How a client pays with x402 (`ClientOptions.x402`). Without an API key, a request the
 * hub answers with 402 is paid with `account` and sent again, within these limits.
 */
export interface X402Options {
  /** The paying wallet. */
  account: X402Account;
  /**
   * The most the client pays for one request, in the asset's atomic units (USDC: 1e-6 USD);
   * a dearer quote is refused with `payment.required` and nothing is signed. Default
   * 1 USDC (`1_000_000n`). Deposits are not bound by it: they pay exactly the amount asked.
   */
  maxAmount?: bigint;
  /** The CAIP-2 networks the client pays on, e.g. `["eip155:8453"]`; default any `eip155:` network. */
  networks?: string[];
  /**
   * The token contracts the client pays with (any case). Default: any asset the hub
   * offers. That trusts the hub to name a token worth what it quotes, and to name the
   * chain's real USDC rather than a look-alike: set it to the USDC address of your network.
   */
  assets?: string[];
  /**
   * Told of every payment the hub answered with a `PAYMENT-RESPONSE`, including a paid
   * request that then failed (its money, when it moved, is the wallet account's prepaid
   * balance). Exceptions it throws are ignored: they do not undo a payment.
   */
  onPayment?: (info: X402PaymentInfo) => void;
}

/** The default of {@link X402Options.maxAmount}: 1 USDC in atomic units. */
export const DEFAULT_X402_MAX_AMOUNT = 1_000_000n;

/** What {@link chooseRequirements} accepts. */
export interface X402Policy {
  /** Refuse amounts above this (atomic units); default {@link DEFAULT_X402_MAX_AMOUNT}. Ignored when `amount` is set. */
  maxAmount?: bigint;
  /** Accept only exactly this amount (a deposit pays what it asked for, nothing else). */
  amount?: bigint;
  /** CAIP-2 networks accepted; default any `eip155:` network. */
  networks?: readonly string[];
  /** Token contracts accepted (any case); default any. */
  assets?: readonly string[];
}

const EVM_ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/** The EIP-712 domain name and version of an offer's token (`extra.name`, `extra.version`). */
function tokenDomain(r: PaymentRequirements): { name: string; version: string } | undefined {
  const name = r.extra?.name;
  const version = r.extra?.version;
  return typeof name === "string" && typeof version === "string" ? { name, version } : undefined;
}

/** Why one offered way to pay is not acceptable, or undefined when it is. */
function refusal(r: PaymentRequirements, policy: X402Policy): string | undefined {
  if (r.scheme !== "exact") return `scheme ${r.scheme} is not supported (only exact)`;
  if (evmChainId(r.network) === undefined) return `network ${r.network} is not an EVM (eip155) network`;
  if (policy.networks && !policy.networks.includes(r.network))
    return `network ${r.network} is not among the allowed networks (${policy.networks.join(", ") || "none"})`;
  if (!EVM_ADDRESS.test(r.asset)) return `asset ${r.asset} is not an EVM token address`;
  if (policy.assets && !policy.assets.some((a) => a.toLowerCase() === r.asset.toLowerCase()))
    return `asset ${r.asset} is not among the allowed assets`;
  if (!EVM_ADDRESS.test(r.payTo)) return `payTo ${r.payTo} is not an EVM address`;
  if (!tokenDomain(r)) return `the offer does not name the token's EIP-712 domain (extra.name, extra.version)`;
  const amount = BigInt(r.amount);
  if (policy.amount !== undefined) {
    if (amount !== policy.amount) return `the hub asks ${amount} units where ${policy.amount} were expected`;
  } else {
    const max = policy.maxAmount ?? DEFAULT_X402_MAX_AMOUNT;
    if (amount > max) return `the hub asks ${amount} units, more than this client pays per request (maxAmount ${max})`;
  }
  return undefined;
}

/**
 * The first of a 402's offers that `policy` accepts: the `exact` scheme on an `eip155:`
 * network, an allowed network and asset, and an amount within limits. When none is, the
 * reason (naming why each offer was refused) to report to the caller.
 *
 * @example
 * const choice = chooseRequirements(decodePaymentRequired(header), { assets: [USDC] });
 * if ("reason" in choice) throw new Error(choice.reason);
 */
export function chooseRequirements(
  required: PaymentRequired,
  policy: X402Policy = {},
): { requirements: PaymentRequirements } | { reason: string } {
  const reasons: string[] = [];
  for (const r of required.accepts) {
    const why = refusal(r, policy);
    if (why === undefined) return { requirements: r };
    reasons.push(why);
  }
  return { reason: `no acceptable way to pay ${required.resource.url}: ${reasons.join("; ")}` };
}

type ChainModule = typeof import("@srp/core/chain");
type SiweModule = typeof import("viem/siwe");
let chainModule: Promise<ChainModule> | undefined;
let siweModule: Promise<SiweModule> | undefined;

/** `@srp/core/chain` (which loads viem), loaded on first use. */
function chainHelpers(): Promise<ChainModule> {
  return (chainModule ??= import("@srp/core/chain").catch((error: unknown) => {
    chainModule = undefined;
    throw error;
  }));
}

/** `viem/siwe`, loaded on first use. */
function siwe(): Promise<SiweModule> {
  return (siweModule ??= import("viem/siwe").catch((error: unknown) => {
    siweModule = undefined;
    throw error;
  }));
}

/** Seconds before now that an authorization is valid from, absorbing clock skew (as x402 clients do). */
const VALID_AFTER_SLACK_SECONDS = 600;

/**
 * Signs a payment of `requirements` (one of `required.accepts`, as {@link chooseRequirements}
 * picked it) with `account`, and returns the `PAYMENT-SIGNATURE` header value: an EIP-3009
 * authorization of exactly `amount` to `payTo`, valid from 10 minutes ago until
 * `maxTimeoutSeconds` from now, with a random nonce, signed for the token's domain
 * `{ name: extra.name, version: extra.version, chainId, verifyingContract: asset }`.
 *
 * @param nowSeconds the current Unix time in seconds; default the clock's
 */
export async function createPaymentSignature(
  account: X402Account,
  required: PaymentRequired,
  requirements: PaymentRequirements,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<string> {
  const chainId = evmChainId(requirements.network);
  const token = tokenDomain(requirements);
  if (chainId === undefined || !token || !EVM_ADDRESS.test(requirements.asset) || !EVM_ADDRESS.test(requirements.payTo)) {
    throw new TypeError(
      `cannot pay ${requirements.scheme} on ${requirements.network}: ${refusal(requirements, { amount: BigInt(requirements.amount) }) ?? "not payable"}`,
    );
  }
  const { authorizationNonce, eip3009Domain, transferWithAuthorizationTypes } = await chainHelpers();
  const message = {
    from: account.address,
    to: requirements.payTo as Address,
    value: BigInt(requirements.amount),
    validAfter: BigInt(Math.max(0, nowSeconds - VALID_AFTER_SLACK_SECONDS)),
    validBefore: BigInt(nowSeconds + requirements.maxTimeoutSeconds),
    nonce: authorizationNonce(),
  };
  const signature: Hex = await account.signTypedData({
    domain: eip3009Domain({ name: token.name, version: token.version, chainId, address: requirements.asset as Address }),
    types: transferWithAuthorizationTypes,
    primaryType: "TransferWithAuthorization",
    message,
  });
  return encodeX402Header({
    x402Version: X402_VERSION,
    resource: required.resource,
    accepted: requirements,
    payload: {
      signature,
      authorization: {
        from: message.from,
        to: message.to,
        value: message.value.toString(),
        validAfter: message.validAfter.toString(),
        validBefore: message.validBefore.toString(),
        nonce: message.nonce,
      },
    },
  });
}

/** The statement of the sign-in messages this client signs. */
export const SIGN_IN_STATEMENT = "Sign in to the SRP hub";

/** Seconds a sign-in message stays valid (the hub's nonces live 10 minutes). */
const SIGN_IN_VALIDITY_SECONDS = 600;

/**
 * The EIP-4361 (Sign-In with Ethereum) message a wallet signs to sign in to the hub at
 * `hub` (its base URL): domain = the URL's host, uri = the URL, version 1, the x402
 * chain id, the hub's nonce, and the statement {@link SIGN_IN_STATEMENT}; valid 10 minutes.
 */
export async function signInMessage(params: {
  hub: string;
  address: Address;
  chainId: number;
  nonce: string;
  issuedAt?: Date;
}): Promise<string> {
  const { createSiweMessage } = await siwe();
  const issuedAt = params.issuedAt ?? new Date();
  return createSiweMessage({
    domain: new URL(params.hub).host,
    address: params.address,
    statement: SIGN_IN_STATEMENT,
    uri: params.hub,
    version: "1",
    chainId: params.chainId,
    nonce: params.nonce,
    issuedAt,
    expirationTime: new Date(issuedAt.getTime() + SIGN_IN_VALIDITY_SECONDS * 1000),
  });
}
