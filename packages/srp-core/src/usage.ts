/**
 * Measuring a job's usage from its API's own answer: tokens of chat completions and
 * Anthropic Messages (streamed or not), prompt tokens of embeddings, images generated,
 * characters synthesized to speech and seconds of audio transcribed. What an answer does
 * not report is not measured, and an unmeasured job is never billed as if it were.
 */
import { wavSeconds } from "./audio.js";
import { usageFromOpenAI } from "./openai.js";
import type { JobApi } from "./schema/jobs.js";
import type { Usage } from "./schema/primitives.js";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const count = (v: unknown): number | undefined => (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : undefined);

/** Anthropic's usage counters (input excludes cache reads and writes). */
interface AnthropicCounts {
  input?: number;
  cacheRead?: number;
  cacheCreation?: number;
  output?: number;
}

function readAnthropic(usage: unknown, into: AnthropicCounts): void {
  if (!isObject(usage)) return;
  const set = (k: keyof AnthropicCounts, v: unknown) => {
    const n = count(v);
    if (n !== undefined) into[k] = n;
  };
  set("input", usage.input_tokens);
  set("cacheRead", usage.cache_read_input_tokens);
  set("cacheCreation", usage.cache_creation_input_tokens);
  set("output", usage.output_tokens);
}

function fromAnthropicCounts(c: AnthropicCounts): Usage | undefined {
  if (c.input === undefined || c.output === undefined) return undefined;
  const cached = c.cacheRead ?? 0;
  const written = c.cacheCreation ?? 0;
  const out: Usage = { promptTokens: c.input + cached + written, completionTokens: c.output, measured: true };
  if (cached > 0) out.cachedTokens = cached;
  if (written > 0) out.cacheWriteTokens = written;
  return out;
}

/**
 * Reads an Anthropic `usage` object into SRP usage: prompt tokens count cache reads and
 * writes as well (Anthropic's `input_tokens` does not); cache reads are the cached part,
 * cache writes the written part.
 *
 * @example
 * usageFromAnthropic({ input_tokens: 10, cache_read_input_tokens: 90, output_tokens: 5 });
 * // { promptTokens: 100, completionTokens: 5, cachedTokens: 90, measured: true }
 */
export function usageFromAnthropic(usage: unknown): Usage | undefined {
  const c: AnthropicCounts = {};
  readAnthropic(usage, c);
  return fromAnthropicCounts(c);
}

/** Bytes of standard base64 (none when it is not base64). */
function fromBase64(text: string): Uint8Array {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return new Uint8Array(0);
  }
}

/** Unicode code points of a string (what speech is billed by). */
function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/**
 * Reads an OpenAI Responses API `usage` object into SRP usage: `input_tokens` (cached ones
 * included, `input_tokens_details.cached_tokens` of them), `output_tokens` (reasoning ones
 * included, `output_tokens_details.reasoning_tokens` of them).
 *
 * @example
 * usageFromResponses({ input_tokens: 100, input_tokens_details: { cached_tokens: 90 }, output_tokens: 7, output_tokens_details: { reasoning_tokens: 5 } });
 * // { promptTokens: 100, completionTokens: 7, cachedTokens: 90, reasoningTokens: 5, measured: true }
 */
export function usageFromResponses(usage: unknown): Usage | undefined {
  if (!isObject(usage)) return undefined;
  const promptTokens = count(usage.input_tokens);
  const completionTokens = count(usage.output_tokens);
  if (promptTokens === undefined || completionTokens === undefined) return undefined;
  const out: Usage = { promptTokens, completionTokens, measured: true };
  const cached = isObject(usage.input_tokens_details) ? count(usage.input_tokens_details.cached_tokens) : undefined;
  if (cached !== undefined && cached > 0 && cached <= promptTokens) out.cachedTokens = cached;
  const reasoning = isObject(usage.output_tokens_details) ? count(usage.output_tokens_details.reasoning_tokens) : undefined;
  if (reasoning !== undefined && reasoning > 0) out.reasoningTokens = reasoning;
  return out;
}

/** Stream events of the Responses API that end a response and carry its final `usage` (in `response.usage`). */
const RESPONSES_FINAL_EVENTS: ReadonlySet<string> = new Set(["response.completed", "response.incomplete", "response.failed"]);

/**
 * The usage of a whole (non-streamed) answer of a job's API, or undefined when the answer
 * does not report it. For `audio.speech` the billed characters are those of the request's
 * `input`, which the node synthesized.
 */
export function measureResponse(api: JobApi, request: Json, response: Json): Usage | undefined {
  switch (api) {
    case "chat.completions":
    case "completions":
      return usageFromOpenAI(response.usage);
    case "responses":
      return usageFromResponses(response.usage);
    case "messages":
      return usageFromAnthropic(response.usage);
    case "embeddings": {
      const u = isObject(response.usage) ? response.usage : {};
      const prompt = count(u.prompt_tokens);
      return prompt === undefined ? undefined : { promptTokens: prompt, completionTokens: 0, measured: true };
    }
    case "images.generations": {
      if (!Array.isArray(response.data)) return undefined;
      // Billed per image, plus the prompt's tokens where the backend counts them.
      const u = isObject(response.usage) ? response.usage : {};
      return { promptTokens: count(u.input_tokens) ?? 0, completionTokens: 0, images: response.data.length, measured: true };
    }
    case "audio.speech":
      return typeof request.input === "string"
        ? { promptTokens: 0, completionTokens: 0, characters: codePoints(request.input), measured: true }
        : undefined;
    case "audio.transcriptions": {
      // Billed per second of audio only (what a hub can bound before it runs): the duration
      // the backend reports, else that of a WAV upload's header.
      const u = isObject(response.usage) ? response.usage : {};
      let seconds = u.type === "duration" ? u.seconds : response.duration;
      if (typeof seconds !== "number" && isObject(request.file) && typeof request.file.data === "string")
        seconds = wavSeconds(fromBase64(request.file.data));
      return typeof seconds === "number" && Number.isFinite(seconds) && seconds >= 0
        ? { promptTokens: 0, completionTokens: 0, seconds: Math.ceil(seconds), measured: true }
        : undefined;
    }
  }
}

/**
 * Follows a streamed answer chunk by chunk and tells the usage measured so far: OpenAI
 * chunks (chat and legacy completions) report it in the last (or, with vLLM's continuous
 * usage, every) chunk; Anthropic's events report input in `message_start` and output in
 * `message_delta`; Responses API events in the final `response.completed` (or
 * `response.incomplete`, `response.failed`) event's `response.usage`.
 */
export class StreamMeter {
  readonly #api: JobApi;
  readonly #anthropic: AnthropicCounts = {};
  constructor(api: JobApi) {
    this.#api = api;
  }
  /**
   * The usage as of this chunk, when the chunk reports it. Anthropic's `message_start`
   * counts only the input (its output count is a placeholder): the usage is known at
   * `message_delta`.
   */
  chunk(data: Json): Usage | undefined {
    if (this.#api === "responses")
      return typeof data.type === "string" && RESPONSES_FINAL_EVENTS.has(data.type) && isObject(data.response)
        ? usageFromResponses(data.response.usage)
        : undefined;
    if (this.#api !== "messages") return usageFromOpenAI(data.usage);
    if (data.type === "message_start" && isObject(data.message)) {
      readAnthropic(data.message.usage, this.#anthropic);
      return undefined;
    }
    if (data.type !== "message_delta") return undefined;
    readAnthropic(data.usage, this.#anthropic);
    return fromAnthropicCounts(this.#anthropic);
  }
}
