import { describe, expect, it } from "vitest";
import { SrpError } from "@srp/core";
import type { Capability, Job } from "@srp/core/schema";
import { checkUsagePlausibility, reasoningEffortBudget } from "@srp/core/metering";
import { chatReasoningText, effortForBudget, reasoningEffortFor, TRANSLATED_THINKING_SIGNATURE, withEffortThinking } from "./reasoning.js";
import { ChatToMessagesEvents, chatToMessage, messagesToChat, translatedMeter } from "./anthropic.js";

const job = (stream: boolean): Job =>
  ({
    type: "job",
    jobId: "job_0123456789abcdef",
    instanceId: "inst_1",
    model: "m",
    api: "chat.completions",
    stream,
    request: {},
    deadline: 0,
    quote: { input: "1", output: "1" },
  }) as unknown as Job;
const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
  object: "chat.completion.chunk",
  choices: [{ index: 0, delta, finish_reason: finish }],
});
const ext = { cost: "0", cost_units: "0", receipt_id: null, measured: true } as never;

describe("chatReasoningText", () => {
  it("reads vLLM/DeepSeek reasoning_content and Ollama/newer-vLLM reasoning, once when both carry it", () => {
    expect(chatReasoningText({ reasoning_content: "Let me see." })).toBe("Let me see.");
    expect(chatReasoningText({ role: "assistant", content: "", reasoning: "Hmm" })).toBe("Hmm");
    expect(chatReasoningText({ reasoning_content: "a", reasoning: "a" })).toBe("a");
    expect(chatReasoningText({ reasoning_content: "", reasoning: "b" })).toBe("b");
    expect(chatReasoningText({ content: "hello" })).toBe("");
    expect(chatReasoningText({ reasoning: 5 })).toBe("");
    expect(chatReasoningText(null)).toBe("");
  });
});

describe("thinking -> reasoning_effort (SRP-CON-077)", () => {
  it("steps the effort at 4096 and 16384 budget tokens", () => {
    expect([1024, 4095, 4096, 16383, 16384, 64000].map(effortForBudget)).toEqual(["low", "low", "medium", "medium", "high", "high"]);
  });

  it("maps enabled, adaptive and disabled; refuses what Anthropic refuses", () => {
    expect(reasoningEffortFor({ max_tokens: 16000, thinking: { type: "enabled", budget_tokens: 10000 } })).toBe("medium");
    expect(reasoningEffortFor({ max_tokens: 100, thinking: { type: "disabled" } })).toBeUndefined();
    expect(reasoningEffortFor({ max_tokens: 100 })).toBeUndefined();
    expect(reasoningEffortFor({ max_tokens: 100, thinking: { type: "adaptive" } })).toBe("medium");
    expect(reasoningEffortFor({ max_tokens: 100, thinking: { type: "adaptive" }, output_config: { effort: "max" } })).toBe("high");
    for (const bad of [
      { max_tokens: 100, thinking: { type: "enabled", budget_tokens: 100 } },
      { max_tokens: 100, thinking: { type: "enabled" } },
      { max_tokens: 100, thinking: { type: "on" } },
      { max_tokens: 100, thinking: "yes" },
    ]) {
      expect(() => reasoningEffortFor(bad)).toThrow(SrpError);
    }
  });

  it("messagesToChat sets reasoning_effort and drops assistant thinking blocks (SRP-CON-079)", () => {
    const chat = messagesToChat({
      model: "m",
      max_tokens: 30000,
      thinking: { type: "enabled", budget_tokens: 20000 },
      messages: [
        { role: "user", content: "hi" },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "secret", signature: "sig" },
            { type: "redacted_thinking", data: "xx" },
            { type: "text", text: "hello" },
          ],
        },
        { role: "user", content: "again" },
      ],
    });
    expect(chat.reasoning_effort).toBe("high");
    expect(chat.messages).toEqual([
      { role: "user", content: "hi" },
      { role: "assistant", content: "hello" },
      { role: "user", content: "again" },
    ]);
    expect(JSON.stringify(chat)).not.toContain("secret");
    expect(messagesToChat({ model: "m", max_tokens: 10, messages: [{ role: "user", content: "x" }] })).not.toHaveProperty(
      "reasoning_effort",
    );
  });
});

describe("chat reasoning -> Anthropic thinking blocks (SRP-CON-076, SRP-CON-078)", () => {
  const chunks = [
    chunk({ role: "assistant", content: "" }),
    chunk({ reasoning_content: "Think " }),
    chunk({ reasoning: "more." }),
    chunk({ content: "Answer" }),
    chunk({}, "stop"),
  ];

  it("streams a thinking block (thinking_delta, then signature_delta) before the text when thinking is asked for", () => {
    const events = new ChatToMessagesEvents(job(true));
    const out = chunks.flatMap((c) => events.chunk(c));
    expect(out.map((e) => e.type)).toEqual([
      "message_start",
      "ping",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "content_block_start",
      "content_block_delta",
      "content_block_stop",
    ]);
    expect(out[2]).toEqual({ type: "content_block_start", index: 0, content_block: { type: "thinking", thinking: "", signature: "" } });
    expect(out[3]).toEqual({ type: "content_block_delta", index: 0, delta: { type: "thinking_delta", thinking: "Think " } });
    expect(out[4]).toEqual({ type: "content_block_delta", index: 0, delta: { type: "thinking_delta", thinking: "more." } });
    expect(out[5]).toEqual({
      type: "content_block_delta",
      index: 0,
      delta: { type: "signature_delta", signature: TRANSLATED_THINKING_SIGNATURE },
    });
    expect(out[7]).toMatchObject({ index: 1, content_block: { type: "text" } });
    expect(out[8]).toMatchObject({ index: 1, delta: { type: "text_delta", text: "Answer" } });
  });

  it("non-streamed: the reasoning is a thinking block before the text", () => {
    const response = {
      choices: [{ index: 0, message: { role: "assistant", content: "Answer", reasoning_content: "Because." }, finish_reason: "stop" }],
    };
    const usage = { promptTokens: 3, completionTokens: 4, measured: true };
    expect(chatToMessage(response, job(false), usage, ext).content).toEqual([
      { type: "thinking", thinking: "Because.", signature: "" },
      { type: "text", text: "Answer", citations: null },
    ]);
  });

  it("the translated meter counts the reasoning it shows as thinking, so an honest receipt is plausible (SRP-ATT-025)", () => {
    const reasoning = "word ".repeat(200); // 1000 bytes of reasoning, 5 of text
    const stream = translatedMeter(job(true));
    for (const c of [chunk({ reasoning_content: reasoning }), chunk({ content: "Done." }), chunk({}, "stop")]) stream.add(c);
    expect(stream.measure.bytes).toBe(1005);
    const whole = translatedMeter(job(false));
    whole.add({ choices: [{ index: 0, message: { content: "Done.", reasoning } }] });
    expect(whole.measure.bytes).toBe(1005);
    // 300 completion tokens, none reported as reasoning (as Ollama reports): plausible only because the reasoning is measured.
    const usage = { promptTokens: 5, completionTokens: 300, measured: true };
    expect(checkUsagePlausibility(usage, { outputTokens: 400 }, stream.measure)).toEqual({ plausible: true });
    expect(checkUsagePlausibility(usage, { outputTokens: 400 }, { bytes: 5, toolCalls: 0 }).plausible).toBe(false);
  });
});

describe("hidden thinking of a chat reasoning_effort on an Anthropic-forwarding instance (SRP-ATT-015, SRP-CON-080)", () => {
  const anthropicKey = { capabilities: ["chat", "messages", "reasoning"] as Capability[] };
  it("allows the effort's thinking budget as hidden output there, and nowhere else", () => {
    expect(reasoningEffortBudget({ reasoning_effort: "medium" })).toBe(4096);
    expect(reasoningEffortBudget({ reasoning_effort: "none" })).toBeUndefined();
    expect(withEffortThinking({ outputTokens: 8000 }, anthropicKey, { reasoning_effort: "high" })).toEqual({
      outputTokens: 8000,
      hiddenThinkingTokens: 16384,
    });
    expect(withEffortThinking({ outputTokens: 8000 }, { capabilities: ["chat", "reasoning"] }, { reasoning_effort: "high" })).toEqual({
      outputTokens: 8000,
    });
    expect(withEffortThinking({ outputTokens: 8000 }, { capabilities: ["chat", "messages"] }, { reasoning_effort: "high" })).toEqual({
      outputTokens: 8000,
    });
    expect(withEffortThinking({ outputTokens: 8000 }, anthropicKey, {})).toEqual({ outputTokens: 8000 });
  });
  it("makes a receipt for a summarized thinking plausible up to the budget", () => {
    const shown = { bytes: 40, toolCalls: 0 };
    const bounds = withEffortThinking({ outputTokens: 8000 }, anthropicKey, { reasoning_effort: "low" });
    expect(checkUsagePlausibility({ promptTokens: 5, completionTokens: 1000, measured: true }, bounds, shown)).toEqual({ plausible: true });
    expect(checkUsagePlausibility({ promptTokens: 5, completionTokens: 1200, measured: true }, bounds, shown).plausible).toBe(false);
  });
});
