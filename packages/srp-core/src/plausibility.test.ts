import { describe, expect, it } from "vitest";
import {
  chatChoices,
  chatContentText,
  checkUsagePlausibility,
  measureOutput,
  OutputMeter,
  outputTokenLimit,
  thinkingBudget,
  type OutputShape,
} from "./plausibility.js";

const base = { id: "chatcmpl-1", object: "chat.completion.chunk", created: 1700000000, model: "m", system_fingerprint: "fp" };
const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
  ...base,
  choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
});
const CHAT_STREAM: OutputShape = { api: "chat.completions", stream: true };
const CHAT: OutputShape = { api: "chat.completions", stream: false };
const EVENTS: OutputShape = { api: "messages", stream: true };
const MESSAGE: OutputShape = { api: "messages", stream: false };
const PAD = "a".repeat(5000);

describe("measuring relayed output (SRP-ATT-016 vectors)", () => {
  it("vector 1: a chat stream counts only its text, not its envelope or usage", () => {
    const chunks = [
      chunk({ role: "assistant", content: "" }),
      chunk({ content: "Hi" }),
      chunk({ content: " there" }),
      chunk({}, "stop"),
      { ...base, choices: [], usage: { prompt_tokens: 9, completion_tokens: 1_000_000, total_tokens: 1_000_009 } },
    ];
    expect(measureOutput(CHAT_STREAM, ...chunks)).toEqual({ bytes: 8, toolCalls: 0 });
  });

  it("vector 2: multi-byte UTF-8 counts bytes, not characters", () => {
    expect(
      measureOutput(CHAT, { choices: [{ index: 0, message: { role: "assistant", content: "héllo wörld ✓" }, finish_reason: "stop" }] }),
    ).toEqual({ bytes: 17, toolCalls: 0 });
    expect(measureOutput(CHAT, { choices: [{ message: { content: "日本語" } }] }).bytes).toBe(9);
    expect(measureOutput(CHAT, { choices: [{ message: { content: "🙂" } }] }).bytes).toBe(4);
  });

  it("vector 3: a streamed tool call counts once, by its index, with its name and argument bytes", () => {
    const meter = new OutputMeter(CHAT_STREAM);
    meter.add(
      chunk({
        role: "assistant",
        tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "get_weather", arguments: "" } }],
      }),
    );
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
    expect(measureOutput(CHAT, response)).toEqual({ bytes: 1 + 2 + 1 + 7, toolCalls: 2 });
  });

  it("vector 5: Anthropic events count text and JSON deltas; a tool_use block counts once and its object input by canonical JSON", () => {
    const events = [
      {
        type: "message_start",
        message: {
          id: "msg_1",
          type: "message",
          role: "assistant",
          content: [],
          model: "claude",
          stop_reason: null,
          usage: { input_tokens: 5, output_tokens: 1 },
        },
      },
      { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
      { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Ok." } },
      { type: "content_block_start", index: 1, content_block: { type: "tool_use", id: "toolu_1", name: "calc", input: {} } },
      { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: '{"a": 1}' } },
      { type: "message_delta", delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: 999 } },
    ];
    expect(measureOutput(EVENTS, ...events)).toEqual({ bytes: 3 + 4 + 8, toolCalls: 1 });
    const message = {
      id: "msg_2",
      type: "message",
      role: "assistant",
      content: [{ type: "tool_use", id: "toolu_2", name: "calc", input: { b: 2, a: "x" } }],
      usage: { input_tokens: 1, output_tokens: 1 },
    };
    // name "calc" (4) + canonical {"a":"x","b":2} (15)
    expect(measureOutput(MESSAGE, message)).toEqual({ bytes: 4 + 15, toolCalls: 1 });
  });
});

describe("only what a client of the job's API shows counts (SRP-ATT-016 vectors 7 to 13)", () => {
  it("vector 7: unknown members, a chunk-level message or content, and an unknown member's nested content count 0", () => {
    const padded = {
      ...chunk({ content: "Hi", x_pad: PAD }),
      x_pad: PAD,
      extra: { content: PAD },
      message: { content: PAD },
      content: PAD,
      text: PAD,
    };
    (padded.choices[0] as Record<string, unknown>).x_pad = { content: PAD };
    (padded.choices[0] as Record<string, unknown>).message = { content: PAD };
    expect(measureOutput(CHAT_STREAM, padded)).toEqual({ bytes: 2, toolCalls: 0 });
  });

  it("vector 8: refusal, reasoning and a legacy function_call count; a choice's completions-style text does not", () => {
    expect(measureOutput(CHAT_STREAM, chunk({ reasoning_content: "abc", reasoning: "de", refusal: "no" }))).toEqual({
      bytes: 7,
      toolCalls: 0,
    });
    expect(measureOutput(CHAT, { choices: [{ message: { content: null, function_call: { name: "f", arguments: '{"a":1}' } } }] })).toEqual({
      bytes: 8,
      toolCalls: 0,
    });
    expect(measureOutput(CHAT, { object: "text_completion", choices: [{ index: 0, text: "hello", finish_reason: "stop" }] })).toEqual({
      bytes: 0,
      toolCalls: 0,
    });
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
    expect(measureOutput(MESSAGE, message)).toEqual({ bytes: 3 + 3 + 3 + 2, toolCalls: 0 });
    expect(measureOutput(EVENTS, { type: "content_block_delta", index: 0, delta: { type: "signature_delta", signature: "abcd" } })).toEqual(
      { bytes: 4, toolCalls: 0 },
    );
  });

  it("vector 10: only choices numbered below n count, by their index, else their position", () => {
    const two = {
      choices: [
        { index: 0, delta: { content: "Hi" } },
        { index: 1, delta: { content: PAD } },
      ],
    };
    expect(measureOutput(CHAT_STREAM, two).bytes).toBe(2);
    expect(measureOutput({ ...CHAT_STREAM, choices: 2 }, two).bytes).toBe(5002);
    // Numbered by index, not position: the second element is choice 0.
    expect(
      measureOutput(CHAT_STREAM, {
        choices: [
          { index: 3, delta: { content: PAD } },
          { index: 0, delta: { content: "Hi" } },
        ],
      }).bytes,
    ).toBe(2);
    expect(measureOutput(CHAT, { choices: [{ message: { content: "Hi" } }, { message: { content: PAD } }] }).bytes).toBe(2);
    expect(chatChoices({ choices: [{ index: 1, delta: {} }, "x", { index: 0, delta: { content: "a" } }] }, 1)).toEqual([
      { index: 0, choice: { index: 0, delta: { content: "a" } } },
    ]);
    expect(OutputMeter.forJob({ api: "chat.completions", stream: false, request: { n: 2 } }).measure).toEqual({ bytes: 0, toolCalls: 0 });
    const meter = OutputMeter.forJob({ api: "chat.completions", stream: false, request: { n: 2 } });
    meter.add({ choices: [{ message: { content: "a" } }, { message: { content: "bc" } }, { message: { content: PAD } }] });
    expect(meter.measure.bytes).toBe(3);
  });

  it("vector 11: streamed chat counts only delta, non-streamed only message; content parts by their text; a name once per call; arguments only as a string", () => {
    expect(measureOutput(CHAT_STREAM, { choices: [{ index: 0, delta: { content: "Hi" }, message: { content: PAD } }] }).bytes).toBe(2);
    expect(measureOutput(CHAT, { choices: [{ index: 0, message: { content: "Hi" }, delta: { content: PAD } }] }).bytes).toBe(2);
    expect(
      measureOutput(CHAT, {
        choices: [
          {
            message: {
              content: [
                { type: "text", text: "ab" },
                { type: "image_url", image_url: { url: PAD } },
                { type: "text", text: "c" },
              ],
            },
          },
        ],
      }).bytes,
    ).toBe(3);
    expect(
      chatContentText([
        { type: "text", text: "a" },
        { type: "refusal", refusal: "b" },
        { type: "text", text: "c" },
      ]),
    ).toBe("ac");
    const calls = [
      chunk({ tool_calls: [{ index: 0, id: "call_1", function: { name: "fn", arguments: "{" } }] }),
      chunk({ tool_calls: [{ index: 0, function: { name: PAD, arguments: "}" } }] }),
      chunk({ tool_calls: [{ function: { arguments: "x" } }] }),
      chunk({ tool_calls: [{ index: 1, function: { name: "g", arguments: { deep: PAD } } }] }),
    ];
    // fn (2) + { (1) + } (1) + x (1, continuing call 0) + g (1); the object arguments count 0.
    expect(measureOutput(CHAT_STREAM, ...calls)).toEqual({ bytes: 6, toolCalls: 2 });
  });

  it("vector 12: Anthropic events count by type only: message_delta, message_stop, ping and unknown events count 0", () => {
    const events = [
      { type: "message_start", message: { type: "message", content: [{ type: "text", text: "A" }] } },
      { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "b", partial_json: PAD, thinking: PAD } },
      { type: "content_block_delta", index: 0, delta: { type: "input_json_delta", partial_json: "{}", text: PAD } },
      { type: "message_delta", delta: { stop_reason: "end_turn", text: PAD }, content_block: { type: "text", text: PAD } },
      { type: "message_stop", message: { content: PAD } },
      { type: "ping", content_block: { type: "text", text: PAD } },
      { type: "x_unknown", delta: { type: "text_delta", text: PAD }, content: [{ type: "text", text: PAD }] },
      { content_block: { type: "text", text: PAD } },
      { type: "content_block_start", index: 1, content_block: { type: "tool_use", id: "t", name: "n", input: "a string input" } },
    ];
    expect(measureOutput(EVENTS, ...events)).toEqual({ bytes: 1 + 1 + 2 + 1, toolCalls: 1 });
    // A Message counts its top-level content only.
    expect(
      measureOutput(MESSAGE, {
        type: "message",
        content: [{ type: "text", text: "Hi" }],
        message: { content: [{ type: "text", text: PAD }] },
        delta: { type: "text_delta", text: PAD },
      }).bytes,
    ).toBe(2);
  });

  it("vector 13: other APIs have no output text", () => {
    expect(
      measureOutput(
        { api: "embeddings", stream: false },
        { data: [{ embedding: [0.1] }], choices: [{ message: { content: PAD } }], content: PAD },
      ).bytes,
    ).toBe(0);
    expect(measureOutput({ api: "images.generations", stream: false }, { data: [{ b64_json: PAD, revised_prompt: PAD }] }).bytes).toBe(0);
  });
});

describe("checkUsagePlausibility (SRP-ATT-015, SRP-ATT-016)", () => {
  const relayed = { bytes: 9, toolCalls: 0 };
  it("refuses completion tokens above the request's output limit", () => {
    const v = checkUsagePlausibility(
      { promptTokens: 12, completionTokens: 1_000_000, measured: true },
      { promptTokens: 100, outputTokens: 10 },
      relayed,
    );
    expect(v).toEqual({ plausible: false, reason: "completionTokens 1000000 exceed the output limit 10" });
  });

  it("without an output limit, bounds completion by the context less the prompt", () => {
    expect(outputTokenLimit({ contextTokens: 8192 }, { promptTokens: 192 })).toBe(8000);
    expect(outputTokenLimit({}, { promptTokens: 192 })).toBeUndefined();
    const v = checkUsagePlausibility(
      { promptTokens: 192, completionTokens: 8001, reasoningTokens: 8001, measured: true },
      { contextTokens: 8192 },
      { bytes: 0, toolCalls: 0 },
    );
    expect(v.plausible).toBe(false);
    expect(
      checkUsagePlausibility(
        { promptTokens: 192, completionTokens: 8000, reasoningTokens: 7990, measured: true },
        { contextTokens: 8192, hiddenReasoning: true },
        { bytes: 0, toolCalls: 0 },
      ).plausible,
    ).toBe(true);
  });

  it("refuses visible tokens above relayed bytes + 16 + 32 per tool call, and accepts exactly the allowance", () => {
    expect(checkUsagePlausibility({ promptTokens: 5, completionTokens: 25, measured: true }, {}, relayed)).toEqual({ plausible: true });
    expect(checkUsagePlausibility({ promptTokens: 5, completionTokens: 26, measured: true }, {}, relayed).plausible).toBe(false);
    expect(
      checkUsagePlausibility({ promptTokens: 5, completionTokens: 26 + 32, measured: true }, {}, { bytes: 10, toolCalls: 1 }).plausible,
    ).toBe(true);
  });

  it("lets hidden reasoning tokens exceed the relayed text up to the output limit, on a reasoning instance only", () => {
    const usage = { promptTokens: 5, completionTokens: 500, reasoningTokens: 495, measured: true };
    expect(checkUsagePlausibility(usage, { outputTokens: 512, hiddenReasoning: true }, { bytes: 3, toolCalls: 0 })).toEqual({
      plausible: true,
    });
    expect(checkUsagePlausibility(usage, { outputTokens: 499, hiddenReasoning: true }, { bytes: 3, toolCalls: 0 }).plausible).toBe(false);
    // Without the `reasoning` capability, reasoning tokens are visible tokens: 500 for 3 bytes is refused.
    expect(checkUsagePlausibility(usage, { outputTokens: 512 }, { bytes: 3, toolCalls: 0 })).toEqual({
      plausible: false,
      reason: "500 visible completion tokens for 3 bytes of output and 0 tool call(s) relayed (at most 19)",
    });
    // Relayed reasoning text counts as output bytes, so a non-reasoning instance that shows its reasoning passes.
    const shown = measureOutput(CHAT, { choices: [{ message: { content: "Ok", reasoning_content: "x".repeat(490) } }] });
    expect(checkUsagePlausibility(usage, { outputTokens: 512 }, shown)).toEqual({ plausible: true });
  });

  it("lets Anthropic extended thinking hide up to its budget (at most the output limit) without a reasoningTokens report", () => {
    expect(thinkingBudget({ max_tokens: 16000, thinking: { type: "enabled", budget_tokens: 10000 } })).toBe(10000);
    expect(thinkingBudget({ thinking: { type: "disabled", budget_tokens: 10000 } })).toBeUndefined();
    expect(thinkingBudget({ max_tokens: 16000, thinking: { type: "adaptive" } })).toBe(16000);
    expect(thinkingBudget({ thinking: { type: "adaptive" } })).toBeUndefined();
    expect(thinkingBudget({ thinking: { type: "enabled", budget_tokens: -1 } })).toBeUndefined();
    expect(thinkingBudget({})).toBeUndefined();
    // Claude bills 5000 output tokens, 4000 of them thinking relayed as a summary; 1000 bytes of text and summary reach the consumer.
    const usage = { promptTokens: 50, completionTokens: 5000, measured: true };
    const relayed = { bytes: 1000, toolCalls: 0 };
    expect(checkUsagePlausibility(usage, { outputTokens: 6000, hiddenThinkingTokens: 4000 }, relayed)).toEqual({ plausible: true });
    expect(checkUsagePlausibility(usage, { outputTokens: 6000 }, relayed).plausible).toBe(false);
    // Only the budget is hidden: a budget of 3000 leaves 2000 of 5000 tokens visible, for 1000 bytes.
    expect(checkUsagePlausibility(usage, { outputTokens: 6000, hiddenThinkingTokens: 3000 }, relayed)).toEqual({
      plausible: false,
      reason: "2000 visible completion tokens for 1000 bytes of output and 0 tool call(s) relayed (at most 1016)",
    });
    // A budget above the output limit does not lift the limit.
    expect(checkUsagePlausibility(usage, { outputTokens: 4000, hiddenThinkingTokens: 9000 }, relayed).plausible).toBe(false);
  });

  it("accepts what a real byte-level tokenizer reports for multi-byte text (fewer tokens than bytes)", () => {
    // "日本語のテキスト" is 24 bytes; tokenizers give it 5 to 24 tokens, plus an end-of-sequence token.
    const out = measureOutput(CHAT, { choices: [{ message: { content: "日本語のテキスト" } }] });
    for (const n of [5, 12, 25])
      expect(
        checkUsagePlausibility({ promptTokens: 10, completionTokens: n, measured: true }, { outputTokens: 64, promptTokens: 100 }, out)
          .plausible,
      ).toBe(true);
  });

  it("refuses prompt tokens above the admission bound and cache counts above the prompt", () => {
    expect(checkUsagePlausibility({ promptTokens: 101, completionTokens: 1, measured: true }, { promptTokens: 100 }, relayed)).toEqual({
      plausible: false,
      reason: "promptTokens 101 exceed the admission bound 100",
    });
    expect(
      checkUsagePlausibility({ promptTokens: 10, completionTokens: 1, cachedTokens: 6, cacheWriteTokens: 5, measured: true }, {}, relayed)
        .plausible,
    ).toBe(false);
  });

  it("bounds images, characters and seconds by what was asked; 0 allows none, absent is unbounded", () => {
    expect(checkUsagePlausibility({ promptTokens: 0, completionTokens: 0, images: 2, measured: true }, { images: 1 }, relayed)).toEqual({
      plausible: false,
      reason: "images 2 exceed the 1 admitted",
    });
    expect(
      checkUsagePlausibility({ promptTokens: 0, completionTokens: 0, characters: 11, measured: true }, { characters: 11 }, relayed),
    ).toEqual({ plausible: true });
    expect(
      checkUsagePlausibility({ promptTokens: 0, completionTokens: 0, seconds: 61, measured: true }, { seconds: 60 }, relayed).plausible,
    ).toBe(false);
    expect(checkUsagePlausibility({ promptTokens: 0, completionTokens: 1, measured: true }, { outputTokens: 0 }, relayed).plausible).toBe(
      false,
    );
    expect(checkUsagePlausibility({ promptTokens: 0, completionTokens: 0, images: 4, measured: true }, {}, relayed).plausible).toBe(true);
  });

  it("bounds runs at 0 unless the hub admitted an async job with runs 1 (SRP-ATT-027)", () => {
    expect(checkUsagePlausibility({ promptTokens: 0, completionTokens: 0, runs: 1, measured: true }, {}, relayed)).toEqual({
      plausible: false,
      reason: "runs 1 exceed the 0 admitted",
    });
    expect(checkUsagePlausibility({ promptTokens: 0, completionTokens: 0, runs: 1, measured: true }, { runs: 1 }, relayed).plausible).toBe(
      true,
    );
    expect(checkUsagePlausibility({ promptTokens: 0, completionTokens: 0, runs: 2, measured: true }, { runs: 1 }, relayed).plausible).toBe(
      false,
    );
    expect(checkUsagePlausibility({ promptTokens: 0, completionTokens: 0, runs: 0, measured: true }, {}, relayed).plausible).toBe(true);
  });
});

describe("measuring Responses API and legacy completions output (SRP-ATT-016)", () => {
  it("counts a streamed response's text deltas and added call items, not the done events that repeat them", () => {
    const meter = new OutputMeter({ api: "responses", stream: true });
    meter.add({ type: "response.created", response: { output: [] } });
    meter.add({ type: "response.output_item.added", output_index: 0, item: { type: "reasoning", id: "rs_1", summary: [] } });
    meter.add({ type: "response.reasoning_summary_text.delta", delta: "think" });
    meter.add({
      type: "response.output_item.added",
      output_index: 1,
      item: { type: "message", id: "msg_1", role: "assistant", content: [] },
    });
    meter.add({ type: "response.output_text.delta", delta: "héllo" });
    meter.add({ type: "response.output_text.done", text: "héllo" });
    meter.add({
      type: "response.output_item.added",
      output_index: 2,
      item: { type: "function_call", id: "fc_1", call_id: "call_1", name: "get", arguments: "" },
    });
    meter.add({ type: "response.function_call_arguments.delta", delta: '{"a":1}' });
    meter.add({ type: "response.function_call_arguments.done", arguments: '{"a":1}' });
    meter.add({
      type: "response.completed",
      response: { output: [{ type: "message", content: [{ type: "output_text", text: "héllo" }] }] },
    });
    expect(meter.measure).toEqual({ bytes: 5 + 6 + 3 + 7, toolCalls: 1 });
  });

  it("counts a whole response's output items (responses vector, not streamed)", () => {
    const output = [
      { type: "reasoning", summary: [{ type: "summary_text", text: "ab" }], content: [{ type: "reasoning_text", text: "cd" }] },
      {
        type: "message",
        content: [
          { type: "output_text", text: "hi" },
          { type: "refusal", refusal: "no" },
        ],
      },
      { type: "function_call", call_id: "c1", name: "f", arguments: "{}" },
      { type: "function_call", call_id: "c2", name: "g", arguments: "{}" },
    ];
    expect(measureOutput({ api: "responses", stream: false }, { object: "response", output })).toEqual({
      bytes: 4 + 4 + 3 + 3,
      toolCalls: 2,
    });
  });

  const RESPONSES_STREAM: OutputShape = { api: "responses", stream: true };
  const msgItem = (text?: string) => ({
    type: "message",
    id: "msg_1",
    role: "assistant",
    status: text === undefined ? "in_progress" : "completed",
    content: text === undefined ? [] : [{ type: "output_text", text, annotations: [] }],
  });

  it("responses vector: text sent only in done events counts in full", () => {
    expect(
      measureOutput(
        RESPONSES_STREAM,
        { type: "response.output_item.added", output_index: 0, item: msgItem() },
        { type: "response.output_text.done", item_id: "msg_1", output_index: 0, content_index: 0, text: "Hello" },
        { type: "response.output_item.done", output_index: 0, item: msgItem("Hello") },
      ),
    ).toEqual({ bytes: 5, toolCalls: 0 });
  });

  it("responses vector: call arguments sent only in done events count in full, the call once", () => {
    const call = (args: string) => ({
      type: "function_call",
      id: "fc_1",
      call_id: "call_1",
      name: "get",
      arguments: args,
      status: args ? "completed" : "in_progress",
    });
    expect(
      measureOutput(
        RESPONSES_STREAM,
        { type: "response.output_item.added", output_index: 1, item: call("") },
        { type: "response.function_call_arguments.done", item_id: "fc_1", output_index: 1, arguments: '{"a":1}' },
        { type: "response.output_item.done", output_index: 1, item: call('{"a":1}') },
      ),
    ).toEqual({ bytes: 10, toolCalls: 1 });
  });

  it("responses vector: text repeated by done events, the finished item and response.completed counts once; deltas naming only item_id find their item", () => {
    const events = [
      { type: "response.output_item.added", output_index: 0, item: msgItem() },
      { type: "response.output_text.delta", item_id: "msg_1", content_index: 0, delta: "Hel" },
      { type: "response.output_text.delta", item_id: "msg_1", content_index: 0, delta: "lo" },
      { type: "response.output_text.done", item_id: "msg_1", output_index: 0, content_index: 0, text: "Hello" },
      {
        type: "response.content_part.done",
        item_id: "msg_1",
        output_index: 0,
        content_index: 0,
        part: { type: "output_text", text: "Hello", annotations: [] },
      },
      { type: "response.output_item.done", output_index: 0, item: msgItem("Hello") },
      { type: "response.completed", response: { output: [msgItem("Hello")] } },
    ];
    expect(measureOutput(RESPONSES_STREAM, ...events)).toEqual({ bytes: 5, toolCalls: 0 });
    // Deltas that name only the id before any event ties it to its output index are the same item's.
    expect(measureOutput(RESPONSES_STREAM, events[1], events[2], events[0], ...events.slice(3))).toEqual({ bytes: 5, toolCalls: 0 });
  });

  it("responses vector: each part counts the larger of its deltas' sum and its whole text", () => {
    expect(
      measureOutput(
        RESPONSES_STREAM,
        { type: "response.output_text.delta", item_id: "msg_1", output_index: 0, content_index: 0, delta: "ab" },
        { type: "response.output_text.delta", item_id: "msg_1", output_index: 0, content_index: 0, delta: "cd" },
        { type: "response.output_text.done", item_id: "msg_1", output_index: 0, content_index: 0, text: "a" },
        { type: "response.output_item.added", output_index: 1, item: { type: "reasoning", id: "rs_1", summary: [] } },
        { type: "response.reasoning_summary_text.done", item_id: "rs_1", output_index: 1, summary_index: 0, text: "xyz" },
      ),
    ).toEqual({ bytes: 7, toolCalls: 0 });
  });

  it("completions vectors: streamed n 1 counts choice 0's text; n 2 counts choices 0 and 1", () => {
    expect(
      measureOutput(
        { api: "completions", stream: true, choices: 1 },
        { choices: [{ index: 0, text: "Hel" }] },
        {
          choices: [
            { index: 0, text: "lo" },
            { index: 1, text: PAD },
          ],
        },
        { choices: [], usage: { completion_tokens: 1_000_000 } },
      ),
    ).toEqual({ bytes: 5, toolCalls: 0 });
    expect(
      measureOutput(
        { api: "completions", stream: false, choices: 2 },
        {
          choices: [
            { index: 0, text: "abc" },
            { index: 1, text: "zz" },
            { index: 2, text: PAD },
          ],
        },
      ),
    ).toEqual({ bytes: 5, toolCalls: 0 });
  });

  it("counts legacy completions text of the choices asked for", () => {
    expect(
      measureOutput(
        { api: "completions", stream: false },
        {
          choices: [
            { index: 0, text: "abc" },
            { index: 1, text: "zz" },
          ],
        },
      ),
    ).toEqual({ bytes: 3, toolCalls: 0 });
    expect(
      measureOutput(
        { api: "completions", stream: true, choices: 2 },
        { choices: [{ index: 0, text: "a" }] },
        { choices: [{ index: 1, text: "bc" }] },
      ),
    ).toEqual({ bytes: 3, toolCalls: 0 });
  });
});
