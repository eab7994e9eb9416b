/**
 * The simulators against the official clients (`openai`, `@anthropic-ai/sdk`) over real
 * HTTP, for what real servers do that tests rely on: the Responses API's reasoning items and
 * `response.reasoning_text.delta` events with `reasoning_tokens` in its usage, and its
 * `cached_tokens` from the prefix cache; legacy completions with `n` choices; Anthropic's
 * adaptive thinking.
 */
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, describe, expect, it } from "vitest";
import { measureOutput, measureResponse } from "@srp/core/metering";
import { countTokens, startAnthropicSimulator, startSimulator, type SimulatorOptions } from "@srp/provider/simulator";

const MODEL = "sim-llama-3-8b";
const open: { close(): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.all(open.map((s) => s.close()));
});

async function client(options: SimulatorOptions = {}): Promise<OpenAI> {
  const sim = await startSimulator({ models: [{ id: MODEL }], ...options });
  open.push(sim);
  return new OpenAI({ baseURL: sim.baseUrl, apiKey: "sk-sim", maxRetries: 0 });
}

describe("Responses simulator: reasoning", () => {
  it("reasoning.effort yields a reasoning item first, reasoning_text deltas when streamed, and reasoning_tokens in the usage", async () => {
    const openai = await client();
    const params = { model: MODEL, input: "Why is the sky blue?", max_output_tokens: 40, reasoning: { effort: "low" as const } };
    const whole = await openai.responses.create(params);
    expect(whole.output.map((o) => o.type)).toEqual(["reasoning", "message"]);
    const reasoning = whole.output[0] as OpenAI.Responses.ResponseReasoningItem;
    expect(reasoning.id).toMatch(/^rs_/);
    expect(reasoning.content).toHaveLength(1);
    expect(reasoning.content![0]!.type).toBe("reasoning_text");
    const thought = reasoning.content![0]!.text;
    expect(countTokens(thought)).toBe(8); // `low`
    expect(whole.usage!.output_tokens_details.reasoning_tokens).toBe(8);
    expect(whole.usage!.output_tokens).toBe(8 + countTokens(whole.output_text));
    expect(whole.usage!.output_tokens).toBeLessThanOrEqual(40);
    // Core reads the same usage (SRP-JOB-030) and measures the reasoning as relayed output (SRP-ATT-016).
    expect(measureResponse("responses", params, whole as unknown as Record<string, unknown>)).toMatchObject({
      reasoningTokens: 8,
      completionTokens: whole.usage!.output_tokens,
    });

    const stream = openai.responses.stream(params);
    const types: string[] = [];
    let deltas = "";
    stream.on("event", (e) => {
      types.push(e.type);
      if (e.type === "response.reasoning_text.delta") {
        expect(e.output_index).toBe(0);
        deltas += e.delta;
      }
    });
    const final = await stream.finalResponse();
    expect(deltas).toBe(thought);
    expect(types.indexOf("response.reasoning_text.delta")).toBeLessThan(types.indexOf("response.output_text.delta"));
    expect(types).toContain("response.reasoning_text.done");
    expect(final.output.map((o) => o.type)).toEqual(["reasoning", "message"]);
    expect((final.output[0] as OpenAI.Responses.ResponseReasoningItem).content![0]!.text).toBe(thought);
    expect(final.output_text).toBe(whole.output_text);
    expect(final.usage).toEqual(whole.usage);
  });

  it("reasons with a tool call too, and not at all without reasoning or with effort none", async () => {
    const openai = await client();
    const tools = [
      {
        type: "function" as const,
        name: "get_weather",
        description: "Weather",
        strict: false,
        parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
      },
    ];
    const call = await openai.responses.create({ model: MODEL, input: "Weather in Oslo?", tools, reasoning: { effort: "medium" } });
    expect(call.output.map((o) => o.type)).toEqual(["reasoning", "function_call"]);
    expect(call.usage!.output_tokens_details.reasoning_tokens).toBe(16);
    for (const reasoning of [undefined, { effort: "none" as const }]) {
      const plain = await openai.responses.create({ model: MODEL, input: "Hi", max_output_tokens: 8, ...(reasoning ? { reasoning } : {}) });
      expect(plain.output.map((o) => o.type)).toEqual(["message"]);
      expect(plain.usage!.output_tokens_details.reasoning_tokens).toBe(0);
    }
  });

  it("the simulator's reasoning option makes every request reason unless it says none", async () => {
    const openai = await client({ reasoning: "high", defaultMaxTokens: 200 });
    const r = await openai.responses.create({ model: MODEL, input: "Hi", max_output_tokens: 60 });
    expect(r.output[0]!.type).toBe("reasoning");
    expect(r.usage!.output_tokens_details.reasoning_tokens).toBe(32);
    const off = await openai.responses.create({ model: MODEL, input: "Hi", max_output_tokens: 60, reasoning: { effort: "none" } });
    expect(off.output.map((o) => o.type)).toEqual(["message"]);
    // A streamed answer's relayed reasoning is measured from its events.
    const events: unknown[] = [];
    for await (const e of await openai.responses.create({ model: MODEL, input: "Hi", max_output_tokens: 60, stream: true })) events.push(e);
    const final = (events.at(-1) as { response: OpenAI.Responses.Response }).response;
    const text = final.output
      .flatMap((o) =>
        o.type === "reasoning"
          ? o.content!.map((c) => c.text)
          : o.type === "message"
            ? o.content.map((c) => (c.type === "output_text" ? c.text : ""))
            : [],
      )
      .join("");
    expect(measureOutput({ api: "responses", stream: true }, ...events).bytes).toBe(Buffer.byteLength(text));
  });
});

describe("Responses simulator: prefix cache", () => {
  it("reports cached_tokens for a prompt that extends an earlier one, when the prefix cache is on", async () => {
    const input: OpenAI.Responses.ResponseInputItem[] = [{ role: "user", content: "Tell me about the prefix cache of this simulator." }];
    const params = { model: MODEL, instructions: "You are terse.", max_output_tokens: 8 };
    const cached = await client({ prefixCache: true });
    const first = await cached.responses.create({ ...params, input });
    expect(first.usage!.input_tokens_details.cached_tokens).toBe(0);
    const longer = [...input, { role: "assistant" as const, content: first.output_text }, { role: "user" as const, content: "More." }];
    const second = await cached.responses.create({ ...params, input: longer });
    expect(second.usage!.input_tokens_details.cached_tokens).toBe(first.usage!.input_tokens);
    expect(second.usage!.input_tokens).toBeGreaterThan(first.usage!.input_tokens);
    const streamed = await cached.responses.stream({ ...params, input: longer }).finalResponse();
    expect(streamed.usage!.input_tokens_details.cached_tokens).toBe(second.usage!.input_tokens - 1);

    const plain = await client();
    await plain.responses.create({ ...params, input });
    expect((await plain.responses.create({ ...params, input: longer })).usage!.input_tokens_details.cached_tokens).toBe(0);
  });
});

describe("completions simulator: n", () => {
  it("answers n choices per prompt, indexed prompt × n + choice, each different, all in the usage", async () => {
    const openai = await client();
    const r = await openai.completions.create({ model: MODEL, prompt: ["def add(a, b):", "def sub(a, b):"], n: 2, max_tokens: 6 });
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    expect(new Set(r.choices.map((c) => c.text)).size).toBe(4);
    expect(r.usage!.completion_tokens).toBe(r.choices.reduce((n, c) => n + countTokens(c.text), 0));
    expect(r.usage!.prompt_tokens).toBe(countTokens("def add(a, b):") + countTokens("def sub(a, b):"));
    const one = await openai.completions.create({ model: MODEL, prompt: "def add(a, b):", max_tokens: 6 });
    expect(one.choices.map((c) => c.text)).toEqual([r.choices[0]!.text]);

    const texts = new Map<number, string>();
    const stream = await openai.completions.create({
      model: MODEL,
      prompt: "def add(a, b):",
      n: 3,
      max_tokens: 6,
      stream: true,
      stream_options: { include_usage: true },
    });
    let completion = 0;
    for await (const c of stream) {
      for (const ch of c.choices) texts.set(ch.index, (texts.get(ch.index) ?? "") + ch.text);
      if (c.usage) completion = c.usage.completion_tokens;
    }
    expect([...texts.keys()].sort()).toEqual([0, 1, 2]);
    expect(texts.get(0)).toBe(r.choices[0]!.text);
    expect(texts.get(1)).toBe(r.choices[1]!.text);
    expect(completion).toBe([...texts.values()].reduce((n, t) => n + countTokens(t), 0));
  });

  it("refuses a bad n; Ollama's flavour ignores n, llama.cpp's refuses n other than 1", async () => {
    const openai = await client();
    const bad = await openai.completions.create({ model: MODEL, prompt: "x", n: 0 }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    const ollama = await client({ flavor: "ollama" });
    expect((await ollama.completions.create({ model: MODEL, prompt: "x", n: 3, max_tokens: 4 })).choices).toHaveLength(1);
    const llamacpp = await client({ flavor: "llamacpp" });
    const refused = await llamacpp.completions.create({ model: MODEL, prompt: "x", n: 2, max_tokens: 4 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    expect(String((refused as Error).message)).toMatch(/Only one completion choice is allowed/);
  });
});

describe("Anthropic simulator: adaptive thinking", () => {
  it("accepts thinking {type: adaptive}, thinking by output_config.effort (high when absent), within max_tokens", async () => {
    const sim = await startAnthropicSimulator();
    open.push(sim);
    const anthropic = new Anthropic({ baseURL: sim.url, apiKey: "sk-ant-sim", maxRetries: 0 });
    const ask = (extra: Record<string, unknown>, maxTokens = 200) =>
      anthropic.messages.create({
        model: "claude-sim-1",
        max_tokens: maxTokens,
        messages: [{ role: "user", content: "Why?" }],
        thinking: { type: "adaptive" },
        ...extra,
      } as Anthropic.MessageCreateParamsNonStreaming);
    for (const [effort, tokens] of [
      ["low", 8],
      ["medium", 16],
      ["high", 32],
      [undefined, 32],
      ["max", 48],
    ] as const) {
      const msg = await ask(effort ? { output_config: { effort } } : {});
      expect(msg.content.map((b) => b.type)).toEqual(["thinking", "text"]);
      const block = msg.content[0] as Anthropic.ThinkingBlock;
      expect(countTokens(block.thinking), String(effort)).toBe(tokens);
      expect(block.signature.length).toBeGreaterThan(0);
      expect(msg.usage.output_tokens).toBe(tokens + countTokens((msg.content[1] as Anthropic.TextBlock).text));
    }
    // Thinking leaves room for the answer within max_tokens.
    const short = await ask({}, 10);
    expect(countTokens((short.content[0] as Anthropic.ThinkingBlock).thinking)).toBe(9);
    expect(short.usage.output_tokens).toBeLessThanOrEqual(10);
    // Streamed: the same thinking block, with its signature.
    const streamed = await anthropic.messages
      .stream({
        model: "claude-sim-1",
        max_tokens: 200,
        messages: [{ role: "user", content: "Why?" }],
        thinking: { type: "adaptive" },
      } as Anthropic.MessageStreamParams)
      .finalMessage();
    expect(streamed.content[0]).toEqual((await ask({})).content[0]);
    // What Anthropic refuses, the simulator refuses.
    for (const thinking of [{ type: "adaptive", budget_tokens: 2048 }, { type: "sometimes" }]) {
      const err = await anthropic.messages
        .create({
          model: "claude-sim-1",
          max_tokens: 4096,
          messages: [{ role: "user", content: "Why?" }],
          thinking,
        } as unknown as Anthropic.MessageCreateParamsNonStreaming)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    }
  });
});
