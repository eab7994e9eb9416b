/** Offer and registration: `offer` and `withdraw` (node), `offer_ack` (hub). */
import { Type, type Static } from "@sinclair/typebox";
import { JsonObject } from "./jobs.js";
import { ErrorCodeString, Id, message, ModelId, Price, SCHEMA_LIMITS, Text } from "./primitives.js";

/** Where an instance's capacity comes from (supply tiers, `spec/v1/README.md`; SRP-OFF-001). */
export const SupplyTier = Type.Union([Type.Literal("gpu"), Type.Literal("key"), Type.Literal("credits"), Type.Literal("subscription")], {
  title: "SupplyTier",
});
/** Where an instance's capacity comes from. */
export type SupplyTier = Static<typeof SupplyTier>;

/** The kind of backend that serves an instance. */
export const BackendKind = Type.Union(
  ["ollama", "vllm", "lmstudio", "llamacpp", "openai-compatible", "openai", "anthropic", "gemini", "other"].map((k) => Type.Literal(k)),
  { title: "BackendKind" },
);

/** The kind of backend that serves an instance. */
export type BackendKind = Static<typeof BackendKind>;
/**
 * What an instance can do. `messages`: it takes `messages` jobs (the Anthropic Messages
 * API) natively; without it a hub translates Messages requests to chat completions.
 * `responses`: it takes `responses` jobs (the OpenAI Responses API) natively; without it a
 * hub translates Responses requests to chat completions. `completions`: it takes
 * `completions` jobs (OpenAI's legacy text completions), which are never translated.
 * `video`: it takes `videos` jobs (OpenAI's Videos API); `run`: it takes `runs` jobs (one
 * call of a model on a JSON input under the instance's declared `io`). Both are async APIs
 * (SRP-OFF-019), offered only to a hub that announced `srp.async_jobs` (SRP-JOB-039).
 */
export const Capability = Type.Union(
  [
    "chat",
    "stream",
    "tools",
    "vision",
    "json_mode",
    "reasoning",
    "embeddings",
    "images",
    "speech",
    "transcription",
    "messages",
    "responses",
    "completions",
    "video",
    "run",
  ].map((k) => Type.Literal(k)),
  { title: "Capability" },
);

/** What an instance can do. */
export type Capability = Static<typeof Capability>;
/**
 * The declared input and output of an async instance (SRP-OFF-019, SRP-OFF-020): JSON
 * Schema 2020-12 documents in a safe subset, at most 16 384 bytes of canonical JSON
 * together (`ioSchemaProblem` in `@srp/core` checks what the schema cannot).
 */
export const InstanceIo = Type.Object({ input: JsonObject, output: JsonObject }, { additionalProperties: false, title: "InstanceIo" });
/** The declared input and output of an async instance. */
export type InstanceIo = Static<typeof InstanceIo>;

/** One model served by a node. */
export const Instance = Type.Object(
  {
    instanceId: Id,
    model: ModelId,
    tier: SupplyTier,
    backend: Type.Object(
      { kind: BackendKind, digest: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })) },
      { additionalProperties: false },
    ),
    price: Price,
    maxConcurrency: Type.Integer({ minimum: 1, maximum: 1024 }),
    tokensPerSecond: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    contextLength: Type.Integer({ minimum: 1, maximum: 100_000_000 }),
    maxOutputTokens: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000_000 })),
    capabilities: Type.Array(Capability, { minItems: 1, maxItems: SCHEMA_LIMITS.maxCapabilities, uniqueItems: true }),
    /**
     * The weights' quantization in its normalized spelling (SRP-OFF-011): GGUF types
     * (`Q4_K_M`, `Q8_0`, `F16`, `BF16`), `FP8`, `INT8`, `INT4`, `AWQ`, `GPTQ`, `4BIT`...
     */
    quantization: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 32,
        pattern: "^[A-Z0-9_]+$",
        description: "Normalized quantization of the weights, e.g. Q4_K_M, F16, BF16, FP8, AWQ.",
      }),
    ),
    /** The JSON Schemas of a job's input and of a run's output (instances with `video` or `run` only; SRP-OFF-019). */
    io: Type.Optional(InstanceIo),
  },
  { additionalProperties: false, title: "Instance" },
);
/** One model served by a node. */
export type Instance = Static<typeof Instance>;

/** Node -> hub: the instances this node serves (adds or replaces by `instanceId`). */
export const Offer = message(
  "offer",
  { instances: Type.Array(Instance, { minItems: 1, maxItems: SCHEMA_LIMITS.maxInstances }) },
  "Instances the node serves, with price, concurrency, speed, context length and capabilities.",
);
/** Node -> hub: the instances this node serves. */
export type Offer = Static<typeof Offer>;

/** The hub's decision on one offered instance. */
export const OfferResult = Type.Object(
  {
    instanceId: Id,
    accepted: Type.Boolean(),
    reason: Type.Optional(Type.Object({ code: ErrorCodeString, message: Text }, { additionalProperties: false })),
  },
  { additionalProperties: false, title: "OfferResult" },
);

/** Hub -> node: acknowledgement of an `offer`, one result per offered instance, in order. */
export const OfferAck = message(
  "offer_ack",
  { results: Type.Array(OfferResult, { minItems: 1, maxItems: SCHEMA_LIMITS.maxInstances }) },
  "Per-instance acceptance or refusal of an offer, with a coded reason for each refusal.",
);
/** Hub -> node: acknowledgement of an `offer`. */
export type OfferAck = Static<typeof OfferAck>;

/** Node -> hub: instances that stop taking new jobs (running jobs finish). */
export const Withdraw = message(
  "withdraw",
  { instanceIds: Type.Array(Id, { minItems: 1, maxItems: SCHEMA_LIMITS.maxInstances, uniqueItems: true }), reason: Type.Optional(Text) },
  "Instances that take no new jobs from now on.",
);
/** Node -> hub: instances that stop taking new jobs. */
export type Withdraw = Static<typeof Withdraw>;
