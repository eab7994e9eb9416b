/**
 * vLLM and other OpenAI-compatible servers: `GET /v1/models`. vLLM marks its models
 * `owned_by: "vllm"` and adds `root` (the Hugging Face id or path it loaded) and
 * `max_model_len`; tool support is not listed, so a probe decides.
 */
import { canonicalModel } from "@srp/core";
import type { Capability } from "@srp/core/schema";
import { isRecord, orderCapabilities, positiveInt, type DetectedModel, type LocalKind } from "./types.js";

/** The models of a `/v1/models` answer and the kind of server it looks like; undefined when it is not a list. */
export function parseOpenAIModels(body: unknown, hint?: LocalKind): { kind: LocalKind; models: DetectedModel[] } | undefined {
  if (!isRecord(body) || !Array.isArray(body.data)) return undefined;
  const data = body.data.filter(isRecord).filter((m) => typeof m.id === "string");
  const owners = new Set(data.map((m) => m.owned_by));
  const kind: LocalKind = owners.has("vllm")
    ? "vllm"
    : owners.has("llamacpp")
      ? "llamacpp"
      : owners.has("organization_owner")
        ? "lmstudio"
        : (hint ?? "openai-compatible");
  const models = data.map((m) => {
    const id = m.id as string;
    const root = typeof m.root === "string" ? m.root : undefined;
    const embed = /embed|bge-|minilm|e5-/i.test(root ?? id);
    const caps = new Set<Capability>(embed ? ["embeddings"] : ["chat", "stream", ...(kind === "vllm" ? (["json_mode"] as const) : [])]);
    const c = canonicalModel({ name: id, ...(root ? { root } : {}) });
    const d: DetectedModel = { id, canonical: c.id, capabilities: orderCapabilities(caps), toolsKnown: embed };
    if (c.quantization) d.quantization = c.quantization;
    const ctx = positiveInt(m.max_model_len) ?? positiveInt(m.context_length) ?? positiveInt(m.context_window);
    if (ctx) d.contextLength = ctx;
    return d;
  });
  return { kind, models };
}
