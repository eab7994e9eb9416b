import { afterAll, describe, expect, it } from "vitest";
import { parseSse } from "@srp/core";
import { startSimulator, type Simulator } from "./server.js";
import { startAnthropicSimulator, type AnthropicSimulator } from "./anthropic.js";
import { simulatedReasoning } from "./reasoning.js";
import { anthropicBackend, thinkingForEffort } from "../backends/anthropic.js";
import { countTokens } from "./text.js";

type Json = Record<string, unknown>;
const open: { close(): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.all(open.map((s) => s.close()));
});

async function sim(o: Parameters<typeof startSimulator>[0]): Promise<Simulator> {
  const s = await startSimulator(o);
  open.push(s);
  return s;
}

async function chat(s: Simulator, body: Json): Promise<{ status: number; json?: Json; chunks?: Json[] }> {
  const res = await fetch(`${s.baseUrl}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "sim-llama-3-8b", messages: [{ role: "user", content: "Why?" }], ...body }),
  });
  if (body.stream !== true || res.status !== 200) return { status: res.status, json: (await res.json()) as Json };
  const chunks: Json[] = [];
  for await (const e of parseSse(res.body!)) if (e.data !== "[DONE]") chunks.push(JSON.parse(e.data) as Json);
  return { status: res.status, chunks };
}

const deltas = (chunks: Json[]) => chunks.flatMap((c) => ((c.choices as Json[]) ?? []).map((ch) => ch.delta as Json));

describe("simulatedReasoning", () => {
  it("turns on by effort, think, option or thinking model; off by none; Ollama refuses unknown efforts", () => {
    expect(simulatedReasoning({ reasoning_effort: "high" }, 100, {})).toEqual({ member: "reasoning_content", tokens: 32 });
    expect(simulatedReasoning({ reasoning_effort: "low" }, 5, { flavor: "ollama" })).toEqual({ member: "reasoning", tokens: 5 });
    expect(simulatedReasoning({ reasoning: { effort: "low" } }, 100, { flavor: "ollama" })).toEqual({ member: "reasoning", tokens: 8 });
    expect(simulatedReasoning({ think: true }, 100, {})).toEqual({ member: "reasoning_content", tokens: 16 });
    expect(simulatedReasoning({}, 100, { always: true, member: "reasoning" })).toEqual({ member: "reasoning", tokens: 16 });
    expect(simulatedReasoning({}, 100, { thinkingModel: true })).toBeDefined();
    expect(simulatedReasoning({ reasoning_effort: "none" }, 100, { always: true })).toBeUndefined();
    expect(simulatedReasoning({ think: false }, 100, { thinkingModel: true })).toBeUndefined();
    expect(simulatedReasoning({}, 100, {})).toBeUndefined();
    expect(simulatedReasoning({ reasoning_effort: "minimal" }, 100, { flavor: "ollama" })).toHaveProperty("error");
  });
});

describe("the simulator's reasoning mode", () => {
  it("vLLM flavour: reasoning_content chunks after the role chunk, then content; reasoning_tokens reported inside completion_tokens", async () => {
    const s = await sim({ flavor: "vllm" });
    const { chunks } = await chat(s, { stream: true, max_tokens: 40, reasoning_effort: "medium", stream_options: { include_usage: true } });
    const d = deltas(chunks!);
    expect(d[0]).toMatchObject({ role: "assistant", content: "" });
    const reasoning = d.filter((x) => typeof x.reasoning_content === "string");
    expect(reasoning).toHaveLength(16);
    const firstContent = d.findIndex((x) => typeof x.content === "string" && x.content !== "");
    expect(firstContent).toBeGreaterThan(d.indexOf(reasoning.at(-1)!));
    const usage = chunks!.at(-1)!.usage as Json;
    const text = d.map((x) => (typeof x.content === "string" ? x.content : "")).join("");
    expect(usage.completion_tokens).toBe(40);
    expect(usage.completion_tokens).toBe(16 + countTokens(text));
    expect((usage.completion_tokens_details as Json).reasoning_tokens).toBe(16);

    const { json } = await chat(s, { max_tokens: 40, reasoning_effort: "low" });
    const message = (json!.choices as Json[])[0]!.message as Json;
    expect(countTokens(message.reasoning_content as string)).toBe(8);
    expect(((json!.usage as Json).completion_tokens_details as Json).reasoning_tokens).toBe(8);
  });

  it("Ollama flavour: delta.reasoning with role and empty content, no completion_tokens_details; a bad effort is Ollama's 400", async () => {
    const s = await sim({ flavor: "ollama" });
    const { chunks } = await chat(s, { stream: true, max_tokens: 30, reasoning_effort: "low", stream_options: { include_usage: true } });
    const d = deltas(chunks!);
    const reasoning = d.filter((x) => typeof x.reasoning === "string");
    expect(reasoning).toHaveLength(8);
    expect(reasoning[0]).toMatchObject({ role: "assistant", content: "" });
    expect(d.some((x) => "reasoning_content" in x)).toBe(false);
    const usage = chunks!.at(-1)!.usage as Json;
    expect(usage.completion_tokens).toBe(30);
    expect(usage).not.toHaveProperty("completion_tokens_details");
    const bad = await chat(s, { reasoning_effort: "extreme" });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json)).toContain("invalid reasoning value");
  });

  it("without reasoning asked for, nothing changes", async () => {
    const s = await sim({});
    const { json } = await chat(s, { max_tokens: 10 });
    const message = (json!.choices as Json[])[0]!.message as Json;
    expect(message).not.toHaveProperty("reasoning_content");
    expect(((json!.usage as Json).completion_tokens_details as Json).reasoning_tokens).toBe(0);
  });
});

describe("reasoning_effort -> Anthropic thinking and back (SRP-CON-080)", () => {
  it("maps efforts to budgets below max_tokens, and leaves thinking off where Anthropic would refuse it", () => {
    const m = [{ role: "user", content: "x" }];
    expect(thinkingForEffort({ reasoning_effort: "medium", messages: m }, 8192)).toEqual({ type: "enabled", budget_tokens: 4096 });
    expect(thinkingForEffort({ reasoning_effort: "high", messages: m }, 8192)).toEqual({ type: "enabled", budget_tokens: 8191 });
    expect(thinkingForEffort({ reasoning_effort: "low", messages: m }, 1024)).toBeUndefined();
    expect(thinkingForEffort({ reasoning_effort: "none", messages: m }, 8192)).toBeUndefined();
    expect(thinkingForEffort({ messages: m }, 8192)).toBeUndefined();
    expect(thinkingForEffort({ reasoning_effort: "low", messages: m, tool_choice: "required" }, 8192)).toBeUndefined();
    expect(
      thinkingForEffort({ reasoning_effort: "low", messages: [...m, { role: "tool", tool_call_id: "a", content: "1" }] }, 8192),
    ).toBeUndefined();
    expect(() => thinkingForEffort({ reasoning_effort: "extreme", messages: m }, 8192)).toThrow(/reasoning_effort/);
  });

  it("a forwarded Anthropic key streams thinking as reasoning_content chunks and returns message.reasoning_content", async () => {
    const claude: AnthropicSimulator = await startAnthropicSimulator();
    open.push(claude);
    const backend = anthropicBackend({ apiKey: "sk-ant-sim", baseUrl: claude.url });
    const request = {
      model: "claude-sim-1",
      max_tokens: 2048,
      temperature: 0.2,
      reasoning_effort: "low",
      messages: [{ role: "user", content: "Why?" }],
    };
    const streamed = await backend.chat({ ...request, stream: true }, { signal: AbortSignal.timeout(5000) });
    expect(claude.requests.at(-1)).toMatchObject({ thinking: { type: "enabled", budget_tokens: 1024 }, max_tokens: 2048 });
    expect(claude.requests.at(-1)).not.toHaveProperty("temperature");
    const chunks: Json[] = [];
    if (streamed.kind !== "stream") throw new Error("expected a stream");
    for await (const c of streamed.chunks) chunks.push(c as Json);
    const d = deltas(chunks);
    const reasoning = d.map((x) => (typeof x.reasoning_content === "string" ? x.reasoning_content : "")).join("");
    expect(countTokens(reasoning)).toBe(16);
    expect(d.findIndex((x) => typeof x.reasoning_content === "string")).toBeLessThan(
      d.findIndex((x) => typeof x.content === "string" && x.content !== ""),
    );
    const usage = chunks.at(-1)!.usage as Json;
    expect(usage.completion_tokens).toBe(2048);

    const whole = await backend.chat(request, { signal: AbortSignal.timeout(5000) });
    if (whole.kind !== "response") throw new Error("expected a response");
    const message = (whole.body.choices as Json[])[0]!.message as Json;
    expect(countTokens(message.reasoning_content as string)).toBe(16);
    expect(typeof message.content).toBe("string");
  });

  it("the Anthropic simulator refuses a budget below 1024 or not below max_tokens, as Anthropic does", async () => {
    const claude = await startAnthropicSimulator();
    open.push(claude);
    const post = (thinking: Json, max_tokens: number) =>
      fetch(`${claude.url}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": "sk-ant-sim", "anthropic-version": "2023-06-01" },
        body: JSON.stringify({ model: "claude-sim-1", max_tokens, thinking, messages: [{ role: "user", content: "x" }] }),
      });
    expect((await post({ type: "enabled", budget_tokens: 512 }, 4096)).status).toBe(400);
    expect((await post({ type: "enabled", budget_tokens: 2048 }, 2048)).status).toBe(400);
    const ok = (await (await post({ type: "enabled", budget_tokens: 1024 }, 2048)).json()) as Json;
    expect((ok.content as Json[]).map((b) => b.type)).toEqual(["thinking", "text"]);
    expect((ok.usage as Json).output_tokens).toBe(2048);
  });
});
