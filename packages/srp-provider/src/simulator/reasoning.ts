/**
 * The simulator's reasoning mode, **a simulator, not a reasoning model**: when a request
 * enables reasoning, the simulated model first "thinks" deterministic filler text, streamed
 * the way the real servers stream reasoning, then answers; the thinking counts as output.
 *
 * - vLLM (its reasoning parsers) and DeepSeek's API: `delta.reasoning_content` chunks after
 *   the role chunk, `message.reasoning_content` when not streamed; the usage reports the
 *   thinking in `completion_tokens` and in `completion_tokens_details.reasoning_tokens`.
 * - Ollama's OpenAI compatibility (`flavor: "ollama"`): `delta.reasoning` chunks, each with
 *   `role: "assistant"` and an empty `content` as Ollama sends them, `message.reasoning`
 *   when not streamed; its usage counts the thinking in `completion_tokens` and has no
 *   `completion_tokens_details`. An effort other than `high`, `medium`, `low` or `none` gets
 *   Ollama's 400.
 * - Anthropic (the Anthropic simulator): with `thinking: {type: "enabled"}` or
 *   `{type: "adaptive"}`, a `thinking` block first (streamed as `thinking_delta`s and a
 *   `signature_delta`), counted in `output_tokens`; an unsigned thinking block sent back is
 *   refused as Anthropic refuses it.
 */

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** The chat member a simulated server puts reasoning in. */
export type ReasoningMember = "reasoning_content" | "reasoning";

/** Tokens of thinking for each `reasoning_effort` (`medium` also when reasoning is on by default). */
export const SIMULATED_THINKING_TOKENS: Readonly<Record<string, number>> = Object.freeze({
  minimal: 4,
  low: 8,
  medium: 16,
  high: 32,
  xhigh: 48,
});

/** What a chat request gets from the reasoning mode: the member, and how many tokens to think (at most the output limit). */
export interface SimulatedReasoning {
  member: ReasoningMember;
  tokens: number;
}

/** How the simulator decides about reasoning for one chat request. */
export interface ReasoningSettings {
  /** The simulator's flavour (`ollama` puts reasoning in `reasoning`). */
  flavor?: string | undefined;
  /** The simulator's `reasoning` option: every request reasons (this much, when an effort is named) unless it turns reasoning off or names an effort itself. */
  always?: boolean | "low" | "medium" | "high" | undefined;
  /** The served model is a thinking model (its metadata's `thinking`): it reasons unless told not to. */
  thinkingModel?: boolean | undefined;
  /** Overrides the member (e.g. `reasoning` for a newer vLLM). */
  member?: ReasoningMember | undefined;
}

/** Ollama's 400 for an effort it does not know (its OpenAI layer's wording). */
export function ollamaEffortError(effort: unknown): Json {
  return {
    error: {
      message: `invalid reasoning value: '${String(effort)}' (must be "high", "medium", "low", or "none")`,
      type: "invalid_request_error",
      param: null,
      code: null,
    },
  };
}

/**
 * Whether and how much a chat request reasons: its `reasoning_effort` (or Ollama's
 * `reasoning.effort`), else Ollama's native `think` flag (which the simulator also takes),
 * else the simulator's or model's default. `none` (or `think: false`) turns it off. The
 * result is `{ error }` for an effort the flavour's server refuses.
 */
export function simulatedReasoning(
  body: Json,
  maxTokens: number,
  settings: ReasoningSettings,
): SimulatedReasoning | { error: Json } | undefined {
  const ollama = settings.flavor === "ollama";
  const member: ReasoningMember = settings.member ?? (ollama ? "reasoning" : "reasoning_content");
  const effort =
    ollama && isObject(body.reasoning) && typeof body.reasoning.effort === "string" ? body.reasoning.effort : body.reasoning_effort;
  let tokens: number | undefined;
  if (effort !== undefined && effort !== null) {
    if (effort === "none") return undefined;
    const known =
      typeof effort === "string" &&
      Object.hasOwn(SIMULATED_THINKING_TOKENS, effort) &&
      (!ollama || ["low", "medium", "high"].includes(effort));
    if (!known) return ollama ? { error: ollamaEffortError(effort) } : undefined;
    tokens = SIMULATED_THINKING_TOKENS[effort as string]!;
  } else if (body.think === false) return undefined;
  else if (typeof settings.always === "string") tokens = SIMULATED_THINKING_TOKENS[settings.always]!;
  else if (body.think === true || settings.always === true || settings.thinkingModel === true) tokens = SIMULATED_THINKING_TOKENS.medium!;
  if (tokens === undefined) return undefined;
  return { member, tokens: Math.min(tokens, maxTokens) };
}

/** The `delta` of one streamed reasoning chunk, as the flavour's server writes it. */
export function reasoningDelta(reasoning: SimulatedReasoning, text: string, flavor: string | undefined): Json {
  return flavor === "ollama" ? { role: "assistant", content: "", [reasoning.member]: text } : { [reasoning.member]: text };
}

/** A chat usage object with `reasoningTokens` of thinking reported as the flavour's server reports it (the thinking is already in `completion_tokens`). */
export function reasoningUsage<U extends Json>(usage: U, reasoningTokens: number, flavor: string | undefined): U {
  if (flavor === "ollama") {
    const { completion_tokens_details: _, ...rest } = usage;
    return rest as U;
  }
  const details = isObject(usage.completion_tokens_details) ? usage.completion_tokens_details : {};
  return { ...usage, completion_tokens_details: { ...details, reasoning_tokens: reasoningTokens } };
}

/** Thinking tokens of adaptive thinking per `output_config.effort` (absent: Anthropic's default, `high`). */
const ADAPTIVE_THINKING_TOKENS: Readonly<Record<string, number>> = Object.freeze({ low: 8, medium: 16, high: 32, max: 48 });

/**
 * Tokens an Anthropic request's thinking produces in the simulator: enabled, 16 at most the
 * budget; adaptive (`{type: "adaptive"}`, the model decides), by `output_config.effort` (8 for
 * `low`, 16 `medium`, 32 `high` or absent, 48 `max`), leaving at least one token of
 * `max_tokens` for the answer. Undefined: no thinking.
 */
export function anthropicThinkingTokens(body: Json): number | undefined {
  const t = body.thinking;
  if (isObject(t) && t.type === "adaptive") {
    const effort = isObject(body.output_config) ? body.output_config.effort : undefined;
    const tokens =
      ADAPTIVE_THINKING_TOKENS[typeof effort === "string" && Object.hasOwn(ADAPTIVE_THINKING_TOKENS, effort) ? effort : "high"]!;
    const room = (typeof body.max_tokens === "number" ? body.max_tokens : 16) - 1;
    return room > 0 ? Math.min(tokens, room) : undefined;
  }
  if (!isObject(t) || t.type !== "enabled" || typeof t.budget_tokens !== "number") return undefined;
  return Math.min(SIMULATED_THINKING_TOKENS.medium!, t.budget_tokens);
}

/** Anthropic's 400 message for a `thinking` it refuses (not one of its types, budget below 1024, or not below `max_tokens`), else undefined. */
export function anthropicThinkingRefusal(body: Json): string | undefined {
  const t = body.thinking;
  if (t === undefined) return undefined;
  if (!isObject(t) || (t.type !== "enabled" && t.type !== "disabled" && t.type !== "adaptive"))
    return "thinking: Input tag does not match any of the expected tags: 'adaptive', 'disabled', 'enabled'";
  if (t.type === "disabled") return undefined;
  if (t.type === "adaptive")
    return t.budget_tokens === undefined ? undefined : "thinking.adaptive.budget_tokens: Extra inputs are not permitted";
  if (typeof t.budget_tokens !== "number" || !Number.isInteger(t.budget_tokens) || t.budget_tokens < 1024)
    return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024";
  if (typeof body.max_tokens === "number" && body.max_tokens <= t.budget_tokens)
    return "`max_tokens` must be greater than `thinking.budget_tokens`";
  return undefined;
}

/**
 * Anthropic's 400 message for a `thinking` block in the history that carries no signature
 * (absent or empty: no one signed it, e.g. a hub's translation of another server's
 * reasoning), else undefined. Anthropic verifies the signature of every thinking block sent
 * back; the simulator refuses only the unsigned ones.
 */
export function anthropicSignatureRefusal(body: Json): string | undefined {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (const [i, m] of messages.entries()) {
    if (!isObject(m) || !Array.isArray(m.content)) continue;
    for (const [j, b] of (m.content as unknown[]).entries()) {
      if (!isObject(b) || b.type !== "thinking") continue;
      if (typeof b.signature !== "string") return `messages.${i}.content.${j}.thinking.signature: Field required`;
      if (b.signature === "") return `messages.${i}.content.${j}: Invalid \`signature\` in \`thinking\` block`;
    }
  }
  return undefined;
}

/** The simulator's stand-in for Anthropic's thinking signature: opaque, base64, labelled as the simulator's. */
export function simulatedSignature(thinking: string): string {
  return Buffer.from(`srp-simulator-signature:${thinking.length}`).toString("base64");
}
