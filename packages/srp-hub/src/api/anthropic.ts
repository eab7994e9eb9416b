/**
 * The Anthropic Messages surface: `POST /v1/messages` and `POST /v1/messages/count_tokens`
 * in Anthropic's wire format, so the Anthropic SDK and Claude Code work against a hub.
 * A request goes natively to an instance that takes `messages` jobs (a forwarded
 * Anthropic key); every other instance gets it translated to chat completions, and its
 * answer (streamed or not, tool calls included) is translated back.
 */
import { describedMeter } from "./meters.js";
import { formatSse, JSON_DEPTH_LIMITS, randomBytes, scanJson, SrpError, toBase64Url } from "@srp/core";
import {
  ANTHROPIC_BETA_EXT,
  anthropicBetas,
  checkConsumerBody,
  CountTokensRequest,
  MessagesRequest,
  type Capability,
  type Done,
  type Instance,
  type Job,
  type Usage,
} from "@srp/core/schema";
import { OutputMeter, thinkingBudget, type OutputMeasurer } from "@srp/core/metering";
import { estimatePromptTokens } from "../routing/policy.js";
import { messagesAffinityKey } from "../routing/affinity.js";
import type { JobEvent } from "../relay.js";
import { authenticate, readJsonObject, withRetryAfter } from "./http.js";
import { markErrorCode } from "./error-code.js";
import type { PaidResource } from "../payments/x402-policy.js";
import { contentful, promptTokenBound } from "./openai.js";
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
import { chatReasoningText, reasoningEffortFor, TRANSLATED_THINKING_SIGNATURE } from "./reasoning.js";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Anthropic's `error.type` for an HTTP status. */
export function anthropicErrorType(status: number): string {
  if (status === 400 || status === 415 || status === 422) return "invalid_request_error";
  if (status === 401) return "authentication_error";
  if (status === 402) return "billing_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 413) return "request_too_large";
  if (status === 429) return "rate_limit_error";
  if (status === 503 || status === 529) return "overloaded_error";
  if (status === 504) return "timeout_error";
  return "api_error";
}

/** An Anthropic-shaped error response (`{type: "error", error: {type, message}}`) carrying the SRP code; 503s and 429s carry `Retry-After`. */
export function anthropicError(error: SrpError, headers: Record<string, string> = {}): Response {
  const h = withRetryAfter(error, { ...headers, "request-id": `req_${toBase64Url(randomBytes(12))}` });
  const extra = error.code.startsWith("billing.") && error.details ? error.details : {};
  return markErrorCode(
    Response.json(
      { type: "error", error: { type: anthropicErrorType(error.httpStatus), message: error.message, code: error.code, ...extra } },
      { status: error.httpStatus, headers: h },
    ),
    error.code,
  );
}

function invalid(message: string): never {
  throw new SrpError("api.invalid_body", message);
}

/** Text of a `system` prompt or a `tool_result`'s content: a string or text blocks (other blocks are refused). */
function blockText(content: unknown, where: string): string {
  if (typeof content === "string") return content;
  if (content === undefined || content === null) return "";
  if (!Array.isArray(content)) invalid(`${where} must be a string or an array of blocks`);
  return content
    .map((b: unknown, i) => {
      if (isObject(b) && b.type === "text" && typeof b.text === "string") return b.text;
      return invalid(`${where}[${i}]: only text blocks are supported here`);
    })
    .join("\n");
}

/** An OpenAI image part for an Anthropic image block. */
function imagePart(block: Json, where: string): Json {
  const source = block.source;
  if (!isObject(source)) invalid(`${where}: image without a source`);
  if (source.type === "base64" && typeof source.media_type === "string" && typeof source.data === "string") {
    return { type: "image_url", image_url: { url: `data:${source.media_type};base64,${source.data}` } };
  }
  if (source.type === "url" && typeof source.url === "string") return { type: "image_url", image_url: { url: source.url } };
  return invalid(`${where}: image sources are base64 or url`);
}

/** Anthropic `tool_choice` as OpenAI's `tool_choice` and `parallel_tool_calls`. */
function toolChoice(choice: unknown): { tool_choice?: unknown; parallel_tool_calls?: boolean } {
  if (choice === undefined || choice === null) return {};
  if (!isObject(choice)) invalid("`tool_choice` must be an object");
  const parallel = choice.disable_parallel_tool_use === true ? { parallel_tool_calls: false } : {};
  switch (choice.type) {
    case "auto":
      return { tool_choice: "auto", ...parallel };
    case "any":
      return { tool_choice: "required", ...parallel };
    case "none":
      return { tool_choice: "none" };
    case "tool":
      if (typeof choice.name !== "string") invalid("`tool_choice.name` is required for type tool");
      return { tool_choice: { type: "function", function: { name: choice.name } }, ...parallel };
    default:
      return invalid("`tool_choice.type` is one of auto, any, tool, none");
  }
}

/**
 * Translates an Anthropic Messages request body to an OpenAI chat completions body:
 * `system` becomes a system message, `tool_use` blocks become `tool_calls`, each
 * `tool_result` block a `tool` message (images in results follow as a user message),
 * image blocks become `image_url` parts, `tools` become function tools and
 * `stop_sequences` become `stop`; `thinking` becomes `reasoning_effort`
 * ({@link reasoningEffortFor}, SRP-CON-077). Assistant `thinking` and `redacted_thinking`
 * blocks and `cache_control` marks have no chat counterpart and are dropped (SRP-CON-079).
 *
 * @throws SrpError `api.invalid_body` for what cannot be translated.
 */
export function messagesToChat(body: Json): Json {
  const messages: Json[] = [];
  const system = blockText(body.system, "`system`");
  if (system !== "") messages.push({ role: "system", content: system });
  (body.messages as unknown[]).forEach((m, i) => {
    const where = `messages[${i}]`;
    if (!isObject(m) || (m.role !== "user" && m.role !== "assistant")) invalid(`${where}: role is user or assistant`);
    const blocks: unknown[] =
      typeof m.content === "string"
        ? [{ type: "text", text: m.content }]
        : Array.isArray(m.content)
          ? m.content
          : invalid(`${where}: content is a string or an array of blocks`);
    if (m.role === "assistant") {
      const text: string[] = [];
      const calls: Json[] = [];
      blocks.forEach((b, j) => {
        if (!isObject(b)) invalid(`${where}.content[${j}] must be an object`);
        if (b.type === "text" && typeof b.text === "string") text.push(b.text);
        else if (b.type === "tool_use") {
          if (typeof b.id !== "string" || typeof b.name !== "string") invalid(`${where}.content[${j}]: tool_use needs id and name`);
          calls.push({ id: b.id, type: "function", function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } });
        } else if (b.type !== "thinking" && b.type !== "redacted_thinking")
          invalid(`${where}.content[${j}]: block type ${JSON.stringify(b.type)} is not supported for this model's providers`);
      });
      messages.push({
        role: "assistant",
        content: text.length > 0 ? text.join("") : null,
        ...(calls.length > 0 ? { tool_calls: calls } : {}),
      });
      return;
    }
    // A user turn: tool results first (they answer the previous assistant turn), then the rest.
    const parts: Json[] = [];
    const resultImages: Json[] = [];
    blocks.forEach((b, j) => {
      const at = `${where}.content[${j}]`;
      if (!isObject(b)) invalid(`${at} must be an object`);
      if (b.type === "text" && typeof b.text === "string") parts.push({ type: "text", text: b.text });
      else if (b.type === "image") parts.push(imagePart(b, at));
      else if (b.type === "tool_result") {
        if (typeof b.tool_use_id !== "string") invalid(`${at}: tool_result needs tool_use_id`);
        const inner: unknown[] =
          typeof b.content === "string" ? [{ type: "text", text: b.content }] : Array.isArray(b.content) ? b.content : [];
        const texts: string[] = [];
        inner.forEach((c, k) => {
          if (isObject(c) && c.type === "text" && typeof c.text === "string") texts.push(c.text);
          else if (isObject(c) && c.type === "image") resultImages.push(imagePart(c, `${at}.content[${k}]`));
          else invalid(`${at}.content[${k}]: tool results hold text and image blocks`);
        });
        const content = texts.join("\n");
        messages.push({ role: "tool", tool_call_id: b.tool_use_id, content: b.is_error === true ? `Error: ${content}` : content });
      } else if (b.type === "document" && isObject(b.source) && b.source.type === "text" && typeof b.source.data === "string") {
        parts.push({ type: "text", text: b.source.data });
      } else invalid(`${at}: block type ${JSON.stringify(b.type)} is not supported for this model's providers`);
    });
    const user = [...resultImages, ...parts];
    if (user.length > 0)
      messages.push({ role: "user", content: user.every((p) => p.type === "text") ? user.map((p) => p.text).join("\n") : user });
  });
  const out: Json = { model: body.model, messages, max_tokens: body.max_tokens };
  if (body.stream === true) out.stream = true;
  for (const k of ["temperature", "top_p"] as const) if (typeof body[k] === "number") out[k] = body[k];
  const effort = reasoningEffortFor(body);
  if (effort !== undefined) out.reasoning_effort = effort;
  if (Array.isArray(body.stop_sequences) && body.stop_sequences.length > 0) out.stop = body.stop_sequences;
  if (isObject(body.metadata) && typeof body.metadata.user_id === "string") out.user = body.metadata.user_id;
  if (Array.isArray(body.tools) && body.tools.length > 0) {
    out.tools = body.tools.map((t: unknown, i) => {
      if (!isObject(t) || typeof t.name !== "string" || (t.type !== undefined && t.type !== "custom"))
        invalid(`tools[${i}]: only client tools (name, description, input_schema) are supported for this model's providers`);
      return {
        type: "function",
        function: {
          name: t.name,
          ...(typeof t.description === "string" ? { description: t.description } : {}),
          parameters: isObject(t.input_schema) ? t.input_schema : { type: "object", properties: {} },
        },
      };
    });
    Object.assign(out, toolChoice(body.tool_choice));
  }
  return out;
}

/** Anthropic `stop_reason` for an OpenAI `finish_reason`. */
export function stopReason(finish: unknown): string {
  switch (finish) {
    case "length":
      return "max_tokens";
    case "tool_calls":
    case "function_call":
      return "tool_use";
    case "content_filter":
      return "refusal";
    default:
      return "end_turn";
  }
}

/** An Anthropic `usage` object for SRP usage, extended by the cost and the receipt id. */
function anthropicUsage(usage: Usage, ext: SrpUsageExtension): Json {
  const cached = usage.cachedTokens ?? 0;
  const written = usage.cacheWriteTokens ?? 0;
  return {
    input_tokens: usage.promptTokens - cached - written,
    output_tokens: usage.completionTokens,
    cache_creation_input_tokens: written,
    cache_read_input_tokens: cached,
    ...ext,
  };
}

/**
 * A JSON object for tool arguments the model produced (not JSON, not an object, or nested
 * deeper than a consumer body may be: `{}`). The depth is checked before parsing, as the
 * answer is serialized recursively (a node's deep arguments must not fail a billed job).
 */
function toolInput(args: unknown): Json {
  if (isObject(args)) return args;
  if (typeof args !== "string" || args.trim() === "") return {};
  if (!scanJson(args, { maxDepth: JSON_DEPTH_LIMITS.body }).ok) return {};
  try {
    const v = JSON.parse(args) as unknown;
    return isObject(v) ? v : {};
  } catch {
    return {};
  }
}

const messageId = (job: Job) => `msg_${job.jobId.slice(4)}`;

/**
 * The content blocks of the Anthropic Message a chat.completion translates to: the first
 * choice's reasoning as a `thinking` block first (SRP-CON-076), then its text and tool calls.
 */
function chatToContent(response: Json): Json[] {
  const choice = Array.isArray(response.choices) && isObject(response.choices[0]) ? response.choices[0] : {};
  const message = isObject(choice.message) ? choice.message : {};
  const content: Json[] = [];
  const reasoning = chatReasoningText(message);
  if (reasoning !== "") content.push({ type: "thinking", thinking: reasoning, signature: TRANSLATED_THINKING_SIGNATURE });
  if (typeof message.content === "string" && message.content !== "") content.push({ type: "text", text: message.content, citations: null });
  if (Array.isArray(message.tool_calls)) {
    for (const c of message.tool_calls as unknown[]) {
      if (!isObject(c) || !isObject(c.function)) continue;
      content.push({
        type: "tool_use",
        id: typeof c.id === "string" ? c.id : `toolu_${toBase64Url(randomBytes(12))}`,
        name: c.function.name,
        input: toolInput(c.function.arguments),
      });
    }
  }
  return content;
}

/** Translates a chat.completion to an Anthropic Message; its reasoning becomes a `thinking` block (SRP-CON-076, SRP-CON-078). */
export function chatToMessage(response: Json, job: Job, usage: Usage, ext: SrpUsageExtension): Json {
  const choice = Array.isArray(response.choices) && isObject(response.choices[0]) ? response.choices[0] : {};
  return {
    id: messageId(job),
    type: "message",
    role: "assistant",
    model: job.model,
    content: chatToContent(response),
    stop_reason: stopReason(choice.finish_reason),
    stop_sequence: null,
    usage: anthropicUsage(usage, ext),
  };
}

const sse = (data: Json) => formatSse(data, data.type as string);
const streamError = (code: string, message: string) =>
  sse({ type: "error", error: { type: code === "job.deadline_exceeded" ? "timeout_error" : "api_error", message, code } });

/**
 * Chat chunks translated to Anthropic's events (message_start, ping, content blocks with
 * thinking, text and tool input JSON deltas), in order; the closing message_delta (usage) and
 * message_stop are the encoder's, after the receipt. Only the first choice's reasoning
 * ({@link chatReasoningText}, as `thinking` blocks: SRP-CON-076), `delta.content` text and
 * tool calls are kept; the meter of a translated job measures these events (SRP-ATT-016,
 * SRP-ATT-025).
 */
export class ChatToMessagesEvents {
  #started = false;
  #index = -1;
  #open: "thinking" | "text" | "tool" | undefined;
  /** The last `finish_reason`. */
  finish: unknown = null;
  /** OpenAI tool call (its index, else its id) -> Anthropic content block index. */
  readonly #tools = new Map<number | string, number>();
  #lastCall: number | string | undefined;
  readonly #job: Job;

  /** @param job The translated job. */
  constructor(job: Job) {
    this.#job = job;
  }

  /** message_start and ping, once. */
  start(): Json[] {
    if (this.#started) return [];
    this.#started = true;
    const message = {
      id: messageId(this.#job),
      type: "message",
      role: "assistant",
      model: this.#job.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 0, output_tokens: 0 },
    };
    return [{ type: "message_start", message }, { type: "ping" }];
  }

  /** The open block's content_block_stop (a thinking block's signature_delta first, SRP-CON-076). */
  close(): Json[] {
    if (this.#open === undefined) return [];
    const signature =
      this.#open === "thinking"
        ? [
            {
              type: "content_block_delta",
              index: this.#index,
              delta: { type: "signature_delta", signature: TRANSLATED_THINKING_SIGNATURE },
            },
          ]
        : [];
    this.#open = undefined;
    return [...signature, { type: "content_block_stop", index: this.#index }];
  }

  /** Opens a block of `kind` at the next index unless one is open: the events. */
  #openBlock(kind: "thinking" | "text", block: Json): Json[] {
    if (this.#open === kind) return [];
    const out = this.close();
    this.#index++;
    this.#open = kind;
    out.push({ type: "content_block_start", index: this.#index, content_block: block });
    return out;
  }

  /** The events of one chat chunk. */
  chunk(data: Json): Json[] {
    if (data.usage !== null && data.usage !== undefined && Array.isArray(data.choices) && data.choices.length === 0) return [];
    const choice = Array.isArray(data.choices) && isObject(data.choices[0]) ? data.choices[0] : undefined;
    const out = this.start();
    if (!choice) return out;
    const delta = isObject(choice.delta) ? choice.delta : {};
    const reasoning = chatReasoningText(delta);
    if (reasoning !== "") {
      out.push(...this.#openBlock("thinking", { type: "thinking", thinking: "", signature: "" }));
      out.push({ type: "content_block_delta", index: this.#index, delta: { type: "thinking_delta", thinking: reasoning } });
    }
    if (typeof delta.content === "string" && delta.content !== "") {
      out.push(...this.#openBlock("text", { type: "text", text: "", citations: null }));
      out.push({ type: "content_block_delta", index: this.#index, delta: { type: "text_delta", text: delta.content } });
    }
    if (Array.isArray(delta.tool_calls)) {
      for (const tc of delta.tool_calls as unknown[]) {
        if (!isObject(tc)) continue;
        const fn = isObject(tc.function) ? tc.function : {};
        // OpenAI numbers every call; a server that does not is followed by id (a delta without either continues the last call).
        const i = typeof tc.index === "number" ? tc.index : typeof tc.id === "string" ? tc.id : (this.#lastCall ?? 0);
        this.#lastCall = i;
        if (!this.#tools.has(i)) {
          out.push(...this.close());
          this.#index++;
          this.#open = "tool";
          this.#tools.set(i, this.#index);
          const id = typeof tc.id === "string" ? tc.id : `toolu_${toBase64Url(randomBytes(12))}`;
          out.push({
            type: "content_block_start",
            index: this.#index,
            content_block: { type: "tool_use", id, name: typeof fn.name === "string" ? fn.name : "", input: {} },
          });
        }
        // Arguments of a call whose block is closed cannot be sent any more (Anthropic blocks do not interleave).
        if (typeof fn.arguments === "string" && fn.arguments !== "" && this.#tools.get(i) === this.#index && this.#open === "tool") {
          out.push({ type: "content_block_delta", index: this.#index, delta: { type: "input_json_delta", partial_json: fn.arguments } });
        }
      }
    }
    if (choice.finish_reason !== null && choice.finish_reason !== undefined) {
      this.finish = choice.finish_reason;
      out.push(...this.close());
    }
    return out;
  }
}

/** Chat chunks re-encoded as Anthropic's event sequence ({@link ChatToMessagesEvents}, then message_delta with usage and message_stop). */
function translatedEncoder(job: Job): StreamEncoder {
  const events = new ChatToMessagesEvents(job);
  const text = (list: Json[]) => list.map(sse).join("");
  return {
    chunk: (data) => text(events.chunk(data)),
    end(done, ext) {
      return (
        text([...events.start(), ...events.close()]) +
        sse({
          type: "message_delta",
          delta: { stop_reason: stopReason(events.finish), stop_sequence: null },
          usage: anthropicUsage(done.usage, ext),
        }) +
        sse({ type: "message_stop" })
      );
    },
    fail: streamError,
  };
}

/**
 * The meter of a chat job translated for a Messages consumer (SRP-ATT-016): it measures what
 * the translation relays, the Anthropic events ({@link ChatToMessagesEvents}) or Message
 * content a chat chunk or completion becomes, by the `messages` rule, the reasoning as
 * `thinking` blocks (SRP-ATT-025). What the translation drops (other
 * choices, `refusal`, arguments that are not strings in a stream) is never shown, so it is
 * not counted.
 */
export function translatedMeter(job: Job): OutputMeasurer {
  const meter = new OutputMeter({ api: "messages", stream: job.stream });
  const events = job.stream ? new ChatToMessagesEvents(job) : undefined;
  return describedMeter(
    {
      add(value) {
        if (!isObject(value)) return;
        if (!events) return meter.add({ type: "message", content: chatToContent(value) });
        for (const e of events.chunk(value)) meter.add(e);
      },
      get measure() {
        return meter.measure;
      },
    },
    { kind: "messages" },
  );
}

/** Native Anthropic events passed through; the message_delta (usage) and message_stop wait for the receipt, then carry the cost. */
function nativeEncoder(): StreamEncoder {
  let delta: Json | undefined;
  return {
    chunk(data) {
      if (data.type === "message_delta") {
        delta = data;
        return "";
      }
      if (data.type === "message_stop" || typeof data.type !== "string") return "";
      return data.type === "message_start" ? sse(data) + sse({ type: "ping" }) : sse(data);
    },
    end(done, ext) {
      const base = delta ?? { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: {} };
      return sse({ ...base, usage: nativeUsage(base.usage, done.usage, ext) }) + sse({ type: "message_stop" });
    },
    fail: streamError,
  };
}

/**
 * A native answer's usage: the upstream's other members (`server_tool_use`, `service_tier`)
 * kept, its token counts replaced by the billed usage's (SRP-ATT-019), then SRP's cost and
 * receipt.
 */
function nativeUsage(upstream: unknown, usage: Usage, ext: SrpUsageExtension): Json {
  // Its counts (and the per-duration split of cache writes) are replaced; SRP's members are never the node's.
  return { ...upstreamUsageExtras(upstream), ...anthropicUsage(usage, ext) };
}

/** Whether a native Anthropic event commits output (content, a tool call, the end). */
function nativeCommits(e: JobEvent): boolean {
  if (e.type !== "chunk") return true;
  const t = e.chunk.data.type;
  if (t === "content_block_delta" || t === "message_delta" || t === "message_stop") return true;
  const block = e.chunk.data.content_block;
  return t === "content_block_start" && isObject(block) && block.type !== "text" && block.type !== "thinking";
}

/** Capabilities a Messages body uses. */
function messagesNeeds(body: Json): Capability[] {
  const needs: Capability[] = ["chat"];
  if (body.stream === true) needs.push("stream");
  if (Array.isArray(body.tools) && body.tools.length > 0) needs.push("tools");
  const image = (body.messages as unknown[]).some(
    (m) =>
      isObject(m) &&
      Array.isArray(m.content) &&
      (m.content as unknown[]).some(
        (b) =>
          isObject(b) &&
          (b.type === "image" ||
            (b.type === "tool_result" &&
              Array.isArray(b.content) &&
              (b.content as unknown[]).some((c) => isObject(c) && c.type === "image"))),
      ),
  );
  if (image) needs.push("vision");
  return needs;
}

/** Checks the members every Messages request needs. */
function checkMessages(body: Json, requireMaxTokens: boolean): SrpError | undefined {
  const problem = checkConsumerBody(requireMaxTokens ? MessagesRequest : CountTokensRequest, body);
  return problem ? new SrpError("api.invalid_body", problem) : undefined;
}

/**
 * A Messages body for a native instance without the assistant `thinking` blocks whose
 * `signature` is empty: the hub made them when it translated an earlier answer
 * (SRP-CON-076), and Anthropic refuses thinking blocks it did not sign (SRP-CON-079). Signed
 * thinking and `redacted_thinking` stay; an assistant message left with no content is
 * dropped. Returns the body itself when nothing is dropped. Pure.
 */
export function withoutUnsignedThinking(body: Json): Json {
  if (!Array.isArray(body.messages)) return body;
  const unsigned = (b: unknown) => isObject(b) && b.type === "thinking" && b.signature === TRANSLATED_THINKING_SIGNATURE;
  const messages = body.messages as unknown[];
  if (!messages.some((m) => isObject(m) && m.role === "assistant" && Array.isArray(m.content) && m.content.some(unsigned))) return body;
  const kept: unknown[] = [];
  for (const m of messages) {
    if (!isObject(m) || m.role !== "assistant" || !Array.isArray(m.content) || !m.content.some(unsigned)) {
      kept.push(m);
      continue;
    }
    const content = (m.content as unknown[]).filter((b) => !unsigned(b));
    if (content.length > 0) kept.push({ ...m, content });
  }
  return { ...body, messages: kept };
}

/**
 * Checks a Messages body and plans it: native for instances that take `messages` jobs,
 * translated for the rest. A request with what only the Messages API has (server tools,
 * PDF documents) goes to native instances only, and is refused when the model has none.
 */
export function planMessages(body: Json, ctx?: Pick<ConsumerApiContext, "router">, betas: readonly string[] = []): Plan | SrpError {
  const bad = checkMessages(body, true);
  if (bad) return bad;
  const prefs = preferences(body);
  if (prefs instanceof SrpError) return prefs;
  const native: Json = { ...body };
  delete native.srp;
  delete native.provider;
  let translated: Json | undefined;
  const capabilities = messagesNeeds(body);
  try {
    translated = messagesToChat(native);
  } catch (error) {
    if (!(error instanceof SrpError)) throw error;
    const nativeOnline = ctx?.router.offers(body.model as string).some((v) => v.capabilities.includes("messages")) ?? false;
    if (!nativeOnline)
      return new SrpError(
        error.code,
        `${error.message} (only an instance that runs the Messages API itself could serve it, and none of ${String(body.model)} is online)`,
      );
    capabilities.push("messages");
  }
  const stream = body.stream === true;
  if (stream && translated) translated.stream_options = { include_usage: true };
  const maxOut = body.max_tokens as number;
  const isNative = (job: Job) => job.api === "messages";
  const bound = { promptTokens: promptTokenBound(body), completionTokens: maxOut };
  // Server tools (web search, code execution) and MCP servers feed their results back as input: the prompt is bounded by the context.
  const growing =
    (Array.isArray(body.tools) && (body.tools as unknown[]).some((t) => isObject(t) && t.type !== undefined && t.type !== "custom")) ||
    (Array.isArray(body.mcp_servers) && body.mcp_servers.length > 0);
  const affinityKey = messagesAffinityKey(body);
  return {
    model: body.model as string,
    stream,
    prefs,
    ...(affinityKey !== undefined ? { affinityKey } : {}),
    capabilities,
    contextTokens: estimatePromptTokens(translated ?? native) + maxOut,
    bound,
    ...(growing ? { promptByContext: true } : {}),
    bounds(instance: Instance) {
      const bounds = defaultUsageBounds({ bound, capabilities, promptByContext: growing }, instance);
      // Claude bills its full extended thinking and relays a summary: the budget may be hidden output (SRP-ATT-015).
      const budget = thinkingBudget(native);
      const nativeJob = instance.capabilities.includes("messages") || !translated;
      return nativeJob && budget !== undefined && instance.capabilities.includes("reasoning")
        ? { ...bounds, hiddenThinkingTokens: budget }
        : bounds;
    },
    job: (instance: Instance) =>
      instance.capabilities.includes("messages") || !translated
        ? { api: "messages", body: withoutUnsignedThinking(native), ...(betas.length > 0 ? { ext: { [ANTHROPIC_BETA_EXT]: betas } } : {}) }
        : { api: "chat.completions", body: translated },
    commits: (e, job) => (isNative(job) ? nativeCommits(e) : contentful(e)),
    respond(job: Job, done: Done, ext, headers) {
      const response = done.response ?? {};
      if (isNative(job)) {
        return Response.json({ ...response, usage: nativeUsage(response.usage, done.usage, ext) }, { headers });
      }
      return Response.json(chatToMessage(response, job, done.usage, ext), { headers });
    },
    encoder: (job) => (isNative(job) ? nativeEncoder() : translatedEncoder(job)),
    meter: (job) => (isNative(job) ? undefined : translatedMeter(job)),
  };
}

/** The Messages surface as an x402 resource. */
export function messagesResource(url: string): PaidResource {
  return {
    url,
    description:
      "Anthropic Messages request relayed to an SRP provider (Anthropic wire format). The amount is this request's maximum cost; what it does not use stays with the paying wallet as prepaid balance.",
    mimeType: "application/json",
    method: "POST",
    example: { model: "claude-sonnet-4-5", max_tokens: 64, messages: [{ role: "user", content: "Hello" }] },
  };
}

/** The Messages surface: what `POST /v1/messages` serves and `POST /v1/estimate` plans. */
export const messagesSurface: Surface = {
  resource: messagesResource,
  error: anthropicError,
  read: readJsonObject,
  plan: (body, ctx, request) => planMessages(body, ctx, anthropicBetas(request.headers.get("anthropic-beta"))),
};

/** `POST /v1/messages`. */
export function postMessages(request: Request, ctx: ConsumerApiContext): Promise<Response> {
  return serve(request, ctx, messagesSurface);
}

/**
 * `POST /v1/messages/count_tokens`: `{input_tokens}` for a Messages body, free. The hub
 * holds no model's tokenizer, so the count is its estimate (about 4 characters a token,
 * the figure routing matches context lengths with), said by `x-srp-estimated: true`.
 */
export async function countTokens(
  request: Request,
  ctx: Pick<ConsumerApiContext, "accounts" | "maxBodyBytes" | "router">,
): Promise<Response> {
  const account = await authenticate(request, ctx.accounts);
  if (account instanceof SrpError) return anthropicError(account);
  const body = await readJsonObject(request, ctx.maxBodyBytes);
  if (body instanceof SrpError) return anthropicError(body);
  const bad = checkMessages(body, false);
  if (bad) return anthropicError(bad);
  if (ctx.router.count(body.model as string) === 0)
    return anthropicError(new SrpError("job.unknown_model", `model ${String(body.model)} is not served by any online provider`));
  let translated: Json;
  try {
    translated = messagesToChat({ ...body, max_tokens: 1, thinking: undefined });
  } catch (error) {
    if (error instanceof SrpError) return anthropicError(error);
    throw error;
  }
  const tools = Array.isArray(translated.tools) ? Math.ceil(JSON.stringify(translated.tools).length / 4) : 0;
  return Response.json({ input_tokens: estimatePromptTokens(translated) + tools }, { headers: { "x-srp-estimated": "true" } });
}
