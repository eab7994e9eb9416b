/**
 * One name for one model (SRP-OFF-010..SRP-OFF-014). The same weights reach a hub under
 * many names: an Ollama tag (`llama3.1:8b`), a Hugging Face id
 * (`meta-llama/Llama-3.1-8B-Instruct`), a GGUF file or basename
 * (`Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf`), an LM Studio key. This module keeps a small,
 * versioned alias table of popular families and pure functions that derive a canonical
 * id and a normalized quantization from what a backend says about a model. Unknown
 * models keep a normalized form of their own name.
 */

/** Version of {@link MODEL_ALIASES}; a hub reports it, so consumers know which aliases resolve. */
export const MODEL_ALIASES_VERSION = "2025.1";

/** One canonical model id and the other names it goes by. */
export interface ModelAliasEntry {
  /** Canonical id: lower case, the publisher's model name without the organisation. */
  readonly id: string;
  /** Other names: Ollama tags, Hugging Face ids, GGUF basenames, LM Studio keys. */
  readonly aliases: readonly string[];
}

const e = (id: string, ...aliases: string[]): ModelAliasEntry => Object.freeze({ id, aliases: Object.freeze(aliases) });

/** The alias table (version {@link MODEL_ALIASES_VERSION}). Ollama's untagged names stand for their default tag. */
export const MODEL_ALIASES: readonly ModelAliasEntry[] = Object.freeze([
  // Llama 3.x
  e(
    "llama-3.1-8b-instruct",
    "llama3.1",
    "llama3.1:8b",
    "llama3.1:8b-instruct",
    "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Meta-Llama-3.1-8B-Instruct",
    "Meta-Llama-3.1-8B-Instruct",
    "lmstudio-community/Meta-Llama-3.1-8B-Instruct-GGUF",
  ),
  e(
    "llama-3.1-70b-instruct",
    "llama3.1:70b",
    "llama3.1:70b-instruct",
    "meta-llama/Llama-3.1-70B-Instruct",
    "meta-llama/Meta-Llama-3.1-70B-Instruct",
    "Meta-Llama-3.1-70B-Instruct",
  ),
  e("llama-3.2-1b-instruct", "llama3.2:1b", "llama3.2:1b-instruct", "meta-llama/Llama-3.2-1B-Instruct"),
  e("llama-3.2-3b-instruct", "llama3.2", "llama3.2:3b", "llama3.2:3b-instruct", "meta-llama/Llama-3.2-3B-Instruct"),
  e("llama-3.2-11b-vision-instruct", "llama3.2-vision", "llama3.2-vision:11b", "meta-llama/Llama-3.2-11B-Vision-Instruct"),
  e("llama-3.3-70b-instruct", "llama3.3", "llama3.3:70b", "llama3.3:70b-instruct", "meta-llama/Llama-3.3-70B-Instruct"),
  // Qwen 2.5 and Qwen 3
  e("qwen2.5-7b-instruct", "qwen2.5", "qwen2.5:7b", "qwen2.5:7b-instruct", "Qwen/Qwen2.5-7B-Instruct"),
  e("qwen2.5-14b-instruct", "qwen2.5:14b", "qwen2.5:14b-instruct", "Qwen/Qwen2.5-14B-Instruct"),
  e("qwen2.5-32b-instruct", "qwen2.5:32b", "qwen2.5:32b-instruct", "Qwen/Qwen2.5-32B-Instruct"),
  e("qwen2.5-coder-7b-instruct", "qwen2.5-coder", "qwen2.5-coder:7b", "qwen2.5-coder:7b-instruct", "Qwen/Qwen2.5-Coder-7B-Instruct"),
  e("qwen2.5-vl-7b-instruct", "qwen2.5vl", "qwen2.5vl:7b", "Qwen/Qwen2.5-VL-7B-Instruct"),
  e("qwen3-4b", "qwen3:4b", "Qwen/Qwen3-4B"),
  e("qwen3-8b", "qwen3", "qwen3:8b", "Qwen/Qwen3-8B"),
  e("qwen3-14b", "qwen3:14b", "Qwen/Qwen3-14B"),
  e("qwen3-30b-a3b", "qwen3:30b", "qwen3:30b-a3b", "Qwen/Qwen3-30B-A3B"),
  e("qwen3-32b", "qwen3:32b", "Qwen/Qwen3-32B"),
  // Mistral
  e(
    "mistral-7b-instruct-v0.3",
    "mistral",
    "mistral:7b",
    "mistral:7b-instruct",
    "mistral:7b-instruct-v0.3",
    "mistralai/Mistral-7B-Instruct-v0.3",
  ),
  e("mistral-nemo-instruct-2407", "mistral-nemo", "mistral-nemo:12b", "mistralai/Mistral-Nemo-Instruct-2407"),
  e("mistral-small-24b-instruct-2501", "mistral-small:24b", "mistralai/Mistral-Small-24B-Instruct-2501"),
  // Gemma
  e("gemma-2-9b-it", "gemma2", "gemma2:9b", "gemma2:9b-instruct", "google/gemma-2-9b-it"),
  e("gemma-2-27b-it", "gemma2:27b", "gemma2:27b-instruct", "google/gemma-2-27b-it"),
  e("gemma-3-4b-it", "gemma3", "gemma3:4b", "google/gemma-3-4b-it"),
  e("gemma-3-12b-it", "gemma3:12b", "google/gemma-3-12b-it"),
  e("gemma-3-27b-it", "gemma3:27b", "google/gemma-3-27b-it"),
  // Phi
  e("phi-3.5-mini-instruct", "phi3.5", "phi3.5:3.8b", "microsoft/Phi-3.5-mini-instruct"),
  e("phi-4", "phi4", "phi4:14b", "microsoft/phi-4"),
  e("phi-4-mini-instruct", "phi4-mini", "phi4-mini:3.8b", "microsoft/Phi-4-mini-instruct"),
  // DeepSeek-R1 distills
  e("deepseek-r1-distill-qwen-1.5b", "deepseek-r1:1.5b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"),
  e("deepseek-r1-distill-qwen-7b", "deepseek-r1:7b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"),
  e("deepseek-r1-distill-llama-8b", "deepseek-ai/DeepSeek-R1-Distill-Llama-8B"),
  e("deepseek-r1-0528-qwen3-8b", "deepseek-r1", "deepseek-r1:8b", "deepseek-ai/DeepSeek-R1-0528-Qwen3-8B"),
  e("deepseek-r1-distill-qwen-14b", "deepseek-r1:14b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B"),
  e("deepseek-r1-distill-qwen-32b", "deepseek-r1:32b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"),
  e("deepseek-r1-distill-llama-70b", "deepseek-r1:70b", "deepseek-ai/DeepSeek-R1-Distill-Llama-70B"),
  // Embeddings
  e(
    "nomic-embed-text-v1.5",
    "nomic-embed-text",
    "nomic-embed-text:v1.5",
    "nomic-ai/nomic-embed-text-v1.5",
    "text-embedding-nomic-embed-text-v1.5",
    "nomic-embed-text-v1.5",
  ),
  e("mxbai-embed-large-v1", "mxbai-embed-large", "mxbai-embed-large:335m", "mixedbread-ai/mxbai-embed-large-v1"),
  e("bge-m3", "bge-m3:567m", "BAAI/bge-m3"),
  e("all-minilm-l6-v2", "all-minilm", "all-minilm:22m", "sentence-transformers/all-MiniLM-L6-v2"),
]);

/**
 * A quantization in one spelling: GGUF types in upper case (`Q4_K_M`, `Q8_0`, `IQ3_XS`,
 * `F16`, `BF16`, `F32`), `FP8`, `INT8`, `INT4`, `AWQ`, `GPTQ`, `NF4`, and MLX-style
 * `4BIT`. Undefined for text that names no known quantization.
 */
export function normalizeQuantization(text: string | undefined | null): string | undefined {
  if (typeof text !== "string" || text.length === 0) return undefined;
  const raw = text
    .trim()
    .toLowerCase()
    .replace(/^mlx[-_]?/, "");
  if (raw === "fp16" || raw === "f16") return "F16";
  if (raw === "fp32" || raw === "f32") return "F32";
  if (raw === "bf16") return "BF16";
  if (raw.startsWith("fp8")) return "FP8";
  if (raw === "int8" || raw === "w8a8") return "INT8";
  if (raw === "int4" || raw === "w4a16") return "INT4";
  if (raw === "awq" || raw === "gptq" || raw === "nf4") return raw.toUpperCase();
  const bits = /^(?:mlx-?)?([2-8])-?bit$/.exec(raw);
  if (bits) return `${bits[1]}BIT`;
  if (/^i?q[1-8](_[a-z0-9]+)*$/.test(raw)) return raw.toUpperCase();
  return undefined;
}

/** GGUF `general.file_type` values (llama.cpp's `llama_ftype`) and their quantization names. */
const GGUF_FILE_TYPES: Readonly<Record<number, string>> = {
  0: "F32",
  1: "F16",
  2: "Q4_0",
  3: "Q4_1",
  7: "Q8_0",
  8: "Q5_0",
  9: "Q5_1",
  10: "Q2_K",
  11: "Q3_K_S",
  12: "Q3_K_M",
  13: "Q3_K_L",
  14: "Q4_K_S",
  15: "Q4_K_M",
  16: "Q5_K_S",
  17: "Q5_K_M",
  18: "Q6_K",
  19: "IQ2_XXS",
  20: "IQ2_XS",
  21: "Q2_K_S",
  22: "IQ3_XS",
  23: "IQ3_XXS",
  24: "IQ1_S",
  25: "IQ4_NL",
  26: "IQ3_S",
  27: "IQ3_M",
  28: "IQ2_S",
  29: "IQ2_M",
  30: "IQ4_XS",
  31: "IQ1_M",
  32: "BF16",
};

/** The quantization named by a GGUF `general.file_type` number. */
export function ggufFileTypeQuantization(fileType: unknown): string | undefined {
  return typeof fileType === "number" ? GGUF_FILE_TYPES[fileType] : undefined;
}

/** Removes a quantization suffix (`-Q4_K_M`, `.Q8_0`, `-fp16`, `-AWQ`, `-GGUF`, `@4bit`...) from a model name. */
function stripQuantization(name: string): string {
  let out = name;
  for (let i = 0; i < 3; i++) {
    const next = out
      .replace(/[-_.@](gguf|mlx)$/i, "")
      .replace(/[-_.@](i?q[1-8](_[a-z0-9]+)*|f32|fp32|f16|fp16|bf16|fp8(_e4m3)?|int8|int4|w8a8|w4a16|awq|gptq|nf4|[2-8]-?bit)$/i, "");
    if (next === out) break;
    out = next;
  }
  return out;
}

/** The lookup key of a name: lower case, no directory, no `.gguf`, no `:latest`, no quantization suffix, `_` and spaces as `-`. */
function aliasKey(name: string): string {
  let n = name.trim();
  // A file path (llama.cpp's model_path): keep the file name.
  if (/[\\/]/.test(n) && /\.gguf$/i.test(n)) n = n.split(/[\\/]/).pop()!;
  n = n.replace(/\.gguf$/i, "").replace(/-\d{5}-of-\d{5}$/i, "");
  n = n.replace(/:latest$/i, "");
  n = stripQuantization(n);
  return n.toLowerCase().replace(/[\s_]+/g, "-");
}

const INDEX: ReadonlyMap<string, string> = (() => {
  const map = new Map<string, string>();
  for (const entry of MODEL_ALIASES) {
    for (const name of [entry.id, ...entry.aliases]) {
      const key = aliasKey(name);
      map.set(key, entry.id);
      // Hugging Face ids are also known without their organisation.
      const slash = key.lastIndexOf("/");
      if (slash !== -1 && !map.has(key.slice(slash + 1))) map.set(key.slice(slash + 1), entry.id);
    }
  }
  return map;
})();

/** The canonical id the alias table knows a name by, or undefined. */
export function knownModel(name: string): string | undefined {
  if (typeof name !== "string" || name.length === 0) return undefined;
  const key = aliasKey(name);
  const direct = INDEX.get(key);
  if (direct) return direct;
  const slash = key.lastIndexOf("/");
  if (slash !== -1) return INDEX.get(key.slice(slash + 1));
  // An Ollama tag with more after the size (`llama3.1:8b-instruct-q4_K_M` was handled above; `qwen3:8b-fp16` too).
  return undefined;
}

/**
 * The name a hub routes a requested model by (SRP-CON-017): the canonical id when the
 * alias table knows the name (any alias, any case, with or without a quantization
 * suffix), else the name itself without an Ollama `:latest`. `auto` stays `auto`.
 */
export function resolveModelAlias(name: string): string {
  if (name === "auto") return name;
  return knownModel(name) ?? name.replace(/:latest$/i, "");
}

/** The aliases the table lists for a canonical id (empty for unknown ids). */
export function modelAliases(id: string): readonly string[] {
  return MODEL_ALIASES.find((m) => m.id === id)?.aliases ?? [];
}

/** What a backend says about one model, as far as naming goes. Every member is optional. */
export interface ModelMetadata {
  /** The backend's own name (Ollama tag, LM Studio key, vLLM served name, llama.cpp alias or path). */
  name: string;
  /** Hugging Face id or other root (vLLM `root`). */
  root?: string;
  /** GGUF `general.*` keys (Ollama `model_info`). */
  gguf?: Record<string, unknown>;
  /** A quantization as the backend spells it (Ollama `details.quantization_level`, LM Studio `quantization`). */
  quantization?: string;
  /** A file path (llama.cpp `model_path`). */
  path?: string;
}

/** A model's canonical id and quantization. */
export interface CanonicalModel {
  /** Canonical id (known) or normalized own name (unknown). */
  id: string;
  /** Normalized quantization, when one is known. */
  quantization?: string;
  /** Whether the alias table knows the model. */
  known: boolean;
}

/** A model name that fits the protocol's `ModelId` (letters, digits and `._:/@+-`). */
function normalizeOwnName(name: string): string {
  let n = name.trim();
  if (/[\\/]/.test(n) && /\.gguf$/i.test(n)) n = n.split(/[\\/]/).pop()!;
  n = stripQuantization(
    n
      .replace(/\.gguf$/i, "")
      .replace(/-\d{5}-of-\d{5}$/i, "")
      .replace(/:latest$/i, ""),
  );
  n = n
    .toLowerCase()
    .replace(/[\s_]+/g, "-")
    .replace(/[^a-z0-9._:/@+-]/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-|-$/g, "");
  return n.slice(0, 256) || "model";
}

/**
 * Derives a model's canonical id and normalized quantization from what its backend
 * exposes: the backend's own name, a Hugging Face root, a file path, and GGUF
 * `general.*` keys (`general.basename` + `general.size_label` + `general.finetune`,
 * `general.name`, `general.file_type`). The first name the alias table knows wins; an
 * unknown model keeps a normalized form of its own name.
 */
export function canonicalModel(meta: ModelMetadata): CanonicalModel {
  const g = meta.gguf ?? {};
  const str = (k: string) => (typeof g[k] === "string" && (g[k] as string).length > 0 ? (g[k] as string) : undefined);
  const candidates: string[] = [meta.name];
  if (meta.root) candidates.push(meta.root);
  if (meta.path) candidates.push(meta.path);
  const base = str("general.basename");
  const size = str("general.size_label");
  const finetune = str("general.finetune");
  if (base) {
    if (size && finetune) candidates.push(`${base}-${size}-${finetune}`);
    if (size) candidates.push(`${base}-${size}`);
    candidates.push(base);
  }
  const full = str("general.name");
  if (full) candidates.push(full);
  let id: string | undefined;
  for (const c of candidates) {
    id = knownModel(c);
    if (id) break;
  }
  const quantization =
    normalizeQuantization(meta.quantization) ??
    ggufFileTypeQuantization(g["general.file_type"]) ??
    [meta.name, meta.path, meta.root].map((n) => (n ? quantizationInName(n) : undefined)).find((q) => q !== undefined);
  const out: CanonicalModel = { id: id ?? normalizeOwnName(meta.name), known: id !== undefined };
  if (quantization) out.quantization = quantization;
  return out;
}

/** The quantization a model name or file name carries in it (`...-Q4_K_M.gguf`, `...:8b-instruct-fp16`, `...-AWQ`), if any. */
export function quantizationInName(name: string): string | undefined {
  const n = name.replace(/\.gguf$/i, "").replace(/-\d{5}-of-\d{5}$/i, "");
  const m = /[-_.:@](i?q[1-8](?:_[a-z0-9]+)*|f32|fp32|f16|fp16|bf16|fp8(?:_e4m3)?|int8|int4|w8a8|w4a16|awq|gptq|nf4|[2-8]-?bit)$/i.exec(n);
  return m ? normalizeQuantization(m[1]) : undefined;
}
