/**
 * Which OpenAI text APIs beyond chat completions a server serves itself at its
 * OpenAI-compatible base URL, by server kind and version, as each server's documentation
 * says: the Responses API (`POST /v1/responses`) and legacy text completions
 * (`POST /v1/completions`, with `suffix` for fill-in-the-middle on some of them). Pure.
 *
 * - OpenAI (a forwarded key): both, `suffix` honoured; but OpenAI serves `/v1/completions`
 *   only for its legacy completion models ({@link openAICompletionsModel}), which serve
 *   neither chat nor the Responses API.
 * - vLLM: both (`/v1/responses` from 0.10.0); its completions refuse `suffix`.
 * - Ollama: both (`/v1/responses`, stateless, from 0.13.3); `suffix` honoured.
 * - LM Studio: both; `suffix` is not documented.
 * - llama.cpp server: completions only (no `/v1/responses`); `suffix` is not read there.
 * - Unrecognised OpenAI-compatible servers: neither, unless the operator says so.
 */
import type { BackendKind } from "@srp/core/schema";

/** A text API a backend may serve natively besides chat completions. */
export type NativeTextApi = "responses" | "completions";

/** The first version of a server that serves `/v1/responses`, where older versions answer 404. */
const RESPONSES_SINCE: Partial<Record<BackendKind, readonly number[]>> = { ollama: [0, 13, 3], vllm: [0, 10, 0] };

/** Parses `0.13.3`, `v0.10.1rc2`, `0.11.0+cu128` into numbers; undefined when it is not a version. */
function parseVersion(version: string): number[] | undefined {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(version.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

function atLeast(version: readonly number[], since: readonly number[]): boolean {
  for (let i = 0; i < since.length; i++) {
    const a = version[i] ?? 0;
    const b = since[i]!;
    if (a !== b) return a > b;
  }
  return true;
}

/**
 * The text APIs a server of this kind serves natively; `version` (as the server reports
 * it: Ollama's `/api/version`, vLLM's `/version`) narrows it where older versions lack an
 * endpoint. An unknown or unparsable version counts as a current one.
 *
 * @example
 * nativeTextApis("vllm"); // ["responses", "completions"]
 * nativeTextApis("ollama", "0.6.8"); // ["completions"]
 * nativeTextApis("llamacpp"); // ["completions"]
 */
export function nativeTextApis(kind: BackendKind, version?: string): NativeTextApi[] {
  switch (kind) {
    case "openai":
    case "vllm":
    case "ollama":
    case "lmstudio": {
      const since = RESPONSES_SINCE[kind];
      const v = version === undefined ? undefined : parseVersion(version);
      return since && v && !atLeast(v, since) ? ["completions"] : ["responses", "completions"];
    }
    case "llamacpp":
      return ["completions"];
    default:
      return [];
  }
}

/**
 * Whether OpenAI serves this model on its legacy completions API (`POST /v1/completions`):
 * `gpt-3.5-turbo-instruct`, `davinci-002`, `babbage-002` and other `*-instruct` models (dated
 * snapshots included). OpenAI serves these only there: no chat completions, no Responses API.
 * Every other OpenAI model answers `/v1/completions` with an error. Pure.
 *
 * @example
 * openAICompletionsModel("gpt-3.5-turbo-instruct-0914"); // true
 * openAICompletionsModel("gpt-4o-mini"); // false
 */
export function openAICompletionsModel(model: string): boolean {
  const m = model.trim().toLowerCase();
  return /^(davinci|babbage)-002$/.test(m) || /-instruct(-\d{4}(-\d{2}-\d{2})?)?$/.test(m);
}

/**
 * Whether a server of this kind honours `suffix` in `/v1/completions` (fill-in-the-middle):
 * OpenAI and Ollama do; vLLM refuses it; llama.cpp and LM Studio do not document it (a
 * server that ignores it would answer a different question). Other kinds: the request goes
 * as it is and the server decides.
 */
export function honoursSuffix(kind: BackendKind): boolean {
  return kind !== "vllm" && kind !== "llamacpp" && kind !== "lmstudio";
}

/** Whether a completions request asks for fill-in-the-middle: a non-empty string `suffix`. */
export function wantsSuffix(request: Readonly<Record<string, unknown>>): boolean {
  return typeof request.suffix === "string" && request.suffix.length > 0;
}
