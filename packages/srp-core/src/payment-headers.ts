/**
 * x402 version 2 header documents: standard base64 of UTF-8 JSON, validated against the
 * schemas in `schema/payments.ts`. Pure functions, shared by hubs (which offer and verify),
 * clients (which pay) and the conformance suite (which checks a hub's behaviour).
 */
import { TypeCompiler } from "@sinclair/typebox/compiler";
import type { TSchema, Static } from "@sinclair/typebox";
import { canonicalize } from "./canonical.js";
import { SrpError } from "./errors.js";
import { JSON_DEPTH_LIMITS, scanJson } from "./json-scan.js";
import {
  ExactEvmPayload,
  PaymentPayload,
  PaymentPayloadV1,
  PaymentRequired,
  PaymentRequiredV1,
  SettlementResponse,
  type PaymentRequirements,
} from "./schema/payments.js";

/** The header names of x402 version 2 (HTTP header names are case-insensitive). */
export const X402_HEADERS = {
  /** Response header of a 402: what the server accepts. */
  required: "PAYMENT-REQUIRED",
  /** Request header of a paid retry: the signed payment. */
  signature: "PAYMENT-SIGNATURE",
  /** Response header of a paid request: how the payment settled. */
  response: "PAYMENT-RESPONSE",
} as const;

/** The x402 protocol version this module speaks. */
export const X402_VERSION = 2;

/**
 * The header names of x402 version 1, which hubs still take from older clients: version 1
 * has no header on the 402 (its document is the JSON body).
 */
export const X402_V1_HEADERS = {
  /** Request header of a paid retry: the signed payment. */
  payment: "X-PAYMENT",
  /** Response header of a paid request: how the payment settled. */
  response: "X-PAYMENT-RESPONSE",
} as const;

/**
 * The EVM networks x402 version 1 names, with their chain ids (version 1 names networks;
 * version 2 uses CAIP-2 ids, `eip155:<chainId>`). A chain missing here has no version-1 name,
 * so version-1 clients cannot pay on it.
 */
export const X402_V1_EVM_NETWORKS: Readonly<Record<string, number>> = Object.freeze({
  ethereum: 1,
  sepolia: 11155111,
  base: 8453,
  "base-sepolia": 84532,
  avalanche: 43114,
  "avalanche-fuji": 43113,
  polygon: 137,
  "polygon-amoy": 80002,
  iotex: 4689,
  sei: 1329,
  "sei-testnet": 1328,
  abstract: 2741,
  "abstract-testnet": 11124,
  peaq: 3338,
  story: 1514,
  educhain: 41923,
  celo: 42220,
});

/** The x402 version-1 name of an EVM chain, or undefined when version 1 has none for it. */
export function v1NetworkOf(chainId: number): string | undefined {
  for (const [name, id] of Object.entries(X402_V1_EVM_NETWORKS)) if (id === chainId) return name;
  return undefined;
}

/**
 * The payment a request carries, by header: version 2's `PAYMENT-SIGNATURE`, else version
 * 1's `X-PAYMENT`; undefined when it carries neither. A request carrying both is read as
 * version 2.
 */
export function paymentHeaderOf(headers: { get(name: string): string | null }): { version: 1 | 2; value: string } | undefined {
  const v2 = headers.get(X402_HEADERS.signature);
  if (v2 !== null) return { version: 2, value: v2 };
  const v1 = headers.get(X402_V1_HEADERS.payment);
  return v1 === null ? undefined : { version: 1, value: v1 };
}

/** Largest header document accepted, in characters of base64. */
const MAX_HEADER_CHARS = 16 * 1024;

/** Standard base64 of the UTF-8 JSON of a document. */
export function encodeX402Header(document: unknown): string {
  const bytes = new TextEncoder().encode(JSON.stringify(document));
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

const checks = new Map<TSchema, ReturnType<typeof TypeCompiler.Compile>>();
function checker(schema: TSchema) {
  let c = checks.get(schema);
  if (!c) checks.set(schema, (c = TypeCompiler.Compile(schema)));
  return c;
}

/**
 * Decodes a base64 JSON header against a schema; throws `payment.invalid` naming the
 * first problem when it is not base64, not JSON or not of the schema.
 */
export function decodeX402Header<T extends TSchema>(header: string, schema: T): Static<T> {
  const text = header.trim();
  if (text.length === 0 || text.length > MAX_HEADER_CHARS || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) {
    throw new SrpError("payment.invalid", "payment header is not standard base64");
  }
  let value: unknown;
  try {
    const binary = atob(text);
    const bytes = Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
    const json = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    // A header holds up to 12 KiB of JSON, enough nesting to overflow what stringifies it later (SRP-CON-021).
    if (!scanJson(json, { maxDepth: JSON_DEPTH_LIMITS.body }).ok)
      throw new SrpError("payment.invalid", `payment header nests JSON deeper than ${JSON_DEPTH_LIMITS.body} levels`);
    value = JSON.parse(json);
  } catch (error) {
    if (error instanceof SrpError) throw error;
    throw new SrpError("payment.invalid", "payment header is not base64 of JSON");
  }
  const c = checker(schema);
  if (!c.Check(value)) {
    const first = c.Errors(value).First();
    throw new SrpError(
      "payment.invalid",
      `payment header does not match ${schema.title ?? "its schema"}${first ? `: ${first.path || "/"} ${first.message}` : ""}`,
    );
  }
  return value as Static<T>;
}

/** Decodes a `PAYMENT-REQUIRED` header. */
export function decodePaymentRequired(header: string): PaymentRequired {
  return decodeX402Header(header, PaymentRequired);
}

/** Decodes a `PAYMENT-SIGNATURE` header. */
export function decodePaymentPayload(header: string): PaymentPayload {
  return decodeX402Header(header, PaymentPayload);
}

/** Decodes a version-1 `X-PAYMENT` header. */
export function decodePaymentPayloadV1(header: string): PaymentPayloadV1 {
  return decodeX402Header(header, PaymentPayloadV1);
}

/** Checks a version-1 402 body (already parsed JSON); throws `payment.invalid` when it is not one. */
export function paymentRequiredV1Of(body: unknown): PaymentRequiredV1 {
  const c = checker(PaymentRequiredV1);
  if (!c.Check(body)) {
    const first = c.Errors(body).First();
    throw new SrpError("payment.invalid", `body is not an x402 version-1 402${first ? `: ${first.path || "/"} ${first.message}` : ""}`);
  }
  return body as PaymentRequiredV1;
}

/** Decodes a `PAYMENT-RESPONSE` header. */
export function decodeSettlementResponse(header: string): SettlementResponse {
  return decodeX402Header(header, SettlementResponse);
}

/** The `exact` EVM payload of a payment, or `payment.invalid` when it is not one. */
export function exactEvmPayload(payment: Pick<PaymentPayload, "payload">): ExactEvmPayload {
  const c = checker(ExactEvmPayload);
  if (!c.Check(payment.payload)) {
    const first = c.Errors(payment.payload).First();
    throw new SrpError("payment.invalid", `payload is not an exact EVM payment${first ? `: ${first.path || "/"} ${first.message}` : ""}`);
  }
  return payment.payload as ExactEvmPayload;
}

/**
 * Whether the requirements a client echoed are exactly those offered: deep equality,
 * compared as canonical JSON (member order does not matter, everything else does).
 */
export function sameRequirements(a: PaymentRequirements, b: PaymentRequirements): boolean {
  try {
    return canonicalize(a) === canonicalize(b);
  } catch {
    return false;
  }
}

/** The CAIP-2 id of an EVM chain: `eip155:<chainId>`. */
export function evmNetwork(chainId: number): string {
  if (!Number.isSafeInteger(chainId) || chainId <= 0) throw new RangeError("chainId must be a positive integer");
  return `eip155:${chainId}`;
}

/** The chain id of a CAIP-2 `eip155:` network, or undefined for any other network. */
export function evmChainId(network: string): number | undefined {
  const m = /^eip155:([1-9][0-9]{0,15})$/.exec(network);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}
