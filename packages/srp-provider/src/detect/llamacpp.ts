/**
 * llama.cpp server: `GET /props` tells the context (`default_generation_settings.n_ctx`),
 * the slots (`total_slots`), the model file (`model_path`), the input `modalities`
 * (`vision`, `audio`) and, on builds with Jinja templates, `chat_template_caps`
 * (`supports_tools`...); `GET /v1/models` names the model (its alias or path) with `meta`.
 */
import { canonicalModel } from "@srp/core";
import type { Capability } from "@srp/core/schema";
import { isRecord, orderCapabilities, positiveInt, type DetectedModel } from "./types.js";

/** What `/props` says; undefined when the body is not llama.cpp's. */
export interface LlamaCppProps {
  contextLength?: number;
  slots?: number;
  modelPath?: string;
  vision: boolean;
  /** From `chat_template_caps.supports_tools`; undefined on builds that do not say. */
  tools?: boolean;
  embeddings: boolean;
}

/** Reads a `/props` answer. */
export function parseLlamaCppProps(body: unknown): LlamaCppProps | undefined {
  if (!isRecord(body) || !isRecord(body.default_generation_settings)) return undefined;
  const g = body.default_generation_settings;
  const out: LlamaCppProps = { vision: isRecord(body.modalities) && body.modalities.vision === true, embeddings: false };
  const ctx = positiveInt(g.n_ctx) ?? positiveInt(isRecord(g.params) ? g.params.n_ctx : undefined);
  if (ctx) out.contextLength = ctx;
  const slots = positiveInt(body.total_slots);
  if (slots) out.slots = slots;
  if (typeof body.model_path === "string") out.modelPath = body.model_path;
  const caps = isRecord(body.chat_template_caps) ? body.chat_template_caps : undefined;
  const tools = caps?.supports_tools ?? caps?.supports_tool_calls;
  if (typeof tools === "boolean") out.tools = tools;
  // A server started with --embeddings and a pooling type serves embeddings, not chat.
  if (body.embedding === true || body.embeddings === true) out.embeddings = true;
  return out;
}

/** The models of a llama.cpp `/v1/models` answer joined with its `/props`. */
export function parseLlamaCppModels(list: unknown, props: LlamaCppProps): DetectedModel[] {
  const data = isRecord(list) && Array.isArray(list.data) ? list.data.filter(isRecord) : [];
  const named = data.length > 0 ? data : props.modelPath ? [{ id: props.modelPath }] : [];
  return named
    .filter((m) => typeof m.id === "string")
    .map((m) => {
      const meta = isRecord(m.meta) ? m.meta : {};
      const caps = new Set<Capability>();
      if (props.embeddings) caps.add("embeddings");
      else {
        caps.add("chat").add("stream").add("json_mode");
        if (props.vision) caps.add("vision");
        if (props.tools) caps.add("tools");
      }
      const c = canonicalModel({ name: m.id as string, ...(props.modelPath ? { path: props.modelPath } : {}) });
      const d: DetectedModel = {
        id: m.id as string,
        canonical: c.id,
        capabilities: orderCapabilities(caps),
        toolsKnown: props.embeddings || props.tools !== undefined,
      };
      if (c.quantization) d.quantization = c.quantization;
      const ctx = props.contextLength ?? positiveInt(meta.n_ctx_train);
      if (ctx) d.contextLength = ctx;
      return d;
    });
}
