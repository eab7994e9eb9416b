/**
 * The simulator's model of a prefix cache (a **simulator feature**, off unless enabled): a
 * simulated server remembers the last prompts it served, and reports as cached the tokens
 * of the longest prefix a new prompt shares with one of them, as vLLM with automatic
 * prefix caching and llama.cpp's slot cache do (`usage.prompt_tokens_details.cached_tokens`
 * in OpenAI's format, `cache_read_input_tokens` in Anthropic's). Tokens are the simulator's
 * own (words and punctuation marks, `countTokens`); a prompt is remembered as one
 * 32-bit hash per token, so the memory is bounded by the prompts kept.
 */
/** Prompts a simulator remembers by default. */
export const PREFIX_CACHE_PROMPTS = 64;

/** The simulator's tokenizer, the one `countTokens` counts with. */
const TOKEN = /[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_]/gu;

/** FNV-1a of a token, from `seed` (the hash of the model, so two models never share a token). */
function hashToken(token: string, seed = 0x811c9dc5): number {
  let h = seed;
  for (let i = 0; i < token.length; i++) {
    h ^= token.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A prompt as the sequence of its tokens' hashes. */
class Sequence {
  readonly #out: number[] = [];
  readonly #seed: number;
  /** @param model The model whose prompt this is: its tokens hash apart from another model's. */
  constructor(model: string) {
    this.#seed = hashToken(`\u0000model\u0000${model}`);
  }
  /** Appends the tokens of a text. */
  text(text: string): void {
    for (const m of text.matchAll(TOKEN)) this.#out.push(hashToken(m[0], this.#seed));
  }
  /** Appends `n` tokens standing for one opaque thing (an image, a turn's framing). */
  opaque(tag: string, n: number): void {
    for (let i = 0; i < n; i++) this.#out.push(hashToken(`\u0000${tag}\u0000${i}`, this.#seed));
  }
  done(): Uint32Array {
    return Uint32Array.from(this.#out);
  }
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The tokens of a chat completions prompt, in order, as many as `countPromptTokens`
 * counts: per message 4 framing tokens (they carry its role), its text, 85 per image (one
 * image's tokens depend on the image), and its tool calls' JSON. Every token is hashed with
 * the model id, so two models never share a prefix.
 */
export function chatPromptSequence(model: string, messages: unknown): Uint32Array {
  const seq = new Sequence(model);
  if (!Array.isArray(messages)) return seq.done();
  for (const m of messages) {
    if (!isObject(m)) continue;
    seq.opaque(`role:${String(m.role)}`, 4);
    const content = m.content;
    if (typeof content === "string") seq.text(content);
    else if (Array.isArray(content)) {
      for (const part of content) {
        if (!isObject(part)) continue;
        if (part.type === "text" && typeof part.text === "string") seq.text(part.text);
        else seq.opaque(`part:${JSON.stringify(part)}`, 85);
      }
    }
    if (Array.isArray(m.tool_calls)) seq.text(JSON.stringify(m.tool_calls));
  }
  return seq.done();
}

/**
 * The tokens of an Anthropic Messages prompt in the API's cache order (tools, system,
 * messages), as many as the Anthropic simulator counts: the tools' JSON, the system text,
 * per message 4 framing tokens, its text, tool results' text, tool uses' input JSON, and 85
 * per other block.
 */
export function messagesPromptSequence(model: string, body: Json): Uint32Array {
  const seq = new Sequence(model);
  const text = (v: unknown): void => {
    if (typeof v === "string") seq.text(v);
    else if (Array.isArray(v))
      for (const b of v) {
        if (!isObject(b)) continue;
        if (b.type === "text") text(b.text);
        else if (b.type === "tool_result") text(b.content);
        else if (b.type === "tool_use") seq.text(JSON.stringify(b.input ?? {}));
        else seq.opaque(`block:${JSON.stringify(b)}`, 85);
      }
  };
  if (Array.isArray(body.tools)) seq.text(JSON.stringify(body.tools));
  text(body.system);
  for (const m of Array.isArray(body.messages) ? body.messages : []) {
    seq.opaque(`role:${isObject(m) ? String(m.role) : ""}`, 4);
    if (isObject(m)) text(m.content);
  }
  return seq.done();
}

/**
 * The tokens of a Responses API prompt in cache order (tools, instructions, input), as many
 * as the simulator counts for it (`responsesInputTokens`): the tools' JSON, the
 * instructions, a string input's text; per input item, a call's name and arguments, a call
 * output's text, else 4 framing tokens (they carry its role or type), its text parts and 85
 * per other part.
 */
export function responsesPromptSequence(model: string, body: Json): Uint32Array {
  const seq = new Sequence(model);
  if (Array.isArray(body.tools) && body.tools.length > 0) seq.text(JSON.stringify(body.tools));
  if (typeof body.instructions === "string") seq.text(body.instructions);
  if (typeof body.input === "string") seq.text(body.input);
  else if (Array.isArray(body.input))
    for (const item of body.input) {
      if (!isObject(item)) continue;
      if (item.type === "function_call") {
        seq.text(String(item.name ?? ""));
        seq.text(String(item.arguments ?? ""));
      } else if (item.type === "function_call_output")
        seq.text(typeof item.output === "string" ? item.output : JSON.stringify(item.output ?? ""));
      else {
        seq.opaque(`item:${String(item.role ?? item.type)}`, 4);
        if (typeof item.content === "string") seq.text(item.content);
        else if (Array.isArray(item.content))
          for (const part of item.content) {
            if (!isObject(part)) continue;
            if (typeof part.text === "string") seq.text(part.text);
            else seq.opaque(`part:${JSON.stringify(part)}`, 85);
          }
      }
    }
  return seq.done();
}

/** Tokens two prompts share from their start. */
function commonPrefix(a: Uint32Array, b: Uint32Array): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * A simulated server's prefix cache: the last `maxPrompts` prompts it served. A prompt's
 * cached tokens are the longest prefix it shares with one of them, less the last token (a
 * server always computes at least one token of the prompt, as vLLM and llama.cpp do).
 */
export class PrefixCache {
  #prompts: Uint32Array[] = [];
  readonly #max: number;

  /** @param maxPrompts Prompts remembered; the oldest are forgotten first. */
  constructor(maxPrompts = PREFIX_CACHE_PROMPTS) {
    this.#max = Math.max(1, Math.floor(maxPrompts));
  }

  /** Serves a prompt: answers its cached tokens, then remembers it (forgetting prompts it extends). */
  serve(prompt: Uint32Array): number {
    let best = 0;
    const kept: Uint32Array[] = [];
    for (const p of this.#prompts) {
      const n = commonPrefix(p, prompt);
      if (n > best) best = n;
      if (n < p.length) kept.push(p); // a remembered prompt the new one extends is covered by it
    }
    kept.push(prompt);
    while (kept.length > this.#max) kept.shift();
    this.#prompts = kept;
    return Math.min(best, Math.max(0, prompt.length - 1));
  }

  /** Prompts remembered now. */
  get size(): number {
    return this.#prompts.length;
  }
}
