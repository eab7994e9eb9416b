import { describe, expect, it } from "vitest";
import { checkUsagePlausibility, measureOutput, OutputMeter, outputTokenLimit } from "./plausibility.js";

const base = { id: "chatcmpl-1", object: "chat.completion.chunk", created: 1700000000, model: "m", system_fingerprint: "fp" };
const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });

describe("measuring relayed output (SRP-ATT-016 vectors)", () => {
  it("vector 1: a chat stream counts only its text, not its envelope or usage", () => {
    const chunks = [chunk({ role: "assistant", content: "" }), chunk({ content: "Hi" }), chunk({ content: " there" }), chunk({}, "stop"), { ...base, choices: [], usage: { prompt_tokens: 9, completion_tokens: 1_000_000, total_tokens: 1_000_009 } }];
    expect(measureOutput(...chunks)).toEqual({ bytes: 8, toolCalls: 0 });
  });

  it("vector 2: multi-byte UTF-8 counts bytes, not characters", () => {
    expect(measureOutput({ choices: [{ index: 0, message: { role: "assistant", content: "héllo wörld ✓" }, finish_reason: "stop" }] })).toEqual({ bytes: 17, toolCalls: 0 });
    expect(measureOutput({ choices: [{ message: { content: "日本語" } }] }).bytes).toBe(9);
    expect(measureOutput({ choices: [{ message: { content: "🙂" } }] }).bytes).toBe(4);
  });

  it("vector 3: a streamed tool call counts once, by its index, with its name and argument bytes", () => {
    const meter = new OutputMeter();
    meter.add(chunk({ role: "assistant", tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "get_weather", arguments: "" } }] }));
    meter.add(chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }));
    meter.add(chunk({ tool_calls: [{ index: 0, function: { arguments: '"Oslo"}' } }] }));
    meter.add(chunk({}, "tool_calls"));
    expect(meter.measure).toEqual({ bytes: 11 + 8 + 7, toolCalls: 1 });
  });

  it("vector 4: a non-streamed answer with two tool calls counts them by id", () => {
    const response = {
      id: "chatcmpl-2",
      object: "chat.completion",
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            content: null,
            tool_calls: [
              { id: "call_a", type: "function", function: { name: "f", arguments: "{}" } },
              { id: "call_b", type: "function", function: { name: "g", arguments: '{"x":1}' } },
            ],
          },
          finish_reason: "tool_calls",
        },
      ],
    };
    expect(measureOutput(response)).toEqual({ bytes: 1 + 2 + 1 + 7, toolCalls: 2 });
  });

  it("vector 5: Anthropic events count text and JSON deltas; a tool_use block counts once and its object input by canonical JSON", () => {
    const events = [
      { type: "message_start", message: { id: "msg_1", type: "message", role: "assistant", content: [], model: "claude", stop_reason: null, usage: { input_tokens: 5, output_tokens: 1 } } },
      { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
      { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Ok." } },
      { type: "content_block_start", index: 1, content_block: { type: "tool_use", id: "toolu_1", name: "calc", input: {} } },
      { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: '{"a": 1}' } },
      { type: "message_delta", delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: 999 } },
    ];
    expect(measureOutput(...events)).toEqual({ bytes: 3 + 4 + 2 + 8, toolCalls: 1 });
    const message = { id: "msg_2", type: "message", role: "assistant", content: [{ type: "tool_use", id: "toolu_2", name: "calc", input: { b: 2, a: "x" } }], usage: { input_tokens: 1, output_tokens: 1 } };
    // name "calc" (4) + canonical {"a":"x","b":2} (15)
    expect(measureOutput(message)).toEqual({ bytes: 4 + 15, toolCalls: 1 });
  });
});

describe("only content members count (SRP-ATT-016 vectors 7 to 9)", () => {
  it("vector 7: unknown members, even named like content, and an unknown member's nested content count 0", () => {
    const padded = { ...chunk({ content: "Hi", x_pad: "a".repeat(5000) }), x_pad: "a".repeat(5000), extra: { content: "a".repeat(5000) } };
    (padded.choices[0] as Record<string, unknown>).x_pad = { content: "a".repeat(5000) };
    expect(measureOutput(padded)).toEqual({ bytes: 2, toolCalls: 0 });
  });

  it("vector 8: refusal, reasoning, legacy function_call and completions text count", () => {
    expect(measureOutput(chunk({ reasoning_content: "abc", reasoning: "de", refusal: "no" }))).toEqual({ bytes: 7, toolCalls: 0 });
    expect(measureOutput({ choices: [{ message: { content: null, function_call: { name: "f", arguments: '{"a":1}' } } }] })).toEqual({ bytes: 8, toolCalls: 0 });
    expect(measureOutput({ object: "text_completion", choices: [{ index: 0, text: "hello", finish_reason: "stop" }] })).toEqual({ bytes: 5, toolCalls: 0 });
  });

  it("vector 9: Anthropic thinking, signature and redacted_thinking data count; a text block's citations do not", () => {
    const message = {
      type: "message",
      content: [
        { type: "thinking", thinking: "hmm", signature: "sig" },
        { type: "redacted_thinking", data: "xyz" },
        { type: "text", text: "Ok", citations: [{ type: "char_location", cited_text: "a".repeat(100) }] },
      ],
    };
    expect(measureOutput(message)).toEqual({ bytes: 3 + 3 + 3 + 2, toolCalls: 0 });
    expect(measureOutput({ type: "content_block_delta", index: 0, delta: { type: "signature_delta", signature: "abcd" } })).toEqual({ bytes: 4, toolCalls: 0 });
  });
});

describe("checkUsagePlausibility (SRP-ATT-015, SRP-ATT-016)", () => {
  const relayed = { bytes: 9, toolCalls: 0 };
  it("refuses completion tokens above the request's output limit", () => {
    const v = checkUsagePlausibility({ promptTokens: 12, completionTokens: 1_000_000, measured: true }, { promptTokens: 100, outputTokens: 10 }, relayed);
    expect(v).toEqual({ plausible: false, reason: "completionTokens 1000000 exceed the output limit 10" });
  });

  it("without an output limit, bounds completion by the context less the prompt", () => {
    expect(outputTokenLimit({ contextTokens: 8192 }, { promptTokens: 192 })).toBe(8000);
    expect(outputTokenLimit({}, { promptTokens: 192 })).toBeUndefined();
    const v = checkUsagePlausibility({ promptTokens: 192, completionTokens: 8001, reasoningTokens: 8001, measured: true }, { contextTokens: 8192 }, { bytes: 0, toolCalls: 0 });
    expect(v.plausible).toBe(false);
    expect(checkUsagePlausibility({ promptTokens: 192, completionTokens: 8000, reasoningTokens: 7990, measured: true }, { contextTokens: 8192, hiddenReasoning: true }, { bytes: 0, toolCalls: 0 }).plausible).toBe(true);
  });

  it("refuses visible tokens above relayed bytes + 16 + 32 per tool call, and accepts exactly the allowance", () => {
    expect(checkUsagePlausibility({ promptTokens: 5, completionTokens: 25, measured: true }, {}, relayed)).toEqual({ plausible: true });
    expect(checkUsagePlausibility({ promptTokens: 5, completionTokens: 26, measured: true }, {}, relayed).plausible).toBe(false);
    expect(checkUsagePlausibility({ promptTokens: 5, completionTokens: 26 + 32, measured: true }, {}, { bytes: 10, toolCalls: 1 }).plausible).toBe(true);
  });

  it("lets hidden reasoning tokens exceed the relayed text up to the output limit, on a reasoning instance only", () => {
    const usage = { promptTokens: 5, completionTokens: 500, reasoningTokens: 495, measured: true };
    expect(checkUsagePlausibility(usage, { outputTokens: 512, hiddenReasoning: true }, { bytes: 3, toolCalls: 0 })).toEqual({ plausible: true });
    expect(checkUsagePlausibility(usage, { outputTokens: 499, hiddenReasoning: true }, { bytes: 3, toolCalls: 0 }).plausible).toBe(false);
    // Without the `reasoning` capability, reasoning tokens are visible tokens: 500 for 3 bytes is refused.
    expect(checkUsagePlausibility(usage, { outputTokens: 512 }, { bytes: 3, toolCalls: 0 })).toEqual({ plausible: false, reason: "500 visible completion tokens for 3 bytes of output and 0 tool call(s) relayed (at most 19)" });
    // Relayed reasoning text counts as output bytes, so a non-reasoning instance that shows its reasoning passes.
    const shown = measureOutput({ choices: [{ message: { content: "Ok", reasoning_content: "x".repeat(490) } }] });
    expect(checkUsagePlausibility(usage, { outputTokens: 512 }, shown)).toEqual({ plausible: true });
  });

  it("accepts what a real byte-level tokenizer reports for multi-byte text (fewer tokens than bytes)", () => {
    // "日本語のテキスト" is 24 bytes; tokenizers give it 5 to 24 tokens, plus an end-of-sequence token.
    const out = measureOutput({ choices: [{ message: { content: "日本語のテキスト" } }] });
    for (const n of [5, 12, 25]) expect(checkUsagePlausibility({ promptTokens: 10, completionTokens: n, measured: true }, { outputTokens: 64, promptTokens: 100 }, out).plausible).toBe(true);
  });

  it("refuses prompt tokens above the admission bound and cache counts above the prompt", () => {
    expect(checkUsagePlausibility({ promptTokens: 101, completionTokens: 1, measured: true }, { promptTokens: 100 }, relayed)).toEqual({ plausible: false, reason: "promptTokens 101 exceed the admission bound 100" });
    expect(checkUsagePlausibility({ promptTokens: 10, completionTokens: 1, cachedTokens: 6, cacheWriteTokens: 5, measured: true }, {}, relayed).plausible).toBe(false);
  });

  it("bounds images, characters and seconds by what was asked; 0 allows none, absent is unbounded", () => {
    expect(checkUsagePlausibility({ promptTokens: 0, completionTokens: 0, images: 2, measured: true }, { images: 1 }, relayed)).toEqual({ plausible: false, reason: "images 2 exceed the 1 admitted" });
    expect(checkUsagePlausibility({ promptTokens: 0, completionTokens: 0, characters: 11, measured: true }, { characters: 11 }, relayed)).toEqual({ plausible: true });
    expect(checkUsagePlausibility({ promptTokens: 0, completionTokens: 0, seconds: 61, measured: true }, { seconds: 60 }, relayed).plausible).toBe(false);
    expect(checkUsagePlausibility({ promptTokens: 0, completionTokens: 1, measured: true }, { outputTokens: 0 }, relayed).plausible).toBe(false);
    expect(checkUsagePlausibility({ promptTokens: 0, completionTokens: 0, images: 4, measured: true }, {}, relayed).plausible).toBe(true);
  });
});
