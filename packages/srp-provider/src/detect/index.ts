/**
 * Finds what a local model server offers, through its own API: Ollama (`/api/tags`,
 * `/api/show`), LM Studio (`/api/v0/models`), llama.cpp (`/props`, `/v1/models`), vLLM and
 * other OpenAI-compatible servers (`/v1/models`, then a tools probe where needed). The
 * parsers are pure (`ollama.ts`, `lmstudio.ts`, `llamacpp.ts`, `openai-list.ts`,
 * `probe.ts`); this file only fetches. Servers of async jobs (Cog, OpenAI's Videos API)
 * are found by `async.ts`.
 */
import { isRecord, orderCapabilities, type DetectedModel, type DetectedServer, type LocalKind } from "./types.js";
import type { NativeTextApi } from "../backends/native-apis.js";
import { parseOllamaModel, parseOllamaTags } from "./ollama.js";
import { parseLmStudioModels } from "./lmstudio.js";
import { parseLlamaCppModels, parseLlamaCppProps } from "./llamacpp.js";
import { parseOpenAIModels } from "./openai-list.js";
import { probeTools } from "./probe.js";
import { getJson } from "./fetch-json.js";
import { serverRoot } from "./async.js";
import { nativeTextApis } from "../backends/native-apis.js";

export * from "./types.js";
export { parseOllamaTags, parseOllamaModel, type OllamaTag } from "./ollama.js";
export { parseLmStudioModels } from "./lmstudio.js";
export { parseLlamaCppProps, parseLlamaCppModels, type LlamaCppProps } from "./llamacpp.js";
export { parseOpenAIModels } from "./openai-list.js";
export { probeTools, toolProbeVerdict, toolProbeBody, type ProbeVerdict } from "./probe.js";
export {
  detectCog,
  detectVideos,
  parseCogOpenApi,
  parseCogHealth,
  parseVideoList,
  cogModelName,
  cogUnhealthy,
  serverRoot,
  type DetectedCog,
  type DetectedVideos,
} from "./async.js";

/** Options of {@link detectServer}. */
export interface DetectOptions {
  /** The kind the URL usually serves (a well-known port), used when the server does not tell. */
  hint?: LocalKind;
  /** Per metadata request; default 1500 ms. */
  timeoutMs?: number;
  /** Probe tool support where the server does not say; default true. */
  probe?: boolean;
  /** Per probe request; default 10 s (a server may load the model first). */
  probeTimeoutMs?: number;
}

/** Asks the server at `url` what it is and what its models can do; undefined when nothing OpenAI-compatible answers. */
export async function detectServer(url: string, options: DetectOptions = {}): Promise<DetectedServer | undefined> {
  const root = serverRoot(url);
  const t = options.timeoutMs ?? 1500;
  const baseUrl = `${root}/v1`;
  let server: DetectedServer | undefined;
  const tags = parseOllamaTags(await getJson(`${root}/api/tags`, t));
  if (tags) {
    const models = await Promise.all(
      tags.map(async (tag) =>
        parseOllamaModel(
          tag,
          await getJson(`${root}/api/show`, Math.max(t, 5000), {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ model: tag.name }),
          }),
        ),
      ),
    );
    server = { kind: "ollama", baseUrl, models, apis: [] };
  }
  if (!server) {
    const lm = parseLmStudioModels(await getJson(`${root}/api/v0/models`, t));
    if (lm) server = { kind: "lmstudio", baseUrl, models: lm, apis: [] };
  }
  if (!server) {
    const props = parseLlamaCppProps(await getJson(`${root}/props`, t));
    if (props) {
      server = { kind: "llamacpp", baseUrl, models: parseLlamaCppModels(await getJson(`${root}/v1/models`, t), props), apis: [] };
      if (props.slots) server.slots = props.slots;
    }
  }
  if (!server) {
    const list = parseOpenAIModels(await getJson(`${root}/v1/models`, t), options.hint);
    if (!list) return undefined;
    server = { kind: list.kind, baseUrl, models: list.models, apis: [] };
  }
  const version =
    server.kind === "ollama" || server.kind === "vllm"
      ? serverVersion(await getJson(`${root}${server.kind === "ollama" ? "/api/version" : "/version"}`, t))
      : undefined;
  if (version !== undefined) server.version = version;
  server.apis = nativeTextApis(server.kind, version);
  const apis = server.apis;
  server.models = server.models.map((m) => withTextApis(m, apis));
  if (options.probe !== false)
    server.models = await Promise.all(server.models.map((m) => withProbe(baseUrl, m, options.probeTimeoutMs ?? 10_000)));
  return server;
}

/** The `version` member of a version answer (`{"version": "0.13.3"}`). */
function serverVersion(body: unknown): string | undefined {
  return isRecord(body) && typeof body.version === "string" ? body.version : undefined;
}

/** A chat model of a server that serves `/v1/responses` or `/v1/completions` offers them (SRP-OFF-015, SRP-OFF-016). */
export function withTextApis(m: DetectedModel, apis: readonly NativeTextApi[]): DetectedModel {
  if (!m.capabilities.includes("chat") || apis.length === 0) return m;
  return { ...m, capabilities: orderCapabilities([...m.capabilities, ...apis]) };
}

async function withProbe(baseUrl: string, m: DetectedModel, timeoutMs: number): Promise<DetectedModel> {
  if (m.toolsKnown || !m.capabilities.includes("chat")) return m;
  const verdict = await probeTools(baseUrl, m.id, timeoutMs);
  if (verdict === "unknown") return m;
  return { ...m, toolsKnown: true, capabilities: verdict === "yes" ? orderCapabilities([...m.capabilities, "tools"]) : m.capabilities };
}
