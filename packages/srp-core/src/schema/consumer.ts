/**
 * The consumer API's request bodies, as a hub validates them: OpenAI chat completions,
 * embeddings, image generation, speech and transcription, Anthropic Messages, SRP
 * batches, and the routing preferences every request may carry. Bodies pass through to
 * providers, so members these schemas do not name are allowed. The same schemas make the
 * hub's OpenAPI document.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";

const Model = Type.String({ minLength: 1, maxLength: 256, description: "A model id from `GET /v1/models`, or `auto` for the cheapest healthy model that meets the request's needs (chat)." });
const Selectors = Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 64, description: "Node ids, `nodeId/instanceId` keys or supply tiers (`gpu`, `key`, `credits`, `subscription`)." });
const UsdPerMillion = Type.Union([Type.String({ pattern: "^(0|[1-9][0-9]{0,24})(\\.[0-9]{1,6})?$" }), Type.Number({ minimum: 0 })], { description: "USD per 1M tokens (at most 6 decimal places)." });

/** Routing preferences of one request (`provider`). */
export const ProviderPreferences = Type.Object(
  {
    sort: Type.Optional(Type.Union(["price", "latency", "throughput", "load"].map((k) => Type.Literal(k)), { description: "Cheapest, quickest first output, fastest stream, or least loaded (default)." })),
    max_price: Type.Optional(Type.Object({ prompt: Type.Optional(UsdPerMillion), completion: Type.Optional(UsdPerMillion) }, { additionalProperties: false })),
    order: Type.Optional(Selectors),
    only: Type.Optional(Selectors),
    ignore: Type.Optional(Selectors),
    allow_fallbacks: Type.Optional(Type.Boolean({ description: "Retry on another instance before any output (default true); with `order`, false also means: only the ordered ones." })),
    quantizations: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 32 }), { minItems: 1, maxItems: 32, description: "Only instances whose weights have one of these quantizations (Q4_K_M, Q8_0, F16, BF16, FP8, AWQ...; any spelling, normalized)." }),
    ),
  },
  { additionalProperties: false, title: "ProviderPreferences", description: "How the hub picks the instance that serves the request." },
);
/** Routing preferences of one request. */
export type ProviderPreferences = Static<typeof ProviderPreferences>;

/** The older `srp` routing member (prices in atomic units per 1M tokens). */
export const SrpPreferences = Type.Object(
  {
    sort: Type.Optional(Type.Union(["price", "latency", "throughput", "load"].map((k) => Type.Literal(k)))),
    allow_fallbacks: Type.Optional(Type.Boolean()),
    max_price: Type.Optional(Type.Object({ input: Type.Optional(Type.String({ pattern: "^(0|[1-9][0-9]{0,30})$" })), output: Type.Optional(Type.String({ pattern: "^(0|[1-9][0-9]{0,30})$" })) }, { additionalProperties: false })),
  },
  { additionalProperties: false, title: "SrpPreferences" },
);

const routing = { provider: Type.Optional(ProviderPreferences), srp: Type.Optional(SrpPreferences) };
const TokenLimit = Type.Union([Type.Integer({ minimum: 0, maximum: 100_000_000 }), Type.Null()]);

/** One typed part of a chat message's `content`; members the part does not name pass through. */
const part = (type: string, members: Parameters<typeof Type.Object>[0]) => Type.Object({ type: Type.Literal(type), ...members }, { title: `ChatContentPart.${type}` });

/** A part of a chat message's `content` array, as OpenAI's chat format defines them (SRP-CON-022). */
export const ChatContentPart = Type.Union(
  [
    part("text", { text: Type.String() }),
    part("image_url", { image_url: Type.Object({ url: Type.String({ minLength: 1 }), detail: Type.Optional(Type.String()) }) }),
    part("input_audio", { input_audio: Type.Object({ data: Type.String(), format: Type.String() }) }),
    part("file", { file: Type.Object({ file_data: Type.Optional(Type.String()), file_id: Type.Optional(Type.String()), filename: Type.Optional(Type.String()) }) }),
    part("refusal", { refusal: Type.String() }),
  ],
  { title: "ChatContentPart", description: "text, image_url, input_audio, file (user) or refusal (assistant)." },
);

/** One chat message: `content` is text, null (an assistant message with `tool_calls`), or an array of typed parts (SRP-CON-022). */
export const ChatMessage = Type.Object(
  {
    role: Type.String({ minLength: 1 }),
    content: Type.Optional(Type.Union([Type.String(), Type.Null(), Type.Array(ChatContentPart)])),
  },
  { title: "ChatMessage", description: "An OpenAI chat message; its other members (name, tool_calls, tool_call_id...) pass through untouched." },
);

const block = (type: string, members: Parameters<typeof Type.Object>[0] = {}) => Type.Object({ type: Type.Literal(type), ...members }, { title: `AnthropicBlock.${type}` });
const Source = Type.Object({ type: Type.String() });
/** Blocks the Messages API only carries through: server tool calls and results, MCP and other beta blocks. Nodes running the Messages API check their members. */
const PASS_THROUGH_BLOCKS = "^([a-z][a-z0-9_]*_tool_result|server_tool_use|mcp_tool_use|mcp_tool_listing|container_upload|compaction|tool_addition|tool_removal|fallback)$";

/** A content block of an Anthropic Messages request (SRP-CON-023). */
export const AnthropicContentBlock = Type.Union(
  [
    block("text", { text: Type.String() }),
    block("image", { source: Source }),
    block("document", { source: Source }),
    block("search_result", { source: Type.String(), title: Type.String(), content: Type.Array(Type.Object({ type: Type.String() })) }),
    block("thinking", { thinking: Type.String(), signature: Type.String() }),
    block("redacted_thinking", { data: Type.String() }),
    block("tool_use", { id: Type.String(), name: Type.String(), input: Type.Object({}) }),
    block("tool_result", { tool_use_id: Type.String(), content: Type.Optional(Type.Union([Type.String(), Type.Array(Type.Object({ type: Type.String() }))])) }),
    Type.Object({ type: Type.String({ pattern: PASS_THROUGH_BLOCKS }) }, { title: "AnthropicBlock.server", description: "server_tool_use, *_tool_result, mcp_tool_use, container_upload and the other blocks a node running the Messages API checks itself." }),
  ],
  { title: "AnthropicContentBlock", description: "text, image, document, search_result, thinking, redacted_thinking, tool_use, tool_result, or a server tool block." },
);

/** `POST /v1/chat/completions`. */
export const ChatCompletionRequest = Type.Object(
  {
    model: Model,
    messages: Type.Array(ChatMessage, { minItems: 1, description: "OpenAI chat messages, passed through untouched (text, images, audio, files, tool calls)." }),
    stream: Type.Optional(Type.Boolean()),
    stream_options: Type.Optional(Type.Union([Type.Object({}), Type.Null()])),
    max_tokens: Type.Optional(TokenLimit),
    max_completion_tokens: Type.Optional(TokenLimit),
    n: Type.Optional(Type.Literal(1)),
    tools: Type.Optional(Type.Array(Type.Object({}))),
    ...routing,
  },
  { title: "ChatCompletionRequest" },
);

/** A Messages request's `system`: text, or text blocks (with `cache_control`, `citations`...). */
const SystemPrompt = Type.Union([Type.String(), Type.Array(block("text", { text: Type.String() }))]);

const AnthropicMessage = Type.Object({ role: Type.Union([Type.Literal("user"), Type.Literal("assistant")]), content: Type.Union([Type.String(), Type.Array(AnthropicContentBlock)]) });

/** `POST /v1/messages` (Anthropic Messages). */
export const MessagesRequest = Type.Object(
  {
    model: Model,
    max_tokens: Type.Integer({ minimum: 1, maximum: 100_000_000 }),
    messages: Type.Array(AnthropicMessage, { minItems: 1 }),
    system: Type.Optional(SystemPrompt),
    stream: Type.Optional(Type.Boolean()),
    tools: Type.Optional(Type.Array(Type.Object({ name: Type.String() }))),
    tool_choice: Type.Optional(Type.Object({ type: Type.Union(["auto", "any", "tool", "none"].map((k) => Type.Literal(k))) })),
    stop_sequences: Type.Optional(Type.Array(Type.String())),
    temperature: Type.Optional(Type.Number()),
    ...routing,
  },
  { title: "MessagesRequest" },
);

/** `POST /v1/messages/count_tokens`. */
export const CountTokensRequest = Type.Object(
  { model: Model, messages: Type.Array(AnthropicMessage, { minItems: 1 }), system: Type.Optional(SystemPrompt), tools: Type.Optional(Type.Array(Type.Object({ name: Type.String() }))) },
  { title: "CountTokensRequest" },
);

/** `POST /v1/embeddings`. */
export const EmbeddingsRequest = Type.Object(
  {
    model: Model,
    input: Type.Union([Type.String(), Type.Array(Type.Union([Type.String(), Type.Integer(), Type.Array(Type.Integer())]), { minItems: 1, maxItems: 2048 })]),
    encoding_format: Type.Optional(Type.Union([Type.Literal("float"), Type.Literal("base64")])),
    dimensions: Type.Optional(Type.Integer({ minimum: 1 })),
    ...routing,
  },
  { title: "EmbeddingsRequest" },
);

/** `POST /v1/images/generations`. */
export const ImageGenerationRequest = Type.Object(
  {
    model: Model,
    prompt: Type.String({ minLength: 1 }),
    n: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 10 }), Type.Null()])),
    size: Type.Optional(Type.String()),
    response_format: Type.Optional(Type.Union([Type.Literal("url"), Type.Literal("b64_json")])),
    ...routing,
  },
  { title: "ImageGenerationRequest" },
);

/** `POST /v1/audio/speech`. */
export const SpeechRequest = Type.Object(
  {
    model: Model,
    input: Type.String({ minLength: 1, maxLength: 8192, description: "At most 4096 characters (code points)." }),
    voice: Type.Union([Type.String(), Type.Object({})]),
    response_format: Type.Optional(Type.String()),
    speed: Type.Optional(Type.Number({ minimum: 0.25, maximum: 4 })),
    ...routing,
  },
  { title: "SpeechRequest" },
);

const transcriptionFields = {
  model: Model,
  language: Type.Optional(Type.String()),
  prompt: Type.Optional(Type.String()),
  response_format: Type.Optional(Type.Union([Type.Literal("json"), Type.Literal("verbose_json"), Type.Literal("text")])),
  temperature: Type.Optional(Type.String()),
};

/** `POST /v1/audio/transcriptions` (multipart/form-data fields). */
export const TranscriptionRequest = Type.Object(
  { ...transcriptionFields, file: Type.String({ format: "binary", contentMediaType: "application/octet-stream", description: "The audio file." }) },
  { title: "TranscriptionRequest" },
);

/** A transcription's form as a hub reads it into a job body: the file as `{filename, content_type, data}` (base64). */
export const TranscriptionJobRequest = Type.Object(
  { ...transcriptionFields, file: Type.Object({ filename: Type.String(), content_type: Type.String(), data: Type.String({ contentEncoding: "base64" }) }) },
  { title: "TranscriptionJobRequest" },
);

/** The endpoints a batch item may call. */
export const BATCH_ENDPOINTS = ["/v1/chat/completions", "/v1/messages", "/v1/embeddings", "/v1/images/generations"] as const;

/** `POST /v1/batch`. */
export const BatchRequest = Type.Object(
  {
    requests: Type.Array(
      Type.Object(
        {
          custom_id: Type.Optional(Type.String({ maxLength: 256 })),
          method: Type.Optional(Type.Literal("POST")),
          url: Type.Union(BATCH_ENDPOINTS.map((u) => Type.Literal(u))),
          body: Type.Object({}, { description: "The request body of that endpoint; `stream` must not be true." }),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 50 },
    ),
  },
  { title: "BatchRequest" },
);
/** `POST /v1/batch`. */
export type BatchRequest = Static<typeof BatchRequest>;

const Units = Type.String({ pattern: "^(0|[1-9][0-9]*)$" });
const BatchStatus = Type.Union(["queued", "running", "completed", "failed"].map((k) => Type.Literal(k)));

/** A batch as `GET /v1/jobs/{id}` (and `POST /v1/batch`, with 202) answers it. */
export const BatchObject = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("srp.batch"),
    status: BatchStatus,
    created_at: Type.Integer({ description: "Unix seconds." }),
    completed_at: Type.Union([Type.Integer(), Type.Null()]),
    expires_at: Type.Union([Type.Integer(), Type.Null()], { description: "When the results are forgotten (null while running)." }),
    discount_bps: Type.Integer({ minimum: 0, maximum: 10_000 }),
    reserved_units: Units,
    charged_units: Units,
    charged: Type.String({ description: "USD charged, decimal." }),
    counts: Type.Object({ total: Type.Integer(), queued: Type.Integer(), running: Type.Integer(), completed: Type.Integer(), failed: Type.Integer() }),
    items: Type.Array(
      Type.Object({
        index: Type.Integer(),
        custom_id: Type.Union([Type.String(), Type.Null()]),
        url: Type.String(),
        status: BatchStatus,
        status_code: Type.Union([Type.Integer(), Type.Null()], { description: "The HTTP status the item's own call would have answered." }),
        response: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], { description: "The item's answer (usage with cost) or error body." }),
        cost: Type.String(),
        cost_units: Units,
        receipt_id: Type.Union([Type.String(), Type.Null()]),
      }),
    ),
  },
  { title: "BatchObject" },
);
/** A batch as the hub reports it. */
export type BatchObject = Static<typeof BatchObject>;

/** The SRP additions to every `usage` object: what was charged and the receipt. */
export const SrpUsage = Type.Object(
  {
    cost: Type.String({ description: "USD charged, decimal." }),
    cost_units: Type.String({ pattern: "^(0|[1-9][0-9]*)$", description: "USDC atomic units charged." }),
    receipt_id: Type.Union([Type.String(), Type.Null()], { description: "`GET /v1/receipts/{id}`; null when no countersigned receipt backs the answer." }),
    measured: Type.Boolean({ description: "False when the backend did not report usage (then nothing is billed)." }),
    receipt_error: Type.Optional(Type.String({ description: "Why the node's receipt was not countersigned (an SRP error code such as `receipt.implausible_usage`); then nothing was billed and the token counts are 0 (SRP-ATT-019, SRP-ATT-020)." })),
  },
  { title: "SrpUsage" },
);

/** OpenAI's error body, with the SRP code in `code`. */
export const OpenAIError = Type.Object(
  { error: Type.Object({ message: Type.String(), type: Type.String(), param: Type.Union([Type.String(), Type.Null()]), code: Type.Union([Type.String(), Type.Null()]) }) },
  { title: "OpenAIError" },
);

/** Anthropic's error body, with the SRP code in `error.code`. */
export const AnthropicError = Type.Object({ type: Type.Literal("error"), error: Type.Object({ type: Type.String(), message: Type.String(), code: Type.Optional(Type.String()) }) }, { title: "AnthropicError" });

/** Every consumer schema by name (the OpenAPI document's components). */
export const CONSUMER_SCHEMAS: Readonly<Record<string, TSchema>> = {
  ProviderPreferences,
  SrpPreferences,
  ChatCompletionRequest,
  MessagesRequest,
  CountTokensRequest,
  EmbeddingsRequest,
  ImageGenerationRequest,
  SpeechRequest,
  TranscriptionRequest,
  BatchRequest,
  BatchObject,
  SrpUsage,
  OpenAIError,
  AnthropicError,
};
