/** What setup learns about a local model server and each of its models. */
import type { Capability } from "@srp/core/schema";
import type { NativeTextApi } from "../backends/native-apis.js";

/** Kinds of local model server that setup recognises. */
export type LocalKind = "ollama" | "lmstudio" | "vllm" | "llamacpp" | "openai-compatible";

/** One model as its server describes it. */
export interface DetectedModel {
  /** The server's own name for it (sent upstream). */
  id: string;
  /** Canonical id (SRP-OFF-010): what the node offers it as. */
  canonical: string;
  /** Normalized quantization, when known. */
  quantization?: string;
  /** What it can do, as far as the server said (or a probe found). */
  capabilities: Capability[];
  /** Context window, when the server said. */
  contextLength?: number;
  /** Content digest (Ollama). */
  digest?: string;
  /**
   * Whether tool support is known from the server's metadata; `false` means a probe
   * request must decide (vLLM, older servers, unknown OpenAI-compatible servers).
   */
  toolsKnown: boolean;
}

/** A local model server and its models. */
export interface DetectedServer {
  kind: LocalKind;
  /** OpenAI-compatible base URL (with `/v1`). */
  baseUrl: string;
  models: DetectedModel[];
  /** Parallel slots the server runs (llama.cpp `total_slots`), when it says. */
  slots?: number;
  /** The server's version, when it says (Ollama `/api/version`, vLLM `/version`). */
  version?: string;
  /** The text APIs it serves itself besides chat (`responses`, `completions`): by kind and version. */
  apis?: NativeTextApi[];
}

/** Default jobs at once per instance, by server kind (documented in the provider README). */
export const DEFAULT_CONCURRENCY: Readonly<Record<LocalKind, number>> = Object.freeze({
  /** vLLM batches many requests continuously. */
  vllm: 16,
  /** llama.cpp: its slot count from `/props` when it says; one slot otherwise. */
  llamacpp: 1,
  /** Ollama on a laptop: two (its default parallelism is small). */
  ollama: 2,
  /** LM Studio: one at a time. */
  lmstudio: 1,
  "openai-compatible": 4,
});

/** Plain object check for parsed JSON. */
export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** A positive safe integer, or undefined. */
export const positiveInt = (v: unknown): number | undefined => (typeof v === "number" && Number.isSafeInteger(v) && v > 0 ? v : undefined);

/** Capabilities in a stable order, without repeats. */
export function orderCapabilities(caps: Iterable<Capability>): Capability[] {
  const order: Capability[] = [
    "chat",
    "stream",
    "tools",
    "vision",
    "json_mode",
    "reasoning",
    "embeddings",
    "images",
    "speech",
    "transcription",
    "messages",
    "responses",
    "completions",
  ];
  const set = new Set(caps);
  return order.filter((c) => set.has(c));
}
