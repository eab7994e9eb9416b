import { afterEach, describe, expect, it } from "vitest";
import { startSimulator, type Simulator } from "../simulator/index.js";
import { detectServer } from "./index.js";
import { parseLlamaCppProps } from "./llamacpp.js";
import { parseLmStudioModels } from "./lmstudio.js";
import { parseOllamaModel, parseOllamaTags } from "./ollama.js";
import { parseOpenAIModels } from "./openai-list.js";
import { toolProbeVerdict } from "./probe.js";

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe("parsers", () => {
  it("reads Ollama's show: capabilities, GGUF names, context", () => {
    const tags = parseOllamaTags({
      models: [
        { name: "mine:latest", model: "mine:latest", digest: "ab".repeat(32), details: { family: "llama", quantization_level: "Q8_0" } },
      ],
    })!;
    const m = parseOllamaModel(tags[0]!, {
      details: { family: "llama", quantization_level: "Q8_0" },
      model_info: {
        "general.architecture": "llama",
        "general.basename": "Meta-Llama-3.1",
        "general.size_label": "8B",
        "general.finetune": "Instruct",
        "llama.context_length": 131072,
      },
      capabilities: ["completion", "tools", "thinking"],
    });
    expect(m).toEqual({
      id: "mine:latest",
      canonical: "llama-3.1-8b-instruct",
      quantization: "Q8_0",
      capabilities: ["chat", "stream", "tools", "json_mode", "reasoning"],
      contextLength: 131072,
      digest: "ab".repeat(32),
      toolsKnown: true,
    });
    // An Ollama older than `capabilities`: chat, tools unknown (probe); a BERT model embeds.
    expect(parseOllamaModel({ name: "llama3.1:8b" }, {}).toolsKnown).toBe(false);
    expect(parseOllamaModel({ name: "nomic-embed-text:latest", details: { family: "nomic-bert" } }, undefined).capabilities).toEqual([
      "embeddings",
    ]);
    // llama.cpp's /api/tags carries an OpenAI list too: not Ollama.
    expect(parseOllamaTags({ models: [], object: "list", data: [] })).toBeUndefined();
  });

  it("reads LM Studio's types and tool_use", () => {
    const ms = parseLmStudioModels({
      data: [
        { id: "qwen2.5-vl-7b-instruct", type: "vlm", quantization: "4bit", max_context_length: 32768, capabilities: ["tool_use"] },
        { id: "text-embedding-nomic-embed-text-v1.5", type: "embeddings", quantization: "Q4_0", max_context_length: 2048 },
        { id: "meta-llama-3.1-8b-instruct", type: "llm", quantization: "Q4_K_M", max_context_length: 131072 },
      ],
    })!;
    expect(ms.map((m) => [m.canonical, m.quantization, m.capabilities.join(","), m.toolsKnown])).toEqual([
      ["qwen2.5-vl-7b-instruct", "4BIT", "chat,stream,tools,vision,json_mode", true],
      ["nomic-embed-text-v1.5", "Q4_0", "embeddings", true],
      ["llama-3.1-8b-instruct", "Q4_K_M", "chat,stream,json_mode", false],
    ]);
    expect(parseLmStudioModels({ data: [{ id: "x", object: "model", owned_by: "organization_owner" }] })).toBeUndefined();
  });

  it("reads llama.cpp's props and vLLM's list", () => {
    expect(
      parseLlamaCppProps({
        default_generation_settings: { n_ctx: 4096 },
        total_slots: 4,
        model_path: "/m/x.gguf",
        modalities: { vision: true, audio: false },
        chat_template_caps: { supports_tools: true },
      }),
    ).toEqual({ contextLength: 4096, slots: 4, modelPath: "/m/x.gguf", vision: true, tools: true, embeddings: false });
    expect(parseLlamaCppProps({ status: "ok" })).toBeUndefined();
    const v = parseOpenAIModels({
      object: "list",
      data: [{ id: "served", owned_by: "vllm", root: "Qwen/Qwen2.5-7B-Instruct-AWQ", max_model_len: 32768 }],
    })!;
    expect(v.kind).toBe("vllm");
    expect(v.models[0]).toMatchObject({
      id: "served",
      canonical: "qwen2.5-7b-instruct",
      quantization: "AWQ",
      contextLength: 32768,
      toolsKnown: false,
    });
  });

  it("judges a tools probe by status and message", () => {
    expect(toolProbeVerdict(200, "{}")).toBe("yes");
    expect(toolProbeVerdict(400, '{"message":"\\"auto\\" tool choice requires --enable-auto-tool-choice"}')).toBe("no");
    expect(toolProbeVerdict(400, '{"message":"bad temperature"}')).toBe("unknown");
    expect(toolProbeVerdict(500, "tools")).toBe("unknown");
    expect(toolProbeVerdict(401, "tools")).toBe("unknown");
  });
});

describe("detectServer against the flavoured simulator", () => {
  it("Ollama: per-model capabilities from /api/show", async () => {
    sim = await startSimulator({
      flavor: "ollama",
      models: [
        { id: "llama3.1:8b", tools: true, contextLength: 131072 },
        { id: "llava:7b", vision: true, quantization: "Q4_0" },
        { id: "nomic-embed-text:latest", embedding: true, quantization: "F16" },
      ],
    });
    const s = (await detectServer(sim.url))!;
    expect(s.kind).toBe("ollama");
    expect(s.models.map((m) => [m.id, m.canonical, m.quantization, m.capabilities.join(","), m.contextLength])).toEqual([
      ["llama3.1:8b", "llama-3.1-8b-instruct", "Q4_K_M", "chat,stream,tools,json_mode,responses,completions", 131072],
      ["llava:7b", "llava:7b", "Q4_0", "chat,stream,vision,json_mode,responses,completions", 8192],
      ["nomic-embed-text:latest", "nomic-embed-text-v1.5", "F16", "embeddings", 8192],
    ]);
  });

  it("vLLM: tools decided by a probe, both ways", async () => {
    sim = await startSimulator({
      flavor: "vllm",
      models: [
        { id: "meta-llama/Llama-3.1-8B-Instruct", tools: true, contextLength: 65536 },
        { id: "Qwen/Qwen2.5-7B-Instruct-AWQ", tools: false },
      ],
    });
    const s = (await detectServer(sim.url))!;
    expect(s.kind).toBe("vllm");
    expect(s.models.map((m) => [m.canonical, m.quantization, m.capabilities.includes("tools"), m.contextLength])).toEqual([
      ["llama-3.1-8b-instruct", undefined, true, 65536],
      ["qwen2.5-7b-instruct", "AWQ", false, 8192],
    ]);
    const unprobed = (await detectServer(sim.url, { probe: false }))!;
    expect(unprobed.models.every((m) => !m.capabilities.includes("tools"))).toBe(true);
  });

  it("llama.cpp and LM Studio: from /props and /api/v0/models", async () => {
    sim = await startSimulator({
      flavor: "llamacpp",
      slots: 4,
      models: [{ id: "Meta-Llama-3.1-8B-Instruct-Q5_K_M.gguf", tools: true, vision: true, contextLength: 16384 }],
    });
    const l = (await detectServer(sim.url))!;
    expect(l).toMatchObject({ kind: "llamacpp", slots: 4 });
    expect(l.models[0]).toMatchObject({
      canonical: "llama-3.1-8b-instruct",
      quantization: "Q5_K_M",
      contextLength: 16384,
      capabilities: ["chat", "stream", "tools", "vision", "json_mode", "completions"],
    });
    await sim.close();
    sim = await startSimulator({ flavor: "lmstudio", models: [{ id: "qwen2.5-7b-instruct", tools: true, contextLength: 32768 }] });
    const lm = (await detectServer(sim.url))!;
    expect(lm.kind).toBe("lmstudio");
    expect(lm.models[0]).toMatchObject({
      canonical: "qwen2.5-7b-instruct",
      quantization: "Q4_K_M",
      capabilities: ["chat", "stream", "tools", "json_mode", "responses", "completions"],
    });
  });
});
