/**
 * Building blocks shared by the v1 message schemas: ids, keys, signatures, amounts,
 * timestamps, limits. Every string and array has a bound.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";

/** Bounds that the schemas enforce. */
export const SCHEMA_LIMITS = {
  idMaxLength: 128,
  modelMaxLength: 256,
  textMaxLength: 2048,
  apiKeyMaxLength: 256,
  maxInstances: 64,
  maxCapabilities: 16,
  maxVersions: 16,
  maxExtKeys: 32,
  maxTokens: 1_000_000_000_000,
} as const;

/** An opaque identifier: 1-128 characters of `[A-Za-z0-9._:-]`. */
export const Id = Type.String({ minLength: 1, maxLength: SCHEMA_LIMITS.idMaxLength, pattern: "^[A-Za-z0-9._:-]+$", title: "Id" });

/** A model id as consumers name it, e.g. `llama3.1:8b` or `openai/gpt-4o-mini`. */
export const ModelId = Type.String({
  minLength: 1,
  maxLength: SCHEMA_LIMITS.modelMaxLength,
  pattern: "^[A-Za-z0-9._:/@+-]+$",
  title: "ModelId",
});

/** An Ed25519 public key as 43 base64url characters: a hub id or node id. */
export const PublicKey = Type.String({ pattern: "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$", title: "PublicKey" });

/** An Ed25519 signature as 86 base64url characters. */
export const Signature = Type.String({ pattern: "^[A-Za-z0-9_-]{85}[AQgw]$", title: "Signature" });

/** A 32-byte random nonce as 43 base64url characters. */
export const Nonce = Type.String({ pattern: "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$", title: "Nonce" });

/** A SHA-256 digest as 64 lowercase hex digits. */
export const Hash = Type.String({ pattern: "^[0-9a-f]{64}$", title: "Hash" });

/** USDC atomic units as a canonical non-negative decimal string (no sign, no leading zeros). */
export const Amount = Type.String({ pattern: "^(0|[1-9][0-9]{0,38})$", title: "Amount" });

/** Milliseconds since the Unix epoch. */
export const Timestamp = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, title: "Timestamp" });

/** A token count. */
export const TokenCount = Type.Integer({ minimum: 0, maximum: SCHEMA_LIMITS.maxTokens });

/** A protocol version number. */
export const Version = Type.Integer({ minimum: 1, maximum: 65535, title: "Version" });

/** A human-readable explanation; never parsed. */
export const Text = Type.String({ maxLength: SCHEMA_LIMITS.textMaxLength });

/** An error code from the error table (`family.reason`), or a namespaced extension code (`x-vendor.reason`). */
export const ErrorCodeString = Type.String({
  maxLength: 64,
  pattern: "^(internal|[a-z][a-z0-9_-]*\\.[a-z][a-z0-9_]*)$",
  title: "ErrorCode",
});

/** An EVM address, 0x-prefixed hex. */
export const EvmAddress = Type.String({ pattern: "^0x[0-9a-fA-F]{40}$", title: "EvmAddress" });

/** The pattern every `ext` key matches: a namespace, a dot, a name (SRP-FRM-011). */
export const EXT_KEY_PATTERN = "^[a-z0-9-]+\\.[A-Za-z0-9_.-]+$";

/** The longest `ext` key, in characters (SRP-FRM-011). */
export const EXT_KEY_MAX_LENGTH = 64;

/**
 * Extension members: the only place where fields not defined by the version may appear.
 * Keys are namespaced (`vendor.name`, at most 64 characters, at most 32 keys); a key that
 * does not match makes the message invalid (SRP-FRM-019), and receivers ignore well-formed
 * keys they do not understand. `propertyNames` carries the length bound for JSON Schema
 * validators; {@link extKeyProblem} applies it where TypeBox does not.
 */
export const Ext = Type.Record(Type.String({ pattern: EXT_KEY_PATTERN }), Type.Unknown(), {
  additionalProperties: false,
  propertyNames: { maxLength: EXT_KEY_MAX_LENGTH },
  maxProperties: SCHEMA_LIMITS.maxExtKeys,
  title: "Ext",
});

/**
 * The first `ext` key of a message that is longer than {@link EXT_KEY_MAX_LENGTH}
 * characters (the one part of SRP-FRM-011 that TypeBox's checker does not apply), or
 * undefined.
 */
export function extKeyProblem(message: unknown): string | undefined {
  const ext = (message as { ext?: unknown } | null)?.ext;
  if (typeof ext !== "object" || ext === null || Array.isArray(ext)) return undefined;
  return Object.keys(ext).find((k) => k.length > EXT_KEY_MAX_LENGTH);
}

/**
 * A price in atomic units per one million billable units: tokens for `input`, `output`,
 * `cachedInput` (prompt tokens read from a cache) and `cacheWrite` (prompt tokens written
 * to one, as Anthropic bills them); generated images, synthesized characters and seconds
 * (of audio transcribed, of video delivered, of run time: SRP-MON-008) for `image`,
 * `character` and `second`; runs of an async job (`runs`, `videos`) for `run`. An absent
 * cache price is the input price; an absent unit price is zero.
 */
export const Price = Type.Object(
  {
    input: Amount,
    output: Amount,
    cachedInput: Type.Optional(Amount),
    cacheWrite: Type.Optional(Amount),
    image: Type.Optional(Amount),
    character: Type.Optional(Amount),
    second: Type.Optional(Amount),
    run: Type.Optional(Amount),
  },
  { additionalProperties: false, title: "Price" },
);
/** A price per one million billable units. */
export type Price = Static<typeof Price>;

/** Usage of one job, as measured by the backend: tokens, and the units of other modalities. */
export const Usage = Type.Object(
  {
    promptTokens: TokenCount,
    completionTokens: TokenCount,
    cachedTokens: Type.Optional(TokenCount),
    reasoningTokens: Type.Optional(TokenCount),
    /** The part of `promptTokens` written to a prompt cache (priced at `cacheWrite`). */
    cacheWriteTokens: Type.Optional(TokenCount),
    /** Images generated (`images.generations`). */
    images: Type.Optional(TokenCount),
    /** Characters of input synthesized to speech (`audio.speech`), in Unicode code points. */
    characters: Type.Optional(TokenCount),
    /**
     * Whole seconds, rounded up: of audio transcribed (`audio.transcriptions`), of video
     * delivered (`videos`), of run time (`runs`).
     */
    seconds: Type.Optional(TokenCount),
    /** Runs of an async job (`videos`, `runs`): 1 for each such job (SRP-MON-008). */
    runs: Type.Optional(TokenCount),
    /** True when the backend reported these counts; false when the node could not measure them. */
    measured: Type.Boolean(),
  },
  { additionalProperties: false, title: "Usage" },
);
/** Token usage of one job. */
export type Usage = Static<typeof Usage>;

/** Running totals over every receipt a node has issued to one hub. */
export const ReceiptTotals = Type.Object(
  {
    receipts: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    cost: Amount,
    promptTokens: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    completionTokens: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  },
  { additionalProperties: false, title: "ReceiptTotals" },
);
/** Running totals over a node's receipts. */
export type ReceiptTotals = Static<typeof ReceiptTotals>;

/** Defines a message schema: an object with a literal `type`, no undeclared members, and an optional `ext`. */
export function message<T extends string, P extends Record<string, TSchema>>(type: T, properties: P, description: string) {
  return Type.Object(
    { type: Type.Literal(type), ...properties, ext: Type.Optional(Ext) },
    { additionalProperties: false, title: type, description },
  );
}
