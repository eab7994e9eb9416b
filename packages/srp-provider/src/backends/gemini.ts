/**
 * A forwarded Google Gemini API key. Google serves an OpenAI-compatible endpoint
 * (`/v1beta/openai/chat/completions`, bearer auth), so no translation is needed.
 */
import { forwardedOptions, type ForwardedKeyOptions } from "./forwarded.js";
import { openAICompatibleBackend } from "./openai-compatible.js";
import type { Backend, BackendModel } from "./types.js";

/**
 * Creates a backend for a forwarded Gemini API key (kind `gemini`); default base URL
 * `https://generativelanguage.googleapis.com/v1beta/openai`. Model ids are reported
 * without Google's `models/` prefix, as chat requests name them.
 *
 * @example
 * const gemini = geminiBackend({ apiKey: process.env.GEMINI_API_KEY! });
 */
export function geminiBackend(options: ForwardedKeyOptions): Backend {
  const inner = openAICompatibleBackend({
    ...forwardedOptions(options, "https://generativelanguage.googleapis.com/v1beta/openai"),
    kind: "gemini",
  });
  return {
    kind: inner.kind,
    label: inner.label,
    chat: (request, callOptions) => inner.chat(request, callOptions),
    async listModels(signal?: AbortSignal): Promise<BackendModel[]> {
      const models = await inner.listModels(signal);
      return models.map((m) => ({ ...m, id: m.id.replace(/^models\//, "") }));
    },
  };
}
