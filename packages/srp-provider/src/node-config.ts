/**
 * A provider node on disk: backend detection for `srp-provider setup`, the node's config
 * file (`provider.json`), and turning that config into a running {@link Provider}.
 * Forwarded API keys and the hub account key are sealed in the node's key store, never
 * written in the config.
 */
import { readFileSync, writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import type { Capability, Identity } from "@srp/core";
import { anthropicBackend } from "./backends/anthropic.js";
import { openAIBackend } from "./backends/forwarded.js";
import { geminiBackend } from "./backends/gemini.js";
import { KeyStore } from "./backends/keystore.js";
import { openAICompatibleBackend } from "./backends/openai-compatible.js";
import type { Backend, BackendModel } from "./backends/types.js";
import type { InstanceConfig } from "./provider.js";

/** Kinds of local model server that setup recognises. */
export type LocalBackendKind = "ollama" | "lmstudio" | "vllm" | "llamacpp" | "openai-compatible";

/** A local model server found by {@link detectBackends}. */
export interface DetectedBackend {
  kind: LocalBackendKind;
  /** OpenAI-compatible base URL (with `/v1`). */
  baseUrl: string;
  models: BackendModel[];
}

/** The well-known local servers: Ollama, LM Studio, vLLM, llama.cpp server. */
export const WELL_KNOWN_BACKENDS: readonly { kind: DetectedBackend["kind"]; url: string }[] = [
  { kind: "ollama", url: "http://127.0.0.1:11434" },
  { kind: "lmstudio", url: "http://127.0.0.1:1234" },
  { kind: "vllm", url: "http://127.0.0.1:8000" },
  { kind: "llamacpp", url: "http://127.0.0.1:8080" },
];

async function getJson(url: string, timeoutMs: number): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

/**
 * Asks a server who it is through its own API: Ollama answers `/api/tags` (with model
 * digests); vLLM, llama.cpp and LM Studio answer `/v1/models` and are told apart by the
 * `owned_by` of their models (or by the port they usually use).
 */
export async function detectBackend(url: string, hint?: DetectedBackend["kind"], timeoutMs = 1500): Promise<DetectedBackend | undefined> {
  const root = url.replace(/\/+$/, "").replace(/\/v1$/, "");
  try {
    const tags = (await getJson(`${root}/api/tags`, timeoutMs)) as { models?: { name?: string; model?: string; digest?: string }[] };
    if (Array.isArray(tags.models)) {
      const models = tags.models
        .filter((m) => typeof (m.model ?? m.name) === "string")
        .map((m) => (m.digest ? { id: (m.model ?? m.name)!, digest: m.digest } : { id: (m.model ?? m.name)! }));
      return { kind: "ollama", baseUrl: `${root}/v1`, models };
    }
  } catch {
    /* not Ollama */
  }
  try {
    const list = (await getJson(`${root}/v1/models`, timeoutMs)) as { data?: { id?: string; owned_by?: string; max_model_len?: number; context_length?: number }[] };
    if (!Array.isArray(list.data)) return undefined;
    const owners = new Set(list.data.map((m) => m.owned_by));
    const kind: DetectedBackend["kind"] = owners.has("vllm") ? "vllm" : owners.has("llamacpp") ? "llamacpp" : hint === "lmstudio" || owners.has("organization_owner") ? "lmstudio" : hint ?? "openai-compatible";
    const models = list.data
      .filter((m) => typeof m.id === "string")
      .map((m) => {
        const ctx = m.max_model_len ?? m.context_length;
        return ctx ? { id: m.id!, contextLength: ctx } : { id: m.id! };
      });
    return { kind, baseUrl: `${root}/v1`, models };
  } catch {
    return undefined;
  }
}

/** Probes the well-known local servers (and any extra URLs) in parallel. */
export async function detectBackends(extra: readonly string[] = [], timeoutMs = 1500): Promise<DetectedBackend[]> {
  const targets = [...WELL_KNOWN_BACKENDS.map((b) => ({ url: b.url, hint: b.kind as DetectedBackend["kind"] | undefined })), ...extra.map((url) => ({ url, hint: undefined }))];
  const found = await Promise.all(targets.map((t) => detectBackend(t.url, t.hint, timeoutMs)));
  return found.filter((b): b is DetectedBackend => b !== undefined);
}

/** How a configured instance reaches its backend. */
export type BackendConfig =
  | { kind: DetectedBackend["kind"]; baseUrl: string }
  /** A forwarded key; `keyName` names the sealed key in the node's key store. */
  | { kind: "openai" | "anthropic" | "gemini"; keyName: string; baseUrl?: string };

/** One instance in `provider.json`. */
export interface InstanceFileConfig {
  backend: BackendConfig;
  model: string;
  upstreamModel?: string;
  digest?: string;
  price: { input: string; output: string };
  maxConcurrency?: number;
  tokensPerSecond?: number;
  contextLength?: number;
  capabilities?: Capability[];
}

/** `provider.json`. */
export interface NodeConfig {
  /** The hub's base URL. */
  hub: string;
  /** The hub id seen at setup (pinned). */
  hubId?: string;
  /** Name of the sealed hub account key in the key store. */
  accountKeyName: string;
  instances: InstanceFileConfig[];
}

/** The files of a node directory. */
export function nodePaths(dir: string) {
  return {
    config: join(dir, "provider.json"),
    identity: join(dir, "node.key"),
    pid: join(dir, "provider.pid"),
    log: join(dir, "provider.log"),
    status: join(dir, "status.json"),
    receipts: join(dir, "receipts"),
  };
}

/** Reads `provider.json`. */
export function readNodeConfig(dir: string): NodeConfig {
  return JSON.parse(readFileSync(nodePaths(dir).config, "utf8")) as NodeConfig;
}

/** Writes `provider.json` atomically (mode 0600). */
export function writeNodeConfig(dir: string, config: NodeConfig): void {
  const file = nodePaths(dir).config;
  writeFileSync(`${file}.tmp`, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** Builds the backend of a configured instance (opening sealed keys from the store). */
export function buildBackend(config: BackendConfig, keys: KeyStore): Backend {
  if (config.kind === "openai" || config.kind === "anthropic" || config.kind === "gemini") {
    const apiKey = keys.get(config.keyName);
    if (apiKey === undefined) throw new Error(`no key named ${config.keyName} in the key store`);
    const opts = config.baseUrl === undefined ? { apiKey } : { apiKey, baseUrl: config.baseUrl };
    return config.kind === "anthropic" ? anthropicBackend(opts) : config.kind === "gemini" ? geminiBackend(opts) : openAIBackend(opts);
  }
  const local = config as { kind: LocalBackendKind; baseUrl: string };
  return openAICompatibleBackend({ baseUrl: local.baseUrl, kind: local.kind });
}

/** Turns `provider.json` into the instance list of `createProvider`. */
export function instancesFromConfig(config: NodeConfig, keys: KeyStore): InstanceConfig[] {
  const backends = new Map<string, Backend>();
  return config.instances.map((i) => {
    const id = JSON.stringify(i.backend);
    let backend = backends.get(id);
    if (!backend) backends.set(id, (backend = buildBackend(i.backend, keys)));
    const out: InstanceConfig = { backend, model: i.model, price: { input: i.price.input, output: i.price.output } };
    if (i.upstreamModel !== undefined) out.upstreamModel = i.upstreamModel;
    if (i.digest !== undefined) out.digest = i.digest;
    if (i.maxConcurrency !== undefined) out.maxConcurrency = i.maxConcurrency;
    if (i.tokensPerSecond !== undefined) out.tokensPerSecond = i.tokensPerSecond;
    if (i.contextLength !== undefined) out.contextLength = i.contextLength;
    if (i.capabilities !== undefined) out.capabilities = i.capabilities;
    return out;
  });
}

/** The key store of a node directory, sealed under the node identity. */
export function nodeKeyStore(dir: string, identity: Identity): KeyStore {
  return new KeyStore({ dir, identity });
}
