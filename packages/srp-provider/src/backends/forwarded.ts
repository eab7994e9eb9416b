/**
 * Forwarded keys for providers that speak OpenAI chat completions themselves: OpenAI,
 * and (in `gemini.ts`) Google's OpenAI-compatible Gemini endpoint. The key stays on the
 * node and is sent only to the provider's base URL, as a bearer token.
 */
import { openAICompatibleBackend } from "./openai-compatible.js";
import type { Backend } from "./types.js";

/** Options shared by the forwarded-key backends that speak OpenAI chat completions. */
export interface ForwardedKeyOptions {
  /** The forwarded API key, sent as `Authorization: Bearer`. Never leaves the node otherwise. */
  apiKey: string;
  /** Base URL the paths `/chat/completions` and `/models` are appended to; each backend has a default. */
  baseUrl?: string;
  /** Extra headers on every request (e.g. `OpenAI-Organization`). */
  headers?: Record<string, string>;
  /** `fetch` implementation; default the global one. */
  fetch?: typeof fetch;
}

/** Builds the options of {@link openAICompatibleBackend} for a forwarded key (no `undefined` fields). */
export function forwardedOptions(options: ForwardedKeyOptions, defaultBaseUrl: string): Parameters<typeof openAICompatibleBackend>[0] {
  if (typeof options.apiKey !== "string" || options.apiKey === "") throw new TypeError("a forwarded-key backend needs an apiKey");
  return {
    baseUrl: options.baseUrl ?? defaultBaseUrl,
    apiKey: options.apiKey,
    ...(options.headers ? { headers: options.headers } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  };
}

/**
 * Creates a backend for a forwarded OpenAI API key (kind `openai`); default base URL
 * `https://api.openai.com/v1`.
 *
 * @example
 * const openai = openAIBackend({ apiKey: process.env.OPENAI_API_KEY! });
 */
export function openAIBackend(options: ForwardedKeyOptions): Backend {
  return openAICompatibleBackend({ ...forwardedOptions(options, "https://api.openai.com/v1"), kind: "openai" });
}
