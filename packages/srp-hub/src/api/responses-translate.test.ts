import { describe, expect, it } from "vitest";
import { SrpError } from "@srp/core";
import type { Usage } from "@srp/core/schema";
import { OutputMeter } from "@srp/core/metering";
import { accumulateResponse } from "openai/lib/responses/ResponseAccumulator";
import type { ResponseStreamEvent } from "openai/resources/responses/responses";
import {
  ChatToResponsesEvents,
  chatTools,
  chatToResponse,
  finishStatus,
  inputItems,
  itemsToMessages,
  responsesToChat,
  responseShell,
  responsesUsage,
  toolNamespaces,
} from "./responses-translate.js";
import type { SrpUsageExtension } from "./serve.js";
import { IMAGE_TOKEN_ALLOWANCE, promptTokenBound } from "./openai.js";

const EXT: SrpUsageExtension = { cost: "0.01", cost_units: "10000", receipt_id: "job_x", measured: true };
const USAGE: Usage = { promptTokens: 30, completionTokens: 12, cachedTokens: 4, reasoningTokens: 5, measured: true };

const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
  object: "chat.completion.chunk",
  choices: [{ index: 0, delta, finish_reason: finish }],
});

function errorOf(f: () => unknown): SrpError {
  try {
    f();
  } catch (e) {
    if (e instanceof SrpError) return e;
    throw e;
  }
  throw new Error("no error");
}

describe("input items", () => {
  it("normalizes a string and role-only messages, giving every item an id", () => {
    const [m] = inputItems("Hi");
    expect(m).toMatchObject({ type: "message", role: "user", content: [{ type: "input_text", text: "Hi" }] });
    expect(m!.id).toMatch(/^msg_[0-9a-f]{24}$/);
    const items = inputItems([
      { role: "assistant", content: "Hello" },
      { type: "function_call_output", call_id: "c", output: "x", id: "fco_keep" },
    ]);
    expect(items[0]).toMatchObject({
      type: "message",
      role: "assistant",
      content: [{ type: "output_text", text: "Hello", annotations: [] }],
    });
    expect(items[1]!.id).toBe("fco_keep");
    expect(errorOf(() => inputItems([{ content: "no type" }])).message).toMatch(/input\[0\]/);
  });

  it("translates messages, calls and their outputs into chat messages, dropping reasoning", () => {
    const items = inputItems([
      {
        type: "message",
        role: "developer",
        content: [
          { type: "input_text", text: "a" },
          { type: "input_text", text: "b" },
        ],
      },
      {
        role: "user",
        content: [
          { type: "input_text", text: "look" },
          { type: "input_image", image_url: "data:image/png;base64,AA", detail: "low" },
        ],
      },
      { type: "reasoning", id: "rs_1", summary: [], content: null },
      { role: "assistant", content: "Let me check." },
      { type: "function_call", call_id: "call_1", name: "f", arguments: "{}" },
      { type: "function_call", call_id: "call_2", name: "g", arguments: '{"x":1}' },
      { type: "function_call_output", call_id: "call_1", output: "one" },
      {
        type: "function_call_output",
        call_id: "call_2",
        output: [
          { type: "input_text", text: "two" },
          { type: "input_image", image_url: "https://e.x/i.png" },
        ],
      },
    ]);
    expect(itemsToMessages("Be brief.", items)).toEqual([
      { role: "system", content: "Be brief." },
      { role: "system", content: "a\nb" },
      {
        role: "user",
        content: [
          { type: "text", text: "look" },
          { type: "image_url", image_url: { url: "data:image/png;base64,AA", detail: "low" } },
        ],
      },
      {
        role: "assistant",
        content: "Let me check.",
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "f", arguments: "{}" } },
          { id: "call_2", type: "function", function: { name: "g", arguments: '{"x":1}' } },
        ],
      },
      { role: "tool", tool_call_id: "call_1", content: "one" },
      { role: "tool", tool_call_id: "call_2", content: "two" },
      { role: "user", content: [{ type: "image_url", image_url: { url: "https://e.x/i.png" } }] },
    ]);
  });

  it("refuses items and parts chat cannot carry, naming where", () => {
    expect(errorOf(() => itemsToMessages(null, inputItems([{ type: "item_reference", id: "x" }]))).message).toMatch(
      /input\[0\].*item_reference/,
    );
    expect(
      errorOf(() => itemsToMessages(null, inputItems([{ role: "user", content: [{ type: "input_image", file_id: "file_1" }] }]))).message,
    ).toMatch(/input\[0\]\.content\[0\].*image_url/);
    const stored = inputItems([{ role: "user", content: "ok" }]);
    expect(
      errorOf(() => itemsToMessages(null, [...stored, ...inputItems([{ type: "computer_call_output", call_id: "c" }])], 1)).message,
    ).toMatch(/^input\[0\]/);
  });
});

describe("request translation", () => {
  it("maps tools (namespaces flattened, web search left out), tool_choice, text.format, reasoning, limits and stream", () => {
    const body = {
      model: "m",
      instructions: "sys",
      input: "hi",
      tools: [
        { type: "function", name: "f", description: "d", parameters: { type: "object", properties: {} }, strict: false },
        { type: "namespace", name: "ns", tools: [{ type: "function", name: "g", parameters: null }] },
        { type: "web_search", external_web_access: true },
      ],
      tool_choice: { type: "function", name: "f" },
      parallel_tool_calls: false,
      text: { format: { type: "json_schema", name: "out", schema: { type: "object" }, strict: true }, verbosity: "low" },
      reasoning: { effort: "high", summary: "auto" },
      max_output_tokens: 99,
      temperature: 0.5,
      top_p: 0.9,
      user: "u",
      stream: true,
      store: true,
      metadata: { a: "b" },
      include: ["reasoning.encrypted_content"],
      prompt_cache_key: "k",
    };
    expect(responsesToChat(body, inputItems(body.input))).toEqual({
      model: "m",
      messages: [
        { role: "system", content: "sys" },
        { role: "user", content: "hi" },
      ],
      tools: [
        { type: "function", function: { name: "f", description: "d", parameters: { type: "object", properties: {} } } },
        { type: "function", function: { name: "g", parameters: { type: "object", properties: {} } } },
      ],
      tool_choice: { type: "function", function: { name: "f" } },
      parallel_tool_calls: false,
      response_format: { type: "json_schema", json_schema: { name: "out", schema: { type: "object" }, strict: true } },
      reasoning_effort: "high",
      max_completion_tokens: 99,
      temperature: 0.5,
      top_p: 0.9,
      user: "u",
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(toolNamespaces(body.tools)).toEqual(new Map([["g", "ns"]]));
    expect(responsesToChat({ model: "m", text: { format: { type: "json_object" } } }, [])).toMatchObject({
      response_format: { type: "json_object" },
    });
    // Only web search among the tools: no tools, and no tool_choice either.
    expect(responsesToChat({ model: "m", tools: [{ type: "web_search" }], tool_choice: "auto" }, [])).toEqual({ model: "m", messages: [] });
  });

  it("refuses hosted tools and members only the Responses API serves", () => {
    expect(errorOf(() => chatTools([{ type: "function", name: "f" }, { type: "code_interpreter" }])).message).toMatch(
      /tools\[1\].*"code_interpreter"/,
    );
    for (const member of ["background", "conversation", "prompt", "top_logprobs", "max_tool_calls"]) {
      const e = errorOf(() =>
        responsesToChat(
          {
            model: "m",
            [member]: member === "background" ? true : member === "top_logprobs" || member === "max_tool_calls" ? 2 : { id: "x" },
          },
          [],
        ),
      );
      expect(e.code).toBe("api.invalid_body");
      expect(e.message).toContain(`\`${member}\``);
    }
    expect(() => responsesToChat({ model: "m", background: false, top_logprobs: 0, conversation: null }, [])).not.toThrow();
    expect(
      errorOf(() => responsesToChat({ model: "m", tools: [{ type: "function", name: "f" }], tool_choice: { type: "allowed_tools" } }, []))
        .message,
    ).toMatch(/tool_choice/);
    expect(errorOf(() => responsesToChat({ model: "m", text: { format: { type: "grammar" } } }, [])).message).toMatch(/text\.format\.type/);
  });
});

describe("answer translation", () => {
  it("turns a chat completion into a Response with reasoning, message and function_call items and the billed usage", () => {
    const shell = responseShell(
      { model: "m", input: "x", tools: [{ type: "namespace", name: "ns", tools: [] }], store: false, max_output_tokens: 50 },
      "resp_1",
      "served-model",
      1700000000,
    );
    const chat = {
      choices: [
        {
          index: 0,
          finish_reason: "tool_calls",
          message: {
            role: "assistant",
            reasoning_content: "Think.",
            content: "Calling.",
            tool_calls: [{ id: "call_9", type: "function", function: { name: "g", arguments: '{"a":1}' } }],
          },
        },
      ],
    };
    const r = chatToResponse(chat, shell, USAGE, EXT, new Map([["g", "ns"]]));
    expect(r).toMatchObject({
      id: "resp_1",
      object: "response",
      created_at: 1700000000,
      model: "served-model",
      status: "completed",
      incomplete_details: null,
      store: false,
      max_output_tokens: 50,
      error: null,
    });
    const out = r.output as Record<string, unknown>[];
    expect(out.map((o) => o.type)).toEqual(["reasoning", "message", "function_call"]);
    expect(out[0]).toMatchObject({ summary: [], content: [{ type: "reasoning_text", text: "Think." }] });
    expect(out[1]).toMatchObject({
      role: "assistant",
      status: "completed",
      content: [{ type: "output_text", text: "Calling.", annotations: [] }],
    });
    expect(out[2]).toMatchObject({
      type: "function_call",
      call_id: "call_9",
      name: "g",
      arguments: '{"a":1}',
      namespace: "ns",
      status: "completed",
    });
    expect(out[2]!.id).toMatch(/^fc_/);
    expect(r.usage).toEqual({
      input_tokens: 30,
      input_tokens_details: { cached_tokens: 4 },
      output_tokens: 12,
      output_tokens_details: { reasoning_tokens: 5 },
      total_tokens: 42,
      ...EXT,
    });
    expect(responsesUsage({ promptTokens: 1, completionTokens: 2, measured: false }, EXT)).toMatchObject({
      input_tokens_details: { cached_tokens: 0 },
      output_tokens_details: { reasoning_tokens: 0 },
    });
  });

  it("says incomplete for the output limit and a content filter", () => {
    expect(finishStatus("length")).toEqual({ status: "incomplete", incomplete_details: { reason: "max_output_tokens" } });
    expect(finishStatus("content_filter")).toEqual({ status: "incomplete", incomplete_details: { reason: "content_filter" } });
    expect(finishStatus("stop")).toEqual({ status: "completed", incomplete_details: null });
  });
});

describe("stream translation", () => {
  const shell = responseShell({ model: "m", input: "x" }, "resp_s", "m");
  /** Runs chunks through the translation and the SDK's own accumulator, as `responses.stream` does. */
  function run(chunks: Record<string, unknown>[], end: "end" | "fail" = "end") {
    const t = new ChatToResponsesEvents(shell);
    const events: Record<string, unknown>[] = [];
    for (const c of chunks) events.push(...t.chunk(c));
    if (end === "end") events.push(...t.end(USAGE, EXT).events);
    else events.push(...t.fail("job.stream_interrupted", "gone"));
    const numbered = events.map((e, i) => ({ ...e, sequence_number: i }) as unknown as ResponseStreamEvent);
    let snapshot: ReturnType<typeof accumulateResponse> | undefined;
    for (const e of numbered) snapshot = accumulateResponse(e, snapshot);
    return { types: events.map((e) => e.type), events, snapshot: snapshot! };
  }

  it("streams reasoning, text and a tool call in the order and shape the SDK accumulates", () => {
    const { types, snapshot, events } = run([
      chunk({ role: "assistant", content: "" }),
      chunk({ reasoning_content: "Hmm, " }),
      chunk({ reasoning_content: "weather." }),
      chunk({ content: "Let me " }),
      chunk({ content: "check." }),
      chunk({ tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "get_weather", arguments: "" } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }),
      chunk({}, "tool_calls"),
      { object: "chat.completion.chunk", choices: [], usage: { prompt_tokens: 1, completion_tokens: 1 } },
    ]);
    expect(types).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.reasoning_text.delta",
      "response.reasoning_text.delta",
      "response.reasoning_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.completed",
    ]);
    expect(snapshot.status).toBe("completed");
    expect(snapshot.output_text).toBe("Let me check.");
    expect(snapshot.output.map((o) => o.type)).toEqual(["reasoning", "message", "function_call"]);
    expect(snapshot.output[0]).toMatchObject({ content: [{ type: "reasoning_text", text: "Hmm, weather." }] });
    expect(snapshot.output[2]).toMatchObject({
      call_id: "call_1",
      name: "get_weather",
      arguments: '{"city":"Paris"}',
      status: "completed",
    });
    expect(snapshot.usage).toMatchObject({ output_tokens: 12, cost_units: "10000" });
    // The completed response's items are the items the stream closed.
    const completed = events.at(-1)!.response as Record<string, unknown>;
    const done = events.filter((e) => e.type === "response.output_item.done").map((e) => e.item);
    expect(completed.output).toEqual(done);
  });

  it("ends an output-limited stream with response.incomplete and a mid-stream failure with response.failed", () => {
    const cut = run([chunk({ content: "a b" }), chunk({}, "length")]);
    expect(cut.types.at(-1)).toBe("response.incomplete");
    expect(cut.snapshot.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(cut.snapshot.output[0]).toMatchObject({ status: "incomplete" });
    const failed = run([chunk({ content: "partial" })], "fail");
    expect(failed.types.at(-1)).toBe("response.failed");
    expect(failed.snapshot.status).toBe("failed");
    expect(failed.snapshot.error).toEqual({ code: "job.stream_interrupted", message: "gone" });
  });

  it("relays nothing for arguments of a call already closed, and the meter counts what is relayed", () => {
    const chunks = [
      chunk({ tool_calls: [{ index: 0, id: "a", function: { name: "f", arguments: "{}" } }] }),
      chunk({ tool_calls: [{ index: 1, id: "b", function: { name: "g", arguments: "{" } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: "late" } }] }),
      chunk({ tool_calls: [{ index: 1, function: { arguments: "}" } }] }),
      chunk({}, "tool_calls"),
    ];
    const { snapshot, events } = run(chunks);
    expect(snapshot.output.map((o) => (o as { arguments: string }).arguments)).toEqual(["{}", "{}"]);
    const meter = new OutputMeter({ api: "responses", stream: true });
    for (const e of events) meter.add(e);
    expect(meter.measure).toEqual({ bytes: "f".length + 2 + "g".length + 2, toolCalls: 2 });
  });
});

describe("prompt bound of a Responses request", () => {
  it("counts input items, instructions and the text format's schema", () => {
    const bare = promptTokenBound({ input: [] });
    const withInput = promptTokenBound({ input: inputItems("x".repeat(1000)) });
    expect(withInput - bare).toBeGreaterThanOrEqual(1000 + 16);
    // 500 bytes and the template allowance of one message, in place of a JSON null.
    expect(promptTokenBound({ input: [], instructions: "y".repeat(500) }) - bare).toBe(500 + 2 - 4 + 16);
    expect(
      promptTokenBound({ input: [], text: { format: { type: "json_schema", name: "n", schema: { description: "z".repeat(300) } } } }) -
        bare,
    ).toBeGreaterThanOrEqual(300);
    const image = promptTokenBound({ input: [{ role: "user", content: [{ type: "input_image", image_url: "https://e.x/a.png" }] }] });
    expect(image).toBeGreaterThan(IMAGE_TOKEN_ALLOWANCE);
  });
});
