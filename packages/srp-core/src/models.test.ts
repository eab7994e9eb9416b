import { describe, expect, it } from "vitest";
import {
  canonicalModel,
  knownModel,
  MODEL_ALIASES,
  MODEL_ALIASES_VERSION,
  modelAliases,
  normalizeQuantization,
  quantizationInName,
  resolveModelAlias,
} from "./models.js";

describe("the alias table", () => {
  it("is versioned and has no name pointing at two models", () => {
    expect(MODEL_ALIASES_VERSION).toMatch(/^\d{4}\.\d+$/);
    const seen = new Map<string, string>();
    for (const m of MODEL_ALIASES) {
      expect(m.id).toMatch(/^[a-z0-9._-]+$/);
      for (const name of [m.id, ...m.aliases]) {
        expect(knownModel(name), name).toBe(m.id);
        const prior = seen.get(name.toLowerCase());
        expect(prior === undefined || prior === m.id, `${name} in ${prior} and ${m.id}`).toBe(true);
        seen.set(name.toLowerCase(), m.id);
      }
    }
  });

  it("resolves Ollama tags, Hugging Face ids, GGUF files and LM Studio keys to one id", () => {
    for (const name of [
      "llama3.1:8b",
      "llama3.1",
      "llama3.1:latest",
      "llama3.1:8b-instruct-q4_K_M",
      "meta-llama/Llama-3.1-8B-Instruct",
      "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf",
      "/models/Meta-Llama-3.1-8B-Instruct-Q8_0.gguf",
      "lmstudio-community/Meta-Llama-3.1-8B-Instruct-GGUF",
      "LLAMA-3.1-8B-INSTRUCT",
    ]) {
      expect(resolveModelAlias(name), name).toBe("llama-3.1-8b-instruct");
    }
    expect(resolveModelAlias("qwen3:8b-fp16")).toBe("qwen3-8b");
    expect(resolveModelAlias("text-embedding-nomic-embed-text-v1.5")).toBe("nomic-embed-text-v1.5");
    expect(resolveModelAlias("Qwen/Qwen2.5-7B-Instruct-AWQ")).toBe("qwen2.5-7b-instruct");
    expect(modelAliases("llama-3.1-8b-instruct")).toContain("llama3.1:8b");
  });

  it("leaves unknown names alone (but for Ollama's :latest) and keeps auto", () => {
    expect(resolveModelAlias("sim-llama-3-8b")).toBe("sim-llama-3-8b");
    expect(resolveModelAlias("my-finetune:latest")).toBe("my-finetune");
    expect(resolveModelAlias("auto")).toBe("auto");
    expect(knownModel("llama3.1:405b")).toBeUndefined();
  });
});

describe("quantization", () => {
  it("has one spelling", () => {
    expect(normalizeQuantization("q4_K_M")).toBe("Q4_K_M");
    expect(normalizeQuantization("Q8_0")).toBe("Q8_0");
    expect(normalizeQuantization("fp16")).toBe("F16");
    expect(normalizeQuantization("bf16")).toBe("BF16");
    expect(normalizeQuantization("fp8_e4m3")).toBe("FP8");
    expect(normalizeQuantization("awq")).toBe("AWQ");
    expect(normalizeQuantization("4bit")).toBe("4BIT");
    expect(normalizeQuantization("mlx-4bit")).toBe("4BIT");
    expect(normalizeQuantization("banana")).toBeUndefined();
    expect(normalizeQuantization(undefined)).toBeUndefined();
  });
  it("is read from names and files", () => {
    expect(quantizationInName("Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf")).toBe("Q4_K_M");
    expect(quantizationInName("llama3.1:8b-instruct-fp16")).toBe("F16");
    expect(quantizationInName("Qwen/Qwen2.5-7B-Instruct-AWQ")).toBe("AWQ");
    expect(quantizationInName("llama3.1:8b")).toBeUndefined();
  });
});

describe("canonicalModel", () => {
  it("derives the id from GGUF general.* keys when the name says nothing", () => {
    const c = canonicalModel({
      name: "my-llama:latest",
      gguf: {
        "general.architecture": "llama",
        "general.basename": "Meta-Llama-3.1",
        "general.size_label": "8B",
        "general.finetune": "Instruct",
        "general.file_type": 15,
      },
    });
    expect(c).toEqual({ id: "llama-3.1-8b-instruct", quantization: "Q4_K_M", known: true });
  });
  it("prefers the backend's stated quantization, and keeps unknown names normalized", () => {
    expect(canonicalModel({ name: "llama3.1:8b", quantization: "Q4_K_M" })).toEqual({
      id: "llama-3.1-8b-instruct",
      quantization: "Q4_K_M",
      known: true,
    });
    expect(canonicalModel({ name: "../models/My Custom Model-Q5_K_M.gguf" })).toEqual({
      id: "my-custom-model",
      quantization: "Q5_K_M",
      known: false,
    });
    expect(canonicalModel({ name: "served-llama", root: "meta-llama/Llama-3.1-8B-Instruct" })).toEqual({
      id: "llama-3.1-8b-instruct",
      known: true,
    });
    expect(canonicalModel({ name: "sim-llama-3-8b" })).toEqual({ id: "sim-llama-3-8b", known: false });
  });
});
