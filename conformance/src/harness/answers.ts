/**
 * The answers the harness's node gives in hub mode: the usage it reports, OpenAI chat
 * completion chunks for a streamed answer, and a chat.completion for a non-streamed one.
 */
import type { Job, Usage } from "@srp/core/schema";
import { hex } from "./instances.js";

/** The usage the harness's node reports for an answer of `pieces`: 11 prompt tokens, one completion token a piece. */
export function usageOf(pieces: string[]): Usage {
  return { promptTokens: 11, completionTokens: Math.max(1, pieces.length), measured: true };
}

/** OpenAI chat.completion.chunk objects for an answer: role, one per piece, finish, and a usage chunk when the request asked for one. */
export function chatChunks(job: Job, pieces: string[], usage: Usage): Record<string, unknown>[] {
  const base = { id: `chatcmpl-conf${hex(8)}`, object: "chat.completion.chunk", created: Math.floor(Date.now() / 1000), model: job.model };
  const choice = (delta: Record<string, unknown>, finish: string | null) => ({
    ...base,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });
  const out: Record<string, unknown>[] = [
    choice({ role: "assistant", content: "" }, null),
    ...pieces.map((p) => choice({ content: p }, null)),
    choice({}, "stop"),
  ];
  const options = job.request.stream_options as { include_usage?: unknown } | undefined;
  if (options?.include_usage === true) {
    out.push({
      ...base,
      choices: [],
      usage: {
        prompt_tokens: usage.promptTokens,
        completion_tokens: usage.completionTokens,
        total_tokens: usage.promptTokens + usage.completionTokens,
      },
    });
  }
  return out;
}

/** A chat.completion answering `job` with `content`, its body's usage as given (which a hub must not show unless the receipt agrees). */
export function chatResponse(
  job: Job,
  content: string,
  usage: { prompt_tokens: number; completion_tokens: number },
): Record<string, unknown> {
  return {
    id: `chatcmpl-conf${hex(8)}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: job.model,
    choices: [{ index: 0, message: { role: "assistant", content }, logprobs: null, finish_reason: "stop" }],
    usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
  };
}
