/**
 * LM Studio: `GET /api/v0/models` lists every downloaded model with its `type` (`llm`,
 * `vlm`, `embeddings`), `arch`, `publisher`, `quantization`, `max_context_length`, and on
 * newer versions a `capabilities` list (`tool_use`).
 */
import { canonicalModel } from "@srp/core";
import type { Capability } from "@srp/core/schema";
import { isRecord, orderCapabilities, positiveInt, type DetectedModel } from "./types.js";

/** The models of an `/api/v0/models` answer; undefined when the body is not one. */
export function parseLmStudioModels(body: unknown): DetectedModel[] | undefined {
  if (!isRecord(body) || !Array.isArray(body.data)) return undefined;
  if (!body.data.every((m) => isRecord(m) && typeof m.type === "string")) return undefined;
  const out: DetectedModel[] = [];
  for (const m of body.data as Record<string, unknown>[]) {
    if (typeof m.id !== "string") continue;
    const type = m.type as string;
    const caps = new Set<Capability>();
    const listed = Array.isArray(m.capabilities) ? m.capabilities.filter((c): c is string => typeof c === "string") : undefined;
    if (type === "embeddings") caps.add("embeddings");
    else if (type === "llm" || type === "vlm") {
      caps.add("chat").add("stream").add("json_mode");
      if (type === "vlm") caps.add("vision");
      if (listed?.includes("tool_use")) caps.add("tools");
    } else continue;
    const c = canonicalModel({ name: m.id, ...(typeof m.quantization === "string" ? { quantization: m.quantization } : {}) });
    const d: DetectedModel = {
      id: m.id,
      canonical: c.id,
      capabilities: orderCapabilities(caps),
      toolsKnown: type === "embeddings" || listed !== undefined,
    };
    if (c.quantization) d.quantization = c.quantization;
    const ctx = positiveInt(m.max_context_length);
    if (ctx) d.contextLength = ctx;
    out.push(d);
  }
  return out;
}
