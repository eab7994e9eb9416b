import { describe, expect, it } from "vitest";
import { honoursSuffix, nativeTextApis, openAICompletionsModel, wantsSuffix } from "./native-apis.js";
import { reasoningSwitch, responsesReasoningSwitch } from "./reasoning-switch.js";

describe("nativeTextApis: what each server kind serves besides chat", () => {
  it("follows each server's documentation", () => {
    expect(nativeTextApis("openai")).toEqual(["responses", "completions"]);
    expect(nativeTextApis("vllm")).toEqual(["responses", "completions"]);
    expect(nativeTextApis("ollama")).toEqual(["responses", "completions"]);
    expect(nativeTextApis("lmstudio")).toEqual(["responses", "completions"]);
    expect(nativeTextApis("llamacpp")).toEqual(["completions"]);
    expect(nativeTextApis("openai-compatible")).toEqual([]);
    expect(nativeTextApis("gemini")).toEqual([]);
    expect(nativeTextApis("anthropic")).toEqual([]);
  });

  it("OpenAI serves /v1/completions only for its legacy completion models", () => {
    for (const m of ["gpt-3.5-turbo-instruct", "gpt-3.5-turbo-instruct-0914", "davinci-002", "babbage-002", "GPT-3.5-Turbo-Instruct"])
      expect(openAICompletionsModel(m), m).toBe(true);
    for (const m of ["gpt-4o-mini", "gpt-5", "o3-mini", "gpt-4.1", "davinci-003", "text-embedding-3-small", "gpt-3.5-turbo"])
      expect(openAICompletionsModel(m), m).toBe(false);
  });

  it("versions before /v1/responses existed serve completions only", () => {
    expect(nativeTextApis("ollama", "0.13.2")).toEqual(["completions"]);
    expect(nativeTextApis("ollama", "0.6.8")).toEqual(["completions"]);
    expect(nativeTextApis("ollama", "0.13.3")).toEqual(["responses", "completions"]);
    expect(nativeTextApis("ollama", "1.0.0")).toEqual(["responses", "completions"]);
    expect(nativeTextApis("vllm", "0.9.2")).toEqual(["completions"]);
    expect(nativeTextApis("vllm", "v0.10.1rc2")).toEqual(["responses", "completions"]);
    expect(nativeTextApis("vllm", "0.11.0+cu128")).toEqual(["responses", "completions"]);
    // An unparsable version counts as a current one.
    expect(nativeTextApis("vllm", "dev")).toEqual(["responses", "completions"]);
  });

  it("suffix (fill-in-the-middle) goes only where the server honours it", () => {
    expect(honoursSuffix("openai")).toBe(true);
    expect(honoursSuffix("ollama")).toBe(true);
    expect(honoursSuffix("vllm")).toBe(false);
    expect(honoursSuffix("llamacpp")).toBe(false);
    expect(honoursSuffix("lmstudio")).toBe(false);
    expect(wantsSuffix({ prompt: "a", suffix: "b" })).toBe(true);
    expect(wantsSuffix({ prompt: "a", suffix: "" })).toBe(false);
    expect(wantsSuffix({ prompt: "a", suffix: null })).toBe(false);
    expect(wantsSuffix({ prompt: "a" })).toBe(false);
  });
});

describe("reasoningSwitch: a chat job's reasoning_effort as each backend takes it", () => {
  const base = { model: "m", messages: [{ role: "user", content: "hi" }] };

  it("leaves requests without an effort, or with an unknown one, unchanged", () => {
    for (const kind of ["ollama", "vllm", "llamacpp", "lmstudio", "openai"] as const) {
      expect(reasoningSwitch(kind, base)).toBe(base);
      const odd = { ...base, reasoning_effort: "extreme" };
      expect(reasoningSwitch(kind, odd)).toBe(odd);
    }
  });

  it("Ollama: its four values (high, medium, low, none); minimal and xhigh map onto them", () => {
    expect(reasoningSwitch("ollama", { ...base, reasoning_effort: "minimal" })).toEqual({ ...base, reasoning_effort: "low" });
    expect(reasoningSwitch("ollama", { ...base, reasoning_effort: "xhigh" })).toEqual({ ...base, reasoning_effort: "high" });
    expect(reasoningSwitch("ollama", { ...base, reasoning_effort: "none" })).toEqual({ ...base, reasoning_effort: "none" });
    expect(reasoningSwitch("ollama", { ...base, reasoning_effort: "medium" })).toEqual({ ...base, reasoning_effort: "medium" });
    expect(reasoningSwitch("ollama", { ...base, reasoning_effort: "high" })).not.toHaveProperty("think");
  });

  it("vLLM and llama.cpp: the effort plus the chat template's thinking switches; the consumer's own kwargs win", () => {
    expect(reasoningSwitch("vllm", { ...base, reasoning_effort: "none" })).toEqual({
      ...base,
      chat_template_kwargs: { enable_thinking: false, thinking: false },
    });
    expect(reasoningSwitch("vllm", { ...base, reasoning_effort: "minimal" })).toEqual({
      ...base,
      reasoning_effort: "low",
      chat_template_kwargs: { enable_thinking: true, thinking: true },
    });
    expect(
      reasoningSwitch("llamacpp", { ...base, reasoning_effort: "high", chat_template_kwargs: { enable_thinking: false, custom: 1 } }),
    ).toEqual({
      ...base,
      reasoning_effort: "high",
      chat_template_kwargs: { enable_thinking: false, thinking: true, custom: 1 },
    });
  });

  it("LM Studio: three levels; none is left out", () => {
    expect(reasoningSwitch("lmstudio", { ...base, reasoning_effort: "xhigh" })).toEqual({ ...base, reasoning_effort: "high" });
    expect(reasoningSwitch("lmstudio", { ...base, reasoning_effort: "none" })).toEqual(base);
  });

  it("a Responses request's reasoning.effort: Ollama's levels; other servers unchanged", () => {
    const r = { model: "m", input: "hi", reasoning: { effort: "minimal", summary: "auto" } };
    expect(responsesReasoningSwitch("ollama", r)).toEqual({ ...r, reasoning: { effort: "low", summary: "auto" } });
    expect(responsesReasoningSwitch("ollama", { ...r, reasoning: { effort: "xhigh" } })).toEqual({ ...r, reasoning: { effort: "high" } });
    const kept = { ...r, reasoning: { effort: "none" } };
    expect(responsesReasoningSwitch("ollama", kept)).toBe(kept);
    expect(responsesReasoningSwitch("vllm", r)).toBe(r);
    expect(responsesReasoningSwitch("openai", r)).toBe(r);
    expect(responsesReasoningSwitch("ollama", { model: "m", input: "hi" })).toEqual({ model: "m", input: "hi" });
  });

  it("OpenAI and unrecognised servers get the request as it is", () => {
    const r = { ...base, reasoning_effort: "minimal" };
    expect(reasoningSwitch("openai", r)).toBe(r);
    expect(reasoningSwitch("openai-compatible", r)).toBe(r);
    expect(reasoningSwitch("gemini", r)).toBe(r);
  });
});
