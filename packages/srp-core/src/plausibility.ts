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
import type { JobApi } from "./schema/jobs.js";

/** The allowances of the visible-output rule (SRP-ATT-016), in tokens. */
export const PLAUSIBILITY_ALLOWANCE = Object.freeze({
  /** Tokens a job may produce without visible text (end of sequence, a stop sequence, template markers). */
  fixedTokens: 16,
  /** Tokens each tool call may add without visible text (its call markers and wrapping). */
  perToolCallTokens: 32,
});

/** The members of a chat choice's `delta` (streamed) or `message` (not streamed) whose string value is output text (SRP-ATT-016). */
export const CONTENT_KEYS: ReadonlySet<string> = new Set(["content", "refusal", "reasoning_content", "reasoning"]);

/** Block types that are tool calls in Anthropic's format: their `name` and `input` count. */
const TOOL_BLOCK_TYPES: ReadonlySet<string> = new Set(["tool_use", "server_tool_use"]);

/**
 * Responses API stream events that carry output text of one part of an output item
 * (SRP-ATT-016), by event type: the part (`content`, by `content_index`; `summary`, by
 * `summary_index`; `arguments`, a call's arguments or input) and the member holding the text
 * (`delta` in the delta events, the whole text in the done events).
 */
const RESPONSES_TEXT_EVENTS: ReadonlyMap<string, { part: "content" | "summary" | "arguments"; member: string; delta: boolean }> = new Map([
  ["response.output_text.delta", { part: "content", member: "delta", delta: true }],
  ["response.refusal.delta", { part: "content", member: "delta", delta: true }],
  ["response.reasoning_text.delta", { part: "content", member: "delta", delta: true }],
  ["response.reasoning_summary_text.delta", { part: "summary", member: "delta", delta: true }],
  ["response.function_call_arguments.delta", { part: "arguments", member: "delta", delta: true }],
  ["response.custom_tool_call_input.delta", { part: "arguments", member: "delta", delta: true }],
  ["response.output_text.done", { part: "content", member: "text", delta: false }],
  ["response.refusal.done", { part: "content", member: "refusal", delta: false }],
  ["response.reasoning_text.done", { part: "content", member: "text", delta: false }],
  ["response.reasoning_summary_text.done", { part: "summary", member: "text", delta: false }],
  ["response.function_call_arguments.done", { part: "arguments", member: "arguments", delta: false }],
  ["response.custom_tool_call_input.done", { part: "arguments", member: "input", delta: false }],
]);

/** Responses API output item types that are tool calls: each one call. */
const RESPONSES_CALL_ITEMS: ReadonlySet<string> = new Set(["function_call", "custom_tool_call"]);

/** What the hub relayed of a job's output. */
export interface RelayedOutput {
  /** UTF-8 bytes of the output's content members (SRP-ATT-016). */
  bytes: number;
  /** Distinct tool calls in the output. */
  toolCalls: number;
}

/** The shape of a job's output, which decides where its text is (SRP-ATT-016). */
export interface OutputShape {
  /** The job's API: `chat.completions`, `completions`, `messages` and `responses` have output text; the other APIs none. */
  api: JobApi;
  /** Whether the job streams: its values are chunks (chat) or events (messages), else one response. */
  stream: boolean;
  /** Choices a chat or legacy completions request asked for (its `n`); default 1. Only choices numbered below it count. */
  choices?: number;
}

/** Something that measures relayed output: an {@link OutputMeter}, or a hub's meter of what its translation relays. */
export interface OutputMeasurer {
  /** Adds one chunk's data (or a whole response). */
  add(value: unknown): void;
  /** What has been measured so far. */
  readonly measure: RelayedOutput;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const isIndex = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0;
const encoder = new TextEncoder();
const utf8Length = (s: string) => encoder.encode(s).length;
const stringLength = (v: unknown) => (typeof v === "string" ? utf8Length(v) : 0);

/**
 * The choices of a chat chunk or completion that are counted (and shown) for a request of
 * `n` choices, in order: each object element of `choices` whose number (its `index` member
 * when that is a non-negative integer, else its position) is below `n` (SRP-ATT-016).
 *
 * @example
 * chatChoices({ choices: [{ index: 1, delta: {} }, { index: 0, delta: { content: "a" } }] }, 1); // [{ index: 0, choice: { index: 0, delta: { content: "a" } } }]
 */
export function chatChoices(value: unknown, n = 1): { index: number; choice: Record<string, unknown> }[] {
  if (!isObject(value) || !Array.isArray(value.choices)) return [];
  const out: { index: number; choice: Record<string, unknown> }[] = [];
  value.choices.forEach((choice: unknown, position: number) => {
    if (!isObject(choice)) return;
    const index = isIndex(choice.index) ? choice.index : position;
    if (index < n) out.push({ index, choice });
  });
  return out;
}

/**
 * The text of a chat message's `content`: a string as is; an array of parts, the `text` of
 * its `text` parts joined; anything else empty (SRP-ATT-016).
 *
 * @example
 * chatContentText([{ type: "text", text: "a" }, { type: "image_url" }, { type: "text", text: "b" }]); // "ab"
 */
export function chatContentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map((p: unknown) => (isObject(p) && p.type === "text" && typeof p.text === "string" ? p.text : "")).join("");
}

/**
 * Measures a job's output as the hub relays it (SRP-ATT-016), counting only the positions a
 * client of the job's API reads: feed it each chunk's `data` of a streamed job in order, or
 * a non-streamed job's `done.response`.
 *
 * - `chat.completions`: in each choice {@link chatChoices} keeps, only its `delta` (streamed)
 *   or `message` (not streamed): the string values of {@link CONTENT_KEYS} (an array
 *   `content` by its text parts, {@link chatContentText}); each tool call's
 *   `function.arguments` when a string, and its `function.name` the first time the call
 *   carries a string one; the legacy `function_call` likewise. A tool call is identified by
 *   its `index`, else its `id`, else it continues the choice's last call (else index 0).
 * - `messages`, streamed: by event `type` only: the blocks of `message_start.message.content`,
 *   `content_block_start.content_block`, and `content_block_delta.delta` by its `type`
 *   (`text_delta.text`, `thinking_delta.thinking`, `signature_delta.signature`,
 *   `input_json_delta.partial_json`). Not streamed: the response's `content` blocks. A block
 *   counts `text` (text), `thinking` and `signature` (thinking), `data` (redacted_thinking),
 *   `name` and the canonical JSON of a non-empty object `input` (tool_use, server_tool_use:
 *   each one call, by its `id`, else its position).
 * - `completions` (legacy text completions), streamed or not: the string `text` of each
 *   choice {@link chatChoices} keeps.
 * - `responses`, streamed: by event `type` only, per part of each output item (the item by
 *   `output_index`, else `item_id`; the part by `content_index` or `summary_index`, or the
 *   item's name or arguments), the larger of the sum of its text deltas
 *   (`response.output_text.delta`, `response.refusal.delta`, `response.reasoning_text.delta`,
 *   `response.reasoning_summary_text.delta`, `response.function_call_arguments.delta`,
 *   `response.custom_tool_call_input.delta`) and the longest whole text of it in a done event
 *   (`response.output_text.done`, `.refusal.done`, `.reasoning_text.done`,
 *   `.reasoning_summary_text.done`, `.function_call_arguments.done`,
 *   `.custom_tool_call_input.done`, `response.content_part.done`,
 *   `response.reasoning_summary_part.done`) or in the `item` of `response.output_item.added`
 *   or `response.output_item.done`. A server that sends text only in done events is
 *   measured in full, and one that sends it twice counts once. Not streamed: the items of
 *   the response's `output`. An output item counts: `message`, its content parts' `text`
 *   (`output_text`) and `refusal`; `reasoning`, the `text` of its `summary` and `content`
 *   parts; `function_call` and `custom_tool_call` (each one call, by `call_id`, else `id`,
 *   else its position), its `name` and its string `arguments` or `input`.
 * - Any other API, and anything else anywhere: 0.
 *
 * @example
 * const meter = new OutputMeter({ api: "chat.completions", stream: true });
 * meter.add({ object: "chat.completion.chunk", message: { content: "pad" }, choices: [{ index: 0, delta: { content: "héllo" }, x_pad: "aaaa" }] });
 * meter.measure; // { bytes: 6, toolCalls: 0 }
 */
export class OutputMeter implements OutputMeasurer {
  readonly #shape: OutputShape;
  #bytes = 0;
  readonly #calls = new Set<string>();
  readonly #named = new Set<string>();
  /** A chat choice's last tool call key, by choice number. */
  readonly #lastCall = new Map<number, string>();
  /** A streamed response's parts (item and part key): the sum of their deltas and the longest whole text seen of them. */
  readonly #parts = new Map<string, { deltas: number; whole: number }>();
  /** A streamed response's item ids by output index, so that events naming either find the same item. */
  readonly #itemIndex = new Map<string, number>();

  /** @param shape The job's API, whether it streams and, for chat, the choices asked for. */
  constructor(shape: OutputShape) {
    this.#shape = shape;
  }

  /** The meter of a job: its `api`, `stream`, and for `chat.completions` the request's `n` (default 1). */
  static forJob(job: { api: JobApi; stream: boolean; request: Record<string, unknown> }): OutputMeter {
    const n = job.request.n;
    return new OutputMeter({
      api: job.api,
      stream: job.stream,
      choices: (job.api === "chat.completions" || job.api === "completions") && isIndex(n) && n > 0 ? n : 1,
    });
  }

  /** Adds one chunk's data (or a whole response). */
  add(value: unknown): void {
    if (!isObject(value)) return;
    if (this.#shape.api === "chat.completions") this.#chat(value);
    else if (this.#shape.api === "messages") this.#messages(value);
    else if (this.#shape.api === "completions") this.#completions(value);
    else if (this.#shape.api === "responses") this.#responses(value);
  }

  /** What has been measured so far. */
  get measure(): RelayedOutput {
    return { bytes: this.#bytes, toolCalls: this.#calls.size };
  }

  #chat(value: Json): void {
    for (const { index, choice } of chatChoices(value, this.#shape.choices ?? 1)) {
      const part = this.#shape.stream ? choice.delta : choice.message;
      if (!isObject(part)) continue;
      for (const key of CONTENT_KEYS)
        this.#bytes += key === "content" ? utf8Length(chatContentText(part.content)) : stringLength(part[key]);
      if (Array.isArray(part.tool_calls)) {
        for (const call of part.tool_calls as unknown[]) {
          if (!isObject(call)) continue;
          const id = isIndex(call.index)
            ? `index:${call.index}`
            : typeof call.id === "string"
              ? `id:${call.id}`
              : (this.#lastCall.get(index) ?? "index:0");
          this.#lastCall.set(index, id);
          const key = `${index}:${id}`;
          this.#calls.add(key);
          this.#function(key, call.function);
        }
      }
      this.#function(`${index}:function_call`, part.function_call);
    }
  }

  #completions(value: Json): void {
    for (const { choice } of chatChoices(value, this.#shape.choices ?? 1)) this.#bytes += stringLength(choice.text);
  }

  #responses(value: Json): void {
    if (!this.#shape.stream) {
      if (Array.isArray(value.output))
        value.output.forEach((item: unknown, i: number) => this.#item(item, `output:${i}`, (_part, bytes) => (this.#bytes += bytes)));
      return;
    }
    const type = value.type;
    if (typeof type !== "string") return;
    const text = RESPONSES_TEXT_EVENTS.get(type);
    if (text) {
      const index = text.part === "content" ? value.content_index : text.part === "summary" ? value.summary_index : 0;
      this.#part(
        `${this.#itemKey(value.output_index, value.item_id)}|${text.part}:${isIndex(index) ? index : 0}`,
        stringLength(value[text.member]),
        text.delta,
      );
    } else if (type === "response.output_item.added" || type === "response.output_item.done") {
      const item = isObject(value.item) ? value.item : {};
      const key = this.#itemKey(value.output_index, item.id);
      this.#item(item, `output:${isIndex(value.output_index) ? value.output_index : ""}`, (part, bytes) =>
        this.#part(`${key}|${part}`, bytes, false),
      );
    } else if (type === "response.content_part.done" || type === "response.reasoning_summary_part.done") {
      const summary = type === "response.reasoning_summary_part.done";
      const index = summary ? value.summary_index : value.content_index;
      const p = isObject(value.part) ? value.part : {};
      this.#part(
        `${this.#itemKey(value.output_index, value.item_id)}|${summary ? "summary" : "content"}:${isIndex(index) ? index : 0}`,
        stringLength(p.text) + stringLength(p.refusal),
        false,
      );
    }
  }

  /** The key of a streamed response's output item: its `output_index`, else its id (mapped to its index once an event names both). */
  #itemKey(outputIndex: unknown, id: unknown): string {
    if (isIndex(outputIndex)) {
      if (typeof id === "string" && !this.#itemIndex.has(id)) {
        this.#itemIndex.set(id, outputIndex);
        this.#merge(`id:${id}`, `o:${outputIndex}`);
      }
      return `o:${outputIndex}`;
    }
    if (typeof id !== "string") return "o:?";
    const known = this.#itemIndex.get(id);
    return known === undefined ? `id:${id}` : `o:${known}`;
  }

  /** Moves the parts measured under an item's id to its output index (deltas add up, whole texts keep the larger). */
  #merge(from: string, to: string): void {
    for (const [key, part] of [...this.#parts]) {
      if (!key.startsWith(`${from}|`)) continue;
      this.#parts.delete(key);
      this.#bytes -= Math.max(part.deltas, part.whole);
      const target = `${to}${key.slice(from.length)}`;
      this.#part(target, part.deltas, true);
      this.#part(target, part.whole, false);
    }
  }

  /** Adds a delta to a part, or a whole text of it; the part counts the larger of its deltas' sum and its longest whole text. */
  #part(key: string, bytes: number, delta: boolean): void {
    const part = this.#parts.get(key) ?? { deltas: 0, whole: 0 };
    const before = Math.max(part.deltas, part.whole);
    if (delta) part.deltas += bytes;
    else part.whole = Math.max(part.whole, bytes);
    this.#parts.set(key, part);
    this.#bytes += Math.max(part.deltas, part.whole) - before;
  }

  /** One Responses API output item (SRP-ATT-016): its calls, and the bytes of each of its parts (`content:i`, `summary:i`, `name`, `arguments:0`) to `count`. */
  #item(item: unknown, position: string, count: (part: string, bytes: number) => void): void {
    if (!isObject(item)) return;
    const texts = (name: string, parts: unknown) => {
      if (Array.isArray(parts))
        parts.forEach((p: unknown, i: number) => count(`${name}:${i}`, isObject(p) ? stringLength(p.text) + stringLength(p.refusal) : 0));
    };
    if (item.type === "message") texts("content", item.content);
    else if (item.type === "reasoning") {
      texts("summary", item.summary);
      texts("content", item.content);
    } else if (typeof item.type === "string" && RESPONSES_CALL_ITEMS.has(item.type)) {
      this.#calls.add(typeof item.call_id === "string" ? `call:${item.call_id}` : typeof item.id === "string" ? `id:${item.id}` : position);
      count("name", stringLength(item.name));
      count("arguments:0", stringLength(item.arguments) + stringLength(item.input));
    }
  }

  /** A function call's name (once per call) and string arguments. */
  #function(key: string, fn: unknown): void {
    if (!isObject(fn)) return;
    if (typeof fn.name === "string" && !this.#named.has(key)) {
      this.#named.add(key);
      this.#bytes += utf8Length(fn.name);
    }
    this.#bytes += stringLength(fn.arguments);
  }

  #messages(value: Json): void {
    if (!this.#shape.stream) return this.#blocks(value.content, "block");
    switch (value.type) {
      case "message_start":
        if (isObject(value.message)) this.#blocks(value.message.content, "start");
        return;
      case "content_block_start":
        return this.#block(value.content_block, `block:${isIndex(value.index) ? value.index : ""}`);
      case "content_block_delta": {
        const d = value.delta;
        if (!isObject(d)) return;
        const member =
          d.type === "text_delta"
            ? "text"
            : d.type === "thinking_delta"
              ? "thinking"
              : d.type === "signature_delta"
                ? "signature"
                : d.type === "input_json_delta"
                  ? "partial_json"
                  : undefined;
        if (member) this.#bytes += stringLength(d[member]);
        return;
      }
    }
  }

  #blocks(content: unknown, prefix: string): void {
    if (Array.isArray(content)) content.forEach((b: unknown, i: number) => this.#block(b, `${prefix}:${i}`));
  }

  #block(b: unknown, position: string): void {
    if (!isObject(b)) return;
    if (b.type === "text") this.#bytes += stringLength(b.text);
    else if (b.type === "thinking") this.#bytes += stringLength(b.thinking) + stringLength(b.signature);
    else if (b.type === "redacted_thinking") this.#bytes += stringLength(b.data);
    else if (typeof b.type === "string" && TOOL_BLOCK_TYPES.has(b.type)) {
      this.#calls.add(typeof b.id === "string" ? `id:${b.id}` : position);
      this.#bytes += stringLength(b.name) + (isObject(b.input) && Object.keys(b.input).length > 0 ? utf8Length(canonicalize(b.input)) : 0);
    }
  }
}

/** Measures whole values of one shape (a non-streamed response, or a list of chunk data). */
export function measureOutput(shape: OutputShape, ...values: unknown[]): RelayedOutput {
  const meter = new OutputMeter(shape);
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
   * Runs of an async job (SRP-ATT-027): 1 for a `videos` or `runs` job. Unlike the other
   * units, absent means 0, so a hub that never sets it bills no runs.
   */
  runs?: number;
  /**
   * Whether the serving instance's offer declares the `reasoning` capability: only then may
   * `reasoningTokens` be hidden output (not relayed as text). Absent or false: reasoning
   * tokens count as visible tokens (SRP-ATT-015 check 2).
   */
  hiddenReasoning?: boolean;
  /**
   * Anthropic extended thinking on a `reasoning` instance: the request's
   * `thinking.budget_tokens` ({@link thinkingBudget}). Claude bills its full thinking while
   * relaying a summary, so up to this many tokens (at most the output limit) may be hidden
   * output without a `reasoningTokens` report (SRP-ATT-015).
   */
  hiddenThinkingTokens?: number;
}

/**
 * The thinking budget of an Anthropic Messages request: `thinking.budget_tokens` when
 * `thinking.type` is `enabled` and the budget is a positive integer; `max_tokens` (a
 * positive integer) when `thinking.type` is `adaptive`, since Claude then decides how much
 * to think within `max_tokens`; else undefined.
 *
 * @example
 * thinkingBudget({ max_tokens: 16000, thinking: { type: "enabled", budget_tokens: 10000 } }); // 10000
 * thinkingBudget({ max_tokens: 16000, thinking: { type: "adaptive" } }); // 16000
 */
export function thinkingBudget(request: Record<string, unknown>): number | undefined {
  const t = request.thinking;
  if (!isObject(t)) return undefined;
  const budget = t.type === "enabled" ? t.budget_tokens : t.type === "adaptive" ? request.max_tokens : undefined;
  return isIndex(budget) && budget > 0 ? budget : undefined;
}

/**
 * The Anthropic thinking budget a node forwarding chat jobs to an Anthropic key asks for
 * each chat `reasoning_effort` (consumer.md SRP-CON-080), before the cap at `max_tokens` − 1.
 */
export const REASONING_EFFORT_BUDGETS: Readonly<Record<string, number>> = Object.freeze({
  minimal: 1024,
  low: 1024,
  medium: 4096,
  high: 16384,
  xhigh: 32768,
});

/**
 * The thinking budget of a chat request's `reasoning_effort` ({@link REASONING_EFFORT_BUDGETS}),
 * or undefined for `none`, an absent or an unknown effort. A hub allows that many hidden
 * output tokens (`UsageBounds.hiddenThinkingTokens`) for a chat job on a `reasoning` instance
 * that forwards to Anthropic, which bills its full thinking and relays a summary.
 *
 * @example
 * reasoningEffortBudget({ reasoning_effort: "medium" }); // 4096
 */
export function reasoningEffortBudget(request: Record<string, unknown>): number | undefined {
  const effort = request.reasoning_effort;
  return typeof effort === "string" && Object.hasOwn(REASONING_EFFORT_BUDGETS, effort) ? REASONING_EFFORT_BUDGETS[effort] : undefined;
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
 *    ({@link PLAUSIBILITY_ALLOWANCE}): `completionTokens` less the hidden tokens (the larger
 *    of `reasoningTokens` when `bounds.hiddenReasoning`, and `bounds.hiddenThinkingTokens`
 *    at most the output limit), at least 0;
 * 3. `promptTokens` at most the prompt bound; `cachedTokens` plus `cacheWriteTokens` at most
 *    `promptTokens`;
 * 4. `images`, `characters` and `seconds` at most their bounds; `runs` at most its bound (0 when absent).
 *
 * @example
 * checkUsagePlausibility({ promptTokens: 12, completionTokens: 1_000_000, measured: true }, { promptTokens: 100, outputTokens: 10 }, { bytes: 9, toolCalls: 0 });
 * // { plausible: false, reason: "completionTokens 1000000 exceed the output limit 10" }
 */
export function checkUsagePlausibility(usage: Usage, bounds: UsageBounds, relayed: RelayedOutput): PlausibilityVerdict {
  const no = (reason: string): PlausibilityVerdict => ({ plausible: false, reason });
  const limit = outputTokenLimit(bounds, usage);
  const reasoning = usage.reasoningTokens ?? 0;
  if (limit !== undefined && usage.completionTokens > limit)
    return no(`completionTokens ${usage.completionTokens} exceed the output limit ${limit}`);
  if (limit !== undefined && reasoning > limit) return no(`reasoningTokens ${reasoning} exceed the output limit ${limit}`);
  const thinking = Math.min(bounds.hiddenThinkingTokens ?? 0, limit ?? Infinity);
  const hidden = Math.max(bounds.hiddenReasoning === true ? reasoning : 0, thinking);
  const visible = Math.max(usage.completionTokens - hidden, 0);
  const allowed = relayed.bytes + PLAUSIBILITY_ALLOWANCE.fixedTokens + PLAUSIBILITY_ALLOWANCE.perToolCallTokens * relayed.toolCalls;
  if (visible > allowed)
    return no(
      `${visible} visible completion tokens for ${relayed.bytes} bytes of output and ${relayed.toolCalls} tool call(s) relayed (at most ${allowed})`,
    );
  if (bounds.promptTokens !== undefined && usage.promptTokens > bounds.promptTokens)
    return no(`promptTokens ${usage.promptTokens} exceed the admission bound ${bounds.promptTokens}`);
  const cached = (usage.cachedTokens ?? 0) + (usage.cacheWriteTokens ?? 0);
  if (cached > usage.promptTokens) return no(`cachedTokens and cacheWriteTokens (${cached}) exceed promptTokens ${usage.promptTokens}`);
  for (const unit of ["images", "characters", "seconds"] as const) {
    const bound = bounds[unit];
    const used = usage[unit] ?? 0;
    if (bound !== undefined && used > bound) return no(`${unit} ${used} exceed the ${bound} admitted`);
  }
  if ((usage.runs ?? 0) > (bounds.runs ?? 0)) return no(`runs ${usage.runs} exceed the ${bounds.runs ?? 0} admitted`);
  return { plausible: true };
}
