/**
 * The OpenAI-compatible consumer surface: `POST /v1/chat/completions` (streamed and not),
 * `GET /v1/models` and `GET /v1/receipts/{id}`. Request bodies reach the provider
 * untouched apart from the members SRP routes and meters by (SRP-JOB-002); responses are
 * the provider's, with `usage` extended by the cost and the receipt id.
 */
import { formatSse, MODEL_ALIASES_VERSION, modelAliases, SrpError } from "@srp/core";
import { ChatCompletionRequest, checkConsumerBody, type Capability, type Job, type Usage } from "@srp/core/schema";
import { chatNeeds, estimatePromptTokens } from "../routing/policy.js";
import { chatAffinityKey } from "../routing/affinity.js";
import type { Router } from "../routing/router.js";
import type { JobEvent } from "../relay.js";
import { authenticate, errorResponse, fail, formatDecimal, readJsonObject } from "./http.js";
import type { PaidResource } from "../payments/x402-policy.js";
import {
  defaultUsageBounds,
  preferences,
  serve,
  upstreamUsageExtras,
  type Plan,
  type ConsumerApiContext,
  type SrpUsageExtension,
  type StreamEncoder,
  type Surface,
} from "./serve.js";
import { withEffortThinking } from "./reasoning.js";

export { maximumCost, preferences, type MaximumCost, type Preferences, type SrpUsageExtension } from "./serve.js";

/** The chat completion surface as an x402 resource (its `bazaar` discovery entry). */
export function chatResource(url: string): PaidResource {
  return {
    url,
    description:
      "Chat completion relayed to an SRP provider (OpenAI wire format). The amount is this request's maximum cost; what it does not use stays with the paying wallet as prepaid balance.",
    mimeType: "application/json",
    method: "POST",
    example: { model: "llama3.1:8b", messages: [{ role: "user", content: "Hello" }], max_tokens: 64 },
  };
}

/**
 * An OpenAI `usage` object for the billed usage (the countersigned receipt's: SRP-ATT-019),
 * extended by the cost and the receipt id (SRP's additions). The token counts and their
 * details are always the billed usage's; other members of the upstream's object (timings,
 * for example) are kept, but never its other counts or SRP's own members ({@link upstreamUsageExtras}).
 */
export function openAIUsage(upstream: unknown, usage: Usage, ext: SrpUsageExtension): Record<string, unknown> {
  const base = upstreamUsageExtras(upstream);
  const counts: Record<string, unknown> = {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
  if (usage.cachedTokens || usage.cacheWriteTokens) {
    counts.prompt_tokens_details = {
      cached_tokens: usage.cachedTokens ?? 0,
      ...(usage.cacheWriteTokens ? { cache_write_tokens: usage.cacheWriteTokens } : {}),
    };
  }
  if (usage.reasoningTokens) counts.completion_tokens_details = { reasoning_tokens: usage.reasoningTokens };
  return { ...base, ...counts, ...ext };
}

/** The request's output limit (`max_completion_tokens`, else `max_tokens`; 0 when neither), or the error for a malformed one. */
export function outputLimit(body: Record<string, unknown>): number | SrpError {
  for (const name of ["max_completion_tokens", "max_tokens"] as const) {
    const v = body[name];
    if (v === undefined || v === null) continue;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v > 100_000_000)
      return new SrpError("api.invalid_body", `\`${name}\` is a non-negative integer`);
    return v;
  }
  return 0;
}

/**
 * Tokens an image or other non-text part may count for, when bounding a prompt (whatever
 * its source: inline data, a URL or a file id): Qwen2.5-VL on vLLM uses up to 16,384 tokens
 * for one image at its default pixel limit.
 */
export const IMAGE_TOKEN_ALLOWANCE = 16_384;
/** Part types that are images: each counts {@link IMAGE_TOKEN_ALLOWANCE} instead of its bytes. */
const IMAGE_PARTS: ReadonlySet<string> = new Set(["image_url", "image", "input_image"]);
/** Other non-text part types (audio, files, documents, video): each counts its bytes, and at least {@link IMAGE_TOKEN_ALLOWANCE}. */
const NON_TEXT_PARTS: ReadonlySet<string> = new Set(["input_audio", "audio_url", "file", "input_file", "document", "video", "video_url"]);
/** Tokens a backend may add to a prompt that declares tools (its tool-use instructions). */
const TOOLS_TOKEN_ALLOWANCE = 1_024;
/** Tokens a chat template may add per message (role markers, separators), and once per request. */
const TEMPLATE_TOKENS_PER_MESSAGE = 16;
const TEMPLATE_TOKENS_PER_REQUEST = 64;

/**
 * An upper bound on a request's prompt tokens: the UTF-8 bytes of its messages, tools, an
 * Anthropic `system` and a `response_format` (or Anthropic `output_format`, or Responses
 * `text`: its JSON schema goes into the prompt), a Responses `input` and `instructions`,
 * since a token of a byte-level tokenizer covers at least one byte, plus what a chat
 * template adds (16 tokens a message, input item or `instructions`, 64 a request, 1024
 * when tools are declared). Each image part (OpenAI `image_url`, Anthropic `image`, inline or by URL)
 * counts 16,384 tokens (`IMAGE_TOKEN_ALLOWANCE`) instead of its bytes; each other non-text part
 * (`input_audio`, `file`, `document`, video) counts its bytes and at least that allowance.
 * Admission (the reserved worst case), `POST /v1/estimate` and plausibility use this bound.
 */
export function promptTokenBound(body: Record<string, unknown>): number {
  let parts = 0;
  const text = JSON.stringify(
    [
      body.messages ?? null,
      body.tools ?? null,
      body.system ?? null,
      body.response_format ?? null,
      body.output_format ?? null,
      body.input ?? null,
      body.instructions ?? null,
      body.text ?? null,
    ],
    (_key, value: unknown) => {
      if (typeof value === "object" && value !== null && !Array.isArray(value)) {
        const type = (value as { type?: unknown }).type;
        if (typeof type === "string" && IMAGE_PARTS.has(type)) {
          parts += IMAGE_TOKEN_ALLOWANCE;
          return null;
        }
        if (typeof type === "string" && NON_TEXT_PARTS.has(type)) {
          parts += Math.max(Buffer.byteLength(JSON.stringify(value)), IMAGE_TOKEN_ALLOWANCE);
          return null;
        }
      }
      return value;
    },
  );
  const messages =
    (Array.isArray(body.messages) ? body.messages.length : 0) +
    (Array.isArray(body.input) ? body.input.length : 0) +
    (typeof body.instructions === "string" ? 1 : 0);
  const tools = Array.isArray(body.tools) && body.tools.length > 0 ? TOOLS_TOKEN_ALLOWANCE : 0;
  return Buffer.byteLength(text) + parts + messages * TEMPLATE_TOKENS_PER_MESSAGE + TEMPLATE_TOKENS_PER_REQUEST + tools;
}

/** Whether a chat chunk carries something the consumer would see (text, a tool call, a finish). */
export function contentful(e: JobEvent): boolean {
  if (e.type !== "chunk") return true;
  const choices = e.chunk.data.choices;
  if (!Array.isArray(choices)) return false;
  return choices.some((c) => {
    const ch = c as { delta?: Record<string, unknown>; finish_reason?: unknown };
    const d = ch.delta ?? {};
    const text = (k: string) => typeof d[k] === "string" && (d[k] as string).length > 0;
    return (
      text("content") ||
      d.tool_calls !== undefined ||
      text("refusal") ||
      text("reasoning_content") ||
      text("reasoning") ||
      (ch.finish_reason !== null && ch.finish_reason !== undefined)
    );
  });
}

/**
 * OpenAI chunks (`chat.completion.chunk`, or legacy `text_completion`: its `object`) as SSE:
 * the upstream's usage chunk (`choices: []`) is held until the receipt arrives, then
 * extended with the billed usage and its cost; `[DONE]` ends a stream that finished.
 */
export function openAIChunkEncoder(job: Job, object: "chat.completion.chunk" | "text_completion"): StreamEncoder {
  let heldUsage: Record<string, unknown> | undefined;
  let template: Record<string, unknown> | undefined;
  return {
    chunk(data) {
      template ??= data;
      if (data.usage !== null && data.usage !== undefined && Array.isArray(data.choices) && data.choices.length === 0) {
        heldUsage = data;
        return "";
      }
      // A content chunk carrying the node's usage too (vLLM continuous usage stats, an older
      // llama.cpp finish chunk): its usage is not the bill (SRP-ATT-019), the last event's is.
      if (data.usage !== undefined && data.usage !== null) return formatSse({ ...data, usage: null });
      return formatSse(data);
    },
    end(done, ext) {
      const base = heldUsage ?? {
        id: template?.id ?? job.jobId,
        object,
        created: template?.created ?? Math.floor(Date.now() / 1000),
        model: job.model,
        choices: [],
      };
      return formatSse({ ...base, usage: openAIUsage(heldUsage?.usage, done.usage, ext) }) + formatSse("[DONE]");
    },
    // After content: an explicit in-band error, and no [DONE] (SRP-JOB-020).
    fail: (code, message) => formatSse({ error: { message, type: "api_error", param: null, code } }),
  };
}

/** Checks a chat completions body and plans it. */
export function planChat(body: Record<string, unknown>): Plan | SrpError {
  const problem = checkConsumerBody(ChatCompletionRequest, body);
  if (problem) return new SrpError("api.invalid_body", problem);
  const prefs = preferences(body);
  if (prefs instanceof SrpError) return prefs;
  const stream = body.stream === true;
  const forwarded: Record<string, unknown> = { ...body };
  delete forwarded.srp;
  delete forwarded.provider;
  // SRP-JOB-002: ask the backend to measure usage in the stream's last chunk.
  if (stream) {
    const so = body.stream_options;
    forwarded.stream_options = { ...(typeof so === "object" && so !== null && !Array.isArray(so) ? so : {}), include_usage: true };
  }
  const maxOut = outputLimit(body);
  if (maxOut instanceof SrpError) return maxOut;
  const affinityKey = chatAffinityKey(body);
  const capabilities = chatNeeds(body);
  const bound = { promptTokens: promptTokenBound(body), completionTokens: maxOut };
  return {
    model: body.model as string,
    stream,
    prefs,
    ...(affinityKey !== undefined ? { affinityKey } : {}),
    capabilities,
    contextTokens: estimatePromptTokens(body) + maxOut,
    bound,
    bounds: (instance) => withEffortThinking(defaultUsageBounds({ bound, capabilities }, instance), instance, forwarded),
    job: () => ({ api: "chat.completions", body: forwarded }),
    commits: contentful,
    respond: (_job, done, ext, headers) =>
      Response.json({ ...done.response, usage: openAIUsage(done.response?.usage, done.usage, ext) }, { headers }),
    encoder: (job) => openAIChunkEncoder(job, "chat.completion.chunk"),
  };
}

/** The chat completions surface: what `POST /v1/chat/completions` serves and `POST /v1/estimate` plans. */
export const chatSurface: Surface = {
  resource: chatResource,
  error: errorResponse,
  read: readJsonObject,
  plan: planChat,
};

/** `POST /v1/chat/completions`. */
export function chatCompletions(request: Request, ctx: ConsumerApiContext): Promise<Response> {
  return serve(request, ctx, chatSurface);
}

/** One entry of `GET /v1/models`. */
export interface ModelEntry {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
  name: string;
  context_length: number;
  architecture: { modality: string; input_modalities: string[]; output_modalities: string[] };
  /** The consumer APIs that serve it (`chat.completions`, `messages`, `responses`, `completions`, `embeddings`, `images.generations`, `audio.speech`, `audio.transcriptions`). */
  endpoints: string[];
  supported_parameters: string[];
  /**
   * Lowest price online, USD per unit, as decimal strings: per token (`prompt`,
   * `completion`), and where the model has them per image, per character of speech and
   * per second of transcribed audio.
   */
  pricing: { prompt: string; completion: string; image?: string; character?: string; second?: string };
  /** The same lowest prices in USDC atomic units per 1M units. */
  pricing_units_per_million: { input: string; output: string; image?: string; character?: string; second?: string };
  capabilities: string[];
  instances_online: number;
  /** Quantizations on offer for it (normalized, SRP-OFF-011), for `provider.quantizations`. */
  quantizations: string[];
  /** Other names it may be asked by (the alias table's, and the names its instances were offered under; SRP-CON-017). */
  aliases: string[];
}

const BASE_PARAMETERS = [
  "max_tokens",
  "max_completion_tokens",
  "temperature",
  "top_p",
  "stop",
  "seed",
  "frequency_penalty",
  "presence_penalty",
  "stream",
  "stream_options",
];

/** Which API each non-chat capability serves, and what goes in and out. */
const MODALITY_OF: Partial<Record<Capability, { endpoint: string; input: string; output: string }>> = {
  embeddings: { endpoint: "embeddings", input: "text", output: "embeddings" },
  images: { endpoint: "images.generations", input: "text", output: "image" },
  speech: { endpoint: "audio.speech", input: "text", output: "audio" },
  transcription: { endpoint: "audio.transcriptions", input: "audio", output: "text" },
};

const UNIT_KEYS = ["image", "character", "second"] as const;

/** The live catalog, from the router's per-model summaries: O(models) per call, whatever the instances. */
export function modelCatalog(router: Router, now = Date.now()): ModelEntry[] {
  const out: ModelEntry[] = [];
  for (const summary of router.summaries(now)) {
    const model = summary.model;
    const caps = new Set(summary.capabilities as Capability[]);
    const minIn = summary.low.input ?? 0n;
    const minOut = summary.low.output ?? 0n;
    const endpoints: string[] = [];
    const input = new Set<string>();
    const output = new Set<string>();
    const params: string[] = [];
    if (caps.has("chat")) {
      // Responses: natively where an instance runs the API, translated to chat everywhere else.
      endpoints.push("chat.completions", "messages", "responses");
      input.add("text");
      output.add("text");
      params.push(...BASE_PARAMETERS);
      if (caps.has("tools")) params.push("tools", "tool_choice", "parallel_tool_calls");
      if (caps.has("json_mode")) params.push("response_format");
      if (caps.has("vision")) input.add("image");
    }
    if (caps.has("completions")) endpoints.push("completions");
    for (const [cap, m] of Object.entries(MODALITY_OF)) {
      if (!m || !caps.has(cap as Capability)) continue;
      endpoints.push(m.endpoint);
      input.add(m.input);
      output.add(m.output);
    }
    const pricing: ModelEntry["pricing"] = { prompt: formatDecimal(minIn, 12), completion: formatDecimal(minOut, 12) };
    const units: ModelEntry["pricing_units_per_million"] = { input: minIn.toString(), output: minOut.toString() };
    for (const k of UNIT_KEYS) {
      const p = summary.low[k];
      if (p === undefined) continue;
      // atomic units per 1M units = 1e-6 USD per 1e6 units, so USD per unit = units / 1e12
      pricing[k] = formatDecimal(p, 12);
      units[k] = p.toString();
    }
    out.push({
      id: model,
      object: "model",
      created: Math.floor(summary.firstSeen / 1000),
      owned_by: "srp",
      name: model,
      context_length: summary.contextLength,
      architecture: {
        modality: `${[...input].join("+")}->${[...output].join("+")}`,
        input_modalities: [...input],
        output_modalities: [...output],
      },
      endpoints,
      supported_parameters: params,
      pricing,
      pricing_units_per_million: units,
      capabilities: [...caps].sort(),
      instances_online: summary.instances,
      quantizations: [...summary.quantizations],
      aliases: [...new Set([...modelAliases(model), ...summary.names])].filter((a) => a !== model),
    });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

/** `GET /v1/models` (free, no key needed). */
export function listModels(router: Router): Response {
  // One list both SDKs read: OpenAI's `{object, data}`, and Anthropic's page (`type`,
  // `display_name`, `created_at` per model; `has_more`, `first_id`, `last_id`).
  const data = modelCatalog(router).map((m) => ({
    ...m,
    type: "model",
    display_name: m.name,
    created_at: new Date(m.created * 1000).toISOString(),
  }));
  return Response.json({
    object: "list",
    data,
    has_more: false,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    aliases_version: MODEL_ALIASES_VERSION,
  });
}

/** `GET /v1/receipts/{id}`: the countersigned receipt, for the account that paid for the job. */
export async function getReceipt(
  request: Request,
  id: string,
  ctx: Pick<ConsumerApiContext, "accounts" | "receipts" | "hubId">,
): Promise<Response> {
  const account = await authenticate(request, ctx.accounts);
  if (account instanceof SrpError) return errorResponse(account);
  const stored = await ctx.receipts.get(id);
  if (!stored || (stored.consumerAccountId !== account.id && stored.providerAccountId !== account.id))
    return fail("api.not_found", `no receipt ${id} for this account`);
  // The provider's account also sees its payout adjustments for the receipt (SRP-SET-006).
  const payout =
    stored.payout && stored.providerAccountId === account.id
      ? {
          payout: {
            credited: stored.payout.credited.toString(),
            bounty: stored.payout.bounty.toString(),
            reduction: stored.payout.reduction.toString(),
          },
        }
      : {};
  return Response.json({ object: "srp.receipt", hub_id: ctx.hubId, receipt: stored.receipt, ...payout });
}
