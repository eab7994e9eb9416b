/**
 * The OpenAI-compatible backend's legacy completions and Responses API against the model
 * simulator over real HTTP, in the flavours whose real servers serve them, with usage read
 * by core's meters.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Usage } from "@srp/core/schema";
import { measureResponse, StreamMeter } from "@srp/core/metering";
import { startSimulator, type Simulator, type SimulatorOptions } from "../simulator/index.js";
import { openAICompatibleBackend } from "./openai-compatible.js";
import { openAIBackend } from "./forwarded.js";
import { BackendError, type Backend, type ChatResult } from "./types.js";

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start(options: SimulatorOptions): Promise<Simulator> {
  sim = await startSimulator(options);
  return sim;
}

const call = { signal: new AbortController().signal };

async function whole(r: ChatResult): Promise<Record<string, unknown>> {
  if (r.kind !== "response") throw new Error("expected a whole answer");
  return r.body;
}

async function collect(r: ChatResult): Promise<Record<string, unknown>[]> {
  if (r.kind !== "stream") throw new Error("expected a stream");
  const out: Record<string, unknown>[] = [];
  for await (const c of r.chunks) out.push(c);
  return out;
}

function metered(api: "responses" | "completions", chunks: Record<string, unknown>[]): Usage | undefined {
  const meter = new StreamMeter(api);
  let u: Usage | undefined;
  for (const c of chunks) u = meter.chunk(c) ?? u;
  return u;
}

const WEATHER = [
  {
    type: "function",
    name: "get_weather",
    description: "Weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
];

describe("legacy completions (/v1/completions)", () => {
  it("Ollama: suffix is honoured, whole and streamed, with usage", async () => {
    const s = await start({ flavor: "ollama", models: [{ id: "qwen2.5-coder:7b" }] });
    const backend = openAICompatibleBackend({ baseUrl: s.baseUrl, kind: "ollama" });
    expect(backend.apis).toEqual(expect.arrayContaining(["responses", "completions"]));
    const request = { model: "qwen2.5-coder:7b", prompt: "def add(a, b):\n", suffix: "\n    return c\n", max_tokens: 20 };
    const body = await whole(await backend.run!("completions", request, call));
    expect(body).toMatchObject({
      object: "text_completion",
      model: "qwen2.5-coder:7b",
      choices: [{ index: 0, finish_reason: expect.stringMatching(/^(stop|length)$/) }],
    });
    const text = (body.choices as { text: string }[])[0]!.text;
    expect(text).toMatch(/^\/\* fill-in-the-middle before "\\n {4}return c\\n" \*\//);
    expect(s.requests.at(-1)).toMatchObject({ suffix: "\n    return c\n", prompt: "def add(a, b):\n" });
    const usage = measureResponse("completions", request, body)!;
    expect(usage).toMatchObject({ measured: true, completionTokens: (body.usage as { completion_tokens: number }).completion_tokens });
    expect(usage.completionTokens).toBeGreaterThan(0);
    expect(usage.completionTokens).toBeLessThanOrEqual(20);

    const chunks = await collect(
      await backend.run!("completions", { ...request, stream: true, stream_options: { include_usage: true } }, call),
    );
    expect(chunks.every((c) => c.object === "text_completion")).toBe(true);
    const streamed = chunks.flatMap((c) => (c.choices as { text: string }[]).map((x) => x.text)).join("");
    expect(streamed).toBe(text);
    const finish = chunks
      .flatMap((c) => (c.choices as { finish_reason: string | null }[]).map((x) => x.finish_reason))
      .filter((f) => f !== null);
    expect(finish).toEqual([body.choices && (body.choices as { finish_reason: string }[])[0]!.finish_reason]);
    expect(metered("completions", chunks)).toEqual(usage);
  });

  it("a forwarded OpenAI key (the plain simulator standing in for api.openai.com): completions with suffix", async () => {
    const s = await start({});
    const backend = openAIBackend({ apiKey: "sk-test", baseUrl: s.baseUrl });
    const body = await whole(await backend.run!("completions", { model: "sim-llama-3-8b", prompt: "Say", suffix: "end" }, call));
    expect((body.choices as { text: string }[])[0]!.text).toMatch(/^\/\* fill-in-the-middle before "end" \*\//);
    // OpenAI's default length for text completions: 16 tokens.
    expect((body.usage as { completion_tokens: number }).completion_tokens).toBeLessThanOrEqual(16);
  });

  it("vLLM: completions without suffix stream with continuous usage; suffix is refused by the node before it reaches vLLM", async () => {
    const s = await start({ flavor: "vllm", models: [{ id: "Qwen/Qwen2.5-Coder-7B" }] });
    const backend = openAICompatibleBackend({ baseUrl: s.baseUrl, kind: "vllm" });
    const chunks = await collect(
      await backend.run!("completions", { model: "Qwen/Qwen2.5-Coder-7B", prompt: "def f():", max_tokens: 6, stream: true }, call),
    );
    expect(s.requests.at(-1)).toMatchObject({ stream_options: { include_usage: true, continuous_usage_stats: true } });
    const texts = chunks.filter((c) => (c.choices as unknown[]).length > 0);
    expect(texts.slice(0, -1).every((c) => typeof (c.usage as { completion_tokens?: number } | null)?.completion_tokens === "number")).toBe(
      true,
    );
    expect(metered("completions", chunks)).toMatchObject({ completionTokens: 6, measured: true });

    const before = s.requests.length;
    const refused = backend.run!("completions", { model: "Qwen/Qwen2.5-Coder-7B", prompt: "a", suffix: "b" }, call);
    await expect(refused).rejects.toBeInstanceOf(BackendError);
    await expect(refused).rejects.toMatchObject({ code: "job.unsupported_api", message: expect.stringContaining("suffix") });
    expect(s.requests.length).toBe(before);
    // vLLM itself refuses it, as the simulator shows.
    const direct = await fetch(`${s.baseUrl}/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "Qwen/Qwen2.5-Coder-7B", prompt: "a", suffix: "b" }),
    });
    expect(direct.status).toBe(400);
    expect(await direct.json()).toEqual({
      object: "error",
      message: "suffix is not currently supported",
      type: "BadRequestError",
      param: null,
      code: 400,
    });
  });

  it("an upstream error status is classified (the simulator's injected 429)", async () => {
    const s = await start({ flavor: "llamacpp", models: [{ id: "model.gguf" }] });
    const backend = openAICompatibleBackend({ baseUrl: s.baseUrl, kind: "llamacpp" });
    expect(backend.apis).toContain("completions");
    expect(backend.apis).not.toContain("responses");
    await expect(backend.run!("responses", { model: "model.gguf", input: "hi" }, call)).rejects.toMatchObject({
      code: "job.unsupported_api",
    });
    s.setFault({ kind: "status", status: 429 }, 1);
    await expect(backend.run!("completions", { model: "model.gguf", prompt: "hi" }, call)).rejects.toMatchObject({
      code: "job.upstream_rate_limited",
      upstreamStatus: 429,
    });
  });
});

describe("the Responses API (/v1/responses)", () => {
  for (const [label, options, make] of [
    [
      "vLLM",
      { flavor: "vllm", models: [{ id: "openai/gpt-oss-20b" }] },
      (url: string) => openAICompatibleBackend({ baseUrl: url, kind: "vllm" }),
    ],
    [
      "a forwarded OpenAI key",
      { models: [{ id: "openai/gpt-oss-20b" }] },
      (url: string) => openAIBackend({ apiKey: "sk-test", baseUrl: url }),
    ],
  ] as [string, SimulatorOptions, (url: string) => Backend][]) {
    it(`${label}: a whole response and the streamed events, usage read by core's meters`, async () => {
      const s = await start(options);
      const backend = make(s.baseUrl);
      expect(backend.apis).toContain("responses");
      const request = {
        model: "openai/gpt-oss-20b",
        instructions: "Be brief.",
        input: [{ role: "user", content: [{ type: "input_text", text: "Hello there" }] }],
        max_output_tokens: 12,
      };
      const body = await whole(await backend.run!("responses", request, call));
      expect(body).toMatchObject({
        object: "response",
        status: "incomplete",
        incomplete_details: { reason: "max_output_tokens" },
        output: [{ type: "message", role: "assistant", content: [{ type: "output_text" }] }],
      });
      expect(body.usage).toMatchObject({
        input_tokens: expect.any(Number),
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: 12,
        output_tokens_details: { reasoning_tokens: 0 },
      });
      const usage = measureResponse("responses", request, body)!;
      expect(usage).toMatchObject({
        promptTokens: (body.usage as { input_tokens: number }).input_tokens,
        completionTokens: 12,
        measured: true,
      });

      const events = await collect(await backend.run!("responses", { ...request, max_output_tokens: 200, stream: true }, call));
      const types = events.map((e) => e.type);
      expect(types.slice(0, 5)).toEqual([
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
      ]);
      expect(types.slice(-4)).toEqual([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
      ]);
      expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
      const deltas = events
        .filter((e) => e.type === "response.output_text.delta")
        .map((e) => e.delta)
        .join("");
      expect(events.find((e) => e.type === "response.output_text.done")).toMatchObject({ text: deltas });
      const completed = events.at(-1)!.response as { usage: { output_tokens: number }; output: unknown[] };
      expect(completed.output).toHaveLength(1);
      expect(metered("responses", events)).toMatchObject({ completionTokens: completed.usage.output_tokens, measured: true });
    });
  }

  it("a function tool: function_call item with streamed arguments; after its output, text", async () => {
    const s = await start({ flavor: "vllm", models: [{ id: "m", tools: true }] });
    const backend = openAICompatibleBackend({ baseUrl: s.baseUrl, kind: "vllm" });
    const request = { model: "m", input: "Weather in Paris?", tools: WEATHER };
    const body = await whole(await backend.run!("responses", request, call));
    expect(body).toMatchObject({
      status: "completed",
      output: [
        { type: "function_call", name: "get_weather", arguments: '{"city":"example city"}', call_id: expect.stringMatching(/^call_/) },
      ],
    });
    const events = await collect(await backend.run!("responses", { ...request, stream: true }, call));
    expect(events.map((e) => e.type).filter((t) => !String(t).endsWith(".delta"))).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.completed",
    ]);
    const args = events
      .filter((e) => e.type === "response.function_call_arguments.delta")
      .map((e) => e.delta)
      .join("");
    expect(args).toBe('{"city":"example city"}');
    const call0 = (body.output as { call_id: string }[])[0]!;
    const answer = await whole(
      await backend.run!(
        "responses",
        {
          model: "m",
          tools: WEATHER,
          input: [
            { role: "user", content: "Weather in Paris?" },
            { type: "function_call", call_id: call0.call_id, name: "get_weather", arguments: "{}" },
            { type: "function_call_output", call_id: call0.call_id, output: "sunny" },
          ],
        },
        call,
      ),
    );
    expect(answer).toMatchObject({ output: [{ type: "message", content: [{ text: expect.stringContaining("sunny") }] }] });
  });

  it("a stream that fails is a backend error, not a relayed event", async () => {
    const s = await start({ flavor: "vllm", models: [{ id: "m" }] });
    const backend = openAICompatibleBackend({ baseUrl: s.baseUrl, kind: "vllm" });
    s.setFault({ kind: "error_before_first_token" }, 1);
    await expect(collect(await backend.run!("responses", { model: "m", input: "hi", stream: true }, call))).rejects.toMatchObject({
      code: "job.upstream_error",
    });
    s.setFault({ kind: "drop_mid_stream", afterTokens: 2 }, 1);
    await expect(collect(await backend.run!("responses", { model: "m", input: "hi", stream: true }, call))).rejects.toMatchObject({
      code: "job.upstream_error",
    });
  });

  it("an unrecognised OpenAI-compatible server serves neither unless told", async () => {
    const s = await start({});
    expect(openAICompatibleBackend({ baseUrl: s.baseUrl }).apis).not.toContain("responses");
    const told = openAICompatibleBackend({ baseUrl: s.baseUrl, apis: ["responses"] });
    expect(told.apis).toContain("responses");
    expect(told.apis).not.toContain("completions");
    expect(await whole(await told.run!("responses", { model: "sim-llama-3-8b", input: "hi" }, call))).toMatchObject({
      object: "response",
      status: "completed",
    });
  });
});

describe("the reasoning switch reaches the server", () => {
  it("Ollama gets its own effort values; vLLM the chat template switch", async () => {
    const s = await start({ flavor: "ollama", models: [{ id: "qwen3:8b", thinking: true }] });
    const chat = { model: "qwen3:8b", messages: [{ role: "user", content: "hi" }], reasoning_effort: "minimal", stream: false };
    // Ollama refuses OpenAI's `minimal` (the simulator as Ollama does): sent as it is, the job fails on the consumer's input.
    await expect(openAICompatibleBackend({ baseUrl: s.baseUrl }).chat(chat, call)).rejects.toMatchObject({
      code: "job.invalid_request",
      upstreamStatus: 400,
      message: expect.stringContaining("invalid reasoning value"),
    });
    const ollama = openAICompatibleBackend({ baseUrl: s.baseUrl, kind: "ollama" });
    expect(await whole(await ollama.chat(chat, call))).toMatchObject({ object: "chat.completion" });
    expect(s.requests.at(-1)).toMatchObject({ reasoning_effort: "low" });
    // Its Responses endpoint likewise, through reasoning.effort.
    expect(
      await whole(await ollama.run!("responses", { model: "qwen3:8b", input: "hi", reasoning: { effort: "xhigh" } }, call)),
    ).toMatchObject({ status: "completed" });
    expect(s.requests.at(-1)).toMatchObject({ reasoning: { effort: "high" } });
    await s.close();
    const v = await start({ flavor: "vllm", models: [{ id: "Qwen/Qwen3-8B" }] });
    const vllm = openAICompatibleBackend({ baseUrl: v.baseUrl, kind: "vllm" });
    await vllm.chat({ model: "Qwen/Qwen3-8B", messages: [{ role: "user", content: "hi" }], reasoning_effort: "none", stream: false }, call);
    expect(v.requests.at(-1)).toMatchObject({ chat_template_kwargs: { enable_thinking: false, thinking: false } });
    expect(v.requests.at(-1)).not.toHaveProperty("reasoning_effort");
  });
});
