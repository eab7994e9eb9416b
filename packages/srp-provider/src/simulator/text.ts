/**
 * The simulator's deterministic "model": a word tokenizer for honest usage counts and a
 * text generator seeded by the request, so the same request always gets the same answer.
 */
import { sha256Hex } from "@srp/core";

const VOCABULARY = (
  "the relay carries every token from an idle machine to a waiting client and each answer is metered signed and settled " +
  "so providers earn while consumers pay only for what they use spare capacity becomes a shared network of models " +
  "routing stays fair when nodes fail and recover quickly because health is measured over days not seconds"
).split(" ");

/** Counts tokens the way the simulator bills them: words and punctuation marks. */
export function countTokens(text: string): number {
  const m = text.match(/[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_]/gu);
  return m ? m.length : 0;
}

/** Deterministic generator of `n` tokens of text for a seed string. */
export function generateTokens(seed: string, n: number): string[] {
  const out: string[] = [];
  let h = sha256Hex(seed);
  for (let i = 0; i < n; i++) {
    if (i % 16 === 0 && i > 0) h = sha256Hex(h);
    const byte = parseInt(h.slice((i % 16) * 4, (i % 16) * 4 + 4), 16);
    const word = VOCABULARY[byte % VOCABULARY.length]!;
    out.push(i === 0 ? word[0]!.toUpperCase() + word.slice(1) : ` ${word}`);
  }
  if (n > 1) out[n - 1] = ".";
  return out;
}

/** Prompt tokens of a chat request: the text of every message plus 4 per message, images 85 each. */
export function countPromptTokens(messages: unknown): number {
  if (!Array.isArray(messages)) return 0;
  let total = 0;
  for (const m of messages) {
    if (typeof m !== "object" || m === null) continue;
    total += 4;
    const content = (m as { content?: unknown }).content;
    if (typeof content === "string") total += countTokens(content);
    else if (Array.isArray(content)) {
      for (const part of content) {
        if (typeof part !== "object" || part === null) continue;
        const p = part as { type?: unknown; text?: unknown };
        if (p.type === "text" && typeof p.text === "string") total += countTokens(p.text);
        else total += 85;
      }
    }
    const calls = (m as { tool_calls?: unknown }).tool_calls;
    if (Array.isArray(calls)) total += countTokens(JSON.stringify(calls));
  }
  return total;
}
