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
import { ExactEvmPayload, PaymentPayload, PaymentRequired, SettlementResponse, type PaymentRequirements } from "./schema/payments.js";

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

/** Decodes a `PAYMENT-RESPONSE` header. */
export function decodeSettlementResponse(header: string): SettlementResponse {
  return decodeX402Header(header, SettlementResponse);
}

/** The `exact` EVM payload of a payment, or `payment.invalid` when it is not one. */
export function exactEvmPayload(payment: PaymentPayload): ExactEvmPayload {
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
