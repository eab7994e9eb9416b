/**
 * Schemas of payments (`spec/v1/payments.md`, "Headers"): x402 version 2 as SRP hubs speak
 * it on their consumer HTTP surfaces, the `PAYMENT-REQUIRED`, `PAYMENT-SIGNATURE` and
 * `PAYMENT-RESPONSE` header documents, for the `exact` scheme on EVM networks (EIP-3009
 * `transferWithAuthorization`). Members SRP does not read are allowed through
 * (`additionalProperties`) so newer clients still parse.
 */
import { Type, type Static } from "@sinclair/typebox";
import { Amount } from "./primitives.js";

/** A `0x`-prefixed 20-byte EVM address (any case). */
export const EvmAddress = Type.String({ pattern: "^0x[0-9a-fA-F]{40}$", title: "EvmAddress" });

/** A `0x`-prefixed 32-byte value, such as an EIP-3009 nonce. */
export const Bytes32 = Type.String({ pattern: "^0x[0-9a-fA-F]{64}$", title: "Bytes32" });

/** A CAIP-2 EVM network id, `eip155:<chainId>`. */
export const EvmNetwork = Type.String({ pattern: "^eip155:[1-9][0-9]{0,15}$", title: "EvmNetwork" });

/** An unsigned integer (seconds, wei) as a decimal string. */
const Uint = Type.String({ pattern: "^(0|[1-9][0-9]{0,77})$" });

/** One way to pay that a server accepts (an entry of `accepts`). */
export const PaymentRequirements = Type.Object(
  {
    scheme: Type.String({ minLength: 1, maxLength: 64 }),
    network: Type.String({ minLength: 1, maxLength: 128 }),
    amount: Amount,
    asset: Type.String({ minLength: 1, maxLength: 128 }),
    payTo: Type.String({ minLength: 1, maxLength: 128 }),
    maxTimeoutSeconds: Type.Integer({ minimum: 1, maximum: 86_400 * 7 }),
    extra: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: true, title: "PaymentRequirements" },
);
/** One way to pay that a server accepts. */
export type PaymentRequirements = Static<typeof PaymentRequirements>;

/** What is being paid for. */
export const PaymentResource = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2048 }),
    description: Type.Optional(Type.String({ maxLength: 2048 })),
    mimeType: Type.Optional(Type.String({ maxLength: 128 })),
  },
  { additionalProperties: true, title: "PaymentResource" },
);
/** What is being paid for. */
export type PaymentResource = Static<typeof PaymentResource>;

/** The document in a 402 response's `PAYMENT-REQUIRED` header. */
export const PaymentRequired = Type.Object(
  {
    x402Version: Type.Literal(2),
    error: Type.Optional(Type.String({ maxLength: 2048 })),
    resource: PaymentResource,
    accepts: Type.Array(PaymentRequirements, { minItems: 1, maxItems: 16 }),
    extensions: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: true, title: "PaymentRequired" },
);
/** The document in a 402 response's `PAYMENT-REQUIRED` header. */
export type PaymentRequired = Static<typeof PaymentRequired>;

/** An EIP-3009 `TransferWithAuthorization` as the `exact` EVM scheme carries it (numbers as decimal strings). */
export const ExactEvmAuthorization = Type.Object(
  {
    from: EvmAddress,
    to: EvmAddress,
    value: Uint,
    validAfter: Uint,
    validBefore: Uint,
    nonce: Bytes32,
  },
  { additionalProperties: false, title: "ExactEvmAuthorization" },
);
/** An EIP-3009 authorization as the `exact` EVM scheme carries it. */
export type ExactEvmAuthorization = Static<typeof ExactEvmAuthorization>;

/** The `payload` of an `exact` EVM payment: the signed authorization. */
export const ExactEvmPayload = Type.Object(
  {
    signature: Type.String({ pattern: "^0x[0-9a-fA-F]{2,4096}$" }),
    authorization: ExactEvmAuthorization,
  },
  { additionalProperties: true, title: "ExactEvmPayload" },
);
/** The `payload` of an `exact` EVM payment. */
export type ExactEvmPayload = Static<typeof ExactEvmPayload>;

/** The document in a request's `PAYMENT-SIGNATURE` header. */
export const PaymentPayload = Type.Object(
  {
    x402Version: Type.Literal(2),
    resource: Type.Optional(PaymentResource),
    /** The requirements the client chose, echoed exactly as offered. */
    accepted: PaymentRequirements,
    payload: Type.Record(Type.String(), Type.Unknown()),
    extensions: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: true, title: "PaymentPayload" },
);
/** The document in a request's `PAYMENT-SIGNATURE` header. */
export type PaymentPayload = Static<typeof PaymentPayload>;

/** The document in a response's `PAYMENT-RESPONSE` header: how the payment settled. */
export const SettlementResponse = Type.Object(
  {
    success: Type.Boolean(),
    /** The settlement transaction hash (empty when nothing was submitted). */
    transaction: Type.String({ maxLength: 128 }),
    network: Type.String({ maxLength: 128 }),
    payer: Type.Optional(Type.String({ maxLength: 128 })),
    errorReason: Type.Optional(Type.String({ maxLength: 2048 })),
  },
  { additionalProperties: true, title: "SettlementResponse" },
);
/** The document in a response's `PAYMENT-RESPONSE` header. */
export type SettlementResponse = Static<typeof SettlementResponse>;

/**
 * One way to pay in x402 version 1 (an entry of a version-1 402 body's `accepts`): the
 * network by name (`base`, `base-sepolia`, ...), the amount as `maxAmountRequired`, and the
 * resource described in the entry itself.
 */
export const PaymentRequirementsV1 = Type.Object(
  {
    scheme: Type.String({ minLength: 1, maxLength: 64 }),
    network: Type.String({ minLength: 1, maxLength: 128 }),
    maxAmountRequired: Amount,
    resource: Type.String({ minLength: 1, maxLength: 2048 }),
    description: Type.String({ maxLength: 2048 }),
    mimeType: Type.String({ maxLength: 128 }),
    outputSchema: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    payTo: Type.String({ minLength: 1, maxLength: 128 }),
    maxTimeoutSeconds: Type.Integer({ minimum: 1, maximum: 86_400 * 7 }),
    asset: Type.String({ minLength: 1, maxLength: 128 }),
    extra: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: true, title: "PaymentRequirementsV1" },
);
/** One way to pay in x402 version 1. */
export type PaymentRequirementsV1 = Static<typeof PaymentRequirementsV1>;

/**
 * What a version-1 402 carries in its JSON body (version 1 has no `PAYMENT-REQUIRED`
 * header). SRP hubs send it beside their own error member, so `error` may be an object.
 */
export const PaymentRequiredV1 = Type.Object(
  {
    x402Version: Type.Literal(1),
    error: Type.Optional(Type.Unknown()),
    accepts: Type.Array(PaymentRequirementsV1, { minItems: 1, maxItems: 16 }),
  },
  { additionalProperties: true, title: "PaymentRequiredV1" },
);
/** What a version-1 402 carries in its JSON body. */
export type PaymentRequiredV1 = Static<typeof PaymentRequiredV1>;

/** The document in a version-1 request's `X-PAYMENT` header: the scheme and network chosen, and the payload. */
export const PaymentPayloadV1 = Type.Object(
  {
    x402Version: Type.Literal(1),
    scheme: Type.String({ minLength: 1, maxLength: 64 }),
    network: Type.String({ minLength: 1, maxLength: 128 }),
    payload: Type.Record(Type.String(), Type.Unknown()),
  },
  { additionalProperties: true, title: "PaymentPayloadV1" },
);
/** The document in a version-1 request's `X-PAYMENT` header. */
export type PaymentPayloadV1 = Static<typeof PaymentPayloadV1>;
