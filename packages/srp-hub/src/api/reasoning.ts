/**
 * Reasoning across translations (spec/v1/consumer.md, "Reasoning across translations"):
 * where OpenAI-compatible servers put a model's reasoning, and how Anthropic's `thinking`
 * request member maps to chat's `reasoning_effort`.
 */
import { SrpError } from "@srp/core";
import type { Instance } from "@srp/core/schema";
import { reasoningEffortBudget, type UsageBounds } from "@srp/core/metering";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The reasoning text of one chat choice's `delta` (streamed) or `message` (not streamed),
 * as OpenAI-compatible servers send it (SRP-CON-075):
 *
 * - `reasoning_content`: vLLM's reasoning parsers, DeepSeek's API, llama.cpp's server;
 * - `reasoning`: Ollama's OpenAI compatibility layer, and vLLM from the versions that
 *   renamed the member (some of those send both members with the same text).
 *
 * `reasoning_content` wins when it is a non-empty string (so a part carrying both is read
 * once); else `reasoning` when it is a string; else `""`. Anything that is not an object
 * has no reasoning. The hub's translations (Anthropic `thinking` blocks, Responses
 * `reasoning` items) and their meters read reasoning through this one function.
 *
 * @example
 * chatReasoningText({ reasoning_content: "Let me see." }); // "Let me see."
 * chatReasoningText({ role: "assistant", content: "", reasoning: "Hmm" }); // "Hmm"
 * chatReasoningText({ reasoning_content: "a", reasoning: "a" }); // "a"
 * chatReasoningText({ content: "hello" }); // ""
 */
export function chatReasoningText(part: unknown): string {
  if (!isObject(part)) return "";
  if (typeof part.reasoning_content === "string" && part.reasoning_content !== "") return part.reasoning_content;
  return typeof part.reasoning === "string" ? part.reasoning : "";
}

/**
 * The `signature` of a `thinking` block the hub made from a chat backend's reasoning
 * (SRP-CON-076): the empty string. Anthropic signs its thinking so that it can verify the
 * blocks a client sends back; a hub has no such key, and an empty signature says so. A
 * client sends such blocks back unchanged; on translated instances they are dropped
 * (SRP-CON-079), and Anthropic itself would refuse them.
 */
export const TRANSLATED_THINKING_SIGNATURE = "";

/** A chat `reasoning_effort` the hub sends for a translated Messages request. */
export type ReasoningEffort = "low" | "medium" | "high";

/**
 * The thinking budgets at which a translated Messages request's `reasoning_effort` steps up
 * (SRP-CON-077): a `budget_tokens` below `medium` is `low`, below `high` is `medium`, else
 * `high`.
 */
export const THINKING_EFFORT_THRESHOLDS = Object.freeze({ medium: 4096, high: 16384 });

/** The `reasoning_effort` of an enabled thinking budget ({@link THINKING_EFFORT_THRESHOLDS}). */
export function effortForBudget(budget: number): ReasoningEffort {
  return budget < THINKING_EFFORT_THRESHOLDS.medium ? "low" : budget < THINKING_EFFORT_THRESHOLDS.high ? "medium" : "high";
}

/**
 * The chat `reasoning_effort` for a Messages request's `thinking` and `max_tokens`
 * (SRP-CON-077), or undefined to send none:
 *
 * - absent, or `{type: "disabled"}`: none (the backend's default applies; a backend that
 *   reasons anyway is billed for it, SRP-CON-081);
 * - `{type: "enabled", budget_tokens}`: {@link effortForBudget} of the budget, which must be a
 *   positive integer below `max_tokens`, as Anthropic requires;
 * - `{type: "adaptive"}`: `output_config.effort` when it is `low`, `medium` or `high`
 *   (`max` is `high`), else `medium`.
 *
 * @throws SrpError `api.invalid_body` for a `thinking` that is not one of these.
 * @example
 * reasoningEffortFor({ max_tokens: 16000, thinking: { type: "enabled", budget_tokens: 10000 } }); // "medium"
 */
export function reasoningEffortFor(request: Json): ReasoningEffort | undefined {
  const t = request.thinking;
  if (t === undefined || t === null) return undefined;
  if (!isObject(t)) throw new SrpError("api.invalid_body", "`thinking` must be an object");
  switch (t.type) {
    case "disabled":
      return undefined;
    case "enabled": {
      const budget = t.budget_tokens;
      if (typeof budget !== "number" || !Number.isSafeInteger(budget) || budget < 1)
        throw new SrpError("api.invalid_body", "`thinking.budget_tokens` must be a positive integer");
      if (typeof request.max_tokens === "number" && budget >= request.max_tokens)
        throw new SrpError("api.invalid_body", "`max_tokens` must be greater than `thinking.budget_tokens`");
      return effortForBudget(budget);
    }
    case "adaptive": {
      const effort = isObject(request.output_config) ? request.output_config.effort : undefined;
      return effort === "low" || effort === "medium" || effort === "high" ? effort : effort === "max" ? "high" : "medium";
    }
    default:
      throw new SrpError("api.invalid_body", "`thinking.type` is one of enabled, disabled, adaptive");
  }
}

/**
 * What a chat job on `instance` is admitted to use, with the hidden thinking its
 * `reasoning_effort` may cost (SRP-ATT-015): on an instance that forwards to Anthropic
 * (`messages`) and declares `reasoning`, the node asks for a thinking budget
 * ({@link reasoningEffortBudget}, SRP-CON-080), and Claude bills its full thinking while
 * relaying a summary; elsewhere `bounds` unchanged.
 */
export function withEffortThinking(bounds: UsageBounds, instance: Pick<Instance, "capabilities">, chatBody: Json): UsageBounds {
  if (!instance.capabilities.includes("messages") || !instance.capabilities.includes("reasoning")) return bounds;
  const budget = reasoningEffortBudget(chatBody);
  return budget === undefined ? bounds : { ...bounds, hiddenThinkingTokens: budget };
}
