/**
 * A chat job's reasoning switch (`reasoning_effort`, OpenAI's chat member; the hub sets it
 * when it translates Anthropic `thinking` or Responses `reasoning.effort`) as each kind of
 * OpenAI-compatible server takes it. Pure.
 *
 * - Ollama's `/v1/chat/completions` reads `reasoning_effort` (or `reasoning.effort`) and
 *   accepts only `high`, `medium`, `low` and `none` (thinking off); anything else is a 400.
 *   Its native `think` member is not read on that endpoint.
 * - vLLM reads `reasoning_effort` (`low`, `medium`, `high`; gpt-oss models) and passes
 *   `chat_template_kwargs` to the chat template, where Qwen3 reads `enable_thinking` and
 *   DeepSeek-V3.1 and Granite read `thinking`. llama.cpp server passes
 *   `chat_template_kwargs` the same way. Both get the effort (without `none`) and the
 *   template switches; a consumer's own `chat_template_kwargs` members win.
 * - LM Studio gets the effort in its three levels; `none` is left out (it has no off switch
 *   on that endpoint).
 * - OpenAI, Gemini and unrecognised servers get the request unchanged.
 */
import type { BackendKind } from "@srp/core/schema";

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** OpenAI's effort levels mapped onto the three levels local servers know, and `none`. */
const LEVEL: Readonly<Record<string, "none" | "low" | "medium" | "high">> = {
  none: "none",
  minimal: "low",
  low: "low",
  medium: "medium",
  high: "high",
  xhigh: "high",
};

/**
 * The chat request a backend of this kind is sent for the job's `reasoning_effort`. A
 * request without one, or with a value outside OpenAI's levels, goes unchanged (the server
 * judges it).
 *
 * @example
 * reasoningSwitch("ollama", { reasoning_effort: "minimal" }); // { reasoning_effort: "low" }
 * reasoningSwitch("vllm", { reasoning_effort: "none" }); // { chat_template_kwargs: { enable_thinking: false, thinking: false } }
 */
export function reasoningSwitch(kind: BackendKind, request: Record<string, unknown>): Record<string, unknown> {
  const effort = request.reasoning_effort;
  if (typeof effort !== "string") return request;
  const level = LEVEL[effort];
  if (level === undefined) return request;
  switch (kind) {
    case "ollama":
      return level === effort ? request : { ...request, reasoning_effort: level };
    case "lmstudio": {
      if (level !== "none") return level === effort ? request : { ...request, reasoning_effort: level };
      const { reasoning_effort: _, ...rest } = request;
      return rest;
    }
    case "vllm":
    case "llamacpp": {
      const on = level !== "none";
      const { reasoning_effort: _, ...rest } = request;
      const own = isObject(request.chat_template_kwargs) ? request.chat_template_kwargs : {};
      return { ...rest, ...(on ? { reasoning_effort: level } : {}), chat_template_kwargs: { enable_thinking: on, thinking: on, ...own } };
    }
    default:
      return request;
  }
}

/**
 * The Responses request a backend of this kind is sent for the job's `reasoning.effort`:
 * Ollama's `/v1/responses` takes only `none`, `low`, `medium`, `high` (and `max` on newer
 * versions) and refuses the rest with a 400, so `minimal` becomes `low` and `xhigh` `high`
 * there. Other servers get the request unchanged.
 *
 * @example
 * responsesReasoningSwitch("ollama", { input: "hi", reasoning: { effort: "minimal", summary: "auto" } });
 * // { input: "hi", reasoning: { effort: "low", summary: "auto" } }
 */
export function responsesReasoningSwitch(kind: BackendKind, request: Record<string, unknown>): Record<string, unknown> {
  if (kind !== "ollama" || !isObject(request.reasoning) || typeof request.reasoning.effort !== "string") return request;
  const effort = request.reasoning.effort;
  const level = LEVEL[effort];
  return level === undefined || level === effort ? request : { ...request, reasoning: { ...request.reasoning, effort: level } };
}
