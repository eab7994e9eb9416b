/**
 * Facts of the OpenAI chat completions wire format that SRP relies on: how usage is
 * reported and how to read it into SRP's {@link Usage}. The request and response bodies
 * themselves pass through SRP untouched.
 */
import type { Usage } from "./schema/primitives.js";

/** The `usage` object of an OpenAI chat completion or final stream chunk. */
export interface OpenAIUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  /** `cache_write_tokens` is SRP's addition: prompt tokens written to a cache (Anthropic's cache creation). */
  prompt_tokens_details?: { cached_tokens?: number; cache_write_tokens?: number } | null;
  completion_tokens_details?: { reasoning_tokens?: number } | null;
}

const count = (v: unknown): number | undefined => (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : undefined);

/**
 * Reads an OpenAI `usage` object into SRP usage. Returns `undefined` when it does not
 * carry integer prompt and completion counts (then the job's usage is unmeasured).
 *
 * @example
 * usageFromOpenAI({ prompt_tokens: 12, completion_tokens: 30, total_tokens: 42 });
 * // { promptTokens: 12, completionTokens: 30, measured: true }
 */
export function usageFromOpenAI(usage: unknown): Usage | undefined {
  if (typeof usage !== "object" || usage === null) return undefined;
  const u = usage as OpenAIUsage;
  const promptTokens = count(u.prompt_tokens);
  const completionTokens = count(u.completion_tokens);
  if (promptTokens === undefined || completionTokens === undefined) return undefined;
  const out: Usage = { promptTokens, completionTokens, measured: true };
  const cached = count(u.prompt_tokens_details?.cached_tokens);
  if (cached !== undefined && cached > 0 && cached <= promptTokens) out.cachedTokens = cached;
  const written = count(u.prompt_tokens_details?.cache_write_tokens);
  if (written !== undefined && written > 0 && written + (out.cachedTokens ?? 0) <= promptTokens) out.cacheWriteTokens = written;
  const reasoning = count(u.completion_tokens_details?.reasoning_tokens);
  if (reasoning !== undefined && reasoning > 0) out.reasoningTokens = reasoning;
  return out;
}

/** The `error` object of OpenAI's error response body. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** OpenAI's `error.type` for an HTTP status. */
export function openAIErrorType(status: number): string {
  if (status === 400 || status === 413 || status === 415 || status === 422) return "invalid_request_error";
  if (status === 401) return "authentication_error";
  if (status === 402) return "insufficient_quota";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  return "api_error";
}
