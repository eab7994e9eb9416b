/**
 * x402 policy as pure functions: what a hub offers for a request (the `exact` scheme,
 * EIP-3009 on an EVM network), and the checks a payment must pass before anything
 * touches the chain or the books, each failure with its own error code
 * (spec/v1/payments.md, SRP-PAY-*). No I/O here: the signature check is the only
 * cryptography, and it is done by the caller.
 */
import { SrpError } from "@srp/core";
import {
  evmChainId,
  exactEvmPayload,
  sameRequirements,
  v1NetworkOf,
  X402_VERSION,
  type ExactEvmAuthorization,
  type PaymentPayload,
  type PaymentPayloadV1,
  type PaymentRequired,
  type PaymentRequirements,
  type PaymentRequirementsV1,
} from "@srp/core/x402";

/** The token a hub is paid in (USDC or a stand-in with the same EIP-3009 interface). */
export interface X402Asset {
  /** The token contract. */
  address: string;
  /** Its EIP-712 domain name (`"USD Coin"` for USDC on most chains). */
  name: string;
  /** Its EIP-712 domain version (`"2"` for USDC). */
  version: string;
}

/** What a hub offers x402 payers. */
export interface X402Terms {
  /** The chain id of the EVM network payments settle on. */
  chainId: number;
  asset: X402Asset;
  /** The hub's treasury: every authorization pays this address. */
  payTo: string;
  /** `maxTimeoutSeconds` offered: how long an authorization stays valid. At least 300. */
  maxTimeoutSeconds: number;
  /** Seconds an authorization must still be valid when it arrives (time to serve and settle). */
  minValiditySeconds: number;
}

/** The requirements a hub offers for a request that may cost up to `amount`. */
export function requirementsFor(terms: X402Terms, amount: bigint): PaymentRequirements {
  if (amount < 0n) throw new RangeError("amount must be non-negative");
  return {
    scheme: "exact",
    network: `eip155:${terms.chainId}`,
    amount: amount.toString(),
    asset: terms.asset.address,
    payTo: terms.payTo,
    maxTimeoutSeconds: terms.maxTimeoutSeconds,
    extra: { name: terms.asset.name, version: terms.asset.version },
  };
}

/** What a 402 describes: the resource and, for the `bazaar` extension, how to call it. */
export interface PaidResource {
  url: string;
  description: string;
  mimeType: string;
  /** HTTP method of the resource. */
  method: "POST" | "GET";
  /** An example request body (POST). */
  example?: Record<string, unknown>;
}

/**
 * The `bazaar` discovery extension for a resource: `info` (how to call it) and `schema`
 * (JSON Schema 2020-12 that validates `info`), as the x402 extension defines it.
 */
export function bazaarExtension(resource: PaidResource): Record<string, unknown> {
  const body = resource.method === "POST";
  return {
    info: {
      input: body ? { type: "http", method: "POST", bodyType: "json", body: resource.example ?? {} } : { type: "http", method: "GET" },
      output: { type: "json" },
    },
    schema: {
      $schema: "https://json-schema.org/draft/2020-12/schema",
      type: "object",
      properties: {
        input: {
          type: "object",
          properties: {
            type: { type: "string", const: "http" },
            method: { type: "string", enum: body ? ["POST", "PUT", "PATCH"] : ["GET", "HEAD", "DELETE"] },
            ...(body ? { bodyType: { type: "string", enum: ["json", "form-data", "text"] }, body: { type: "object" } } : {}),
            headers: { type: "object", additionalProperties: { type: "string" } },
          },
          required: body ? ["type", "method", "bodyType", "body"] : ["type", "method"],
          additionalProperties: false,
        },
        output: { type: "object", properties: { type: { type: "string" } }, required: ["type"] },
      },
      required: ["input"],
    },
  };
}

/** The `PAYMENT-REQUIRED` document of a 402 offering `accepts` (one entry per network). */
export function paymentRequired(accepts: PaymentRequirements[], resource: PaidResource, error?: string): PaymentRequired {
  return {
    x402Version: X402_VERSION as 2,
    ...(error !== undefined ? { error } : {}),
    resource: { url: resource.url, description: resource.description, mimeType: resource.mimeType },
    accepts,
    extensions: { bazaar: bazaarExtension(resource) },
  };
}

/**
 * The same offer for x402 version-1 clients (an entry of the 402 body's `accepts`), or
 * undefined when the hub's chain has no version-1 network name.
 */
export function requirementsV1For(terms: X402Terms, amount: bigint, resource: PaidResource): PaymentRequirementsV1 | undefined {
  const network = v1NetworkOf(terms.chainId);
  if (network === undefined) return undefined;
  const v2 = requirementsFor(terms, amount);
  const { info } = bazaarExtension(resource) as { info: { input: Record<string, unknown>; output: Record<string, unknown> } };
  return {
    scheme: v2.scheme,
    network,
    maxAmountRequired: v2.amount,
    resource: resource.url,
    description: resource.description,
    mimeType: resource.mimeType,
    // Version 1 describes how to call a resource here (what version 2 moved to the `bazaar` extension).
    outputSchema: { input: { ...info.input, discoverable: true }, output: info.output },
    payTo: v2.payTo,
    maxTimeoutSeconds: v2.maxTimeoutSeconds,
    asset: v2.asset,
    extra: { name: terms.asset.name, version: terms.asset.version },
  };
}

/**
 * A version-1 payment (`X-PAYMENT`) as the version-2 payment it stands for: the same
 * payload, with the requirements offered for this request as `accepted` (version 1 names
 * the scheme and network instead of echoing the requirements). The error when it chose
 * another scheme or network. Every other check is then {@link checkPayment}'s.
 */
export function paymentFromV1(payment: PaymentPayloadV1, offered: PaymentRequirements, terms: X402Terms): PaymentPayload | SrpError {
  const network = v1NetworkOf(terms.chainId);
  if (network === undefined)
    return new SrpError(
      "payment.wrong_network",
      `eip155:${terms.chainId} has no x402 version-1 name; pay with version 2 (PAYMENT-SIGNATURE)`,
    );
  if (payment.scheme !== offered.scheme)
    return new SrpError("payment.wrong_network", `scheme ${payment.scheme} is not accepted; use ${offered.scheme}`);
  if (payment.network !== network)
    return new SrpError("payment.wrong_network", `network ${payment.network} is not accepted; pay on ${network}`);
  return { x402Version: X402_VERSION as 2, accepted: offered, payload: payment.payload };
}

/** A payment that passed every check that needs no chain: who pays, and what they signed. */
export interface CheckedPayment {
  authorization: ExactEvmAuthorization;
  signature: `0x${string}`;
  requirements: PaymentRequirements;
}

const lower = (s: string) => s.toLowerCase();

/**
 * Checks a payment against the requirements offered for this request, in the spec's
 * order (SRP-PAY-004): version and scheme, network, the echoed requirements (deep
 * equality), recipient, amount, time window. Returns the checked payment or the error.
 * The signature, the nonce's on-chain state and the payer's balance are checked after.
 *
 * @param nowSeconds the current Unix time in seconds
 */
export function checkPayment(
  payment: PaymentPayload,
  offered: PaymentRequirements,
  terms: X402Terms,
  nowSeconds: number,
): CheckedPayment | SrpError {
  if (payment.x402Version !== X402_VERSION)
    return new SrpError("payment.invalid", `x402Version ${String(payment.x402Version)} is not supported; use 2`);
  const a = payment.accepted;
  if (a.scheme !== "exact") return new SrpError("payment.wrong_network", `scheme ${a.scheme} is not accepted; use exact`);
  if (evmChainId(a.network) !== terms.chainId)
    return new SrpError("payment.wrong_network", `network ${a.network} is not accepted; pay on eip155:${terms.chainId}`);
  if (!sameRequirements(a, offered)) {
    return new SrpError("payment.requirements_mismatch", "`accepted` differs from the requirements this hub offers for this request", {
      details: { offered },
    });
  }
  let payload;
  try {
    payload = exactEvmPayload(payment);
  } catch (error) {
    return error as SrpError;
  }
  const auth = payload.authorization;
  if (lower(auth.to) !== lower(terms.payTo))
    return new SrpError("payment.wrong_recipient", `the authorization pays ${auth.to}, not the hub's treasury ${terms.payTo}`);
  if (auth.value !== offered.amount)
    return new SrpError(
      "payment.wrong_amount",
      `the authorization is for ${auth.value} units; this request requires exactly ${offered.amount}`,
    );
  // The token requires block.timestamp > validAfter: an authorization valid from this very second may not settle yet.
  if (BigInt(auth.validAfter) >= BigInt(nowSeconds))
    return new SrpError("payment.not_yet_valid", `the authorization is valid only after ${auth.validAfter}`);
  const before = BigInt(auth.validBefore);
  if (before <= BigInt(nowSeconds)) return new SrpError("payment.expired", `the authorization expired at ${auth.validBefore}`);
  if (before < BigInt(nowSeconds + terms.minValiditySeconds)) {
    return new SrpError(
      "payment.expired",
      `the authorization must stay valid for at least ${terms.minValiditySeconds} s to serve and settle; it expires at ${auth.validBefore}`,
    );
  }
  return { authorization: auth, signature: payload.signature as `0x${string}`, requirements: offered };
}
