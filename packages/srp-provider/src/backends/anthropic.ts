/**
 * A forwarded Anthropic API key: the node speaks OpenAI chat completions to the hub and
 * translates each job to the Anthropic Messages API (`POST /v1/messages`) and back,
 * streams included. The key stays on the node; it is sent only to the Anthropic base URL.
 */
import { parseSse } from "@srp/core";
import { ANTHROPIC_BETA_EXT, anthropicBetas } from "@srp/core/schema";
import { REASONING_EFFORT_BUDGETS } from "@srp/core/metering";
import { networkError } from "./openai-compatible.js";
import {
  BackendError,
  classifyUpstreamStatus,
  type Backend,
  type BackendApi,
  type BackendModel,
  type ChatCallOptions,
  type ChatResult,
} from "./types.js";

/** Options of {@link anthropicBackend}. */
export interface AnthropicOptions {
  /** The forwarded Anthropic API key (sent as `x-api-key`). Never leaves the node otherwise. */
  apiKey: string;
  /** API origin without `/v1`; default `https://api.anthropic.com`. */
  baseUrl?: string;
  /** The `anthropic-version` header; default `2023-06-01`. */
  version?: string;
  /** `max_tokens` sent when the request names neither `max_tokens` nor `max_completion_tokens`; default 4096 (Anthropic requires one). */
  defaultMaxTokens?: number;
  /** Extra headers on every request (e.g. `anthropic-beta`). */
  headers?: Record<string, string>;
  /** `fetch` implementation; default the global one. */
  fetch?: typeof fetch;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const count = (v: unknown): number => (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : 0);

function invalid(message: string): never {
  throw new BackendError("job.invalid_request", message);
}

/** Anthropic tool ids must match `^[a-zA-Z0-9_-]+$`; ids minted elsewhere are mapped the same way on both sides. */
function toolId(id: unknown, where: string): string {
  if (typeof id !== "string" || id === "") invalid(`${where}: missing tool call id`);
  return id.replace(/[^A-Za-z0-9_-]/g, "_");
}

/** Text of a `system`, `developer` or `tool` message: a string or an array of text parts. */
function plainText(content: unknown, where: string): string {
  if (typeof content === "string") return content;
  if (content === null || content === undefined) return "";
  if (!Array.isArray(content)) invalid(`${where}: content must be a string or an array of parts`);
  return content
    .map((part: unknown) => {
      if (isObject(part) && part.type === "text" && typeof part.text === "string") return part.text;
      return invalid(`${where}: only text parts are supported here`);
    })
    .join("\n");
}

function imageBlock(part: Json, where: string): Json {
  const ref = part.image_url;
  const url =
    typeof ref === "string"
      ? ref
      : isObject(ref) && typeof ref.url === "string"
        ? ref.url
        : invalid(`${where}: image_url part without a url`);
  if (url.startsWith("data:")) {
    const m = /^data:([^;,]+)(?:;[^;,]*)*;base64,(.*)$/s.exec(url);
    if (!m) invalid(`${where}: image data URLs must be base64`);
    return { type: "image", source: { type: "base64", media_type: m[1]!.toLowerCase(), data: m[2]! } };
  }
  if (/^https?:\/\//i.test(url)) return { type: "image", source: { type: "url", url } };
  return invalid(`${where}: image URLs must be https, http or data: URLs`);
}

/** Content blocks of a user or assistant message. */
function contentBlocks(content: unknown, where: string, allowImages: boolean): Json[] {
  if (typeof content === "string") return content === "" ? [] : [{ type: "text", text: content }];
  if (content === null || content === undefined) return [];
  if (!Array.isArray(content)) invalid(`${where}: content must be a string or an array of parts`);
  const blocks: Json[] = [];
  for (const part of content as unknown[]) {
    if (!isObject(part)) invalid(`${where}: content parts must be objects`);
    if (part.type === "text" && typeof part.text === "string") {
      if (part.text !== "") blocks.push({ type: "text", text: part.text });
    } else if (part.type === "refusal" && typeof part.refusal === "string") {
      if (part.refusal !== "") blocks.push({ type: "text", text: part.refusal });
    } else if (part.type === "image_url" && allowImages) {
      blocks.push(imageBlock(part, where));
    } else {
      invalid(`${where}: content part type ${JSON.stringify(part.type)} is not supported by the Anthropic backend`);
    }
  }
  return blocks;
}

function toolUseBlocks(toolCalls: unknown, where: string): Json[] {
  if (toolCalls === undefined || toolCalls === null) return [];
  if (!Array.isArray(toolCalls)) invalid(`${where}: tool_calls must be an array`);
  return (toolCalls as unknown[]).map((call, i) => {
    const at = `${where}.tool_calls[${i}]`;
    if (!isObject(call) || !isObject(call.function) || typeof call.function.name !== "string")
      invalid(`${at}: expected a function tool call`);
    const args = call.function.arguments;
    let input: unknown = {};
    if (typeof args === "string" && args.trim() !== "") {
      try {
        input = JSON.parse(args);
      } catch {
        invalid(`${at}: arguments are not valid JSON`);
      }
    } else if (isObject(args)) input = args;
    if (!isObject(input)) invalid(`${at}: arguments must be a JSON object`);
    return { type: "tool_use", id: toolId(call.id, at), name: call.function.name, input };
  });
}

function translateTools(request: Json): { tools?: Json[]; tool_choice?: Json } {
  const out: { tools?: Json[]; tool_choice?: Json } = {};
  const tools = request.tools;
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools)) invalid("tools must be an array");
    out.tools = (tools as unknown[]).map((tool, i) => {
      if (!isObject(tool) || tool.type !== "function" || !isObject(tool.function) || typeof tool.function.name !== "string") {
        return invalid(`tools[${i}]: only function tools are supported by the Anthropic backend`);
      }
      const fn = tool.function;
      const schema = isObject(fn.parameters) ? fn.parameters : { type: "object", properties: {} };
      return { name: fn.name, ...(typeof fn.description === "string" ? { description: fn.description } : {}), input_schema: schema };
    });
    if (out.tools.length === 0) delete out.tools;
  }
  if (out.tools === undefined) return out; // tool_choice without tools means nothing to Anthropic
  const choice = request.tool_choice;
  let tc: Json | undefined;
  if (choice === "auto") tc = { type: "auto" };
  else if (choice === "required") tc = { type: "any" };
  else if (choice === "none") tc = { type: "none" };
  else if (isObject(choice) && choice.type === "function" && isObject(choice.function) && typeof choice.function.name === "string")
    tc = { type: "tool", name: choice.function.name };
  else if (choice !== undefined && choice !== null) invalid("tool_choice must be auto, required, none or a named function");
  if (request.parallel_tool_calls === false && tc?.type !== "none") tc = { ...(tc ?? { type: "auto" }), disable_parallel_tool_use: true };
  if (tc !== undefined) out.tool_choice = tc;
  return out;
}

/**
 * The Anthropic thinking budget for each chat `reasoning_effort` (SRP-CON-080): `minimal`
 * and `low` 1024 tokens (Anthropic's least), `medium` 4096, `high` 16384, `xhigh` 32768;
 * `none` sends no `thinking`. The hub maps budgets back to efforts with the same steps.
 */
export const EFFORT_THINKING_BUDGETS: Readonly<Record<string, number>> = REASONING_EFFORT_BUDGETS;

/** Anthropic's least `thinking.budget_tokens`. */
const MIN_THINKING_BUDGET = 1024;

/**
 * The Anthropic `thinking` member for a chat request's `reasoning_effort` and the request's
 * `max_tokens` (SRP-CON-080), or undefined to send none. The budget is
 * {@link EFFORT_THINKING_BUDGETS}' at most `max_tokens - 1` (Anthropic counts thinking
 * within `max_tokens` and wants it smaller); no thinking is sent when that is below 1024,
 * when `tool_choice` forces a tool (Anthropic refuses thinking then), or when the request
 * continues a tool call (its last message is a `tool` result: Anthropic wants the signed
 * thinking block of that call back, which a chat client does not have).
 *
 * @throws BackendError `job.invalid_request` for an unknown effort.
 * @example
 * thinkingForEffort({ reasoning_effort: "medium", messages: [] }, 8192); // { type: "enabled", budget_tokens: 4096 }
 */
export function thinkingForEffort(
  request: Record<string, unknown>,
  maxTokens: number,
): { type: "enabled"; budget_tokens: number } | undefined {
  const effort = request.reasoning_effort;
  if (effort === undefined || effort === null || effort === "none") return undefined;
  const wanted =
    typeof effort === "string" && Object.hasOwn(EFFORT_THINKING_BUDGETS, effort)
      ? EFFORT_THINKING_BUDGETS[effort]!
      : invalid("reasoning_effort must be none, minimal, low, medium, high or xhigh");
  const budget = Math.min(wanted, maxTokens - 1);
  if (budget < MIN_THINKING_BUDGET) return undefined;
  const choice = request.tool_choice;
  if (choice === "required" || isObject(choice)) return undefined;
  const messages = Array.isArray(request.messages) ? (request.messages as unknown[]) : [];
  const last = messages.at(-1);
  if (isObject(last) && last.role === "tool") return undefined;
  return { type: "enabled", budget_tokens: budget };
}

/** Translates an OpenAI chat.completions request body to an Anthropic Messages request body. */
function toAnthropicRequest(request: Json, defaultMaxTokens: number): Json {
  if (typeof request.model !== "string" || request.model === "") invalid("model is required");
  if (!Array.isArray(request.messages)) invalid("messages must be an array");
  if (request.n !== undefined && request.n !== null && request.n !== 1) invalid("n other than 1 is not supported by the Anthropic backend");

  const system: string[] = [];
  const turns: { role: "user" | "assistant"; content: Json[] }[] = [];
  const push = (role: "user" | "assistant", blocks: Json[]): void => {
    if (blocks.length === 0) return;
    const last = turns.at(-1);
    // Anthropic alternates roles: consecutive turns of one role (several tool results, a
    // tool result followed by user text) become one turn, tool results first.
    if (last?.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  };

  (request.messages as unknown[]).forEach((message, i) => {
    const where = `messages[${i}]`;
    if (!isObject(message)) invalid(`${where}: expected an object`);
    switch (message.role) {
      case "system":
      case "developer": {
        const text = plainText(message.content, where);
        if (text !== "") system.push(text);
        break;
      }
      case "user":
        push("user", contentBlocks(message.content, where, true));
        break;
      case "assistant":
        push("assistant", [...contentBlocks(message.content, where, false), ...toolUseBlocks(message.tool_calls, where)]);
        break;
      case "tool":
        push("user", [
          { type: "tool_result", tool_use_id: toolId(message.tool_call_id, where), content: plainText(message.content, where) },
        ]);
        break;
      default:
        invalid(`${where}: role ${JSON.stringify(message.role)} is not supported by the Anthropic backend`);
    }
  });

  const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? defaultMaxTokens;
  if (typeof maxTokens !== "number" || !Number.isSafeInteger(maxTokens) || maxTokens < 1) invalid("max_tokens must be a positive integer");

  const body: Json = { model: request.model, max_tokens: maxTokens, messages: turns };
  if (system.length > 0) body.system = system.join("\n\n");
  for (const key of ["temperature", "top_p"] as const) {
    const v = request[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== "number") invalid(`${key} must be a number`);
    body[key] = v;
  }
  const stop = request.stop;
  if (typeof stop === "string") body.stop_sequences = [stop];
  else if (Array.isArray(stop)) {
    if (!stop.every((s) => typeof s === "string")) invalid("stop must be a string or an array of strings");
    if (stop.length > 0) body.stop_sequences = stop;
  } else if (stop !== undefined && stop !== null) invalid("stop must be a string or an array of strings");
  Object.assign(body, translateTools(request));
  const thinking = thinkingForEffort(request, maxTokens);
  if (thinking) {
    body.thinking = thinking;
    // Anthropic takes no temperature but 1 and no top_p below 0.95 with thinking.
    if (body.temperature !== undefined && body.temperature !== 1) delete body.temperature;
    if (typeof body.top_p === "number" && body.top_p < 0.95) delete body.top_p;
  }
  if (request.stream === true) body.stream = true;
  return body;
}

/** OpenAI `finish_reason` for an Anthropic `stop_reason`. */
function finishReason(stop: unknown): string {
  switch (stop) {
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length";
    case "tool_use":
      return "tool_calls";
    case "refusal":
      return "content_filter";
    default: // end_turn, stop_sequence, pause_turn
      return "stop";
  }
}

interface UsageCounts {
  input: number;
  cacheRead: number;
  cacheCreation: number;
  output: number;
}

function readUsage(usage: unknown, into: UsageCounts): void {
  if (!isObject(usage)) return;
  if (typeof usage.input_tokens === "number") into.input = count(usage.input_tokens);
  if (typeof usage.cache_read_input_tokens === "number") into.cacheRead = count(usage.cache_read_input_tokens);
  if (typeof usage.cache_creation_input_tokens === "number") into.cacheCreation = count(usage.cache_creation_input_tokens);
  if (typeof usage.output_tokens === "number") into.output = count(usage.output_tokens);
}

/** Anthropic counts cache reads and writes apart from `input_tokens`; OpenAI counts every prompt token. */
function openAIUsage(u: UsageCounts): Json {
  const prompt = u.input + u.cacheRead + u.cacheCreation;
  // `cache_write_tokens` is SRP's: OpenAI's usage has no member for tokens written to a cache.
  return {
    prompt_tokens: prompt,
    completion_tokens: u.output,
    total_tokens: prompt + u.output,
    prompt_tokens_details: { cached_tokens: u.cacheRead, cache_write_tokens: u.cacheCreation },
  };
}

/** Translates an Anthropic Message to an OpenAI chat.completion object. */
function toOpenAIResponse(message: Json, fallbackModel: string): Json {
  if (!Array.isArray(message.content)) throw new BackendError("job.upstream_error", "Anthropic response has no content array");
  const texts: string[] = [];
  const thinking: string[] = [];
  const toolCalls: Json[] = [];
  for (const block of message.content as unknown[]) {
    if (!isObject(block)) continue;
    if (block.type === "text" && typeof block.text === "string") texts.push(block.text);
    else if (block.type === "thinking" && typeof block.thinking === "string") thinking.push(block.thinking);
    else if (block.type === "tool_use") {
      toolCalls.push({ id: block.id, type: "function", function: { name: block.name, arguments: JSON.stringify(block.input ?? {}) } });
    }
    // redacted_thinking (encrypted) and server-tool blocks have no OpenAI counterpart
  }
  const usage: UsageCounts = { input: 0, cacheRead: 0, cacheCreation: 0, output: 0 };
  readUsage(message.usage, usage);
  const msg: Json = { role: "assistant", content: texts.length > 0 ? texts.join("") : null, refusal: null };
  if (toolCalls.length > 0) msg.tool_calls = toolCalls;
  // Thinking as DeepSeek and vLLM put reasoning (SRP-CON-080); a signature has no chat counterpart.
  if (thinking.length > 0) msg.reasoning_content = thinking.join("\n\n");
  return {
    id: typeof message.id === "string" ? message.id : `msg-${Date.now()}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: typeof message.model === "string" ? message.model : fallbackModel,
    choices: [{ index: 0, message: msg, logprobs: null, finish_reason: finishReason(message.stop_reason) }],
    usage: openAIUsage(usage),
  };
}

/** HTTP status Anthropic uses for each error type (stream `error` events carry only the type). */
const ERROR_STATUS: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529,
};

function classify(status: number, text: string): BackendError["code"] {
  // Anthropic words context overflow as "prompt is too long: N tokens > M maximum".
  if (status === 400 && /prompt is too long|input is too long|exceeds? (?:the )?context/i.test(text)) return "job.context_length_exceeded";
  return classifyUpstreamStatus(status, text);
}

function describeError(error: unknown): { type: string; text: string } {
  if (!isObject(error)) return { type: "", text: typeof error === "string" ? error : "" };
  const type = typeof error.type === "string" ? error.type : "";
  const message = typeof error.message === "string" ? error.message : "";
  return { type, text: type && message ? `${type}: ${message}` : message || type };
}

async function httpError(res: Response, what: string): Promise<BackendError> {
  const raw = await res.text().catch(() => "");
  let text = raw.slice(0, 1000) || res.statusText;
  try {
    const body = JSON.parse(raw) as unknown;
    if (isObject(body) && body.error !== undefined) text = describeError(body.error).text.slice(0, 1000) || text;
  } catch {
    /* not JSON */
  }
  const requestId = res.headers.get("request-id");
  const message = `${what}: ${res.status} ${text}${requestId ? ` (request-id ${requestId})` : ""}`;
  return new BackendError(classify(res.status, text), message, res.status);
}

async function* streamChunks(body: ReadableStream<Uint8Array>, signal: AbortSignal, requestModel: string): AsyncGenerator<Json> {
  let id = `msg-${Date.now()}`;
  let model = requestModel;
  const created = Math.floor(Date.now() / 1000);
  const usage: UsageCounts = { input: 0, cacheRead: 0, cacheCreation: 0, output: 0 };
  let stopReason: unknown = null;
  let opened = false;
  /** Anthropic content block index -> OpenAI tool call index, and whether arguments were sent. */
  const tools = new Map<number, { index: number; args: boolean }>();

  const chunk = (delta: Json, finish: string | null = null): Json => ({
    id,
    object: "chat.completion.chunk",
    created,
    model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });
  // The role chunk is held back until there is something to say, so an error event
  // before any content fails the job before a chunk has been relayed (and it can retry).
  function* open(): Generator<Json> {
    if (opened) return;
    opened = true;
    yield chunk({ role: "assistant", content: "" });
  }

  for await (const data of anthropicEvents(body, signal)) {
    const type = data.type;
    const index = typeof data.index === "number" ? data.index : -1;
    switch (type) {
      case "message_start": {
        const message = data.message;
        if (isObject(message)) {
          if (typeof message.id === "string") id = message.id;
          if (typeof message.model === "string") model = message.model;
          readUsage(message.usage, usage);
        }
        break;
      }
      case "content_block_start": {
        const block = data.content_block;
        if (!isObject(block)) break;
        if (block.type === "text" && typeof block.text === "string" && block.text !== "") {
          yield* open();
          yield chunk({ content: block.text });
        } else if (block.type === "tool_use") {
          yield* open();
          const tool = { index: tools.size, args: false };
          tools.set(index, tool);
          yield chunk({
            tool_calls: [{ index: tool.index, id: block.id, type: "function", function: { name: block.name, arguments: "" } }],
          });
        }
        break;
      }
      case "content_block_delta": {
        const delta = data.delta;
        if (!isObject(delta)) break;
        if (delta.type === "text_delta" && typeof delta.text === "string" && delta.text !== "") {
          yield* open();
          yield chunk({ content: delta.text });
        } else if (delta.type === "thinking_delta" && typeof delta.thinking === "string" && delta.thinking !== "") {
          yield* open();
          yield chunk({ reasoning_content: delta.thinking });
        } else if (delta.type === "input_json_delta" && typeof delta.partial_json === "string" && delta.partial_json !== "") {
          const tool = tools.get(index);
          if (!tool) break;
          tool.args = true;
          yield chunk({ tool_calls: [{ index: tool.index, function: { arguments: delta.partial_json } }] });
        }
        // signature_delta, citations_delta: no OpenAI counterpart
        break;
      }
      case "content_block_stop": {
        const tool = tools.get(index);
        // A tool called without arguments streams no JSON; OpenAI clients expect "{}".
        if (tool && !tool.args) {
          tool.args = true;
          yield chunk({ tool_calls: [{ index: tool.index, function: { arguments: "{}" } }] });
        }
        break;
      }
      case "message_delta": {
        if (isObject(data.delta) && data.delta.stop_reason !== undefined && data.delta.stop_reason !== null)
          stopReason = data.delta.stop_reason;
        readUsage(data.usage, usage); // output_tokens here is cumulative
        break;
      }
      case "message_stop": {
        yield* open();
        yield chunk({}, finishReason(stopReason));
        yield { id, object: "chat.completion.chunk", created, model, choices: [], usage: openAIUsage(usage) };
        return;
      }
      default: // ping, and event types added later (Anthropic's versioning policy allows new ones)
        break;
    }
  }
}

/**
 * Anthropic's stream events as typed JSON objects, up to and including `message_stop`.
 * An `error` event, an event that is not a JSON object, or a stream that ends before
 * `message_stop` fails the job with a classified {@link BackendError}.
 */
async function* anthropicEvents(body: ReadableStream<Uint8Array>, signal: AbortSignal): AsyncGenerator<Json & { type: string }> {
  let finished = false;
  let content = false;
  try {
    for await (const event of parseSse(body)) {
      let data: unknown;
      try {
        data = JSON.parse(event.data);
      } catch {
        throw new BackendError("job.upstream_error", "Anthropic sent a stream event that is not JSON");
      }
      if (!isObject(data)) throw new BackendError("job.upstream_error", "Anthropic stream event is not a JSON object");
      const type = typeof data.type === "string" ? data.type : event.event;
      if (type === undefined) throw new BackendError("job.upstream_error", "Anthropic stream event has no type");
      if (type === "error") {
        const { type: errorType, text } = describeError(data.error);
        throw new BackendError(
          classify(ERROR_STATUS[errorType] ?? 500, text),
          `Anthropic stream error${content ? " after content" : ""}: ${text.slice(0, 1000) || "unknown"}`,
        );
      }
      if (type === "content_block_delta") content = true;
      yield { ...data, type };
      if (type === "message_stop") {
        finished = true;
        return;
      }
    }
  } catch (error) {
    networkError(error, signal);
  }
  if (!finished && !signal.aborted) throw new BackendError("job.upstream_error", "Anthropic stream ended before message_stop");
}

/** Anthropic's stream events passed through as they came, but for pings. */
async function* nativeEvents(body: ReadableStream<Uint8Array>, signal: AbortSignal): AsyncGenerator<Json> {
  for await (const data of anthropicEvents(body, signal)) if (data.type !== "ping") yield data;
}

/**
 * Creates a backend for a forwarded Anthropic API key. It takes OpenAI chat.completions
 * requests (text, images, tools, streams) and translates them to the Anthropic Messages
 * API and back, so the node relays one format.
 *
 * @example
 * const claude = anthropicBackend({ apiKey: process.env.ANTHROPIC_API_KEY! });
 * const result = await claude.chat(
 *   { model: "claude-sonnet-4-5", messages: [{ role: "user", content: "Hi" }], stream: false },
 *   { signal: AbortSignal.timeout(60_000) },
 * );
 */
export function anthropicBackend(options: AnthropicOptions): Backend {
  if (typeof options.apiKey !== "string" || options.apiKey === "") throw new TypeError("anthropicBackend needs an apiKey");
  const base = (options.baseUrl ?? "https://api.anthropic.com").replace(/\/+$/, "");
  const doFetch = options.fetch ?? fetch;
  const defaultMaxTokens = options.defaultMaxTokens ?? 4096;
  const headers: Record<string, string> = {
    ...options.headers,
    "x-api-key": options.apiKey,
    "anthropic-version": options.version ?? "2023-06-01",
  };

  /** POST /v1/messages with an Anthropic body (and the beta features asked for); a failure is classified. */
  const post = async (body: Json, signal: AbortSignal, betas: readonly string[] = []): Promise<Response> => {
    const stream = body.stream === true;
    const beta = [...new Set([...(headers["anthropic-beta"]?.split(",").map((b) => b.trim()) ?? []), ...betas])]
      .filter((b) => b !== "")
      .join(",");
    let res: Response;
    try {
      res = await doFetch(`${base}/v1/messages`, {
        method: "POST",
        headers: {
          ...headers,
          "content-type": "application/json",
          accept: stream ? "text/event-stream" : "application/json",
          ...(beta ? { "anthropic-beta": beta } : {}),
        },
        body: JSON.stringify(body),
        signal,
      });
    } catch (error) {
      networkError(error, signal);
    }
    if (!res.ok) throw await httpError(res, "POST /v1/messages");
    return res;
  };
  const message = async (res: Response, signal: AbortSignal): Promise<Json> => {
    let message: unknown;
    try {
      message = await res.json();
    } catch (error) {
      if (signal.aborted) throw signal.reason ?? error;
      throw new BackendError("job.upstream_error", "Anthropic sent an unreadable response");
    }
    if (!isObject(message)) throw new BackendError("job.upstream_error", "Anthropic response is not a JSON object");
    if (message.type === "error") {
      const { type, text } = describeError(message.error);
      throw new BackendError(classify(ERROR_STATUS[type] ?? 500, text), `Anthropic error: ${text}`);
    }
    return message;
  };

  return {
    kind: "anthropic",
    label: `anthropic at ${base}`,
    apis: ["messages"],
    async run(api: BackendApi, request: Record<string, unknown>, { signal, ext }: ChatCallOptions): Promise<ChatResult> {
      if (api !== "messages") throw new BackendError("job.unsupported_api", `the Anthropic backend does not serve ${api}`);
      const res = await post(request, signal, anthropicBetas(ext?.[ANTHROPIC_BETA_EXT]));
      if (request.stream !== true) return { kind: "response", body: await message(res, signal) };
      if (!res.body) throw new BackendError("job.upstream_error", "Anthropic sent no stream");
      return { kind: "stream", chunks: nativeEvents(res.body, signal) };
    },
    async listModels(signal?: AbortSignal): Promise<BackendModel[]> {
      const models: BackendModel[] = [];
      let after: string | undefined;
      for (let page = 0; page < 20; page++) {
        const query = new URLSearchParams({ limit: "1000" });
        if (after !== undefined) query.set("after_id", after);
        let res: Response;
        try {
          res = await doFetch(`${base}/v1/models?${query}`, { headers, ...(signal ? { signal } : {}) });
        } catch (error) {
          if (signal) networkError(error, signal);
          throw new BackendError("job.upstream_error", `backend unreachable: ${(error as Error).message}`, undefined, { cause: error });
        }
        if (!res.ok) {
          const error = await httpError(res, "GET /v1/models");
          throw new BackendError("job.upstream_error", error.message, res.status, { cause: error });
        }
        const body = (await res.json()) as { data?: unknown; has_more?: unknown; last_id?: unknown };
        const data = Array.isArray(body.data) ? (body.data as unknown[]) : [];
        for (const m of data) if (isObject(m) && typeof m.id === "string") models.push({ id: m.id });
        if (body.has_more !== true || typeof body.last_id !== "string") break;
        after = body.last_id;
      }
      return models;
    },
    async chat(request: Record<string, unknown>, { signal }: ChatCallOptions): Promise<ChatResult> {
      const body = toAnthropicRequest(request, defaultMaxTokens);
      const res = await post(body, signal);
      if (body.stream !== true) return { kind: "response", body: toOpenAIResponse(await message(res, signal), request.model as string) };
      if (!res.body) throw new BackendError("job.upstream_error", "Anthropic sent no stream");
      return { kind: "stream", chunks: streamChunks(res.body, signal, request.model as string) };
    },
  };
}
