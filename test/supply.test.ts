/**
 * Real local supply, the user's path: `srp-provider setup` (the real CLI, a child process)
 * against stand-ins for Ollama, LM Studio, vLLM and llama.cpp (the simulator in each
 * server's flavour, answering its metadata endpoints), then the node it configured serving
 * tools, vision and embeddings requests through a real hub with the official OpenAI SDK,
 * asked for by alias and filtered by quantization.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import OpenAI from "openai";
import type { SimulatorOptions } from "@srp/provider/simulator";
import { KEY, runProviderCli, startNet, until, type Net } from "./helpers.js";

let net: Net | undefined;
let dir: string | undefined;

afterEach(async () => {
  if (dir) await cli("stop", "--dir", dir);
  await net?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  net = undefined;
  dir = undefined;
});

const cli = runProviderCli;

interface FileInstance {
  model: string;
  upstreamModel?: string;
  quantization?: string;
  capabilities: string[];
  contextLength?: number;
  maxConcurrency: number;
  price: Record<string, string>;
  backend: { kind: string };
}

/** Sets a node up against a flavoured simulator and starts it; returns its provider.json instances. */
async function setUp(
  options: SimulatorOptions,
  ...flags: string[]
): Promise<{ instances: FileInstance[]; stdout: string; sim: Awaited<ReturnType<Net["sim"]>> }> {
  net = await startNet();
  const sim = await net.sim(options);
  dir = mkdtempSync(join(tmpdir(), "srp-supply-"));
  const setup = await cli("setup", "--hub", net.url, "--dir", dir, "--no-detect", "--backend-url", sim.url, ...flags);
  expect(setup.stderr).toBe("");
  expect(setup.status).toBe(0);
  const instances = (JSON.parse(readFileSync(join(dir, "provider.json"), "utf8")) as { instances: FileInstance[] }).instances;
  const start = await cli("start", "--dir", dir);
  expect(start.status, `srp-provider start: ${start.stderr}`).toBe(0);
  await until(() => net!.hub.router.all().length === instances.length, 10_000, "the node to offer its instances");
  return { instances, stdout: setup.stdout, sim };
}

const WEATHER = [
  {
    type: "function" as const,
    function: {
      name: "get_weather",
      description: "Weather in a city",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
    },
  },
];
const IMAGE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

function sdk(): OpenAI {
  return new OpenAI({ baseURL: `${net!.url}/v1`, apiKey: KEY, maxRetries: 0 });
}

describe("srp-provider setup offers what each local server says its models can do", () => {
  it("Ollama: tools, vision, embeddings, per-model prices; asked by alias; filtered by quantization", async () => {
    const { instances, stdout, sim } = await setUp(
      {
        flavor: "ollama",
        models: [
          { id: "llama3.1:8b", tools: true, contextLength: 131072, quantization: "Q4_K_M" },
          { id: "llama3.1:8b-instruct-q8_0", tools: true, contextLength: 131072, quantization: "Q8_0" },
          { id: "llava:7b", vision: true, quantization: "Q4_0", family: "llama" },
          { id: "nomic-embed-text:latest", embedding: true, quantization: "F16", family: "nomic-bert" },
        ],
      },
      "--price",
      "llama3.1:8b=200000:600000,cachedInput=50000",
      "--price",
      "nomic-embed-text=input=20000,output=0",
    );
    expect(stdout).toMatch(
      /model {8}llama3\.1:8b -> llama-3\.1-8b-instruct {2}Q4_K_M {2}context 131072 {2}concurrency 2 {2}chat,stream,tools,json_mode/,
    );
    expect(instances.map((i) => [i.model, i.upstreamModel, i.quantization, i.capabilities.join(","), i.maxConcurrency])).toEqual([
      ["llama-3.1-8b-instruct", "llama3.1:8b", "Q4_K_M", "chat,stream,tools,json_mode,responses,completions", 2],
      ["llama-3.1-8b-instruct", "llama3.1:8b-instruct-q8_0", "Q8_0", "chat,stream,tools,json_mode,responses,completions", 2],
      ["llava:7b", undefined, "Q4_0", "chat,stream,vision,json_mode,responses,completions", 2],
      ["nomic-embed-text-v1.5", "nomic-embed-text:latest", "F16", "embeddings", 2],
    ]);
    expect(instances[0]!.price).toEqual({ input: "200000", output: "600000", cachedInput: "50000" });
    expect(instances[1]!.price).toEqual({ input: "100000", output: "300000" });
    expect(instances[3]!.price).toEqual({ input: "20000", output: "0" });

    const openai = sdk();
    // A tools request (what every agent sends), asked for by the Ollama tag.
    const tool = await openai.chat.completions.create({
      model: "llama3.1:8b",
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools: WEATHER,
    });
    expect(tool.choices[0]!.message.tool_calls?.[0]).toMatchObject({ type: "function", function: { name: "get_weather" } });
    expect((sim.requests.at(-1) as { model: string }).model).toMatch(/^llama3\.1:8b/);
    // By the Hugging Face id, pinned to the Q8_0 weights.
    const q8 = await openai.chat.completions.create({
      model: "meta-llama/Llama-3.1-8B-Instruct",
      messages: [{ role: "user", content: "hi" }],
      provider: { quantizations: ["q8_0"] },
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(q8.choices[0]!.message.content).toBeTruthy();
    expect(sim.requests.at(-1)).toMatchObject({ model: "llama3.1:8b-instruct-q8_0" });
    expect(sim.requests.at(-1)).not.toHaveProperty("provider"); // SRP-CON-020
    await expect(
      openai.chat.completions.create({
        model: "llama-3.1-8b-instruct",
        messages: [{ role: "user", content: "hi" }],
        provider: { quantizations: ["F16"] },
      } as OpenAI.ChatCompletionCreateParamsNonStreaming),
    ).rejects.toMatchObject({ status: 404 });
    await expect(
      openai.chat.completions.create({
        model: "llama-3.1-8b-instruct",
        messages: [{ role: "user", content: "hi" }],
        provider: { quantizations: ["not-a-quant"] },
      } as OpenAI.ChatCompletionCreateParamsNonStreaming),
    ).rejects.toMatchObject({ status: 400 });
    // Vision.
    const seen = await openai.chat.completions.create({
      model: "llava:7b",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is this?" },
            { type: "image_url", image_url: { url: IMAGE } },
          ],
        },
      ],
    });
    expect(seen.choices[0]!.message.content).toBeTruthy();
    // A model without vision is not sent images: the hub says so.
    await expect(
      openai.chat.completions.create({
        model: "llama3.1:8b",
        messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: IMAGE } }] }],
      }),
    ).rejects.toMatchObject({ status: 404, message: expect.stringContaining("vision") });
    // Embeddings, by the short Ollama name.
    const emb = await openai.embeddings.create({ model: "nomic-embed-text", input: ["a", "b"] });
    expect(emb.data).toHaveLength(2);
    expect(sim.requests.at(-1)).toMatchObject({ model: "nomic-embed-text:latest" });

    // The catalog: one entry per canonical id, with its quantizations and aliases.
    const list = (await (await fetch(`${net!.url}/v1/models`)).json()) as {
      aliases_version: string;
      data: { id: string; quantizations: string[]; aliases: string[]; capabilities: string[] }[];
    };
    expect(list.aliases_version).toMatch(/^\d{4}\.\d+$/);
    const llama = list.data.find((m) => m.id === "llama-3.1-8b-instruct")!;
    expect(llama.quantizations).toEqual(["Q4_K_M", "Q8_0"]);
    expect(llama.aliases).toEqual(expect.arrayContaining(["llama3.1:8b", "meta-llama/Llama-3.1-8B-Instruct"]));
    expect(list.data.find((m) => m.id === "nomic-embed-text-v1.5")!.capabilities).toEqual(["embeddings"]);
  }, 60_000);

  it("vLLM: a probe decides tools; concurrency 16; overrides by flag", async () => {
    const { instances, sim } = await setUp(
      {
        flavor: "vllm",
        models: [
          { id: "meta-llama/Llama-3.1-8B-Instruct", tools: true, contextLength: 65536 },
          { id: "Qwen/Qwen2.5-7B-Instruct-AWQ", tools: false, contextLength: 32768 },
          { id: "served-vlm", root: "Qwen/Qwen2.5-VL-7B-Instruct" },
        ],
      },
      "--capabilities",
      "served-vlm=chat,stream,vision",
    );
    expect(instances.map((i) => [i.model, i.quantization, i.capabilities.join(","), i.contextLength, i.maxConcurrency])).toEqual([
      ["llama-3.1-8b-instruct", undefined, "chat,stream,tools,json_mode,responses,completions", 65536, 16],
      ["qwen2.5-7b-instruct", "AWQ", "chat,stream,json_mode,responses,completions", 32768, 16],
      ["qwen2.5-vl-7b-instruct", undefined, "chat,stream,vision", 8192, 16],
    ]);
    const openai = sdk();
    const tool = await openai.chat.completions.create({
      model: "llama-3.1-8b-instruct",
      messages: [{ role: "user", content: "Weather?" }],
      tools: WEATHER,
    });
    expect(tool.choices[0]!.finish_reason).toBe("tool_calls");
    expect(sim.requests.at(-1)).toMatchObject({ model: "meta-llama/Llama-3.1-8B-Instruct" });
    // The model whose server refused the probe is not sent tools.
    await expect(
      openai.chat.completions.create({ model: "qwen2.5", messages: [{ role: "user", content: "Weather?" }], tools: WEATHER }),
    ).rejects.toMatchObject({ status: 404, message: expect.stringContaining("tools") });
    const seen = await openai.chat.completions.create({
      model: "Qwen/Qwen2.5-VL-7B-Instruct",
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: IMAGE } }] }],
    });
    expect(seen.choices[0]!.message.content).toBeTruthy();
  }, 60_000);

  it("llama.cpp: slots, tools and vision from /props", async () => {
    const { instances } = await setUp(
      {
        flavor: "llamacpp",
        slots: 3,
        models: [{ id: "Meta-Llama-3.1-8B-Instruct-Q5_K_M.gguf", tools: true, vision: true, contextLength: 16384 }],
      },
      "--no-probe",
    );
    expect(instances).toEqual([
      expect.objectContaining({
        model: "llama-3.1-8b-instruct",
        upstreamModel: "Meta-Llama-3.1-8B-Instruct-Q5_K_M.gguf",
        quantization: "Q5_K_M",
        capabilities: ["chat", "stream", "tools", "vision", "json_mode", "completions"],
        contextLength: 16384,
        maxConcurrency: 3,
      }),
    ]);
    const tool = await sdk().chat.completions.create({
      model: "llama3.1",
      messages: [{ role: "user", content: "Weather?" }],
      tools: WEATHER,
      stream: true,
    });
    let name = "";
    for await (const c of tool) name += c.choices[0]?.delta.tool_calls?.[0]?.function?.name ?? "";
    expect(name).toBe("get_weather");
  }, 60_000);

  it("LM Studio: types and tool_use from /api/v0/models", async () => {
    const { instances } = await setUp(
      {
        flavor: "lmstudio",
        models: [
          { id: "qwen2.5-7b-instruct", tools: true, contextLength: 32768 },
          { id: "gemma-3-4b-it", vision: true, quantization: "4bit" },
          { id: "text-embedding-nomic-embed-text-v1.5", embedding: true, quantization: "Q4_0", contextLength: 2048 },
        ],
      },
      "--max-concurrency",
      "3",
    );
    expect(instances.map((i) => [i.model, i.quantization, i.capabilities.join(","), i.maxConcurrency])).toEqual([
      ["qwen2.5-7b-instruct", "Q4_K_M", "chat,stream,tools,json_mode,responses,completions", 3],
      ["gemma-3-4b-it", "4BIT", "chat,stream,vision,json_mode,responses,completions", 3],
      ["nomic-embed-text-v1.5", "Q4_0", "embeddings", 3],
    ]);
    const openai = sdk();
    const tool = await openai.chat.completions.create({
      model: "Qwen/Qwen2.5-7B-Instruct",
      messages: [{ role: "user", content: "Weather?" }],
      tools: WEATHER,
    });
    expect(tool.choices[0]!.finish_reason).toBe("tool_calls");
    expect((await openai.embeddings.create({ model: "nomic-ai/nomic-embed-text-v1.5", input: "x" })).data).toHaveLength(1);
  }, 60_000);

  it("setup refuses malformed --price and --capabilities flags with a usage error", async () => {
    net = await startNet();
    const sim = await net.sim({ flavor: "ollama", models: [{ id: "llama3.1:8b" }] });
    dir = mkdtempSync(join(tmpdir(), "srp-supply-"));
    const bad = await cli("setup", "--hub", net.url, "--dir", dir, "--no-detect", "--backend-url", sim.url, "--price", "llama3.1:8b=cheap");
    expect(bad.status).toBe(64);
    expect(bad.stderr).toContain("--price");
    const caps = await cli(
      "setup",
      "--hub",
      net.url,
      "--dir",
      dir,
      "--no-detect",
      "--backend-url",
      sim.url,
      "--capabilities",
      "llama3.1:8b=chat,telepathy",
    );
    expect(caps.status).toBe(64);
    expect(caps.stderr).toContain("telepathy");
    dir && rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
});
