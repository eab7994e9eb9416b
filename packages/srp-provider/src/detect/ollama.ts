/**
 * Ollama: `GET /api/tags` lists the models (with digests and `details`), `POST /api/show
 * {model}` tells each one's `capabilities` (completion, tools, vision, embedding,
 * thinking, insert), `details` and GGUF `model_info` (`general.*`, `<arch>.context_length`).
 */
import { canonicalModel } from "@srp/core";
import type { Capability } from "@srp/core/schema";
import { isRecord, orderCapabilities, positiveInt, type DetectedModel } from "./types.js";

/** One entry of `/api/tags`. */
export interface OllamaTag {
  name: string;
  digest?: string;
  details?: Record<string, unknown>;
}

/** The models of an `/api/tags` answer; undefined when the body is not one. */
export function parseOllamaTags(body: unknown): OllamaTag[] | undefined {
  // llama.cpp answers /api/tags too, with an OpenAI list beside `models`: not Ollama.
  if (!isRecord(body) || !Array.isArray(body.models) || "data" in body) return undefined;
  const out: OllamaTag[] = [];
  for (const m of body.models) {
    if (!isRecord(m)) continue;
    const name = typeof m.model === "string" ? m.model : typeof m.name === "string" ? m.name : undefined;
    if (!name) continue;
    const tag: OllamaTag = { name };
    if (typeof m.digest === "string" && m.digest.length > 0) tag.digest = m.digest;
    if (isRecord(m.details)) tag.details = m.details;
    out.push(tag);
  }
  return out;
}

/** A model from its `/api/tags` entry and its `/api/show` answer (undefined when show failed). */
export function parseOllamaModel(tag: OllamaTag, show: unknown): DetectedModel {
  const s = isRecord(show) ? show : {};
  const details = isRecord(s.details) ? s.details : (tag.details ?? {});
  const info = isRecord(s.model_info) ? s.model_info : {};
  const arch = typeof info["general.architecture"] === "string" ? info["general.architecture"] : undefined;
  const context = positiveInt(arch ? info[`${arch}.context_length`] : undefined);
  const listed = Array.isArray(s.capabilities) ? s.capabilities.filter((c): c is string => typeof c === "string") : undefined;
  const family = typeof details.family === "string" ? details.family : "";
  const caps = new Set<Capability>();
  let toolsKnown = listed !== undefined;
  if (listed) {
    if (listed.includes("completion")) caps.add("chat").add("stream").add("json_mode");
    if (listed.includes("tools")) caps.add("tools");
    if (listed.includes("vision")) caps.add("vision");
    if (listed.includes("thinking")) caps.add("reasoning");
    if (listed.includes("embedding")) caps.add("embeddings");
  } else if (/bert/i.test(family) || /embed/i.test(tag.name)) {
    // Ollama before `capabilities` (0.6.4): BERT-family models embed; they do not chat.
    caps.add("embeddings");
    toolsKnown = true;
  } else caps.add("chat").add("stream").add("json_mode");
  const c = canonicalModel({
    name: tag.name,
    gguf: info,
    ...(typeof details.quantization_level === "string" ? { quantization: details.quantization_level } : {}),
  });
  const out: DetectedModel = { id: tag.name, canonical: c.id, capabilities: orderCapabilities(caps), toolsKnown };
  if (c.quantization) out.quantization = c.quantization;
  if (context) out.contextLength = context;
  if (tag.digest) out.digest = tag.digest;
  return out;
}
