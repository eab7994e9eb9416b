import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generateIdentity } from "@srp/core";
import { instancesFromConfig, nodeKeyStore, readNodeConfig, writeNodeConfig } from "./node-config.js";
import type { DetectedServer } from "./detect/index.js";
import { mirrorsMaxTokens } from "./backends/openai-compatible.js";
import {
  describeInstance,
  flagTargets,
  parseCapabilitiesFlag,
  parsePriceFlag,
  planForwardedInstances,
  planInstances,
  unmatchedFlags,
} from "./supply.js";

const OLLAMA: DetectedServer = {
  kind: "ollama",
  baseUrl: "http://127.0.0.1:11434/v1",
  models: [
    {
      id: "llama3.1:8b",
      canonical: "llama-3.1-8b-instruct",
      quantization: "Q4_K_M",
      capabilities: ["chat", "stream", "tools"],
      contextLength: 131072,
      toolsKnown: true,
    },
    {
      id: "llama3.1:8b-instruct-q8_0",
      canonical: "llama-3.1-8b-instruct",
      quantization: "Q8_0",
      capabilities: ["chat", "stream", "tools"],
      toolsKnown: true,
    },
    { id: "nomic-embed-text:latest", canonical: "nomic-embed-text-v1.5", capabilities: ["embeddings"], toolsKnown: true },
  ],
};
const PRICE = { input: "100000", output: "300000" };

describe("setup flags", () => {
  it("parses per-model prices with unit prices", () => {
    expect(parsePriceFlag("llama3.1:8b=200000:600000,cachedInput=50000,cacheWrite=125000")).toEqual({
      model: "llama3.1:8b",
      price: { input: "200000", output: "600000", cachedInput: "50000", cacheWrite: "125000" },
    });
    expect(parsePriceFlag("sdxl=image=40000000000")).toEqual({ model: "sdxl", price: { image: "40000000000" } });
    for (const bad of ["=1:2", "m=", "m=1.5:2", "m=1:2,banana=3", "m=input=-1", "m=01:2"])
      expect(() => parsePriceFlag(bad), bad).toThrow(/--price/);
  });
  it("parses capabilities and refuses unknown ones", () => {
    expect(parseCapabilitiesFlag("x=chat, stream,tools")).toEqual({ model: "x", capabilities: ["chat", "stream", "tools"] });
    expect(() => parseCapabilitiesFlag("x=chat,telepathy")).toThrow(/telepathy/);
    expect(() => parseCapabilitiesFlag("x=")).toThrow();
  });
  it("a flag naming the server's exact name applies to that model; a canonical id to all its quantizations", () => {
    expect(flagTargets("llama3.1:8b", OLLAMA.models).map((m) => m.id)).toEqual(["llama3.1:8b"]);
    expect(flagTargets("llama-3.1-8b-instruct", OLLAMA.models).map((m) => m.id)).toEqual(["llama3.1:8b", "llama3.1:8b-instruct-q8_0"]);
    expect(flagTargets("meta-llama/Llama-3.1-8B-Instruct", OLLAMA.models)).toHaveLength(2);
    expect(flagTargets("nomic-embed-text", OLLAMA.models).map((m) => m.id)).toEqual(["nomic-embed-text:latest"]);
  });
});

describe("planInstances", () => {
  it("offers canonical ids with upstream names, quantizations, prices and the kind's concurrency", () => {
    const planned = planInstances([OLLAMA], {
      defaultPrice: PRICE,
      prices: [parsePriceFlag("llama-3.1-8b-instruct=1:2"), parsePriceFlag("llama3.1:8b=3:4")],
      capabilities: [parseCapabilitiesFlag("nomic-embed-text=embeddings")],
    });
    expect(planned.map((i) => [i.model, i.upstreamModel, i.quantization, i.price, i.maxConcurrency])).toEqual([
      ["llama-3.1-8b-instruct", "llama3.1:8b", "Q4_K_M", { input: "3", output: "4" }, 2],
      ["llama-3.1-8b-instruct", "llama3.1:8b-instruct-q8_0", "Q8_0", { input: "1", output: "2" }, 2],
      ["nomic-embed-text-v1.5", "nomic-embed-text:latest", undefined, PRICE, 2],
    ]);
    expect(describeInstance(planned[0]!)).toBe(
      "llama3.1:8b -> llama-3.1-8b-instruct  Q4_K_M  context 131072  concurrency 2  chat,stream,tools",
    );
  });
  it("takes llama.cpp's slot count, vLLM's 16, and an explicit --max-concurrency over both", () => {
    const llama: DetectedServer = {
      kind: "llamacpp",
      baseUrl: "http://x/v1",
      slots: 6,
      models: [{ id: "m.gguf", canonical: "m", capabilities: ["chat"], toolsKnown: true }],
    };
    const vllm: DetectedServer = {
      kind: "vllm",
      baseUrl: "http://y/v1",
      models: [{ id: "v", canonical: "v", capabilities: ["chat"], toolsKnown: true }],
    };
    expect(planInstances([llama, vllm], { defaultPrice: PRICE }).map((i) => i.maxConcurrency)).toEqual([6, 16]);
    expect(planInstances([llama, vllm], { defaultPrice: PRICE, maxConcurrency: 3 }).map((i) => i.maxConcurrency)).toEqual([3, 3]);
  });
  it("reports flags that name no model", () => {
    expect(
      unmatchedFlags([OLLAMA], { defaultPrice: PRICE, prices: [parsePriceFlag("qwen3=1:2"), parsePriceFlag("llama3.1=1:2")] }),
    ).toEqual(["qwen3"]);
  });
});

describe("planForwardedInstances", () => {
  it("offers reasoning by default (hidden reasoning tokens are billed, SRP-ATT-015); --capabilities and --price still apply", () => {
    for (const kind of ["openai", "anthropic", "gemini"] as const) {
      // A forwarded OpenAI key also serves the Responses API (SRP-OFF-015); completions only for legacy models (SRP-OFF-016).
      const native = kind === "openai" ? ["responses"] : [];
      expect(planForwardedInstances(kind, ["m"], { defaultPrice: PRICE })).toEqual([
        {
          backend: { kind, keyName: kind },
          model: "m",
          price: PRICE,
          maxConcurrency: 8,
          capabilities: ["chat", "stream", "tools", "reasoning", ...native],
        },
      ]);
    }
    const planned = planForwardedInstances("openai", ["gpt-5", "gpt-4o-mini"], {
      defaultPrice: PRICE,
      prices: [parsePriceFlag("gpt-5=1:2")],
      capabilities: [parseCapabilitiesFlag("gpt-4o-mini=chat,stream")],
      maxConcurrency: 3,
    });
    expect(planned.map((i) => [i.model, i.price, i.capabilities, i.maxConcurrency])).toEqual([
      ["gpt-5", { input: "1", output: "2" }, ["chat", "stream", "tools", "reasoning", "responses"], 3],
      ["gpt-4o-mini", PRICE, ["chat", "stream"], 3],
    ]);
  });

  it("declares completions for a forwarded OpenAI key only on OpenAI's legacy completion models, which serve nothing else (SRP-OFF-016)", () => {
    const models = [
      "gpt-3.5-turbo-instruct",
      "gpt-3.5-turbo-instruct-0914",
      "davinci-002",
      "babbage-002",
      "gpt-4o-mini",
      "gpt-5",
      "o3-mini",
    ];
    const planned = planForwardedInstances("openai", models, { defaultPrice: PRICE });
    expect(planned.map((i) => [i.model, i.capabilities])).toEqual([
      ["gpt-3.5-turbo-instruct", ["stream", "completions"]],
      ["gpt-3.5-turbo-instruct-0914", ["stream", "completions"]],
      ["davinci-002", ["stream", "completions"]],
      ["babbage-002", ["stream", "completions"]],
      ["gpt-4o-mini", ["chat", "stream", "tools", "reasoning", "responses"]],
      ["gpt-5", ["chat", "stream", "tools", "reasoning", "responses"]],
      ["o3-mini", ["chat", "stream", "tools", "reasoning", "responses"]],
    ]);
    // Anthropic and Gemini keys serve neither OpenAI text API.
    expect(planForwardedInstances("anthropic", ["claude-sonnet-4-5"], { defaultPrice: PRICE })[0]!.capabilities).toEqual([
      "chat",
      "stream",
      "tools",
      "reasoning",
    ]);
    // The written node config carries them, and the node offers exactly these.
    const dir = mkdtempSync(join(tmpdir(), "srp-supply-"));
    try {
      writeNodeConfig(dir, { hub: "ws://127.0.0.1:1/srp/v1", hubId: "h", accountKeyName: "account", instances: planned });
      const keys = nodeKeyStore(dir, generateIdentity());
      keys.set("openai", "sk-test");
      const offered = instancesFromConfig(readNodeConfig(dir), keys);
      expect(offered.map((i) => [i.backend.kind, i.model, i.capabilities])).toEqual(
        planned.map((i) => ["openai", i.model, i.capabilities]),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("mirrorsMaxTokens (SRP-JOB-022)", () => {
  it("copies max_completion_tokens for local server kinds and for loopback or private addresses, never for a hosted endpoint", () => {
    for (const kind of ["ollama", "lmstudio", "vllm", "llamacpp"] as const)
      expect(mirrorsMaxTokens(kind, "https://gpu.example.com/v1")).toBe(true);
    for (const url of [
      "http://127.0.0.1:8000/v1",
      "http://localhost:1234/v1",
      "http://[::1]:8080/v1",
      "http://10.0.0.5/v1",
      "http://172.20.1.1/v1",
      "http://192.168.1.20:8000/v1",
      "http://[fd12::1]/v1",
    ]) {
      expect(mirrorsMaxTokens("openai-compatible", url), url).toBe(true);
    }
    for (const url of [
      "https://api.openai.com/v1",
      "https://openrouter.ai/api/v1",
      "http://172.32.0.1/v1",
      "http://8.8.8.8/v1",
      "not a url",
    ])
      expect(mirrorsMaxTokens("openai-compatible", url), url).toBe(false);
    expect(mirrorsMaxTokens("openai", "https://api.openai.com/v1")).toBe(false);
    expect(mirrorsMaxTokens("other", "https://inference.example.net/v1")).toBe(false);
  });
});
