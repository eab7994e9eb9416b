/**
 * The consumer API's request bodies, as a hub validates them: OpenAI chat completions,
 * embeddings, image generation, speech and transcription, Anthropic Messages, SRP
 * batches, and the routing preferences every request may carry. Bodies pass through to
 * providers, so members these schemas do not name are allowed. The same schemas make the
 * hub's OpenAPI document.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { Receipt } from "./attestation.js";
import { ErrorCodeString, PublicKey } from "./primitives.js";

const Model = Type.String({
  minLength: 1,
  maxLength: 256,
  description: "A model id from `GET /v1/models`, or `auto` for the cheapest healthy model that meets the request's needs (chat).",
});
const Selectors = Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
  maxItems: 64,
  description: "Node ids, `nodeId/instanceId` keys or supply tiers (`gpu`, `key`, `credits`, `subscription`).",
});
const UsdPerMillion = Type.Union([Type.String({ pattern: "^(0|[1-9][0-9]{0,24})(\\.[0-9]{1,6})?$" }), Type.Number({ minimum: 0 })], {
  description: "USD per 1M tokens (at most 6 decimal places).",
});

/** Routing preferences of one request (`provider`). */
export const ProviderPreferences = Type.Object(
  {
    sort: Type.Optional(
      Type.Union(
        ["price", "latency", "throughput", "load"].map((k) => Type.Literal(k)),
        { description: "Cheapest, quickest first output, fastest stream, or least loaded (default)." },
      ),
    ),
    max_price: Type.Optional(
      Type.Object({ prompt: Type.Optional(UsdPerMillion), completion: Type.Optional(UsdPerMillion) }, { additionalProperties: false }),
    ),
    order: Type.Optional(Selectors),
    only: Type.Optional(Selectors),
    ignore: Type.Optional(Selectors),
    allow_fallbacks: Type.Optional(
      Type.Boolean({
        description: "Retry on another instance before any output (default true); with `order`, false also means: only the ordered ones.",
      }),
    ),
    quantizations: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 32 }), {
        minItems: 1,
        maxItems: 32,
        description:
          "Only instances whose weights have one of these quantizations (Q4_K_M, Q8_0, F16, BF16, FP8, AWQ...; any spelling, normalized).",
      }),
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
    max_price: Type.Optional(
      Type.Object(
        {
          input: Type.Optional(Type.String({ pattern: "^(0|[1-9][0-9]{0,30})$" })),
          output: Type.Optional(Type.String({ pattern: "^(0|[1-9][0-9]{0,30})$" })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, title: "SrpPreferences" },
);

/** Fallback models (SRP-CON-058): tried in order after `model`, which may then be omitted. */
const FallbackModels = Type.Array(Model, {
  minItems: 1,
  maxItems: 8,
  description:
    "Models to try in order after `model` (which may be omitted: the first is then the model) when no instance of the previous one can serve the request before any output (SRP-CON-058).",
});
const routing = { provider: Type.Optional(ProviderPreferences), srp: Type.Optional(SrpPreferences), models: Type.Optional(FallbackModels) };
const TokenLimit = Type.Union([Type.Integer({ minimum: 0, maximum: 100_000_000 }), Type.Null()]);

/** One typed part of a chat message's `content`; members the part does not name pass through. */
const part = (type: string, members: Parameters<typeof Type.Object>[0]) =>
  Type.Object({ type: Type.Literal(type), ...members }, { title: `ChatContentPart.${type}` });

/** A part of a chat message's `content` array, as OpenAI's chat format defines them (SRP-CON-022). */
export const ChatContentPart = Type.Union(
  [
    part("text", { text: Type.String() }),
    part("image_url", { image_url: Type.Object({ url: Type.String({ minLength: 1 }), detail: Type.Optional(Type.String()) }) }),
    part("input_audio", { input_audio: Type.Object({ data: Type.String(), format: Type.String() }) }),
    part("file", {
      file: Type.Object({
        file_data: Type.Optional(Type.String()),
        file_id: Type.Optional(Type.String()),
        filename: Type.Optional(Type.String()),
      }),
    }),
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
  {
    title: "ChatMessage",
    description: "An OpenAI chat message; its other members (name, tool_calls, tool_call_id...) pass through untouched.",
  },
);

const block = (type: string, members: Parameters<typeof Type.Object>[0] = {}) =>
  Type.Object({ type: Type.Literal(type), ...members }, { title: `AnthropicBlock.${type}` });
const Source = Type.Object({ type: Type.String() });
/** Blocks the Messages API only carries through: server tool calls and results, MCP and other beta blocks. Nodes running the Messages API check their members. */
const PASS_THROUGH_BLOCKS =
  "^([a-z][a-z0-9_]*_tool_result|server_tool_use|mcp_tool_use|mcp_tool_listing|container_upload|compaction|tool_addition|tool_removal|fallback)$";

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
    block("tool_result", {
      tool_use_id: Type.String(),
      content: Type.Optional(Type.Union([Type.String(), Type.Array(Type.Object({ type: Type.String() }))])),
    }),
    Type.Object(
      { type: Type.String({ pattern: PASS_THROUGH_BLOCKS }) },
      {
        title: "AnthropicBlock.server",
        description:
          "server_tool_use, *_tool_result, mcp_tool_use, container_upload and the other blocks a node running the Messages API checks itself.",
      },
    ),
  ],
  {
    title: "AnthropicContentBlock",
    description: "text, image, document, search_result, thinking, redacted_thinking, tool_use, tool_result, or a server tool block.",
  },
);

/** `POST /v1/chat/completions`. */
export const ChatCompletionRequest = Type.Object(
  {
    model: Model,
    messages: Type.Array(ChatMessage, {
      minItems: 1,
      description: "OpenAI chat messages, passed through untouched (text, images, audio, files, tool calls).",
    }),
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

const AnthropicMessage = Type.Object({
  role: Type.Union([Type.Literal("user"), Type.Literal("assistant")]),
  content: Type.Union([Type.String(), Type.Array(AnthropicContentBlock)]),
});

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
  {
    model: Model,
    messages: Type.Array(AnthropicMessage, { minItems: 1 }),
    system: Type.Optional(SystemPrompt),
    tools: Type.Optional(Type.Array(Type.Object({ name: Type.String() }))),
  },
  { title: "CountTokensRequest" },
);

/** `POST /v1/embeddings`. */
export const EmbeddingsRequest = Type.Object(
  {
    model: Model,
    input: Type.Union([
      Type.String(),
      Type.Array(Type.Union([Type.String(), Type.Integer(), Type.Array(Type.Integer())]), { minItems: 1, maxItems: 2048 }),
    ]),
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
  {
    ...transcriptionFields,
    file: Type.String({ format: "binary", contentMediaType: "application/octet-stream", description: "The audio file." }),
  },
  { title: "TranscriptionRequest" },
);

/** A transcription's form as a hub reads it into a job body: the file as `{filename, content_type, data}` (base64). */
export const TranscriptionJobRequest = Type.Object(
  {
    ...transcriptionFields,
    file: Type.Object({ filename: Type.String(), content_type: Type.String(), data: Type.String({ contentEncoding: "base64" }) }),
  },
  { title: "TranscriptionJobRequest" },
);

/**
 * The endpoints a batch item may call: every non-streamed JSON surface. A transcription item
 * gives its file as `{filename, content_type, data}` (base64) in a JSON body; a speech item's
 * answer is `{object: "srp.audio", content_type, data}` (base64). Videos and runs, jobs that
 * are asynchronous themselves, are not batch items.
 */
export const BATCH_ENDPOINTS = [
  "/v1/chat/completions",
  "/v1/messages",
  "/v1/responses",
  "/v1/completions",
  "/v1/embeddings",
  "/v1/images/generations",
  "/v1/audio/speech",
  "/v1/audio/transcriptions",
] as const;

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
    counts: Type.Object({
      total: Type.Integer(),
      queued: Type.Integer(),
      running: Type.Integer(),
      completed: Type.Integer(),
      failed: Type.Integer(),
    }),
    items: Type.Array(
      Type.Object({
        index: Type.Integer(),
        custom_id: Type.Union([Type.String(), Type.Null()]),
        url: Type.String(),
        status: BatchStatus,
        status_code: Type.Union([Type.Integer(), Type.Null()], { description: "The HTTP status the item's own call would have answered." }),
        response: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], {
          description: "The item's answer (usage with cost) or error body.",
        }),
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

/** Limits of async job requests (`POST /v1/videos`, `POST /v1/runs`). */
export const ASYNC_REQUEST_LIMITS = {
  /** Longest video prompt, characters. */
  maxPromptChars: 32_000,
  /** Longest video a request may ask for, seconds. */
  maxVideoSeconds: 60,
  /** Longest run time a run may be bounded to, seconds (1 hour). */
  maxRunSeconds: 3_600,
  /** The run time a run is bounded to when it names none, seconds. */
  defaultRunSeconds: 300,
  /** Longest webhook URL. */
  maxWebhookUrl: 2_048,
} as const;

const WebhookUrl = Type.String({
  maxLength: ASYNC_REQUEST_LIMITS.maxWebhookUrl,
  description:
    "SRP extension: where the hub POSTs the finished job (Standard Webhooks signature with the `webhook_secret` of the 202 answer).",
});

/** `POST /v1/videos` (OpenAI's Videos API create call; JSON or multipart form). */
export const VideoCreateRequest = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 256 }),
    prompt: Type.String({ minLength: 1, maxLength: ASYNC_REQUEST_LIMITS.maxPromptChars }),
    seconds: Type.Optional(Type.String({ pattern: "^[1-9][0-9]?$", description: "Decimal seconds, 1 to 60; default 4." })),
    size: Type.Optional(Type.String({ pattern: "^[1-9][0-9]{1,4}x[1-9][0-9]{1,4}$", description: "`WxH`; default 720x1280." })),
    input_reference: Type.Optional(
      Type.Object(
        { image_url: Type.String({ minLength: 1 }) },
        { additionalProperties: false, description: "A reference image by URL (a data: URL, or https:)." },
      ),
    ),
    webhook_url: Type.Optional(WebhookUrl),
  },
  { title: "VideoCreateRequest" },
);
/** `POST /v1/videos`. */
export type VideoCreateRequest = Static<typeof VideoCreateRequest>;

/** `POST /v1/runs`: run any model a node offers under its declared input schema. */
export const RunCreateRequest = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 256 }),
    input: Type.Record(Type.String(), Type.Unknown(), { description: "The model's input, as its instances' `io.input` declares it." }),
    max_seconds: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: ASYNC_REQUEST_LIMITS.maxRunSeconds,
        description: "The most run time billed (and the run's time limit); default 300.",
      }),
    ),
    webhook_url: Type.Optional(WebhookUrl),
  },
  { title: "RunCreateRequest" },
);
/** `POST /v1/runs`. */
export type RunCreateRequest = Static<typeof RunCreateRequest>;

/** One file of a finished async job, served by the hub at `url`. */
export const JobArtifact = Type.Object(
  {
    name: Type.String(),
    content_type: Type.String(),
    bytes: Type.Integer({ minimum: 0 }),
    sha256: Type.String({ pattern: "^[0-9a-f]{64}$" }),
    url: Type.String({ description: "Where the hub serves the artifact's bytes until the job expires." }),
  },
  { additionalProperties: false },
);

/**
 * An async job as `POST /v1/videos`, `POST /v1/runs` (202) and `GET /v1/jobs/{id}` answer it:
 * for a video, OpenAI's Video object (`object: "video"`) with SRP members; for a run,
 * `object: "srp.run"`.
 */
export const AsyncJobObject = Type.Object(
  {
    id: Type.String(),
    object: Type.Union([Type.Literal("video"), Type.Literal("srp.run")]),
    model: Type.String(),
    status: Type.Union(["queued", "in_progress", "completed", "failed"].map((k) => Type.Literal(k))),
    progress: Type.Integer({ minimum: 0, maximum: 100 }),
    created_at: Type.Integer({ description: "Unix seconds." }),
    completed_at: Type.Union([Type.Integer(), Type.Null()]),
    expires_at: Type.Union([Type.Integer(), Type.Null()], { description: "When the result is forgotten (null while running)." }),
    error: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]),
    seconds: Type.Optional(Type.String({ description: "A video's seconds (asked, then delivered)." })),
    size: Type.Optional(Type.String({ description: "A video's size." })),
    prompt: Type.Optional(Type.String()),
    remixed_from_video_id: Type.Optional(Type.Null()),
    output: Type.Optional(Type.Unknown({ description: "A run's output; files replaced by their artifact URLs." })),
    artifacts: Type.Array(JobArtifact),
    reserved_units: Units,
    cost: Type.String({ description: "USD charged, decimal." }),
    cost_units: Units,
    receipt_id: Type.Union([Type.String(), Type.Null()]),
    usage: Type.Union([
      Type.Object({ seconds: Type.Integer({ minimum: 0 }), runs: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }),
      Type.Null(),
    ]),
  },
  { title: "AsyncJobObject" },
);
/** An async job as the hub reports it. */
export type AsyncJobObject = Static<typeof AsyncJobObject>;

/** The decimal USD form of `cost_units` (SRP-CON-031): at least 2 and at most 6 fraction digits, trailing zeros beyond the second dropped. */
export const USD_COST_PATTERN = "^(0|[1-9][0-9]*)\\.[0-9]{2,6}$";

const srpUsageMembers = {
  cost: Type.String({
    pattern: USD_COST_PATTERN,
    description:
      "USD charged: `cost_units` / 1e6 with at least 2 and at most 6 fraction digits, trailing zeros beyond the second dropped (`0.00`, `0.000425`, `1.50`; SRP-CON-031).",
  }),
  cost_units: Type.String({ pattern: "^(0|[1-9][0-9]*)$", description: "USDC atomic units charged." }),
  receipt_id: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
    description: "The job id of the countersigned receipt backing the answer (`GET /v1/receipts/{id}`, SRP-CON-026); null when none does.",
  }),
  measured: Type.Boolean({ description: "False when the backend did not report usage (then nothing is billed)." }),
  receipt_error: Type.Optional(
    Type.String({
      description:
        "Why the node's receipt was not countersigned (an SRP error code such as `receipt.implausible_usage`); then nothing was billed and the token counts are 0 (SRP-ATT-019, SRP-ATT-020).",
    }),
  ),
};

/** The SRP additions to every `usage` object: what was charged and the receipt (SRP-CON-002). Other members (the API's counts, timings) are allowed. */
export const SrpUsage = Type.Object(srpUsageMembers, { title: "SrpUsage" });

const Count = Type.Integer({ minimum: 0 });

/** The `usage` of an OpenAI chat completion (or of the final chunk of its stream), with SRP's members (SRP-CON-002, SRP-CON-028). */
export const OpenAIUsage = Type.Object(
  {
    prompt_tokens: Count,
    completion_tokens: Count,
    total_tokens: Count,
    prompt_tokens_details: Type.Optional(
      Type.Object(
        { cached_tokens: Count, cache_write_tokens: Type.Optional(Count) },
        { description: "Present when some prompt tokens were read from or written to a cache; `cache_write_tokens` is SRP's addition." },
      ),
    ),
    completion_tokens_details: Type.Optional(Type.Object({ reasoning_tokens: Count })),
    ...srpUsageMembers,
  },
  {
    title: "OpenAIUsage",
    description:
      "The billed usage (the countersigned receipt's; SRP-ATT-019) and its cost. Other members of the backend's usage (timings) may follow.",
  },
);

/** The `usage` of an Anthropic Message (or of the final `message_delta` of its stream), with SRP's members. */
export const AnthropicUsage = Type.Object(
  {
    input_tokens: Type.Integer({ minimum: 0, description: "Prompt tokens neither read from nor written to a cache." }),
    output_tokens: Count,
    cache_creation_input_tokens: Count,
    cache_read_input_tokens: Count,
    ...srpUsageMembers,
  },
  {
    title: "AnthropicUsage",
    description:
      "The billed usage (the countersigned receipt's; SRP-ATT-019) and its cost. Other members of the backend's usage (`server_tool_use`, `service_tier`) may follow.",
  },
);

/** A chat completion as a hub answers it: the node's body with the billed `usage`. */
export const ChatCompletionObject = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("chat.completion"),
    created: Type.Integer(),
    model: Type.String({ description: "The offered model that served it." }),
    choices: Type.Array(
      Type.Object({
        index: Type.Integer({ minimum: 0 }),
        message: Type.Object({ role: Type.Literal("assistant") }),
        finish_reason: Type.Union([Type.String(), Type.Null()]),
      }),
    ),
    usage: OpenAIUsage,
  },
  { title: "ChatCompletionObject" },
);

/** An Anthropic Message as a hub answers it (natively relayed or translated from a chat completion). */
export const MessageObject = Type.Object(
  {
    id: Type.String(),
    type: Type.Literal("message"),
    role: Type.Literal("assistant"),
    model: Type.String(),
    content: Type.Array(Type.Object({ type: Type.String() })),
    stop_reason: Type.Union([Type.String(), Type.Null()]),
    usage: AnthropicUsage,
  },
  { title: "MessageObject" },
);

/** A JSON answer of another modality (embeddings, images, transcription): the node's body with SRP's members in `usage`. */
export const ModalityObject = Type.Object({ usage: SrpUsage }, { title: "ModalityObject" });

/** The same pattern as the `code` of the `error` message (`ErrorCode` in schema.json), so extension codes such as `x-acme.quota_exceeded` pass. */
const SrpCode = Type.String({
  maxLength: ErrorCodeString.maxLength as number,
  pattern: ErrorCodeString.pattern as string,
  description:
    "The SRP error code (`spec/v1/errors.md`), or an extension code (`x-<vendor>.<name>`); same pattern as the `error` message's `code`.",
});
const billingAmounts = {
  required: Type.Optional(
    Type.String({
      pattern: "^(0|[1-9][0-9]*)$",
      description: "`billing.insufficient_credits`: the request's maximum cost, atomic units (SRP-BIL-016).",
    }),
  ),
  available: Type.Optional(
    Type.String({
      pattern: "^(0|[1-9][0-9]*)$",
      description: "`billing.insufficient_credits`: what the account can spend, atomic units (SRP-BIL-016).",
    }),
  ),
};

/** OpenAI's error body, with the SRP code in `code` (SRP-CON-003); also the in-band error event of a failed stream (SRP-CON-029). */
export const OpenAIError = Type.Object(
  {
    error: Type.Object({
      message: Type.String(),
      type: Type.Union(
        [
          "invalid_request_error",
          "authentication_error",
          "insufficient_quota",
          "permission_error",
          "not_found_error",
          "rate_limit_error",
          "api_error",
          "payment_required",
        ].map((k) => Type.Literal(k)),
        {
          description:
            "From the HTTP status (SRP-CON-003); `payment_required` on an x402 quote, whose body also carries `x402` (SRP-PAY-001).",
        },
      ),
      param: Type.Union([Type.String(), Type.Null()]),
      code: SrpCode,
      ...billingAmounts,
    }),
  },
  { title: "OpenAIError" },
);

/** Anthropic's error body, with the SRP code in `error.code` (SRP-CON-003); also the data of a failed stream's `error` event (SRP-CON-007). */
export const AnthropicError = Type.Object(
  {
    type: Type.Literal("error"),
    error: Type.Object({
      type: Type.Union(
        [
          "invalid_request_error",
          "authentication_error",
          "billing_error",
          "permission_error",
          "not_found_error",
          "request_too_large",
          "rate_limit_error",
          "overloaded_error",
          "timeout_error",
          "api_error",
        ].map((k) => Type.Literal(k)),
      ),
      message: Type.String(),
      code: SrpCode,
      ...billingAmounts,
    }),
  },
  { title: "AnthropicError" },
);

const UsdPerUnit = Type.String({ pattern: "^(0|[1-9][0-9]*)(\\.[0-9]+)?$", description: "USD per unit, decimal." });
const UnitsPerMillion = Type.String({ pattern: "^(0|[1-9][0-9]*)$", description: "USDC atomic units per 1M units." });
const AtomicUnits = Type.String({ pattern: "^(0|[1-9][0-9]*)$", description: "USDC atomic units (10^-6 USD), a decimal integer string." });

/** One model of `GET /v1/models` (SRP-CON-027): OpenAI's and Anthropic's model fields, and SRP's live facts. */
export const ModelEntry = Type.Object(
  {
    id: Type.String({ description: "The canonical model id (SRP-CON-018)." }),
    object: Type.Literal("model"),
    type: Type.Literal("model"),
    created: Type.Integer({ description: "Unix seconds: when an instance of it was first seen." }),
    created_at: Type.String({ description: "`created` as an RFC 3339 time (Anthropic's field)." }),
    owned_by: Type.String(),
    name: Type.String(),
    display_name: Type.String(),
    context_length: Type.Integer({ minimum: 0, description: "The largest context length online." }),
    architecture: Type.Object({
      modality: Type.String(),
      input_modalities: Type.Array(Type.String()),
      output_modalities: Type.Array(Type.String()),
    }),
    endpoints: Type.Array(
      Type.Union(
        [
          "chat.completions",
          "messages",
          "responses",
          "completions",
          "embeddings",
          "images.generations",
          "audio.speech",
          "audio.transcriptions",
        ].map((k) => Type.Literal(k)),
      ),
    ),
    supported_parameters: Type.Array(Type.String()),
    pricing: Type.Object(
      {
        prompt: UsdPerUnit,
        completion: UsdPerUnit,
        image: Type.Optional(UsdPerUnit),
        character: Type.Optional(UsdPerUnit),
        second: Type.Optional(UsdPerUnit),
      },
      { description: "The lowest price online, USD per token (image, character, second)." },
    ),
    pricing_units_per_million: Type.Object(
      {
        input: UnitsPerMillion,
        output: UnitsPerMillion,
        image: Type.Optional(UnitsPerMillion),
        character: Type.Optional(UnitsPerMillion),
        second: Type.Optional(UnitsPerMillion),
      },
      { description: "The same lowest prices, exactly, as offered." },
    ),
    capabilities: Type.Array(Type.String(), { description: "The union of its online instances' capabilities." }),
    instances_online: Type.Integer({ minimum: 1 }),
    quantizations: Type.Array(Type.String(), {
      description: "The distinct normalized quantizations its online instances state (SRP-CON-018).",
    }),
    aliases: Type.Array(Type.String(), { description: "Other names it is routed by (SRP-CON-017)." }),
  },
  { title: "ModelEntry" },
);

/** `GET /v1/models` (SRP-CON-027): one page that both the OpenAI and the Anthropic SDK read. */
export const ModelList = Type.Object(
  {
    object: Type.Literal("list"),
    data: Type.Array(ModelEntry),
    has_more: Type.Literal(false),
    first_id: Type.Union([Type.String(), Type.Null()]),
    last_id: Type.Union([Type.String(), Type.Null()]),
    aliases_version: Type.String({ description: "The version of the hub's alias table (SRP-CON-018)." }),
  },
  { title: "ModelList" },
);

/** `GET /v1/receipts/{id}` (SRP-CON-026): a countersigned receipt, for the account that paid for the job or the provider that served it. */
export const ReceiptObject = Type.Object(
  {
    object: Type.Literal("srp.receipt"),
    hub_id: PublicKey,
    receipt: Type.Intersect([Receipt, Type.Object({ hubSig: Type.String() })], {
      description: "The receipt as the node signed it, with the hub's countersignature `hubSig` (SRP-ATT-002, SRP-ATT-011).",
    }),
    payout: Type.Optional(
      Type.Object(
        { credited: AtomicUnits, bounty: AtomicUnits, reduction: AtomicUnits },
        {
          description:
            "To the serving provider's account only: what its account was credited for the receipt, in atomic units (SRP-BIL-013, SRP-BIL-014).",
        },
      ),
    ),
  },
  { title: "ReceiptObject" },
);

const NullableNumber = Type.Union([Type.Number(), Type.Null()]);
const NullableBoolean = Type.Union([Type.Boolean(), Type.Null()]);

/**
 * One item of a Responses request's `input` (SRP-CON-033): a message (`type` `message` or
 * absent, `role` user, assistant, system or developer, `content` text or typed parts),
 * `function_call`, `function_call_output`, `reasoning`, or another type that only an
 * instance running the Responses API itself takes. The members each type needs are checked
 * by the hub when it translates the item; the rest pass through.
 */
export const ResponsesInputItem = Type.Object(
  {
    type: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    role: Type.Optional(Type.Union(["user", "assistant", "system", "developer"].map((k) => Type.Literal(k)))),
    content: Type.Optional(
      Type.Union([
        Type.String(),
        Type.Null(),
        Type.Array(Type.Object({ type: Type.String({ minLength: 1, maxLength: 64 }) }), { maxItems: 4096 }),
      ]),
    ),
  },
  {
    title: "ResponsesInputItem",
    description: "A message, function_call, function_call_output or reasoning item; its other members pass through.",
  },
);

/** `POST /v1/responses` (the OpenAI Responses API; SRP-CON-032). */
export const ResponsesRequest = Type.Object(
  {
    model: Model,
    input: Type.Optional(
      Type.Union([Type.String(), Type.Array(ResponsesInputItem, { maxItems: 100_000 })], {
        description: "Text (one user message) or input items.",
      }),
    ),
    instructions: Type.Optional(
      Type.Union([Type.String(), Type.Null()], {
        description: "A system message placed before the input (not carried to a later turn by `previous_response_id`).",
      }),
    ),
    previous_response_id: Type.Optional(
      Type.Union([Type.String({ minLength: 1, maxLength: 256 }), Type.Null()], {
        description: "A stored response of the same account this turn continues (SRP-CON-036).",
      }),
    ),
    tools: Type.Optional(Type.Array(Type.Object({ type: Type.String({ minLength: 1, maxLength: 64 }) }), { maxItems: 1024 })),
    tool_choice: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Object({ type: Type.String({ maxLength: 64 }) })])),
    parallel_tool_calls: Type.Optional(NullableBoolean),
    text: Type.Optional(
      Type.Union([Type.Object({ format: Type.Optional(Type.Object({ type: Type.String({ maxLength: 64 }) })) }), Type.Null()]),
    ),
    reasoning: Type.Optional(
      Type.Union([
        Type.Object({
          effort: Type.Optional(Type.Union([Type.String({ maxLength: 32 }), Type.Null()])),
          summary: Type.Optional(Type.Union([Type.String({ maxLength: 32 }), Type.Null()])),
        }),
        Type.Null(),
      ]),
    ),
    max_output_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 100_000_000 }), Type.Null()])),
    temperature: Type.Optional(NullableNumber),
    top_p: Type.Optional(NullableNumber),
    metadata: Type.Optional(
      Type.Union([
        Type.Record(Type.String(), Type.String({ maxLength: 512 }), {
          maxProperties: 16,
          description: "At most 16 pairs; values at most 512 characters.",
        }),
        Type.Null(),
      ]),
    ),
    store: Type.Optional(NullableBoolean),
    stream: Type.Optional(NullableBoolean),
    user: Type.Optional(Type.String({ maxLength: 256 })),
    ...routing,
  },
  { title: "ResponsesRequest" },
);

/** `POST /v1/completions` (OpenAI's legacy text completions; SRP-CON-044). */
export const CompletionsRequest = Type.Object(
  {
    model: Model,
    prompt: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1, maxItems: 64 })], {
      description: "Text, or up to 64 texts (one completion each).",
    }),
    suffix: Type.Optional(
      Type.Union([Type.String(), Type.Null()], {
        description: "Text after the completion (fill-in-the-middle), for backends that support it (SRP-CON-046).",
      }),
    ),
    max_tokens: Type.Optional(TokenLimit),
    n: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 16 }), Type.Null()])),
    best_of: Type.Optional(
      Type.Union([Type.Literal(1), Type.Null()], { description: "Completions generated but not returned are not relayed: only 1." }),
    ),
    echo: Type.Optional(Type.Union([Type.Literal(false), Type.Null()], { description: "Only false: the prompt is not echoed." })),
    stream: Type.Optional(NullableBoolean),
    stream_options: Type.Optional(Type.Union([Type.Object({}), Type.Null()])),
    ...routing,
  },
  { title: "CompletionsRequest" },
);

const ResponseCount = Type.Integer({ minimum: 0 });

/** The `usage` of a Response (or of the response in `response.completed`), with SRP's members (SRP-CON-039). */
export const ResponsesUsage = Type.Object(
  {
    input_tokens: Type.Integer({ minimum: 0, description: "All prompt tokens, cached ones included." }),
    input_tokens_details: Type.Object({ cached_tokens: ResponseCount }),
    output_tokens: Type.Integer({ minimum: 0, description: "All output tokens, reasoning ones included." }),
    output_tokens_details: Type.Object({ reasoning_tokens: ResponseCount }),
    total_tokens: ResponseCount,
    ...srpUsageMembers,
  },
  { title: "ResponsesUsage", description: "The billed usage (the countersigned receipt's; SRP-ATT-019) and its cost." },
);

/** A Response as a hub answers it (natively relayed or translated from a chat completion; SRP-CON-038). */
export const ResponseObject = Type.Object(
  {
    id: Type.String({ pattern: "^resp_" }),
    object: Type.Literal("response"),
    created_at: Type.Integer(),
    status: Type.Union(["completed", "incomplete", "failed", "in_progress"].map((k) => Type.Literal(k))),
    model: Type.String({ description: "The offered model that served it." }),
    output: Type.Array(Type.Object({ type: Type.String() })),
    usage: ResponsesUsage,
  },
  { title: "ResponseObject" },
);

/** A legacy text completion as a hub answers it: the node's body with the billed `usage` (SRP-CON-047). */
export const CompletionObject = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("text_completion"),
    created: Type.Integer(),
    model: Type.String(),
    choices: Type.Array(
      Type.Object({ index: Type.Integer({ minimum: 0 }), text: Type.String(), finish_reason: Type.Union([Type.String(), Type.Null()]) }),
    ),
    usage: OpenAIUsage,
  },
  { title: "CompletionObject" },
);

/** Every consumer schema by name (the OpenAPI document's components). */
export const CONSUMER_SCHEMAS: Readonly<Record<string, TSchema>> = {
  ProviderPreferences,
  SrpPreferences,
  ChatCompletionRequest,
  MessagesRequest,
  CountTokensRequest,
  ResponsesRequest,
  CompletionsRequest,
  EmbeddingsRequest,
  ImageGenerationRequest,
  SpeechRequest,
  TranscriptionRequest,
  BatchRequest,
  BatchObject,
  VideoCreateRequest,
  RunCreateRequest,
  AsyncJobObject,
  SrpUsage,
  OpenAIUsage,
  AnthropicUsage,
  ChatCompletionObject,
  MessageObject,
  ResponsesUsage,
  ResponseObject,
  CompletionObject,
  ModalityObject,
  ModelEntry,
  ModelList,
  ReceiptObject,
  OpenAIError,
  AnthropicError,
};
