/**
 * Whether a receipt's usage is plausible for its job (spec/v1/attestation.md, SRP-ATT-015
 * and SRP-ATT-016): a pure, tokenizer-free rule that any hub computes the same way from
 * what it admitted (prompt bound, output limit, units asked for) and what it relayed (the
 * UTF-8 bytes of the output's content members and the number of tool calls). Every byte-level tokenizer
 * emits at least one byte of text per token, so a visible completion token count above the
 * relayed bytes (plus small allowances for special and tool-call tokens) cannot be honest.
 */
import { canonicalize } from "./canonical.js";
import type { Usage } from "./schema/primitives.js";

/** The allowances of the visible-output rule (SRP-ATT-016), in tokens. */
export const PLAUSIBILITY_ALLOWANCE = Object.freeze({
  /** Tokens a job may produce without visible text (end of sequence, a stop sequence, template markers). */
  fixedTokens: 16,
  /** Tokens each tool call may add without visible text (its call markers and wrapping). */
  perToolCallTokens: 32,
});

/**
 * Members whose string value is output text wherever the walk reaches them (SRP-ATT-016):
 * OpenAI chat `content`, `reasoning_content`, `reasoning`, `refusal`; completions `text`;
 * Anthropic `text`, `thinking`, `signature`, `partial_json`.
 */
export const CONTENT_KEYS: ReadonlySet<string> = new Set(["content", "reasoning_content", "reasoning", "refusal", "text", "thinking", "signature", "partial_json"]);

/** Members the walk descends into (besides a `content` that is an array or object): the structure around output text. */
const STRUCTURE_KEYS: ReadonlySet<string> = new Set(["choices", "message", "delta", "content_block", "tool_calls"]);

/** Members holding an OpenAI function call (`tool_calls[].function`, the legacy `function_call`): their `name` and `arguments` count. */
const FUNCTION_KEYS: ReadonlySet<string> = new Set(["function", "function_call"]);

/** Block types that are tool calls in Anthropic's format: their `name` and `input` count. */
const TOOL_BLOCK_TYPES: ReadonlySet<string> = new Set(["tool_use", "server_tool_use"]);

/** What the hub relayed of a job's output. */
export interface RelayedOutput {
  /** UTF-8 bytes of the output's content members (SRP-ATT-016). */
  bytes: number;
  /** Distinct tool calls in the output. */
  toolCalls: number;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const encoder = new TextEncoder();
const utf8Length = (s: string) => encoder.encode(s).length;
/** Bytes of a tool call's input: a string's UTF-8 bytes, else its canonical JSON's (null and absent count 0). */
const inputLength = (v: unknown) => (typeof v === "string" ? utf8Length(v) : v === null || v === undefined ? 0 : utf8Length(canonicalize(v)));

/**
 * Measures a job's output as the hub relays it: feed it each chunk's `data` of a streamed
 * job in order, or a non-streamed job's `done.response`. Only content members count
 * (SRP-ATT-016): the string values of {@link CONTENT_KEYS}; a function call's `name` and
 * `arguments`; an Anthropic `tool_use` (or `server_tool_use`) block's `name` and `input`;
 * a `redacted_thinking` block's `data`. An `arguments` or `input` that is not a string
 * counts the bytes of its canonical JSON. The walk descends only through arrays, `choices`,
 * `message`, `delta`, `content_block`, `tool_calls`, `function`, `function_call` and a
 * non-string `content`: any other member (an unknown `x_pad`, `usage`) counts 0. Each
 * distinct tool call counts once (by its `index`, else by its `id`, within a `tool_calls`
 * array; by its `id` as an Anthropic `tool_use` or `server_tool_use` block).
 *
 * @example
 * const meter = new OutputMeter();
 * meter.add({ id: "c1", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: "héllo" }, x_pad: "aaaa" }] });
 * meter.measure; // { bytes: 6, toolCalls: 0 }
 */
export class OutputMeter {
  #bytes = 0;
  readonly #calls = new Set<string>();

  /** Adds one chunk's data (or a whole response). */
  add(value: unknown): void {
    this.#walk(value, false);
  }

  /** What has been measured so far. */
  get measure(): RelayedOutput {
    return { bytes: this.#bytes, toolCalls: this.#calls.size };
  }

  #walk(value: unknown, inToolCalls: boolean): void {
    if (Array.isArray(value)) {
      for (const v of value) {
        if (inToolCalls && isObject(v)) this.#call(typeof v.index === "number" ? `index:${v.index}` : typeof v.id === "string" ? `id:${v.id}` : undefined);
        this.#walk(v, false);
      }
      return;
    }
    if (!isObject(value)) return;
    const toolBlock = typeof value.type === "string" && TOOL_BLOCK_TYPES.has(value.type);
    if (toolBlock && typeof value.id === "string") this.#call(`id:${value.id}`);
    if (toolBlock) {
      if (typeof value.name === "string") this.#bytes += utf8Length(value.name);
      this.#bytes += inputLength(value.input);
    }
    if (value.type === "redacted_thinking" && typeof value.data === "string") this.#bytes += utf8Length(value.data);
    for (const [key, v] of Object.entries(value)) {
      if (CONTENT_KEYS.has(key)) {
        if (typeof v === "string") this.#bytes += utf8Length(v);
        else if (key === "content") this.#walk(v, false);
      } else if (FUNCTION_KEYS.has(key)) {
        if (!isObject(v)) continue;
        if (typeof v.name === "string") this.#bytes += utf8Length(v.name);
        this.#bytes += inputLength(v.arguments);
      } else if (STRUCTURE_KEYS.has(key)) {
        this.#walk(v, key === "tool_calls");
      }
    }
  }

  #call(key: string | undefined): void {
    if (key !== undefined) this.#calls.add(key);
  }
}

/** Measures one whole value (a non-streamed response, or a list of chunk data). */
export function measureOutput(...values: unknown[]): RelayedOutput {
  const meter = new OutputMeter();
  for (const v of values) meter.add(v);
  return meter.measure;
}

/**
 * What a hub admitted a job to use. A member that is absent is not bounded; `0` allows
 * none.
 */
export interface UsageBounds {
  /** The admission bound on prompt tokens (cached and cache-written ones included). */
  promptTokens?: number;
  /** The output limit the request set (`max_tokens`, `max_completion_tokens`, `max_output_tokens`), or 0 for a job without output tokens. */
  outputTokens?: number;
  /** The serving instance's context length: without `outputTokens`, the output limit is this less the receipt's prompt tokens. */
  contextTokens?: number;
  /** Images asked for. */
  images?: number;
  /** Characters of input to synthesize. */
  characters?: number;
  /** The admission bound on seconds of audio. */
  seconds?: number;
  /**
   * Whether the serving instance's offer declares the `reasoning` capability: only then may
   * `reasoningTokens` be hidden output (not relayed as text). Absent or false: reasoning
   * tokens count as visible tokens (SRP-ATT-015 check 2).
   */
  hiddenReasoning?: boolean;
}

/** The verdict of {@link checkUsagePlausibility}: plausible, or why not. */
export type PlausibilityVerdict = { plausible: true } | { plausible: false; reason: string };

/** The output limit of a job for a receipt's usage: `outputTokens`, else context less prompt, else none. */
export function outputTokenLimit(bounds: UsageBounds, usage: Pick<Usage, "promptTokens">): number | undefined {
  if (bounds.outputTokens !== undefined) return bounds.outputTokens;
  if (bounds.contextTokens !== undefined) return Math.max(bounds.contextTokens - usage.promptTokens, 0);
  return undefined;
}

/**
 * Decides whether a receipt's usage is within what its job admitted and what the hub
 * relayed (SRP-ATT-015, SRP-ATT-016), checking in order:
 *
 * 1. `completionTokens` and `reasoningTokens` at most the output limit ({@link outputTokenLimit});
 * 2. visible completion tokens at most the relayed bytes plus 16 plus 32 per tool call
 *    ({@link PLAUSIBILITY_ALLOWANCE}): `completionTokens` less `reasoningTokens` when
 *    `bounds.hiddenReasoning` (a `reasoning` instance), else all of `completionTokens`;
 * 3. `promptTokens` at most the prompt bound; `cachedTokens` plus `cacheWriteTokens` at most
 *    `promptTokens`;
 * 4. `images`, `characters` and `seconds` at most their bounds.
 *
 * @example
 * checkUsagePlausibility({ promptTokens: 12, completionTokens: 1_000_000, measured: true }, { promptTokens: 100, outputTokens: 10 }, { bytes: 9, toolCalls: 0 });
 * // { plausible: false, reason: "completionTokens 1000000 exceed the output limit 10" }
 */
export function checkUsagePlausibility(usage: Usage, bounds: UsageBounds, relayed: RelayedOutput): PlausibilityVerdict {
  const no = (reason: string): PlausibilityVerdict => ({ plausible: false, reason });
  const limit = outputTokenLimit(bounds, usage);
  const reasoning = usage.reasoningTokens ?? 0;
  if (limit !== undefined && usage.completionTokens > limit) return no(`completionTokens ${usage.completionTokens} exceed the output limit ${limit}`);
  if (limit !== undefined && reasoning > limit) return no(`reasoningTokens ${reasoning} exceed the output limit ${limit}`);
  const visible = bounds.hiddenReasoning === true ? Math.max(usage.completionTokens - reasoning, 0) : usage.completionTokens;
  const allowed = relayed.bytes + PLAUSIBILITY_ALLOWANCE.fixedTokens + PLAUSIBILITY_ALLOWANCE.perToolCallTokens * relayed.toolCalls;
  if (visible > allowed) return no(`${visible} visible completion tokens for ${relayed.bytes} bytes of output and ${relayed.toolCalls} tool call(s) relayed (at most ${allowed})`);
  if (bounds.promptTokens !== undefined && usage.promptTokens > bounds.promptTokens) return no(`promptTokens ${usage.promptTokens} exceed the admission bound ${bounds.promptTokens}`);
  const cached = (usage.cachedTokens ?? 0) + (usage.cacheWriteTokens ?? 0);
  if (cached > usage.promptTokens) return no(`cachedTokens and cacheWriteTokens (${cached}) exceed promptTokens ${usage.promptTokens}`);
  for (const unit of ["images", "characters", "seconds"] as const) {
    const bound = bounds[unit];
    const used = usage[unit] ?? 0;
    if (bound !== undefined && used > bound) return no(`${unit} ${used} exceed the ${bound} admitted`);
  }
  return { plausible: true };
}
