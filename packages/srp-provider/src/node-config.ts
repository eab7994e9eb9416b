/**
 * A provider node on disk: backend detection for `srp-provider setup` (text servers, and
 * Cog and Videos API servers of async jobs), the node's config file (`provider.json`), and
 * turning that config into a running {@link Provider}.
 * Forwarded API keys and the hub account key are sealed in the node's key store, never
 * written in the config.
 */
import { readFileSync, writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { canonicalize, type Identity } from "@srp/core";
import type { Capability, InstanceIo, Price } from "@srp/core/schema";
import { anthropicBackend } from "./backends/anthropic.js";
import { cogBackend } from "./backends/cog.js";
import { videosBackend } from "./backends/videos.js";
import { openAIBackend } from "./backends/forwarded.js";
import { geminiBackend } from "./backends/gemini.js";
import { KeyStore } from "./backends/keystore.js";
import { openAICompatibleBackend } from "./backends/openai-compatible.js";
import type { Backend } from "./backends/types.js";
import type { NativeTextApi } from "./backends/native-apis.js";
import {
  detectCog,
  detectServer,
  detectVideos,
  serverRoot,
  type DetectedCog,
  type DetectedServer,
  type DetectedVideos,
  type LocalKind,
} from "./detect/index.js";
import type { InstanceConfig } from "./provider.js";

/** Kinds of local model server that setup recognises. */
export type LocalBackendKind = LocalKind;

/** A local model server found by {@link detectBackends}, with what each model can do. */
export type DetectedBackend = DetectedServer;

/** The well-known local servers: Ollama, LM Studio, vLLM, llama.cpp server. */
export const WELL_KNOWN_BACKENDS: readonly { kind: DetectedBackend["kind"]; url: string }[] = [
  { kind: "ollama", url: "http://127.0.0.1:11434" },
  { kind: "lmstudio", url: "http://127.0.0.1:1234" },
  { kind: "vllm", url: "http://127.0.0.1:8000" },
  { kind: "llamacpp", url: "http://127.0.0.1:8080" },
];

/**
 * Asks a server who it is and what its models can do, through its own API (see
 * `detect/`): Ollama's `/api/tags` and `/api/show`, LM Studio's `/api/v0/models`,
 * llama.cpp's `/props`, and `/v1/models` (vLLM, others), with a tools probe where the
 * server does not say (unless `probe` is false).
 */
export async function detectBackend(
  url: string,
  hint?: DetectedBackend["kind"],
  timeoutMs = 1500,
  probe = true,
): Promise<DetectedBackend | undefined> {
  return detectServer(url, { ...(hint ? { hint } : {}), timeoutMs, probe });
}

/** Probes the well-known local servers (and any extra URLs) in parallel. */
export async function detectBackends(extra: readonly string[] = [], timeoutMs = 1500, probe = true): Promise<DetectedBackend[]> {
  const targets = [
    ...WELL_KNOWN_BACKENDS.map((b) => ({ url: b.url, hint: b.kind as DetectedBackend["kind"] | undefined })),
    ...extra.map((url) => ({ url, hint: undefined })),
  ];
  const found = await Promise.all(targets.map((t) => detectBackend(t.url, t.hint, timeoutMs, probe)));
  return found.filter((b): b is DetectedBackend => b !== undefined);
}

/** The well-known port of a Cog server (the HTTP server inside a packaged model). */
export const WELL_KNOWN_COG = "http://127.0.0.1:5000";

/** Servers of async jobs found by {@link detectAsyncBackends}. */
export interface DetectedAsyncBackends {
  /** Cog servers (`runs` jobs), one model each. */
  cog: DetectedCog[];
  /** Servers of OpenAI's Videos API (`videos` jobs). */
  videos: DetectedVideos[];
}

/**
 * Probes for servers of async jobs: a Cog server at {@link WELL_KNOWN_COG} (unless
 * `wellKnown` is false) and at every extra URL, and OpenAI's Videos API at every extra URL
 * (video servers have no well-known port). See `detect/async.ts`.
 */
export async function detectAsyncBackends(
  extra: readonly string[] = [],
  options: { wellKnown?: boolean; timeoutMs?: number } = {},
): Promise<DetectedAsyncBackends> {
  const t = options.timeoutMs ?? 1500;
  const roots = [...new Set(extra.map(serverRoot))];
  const cogUrls = [...new Set([...(options.wellKnown === false ? [] : [WELL_KNOWN_COG]), ...roots])];
  const [cog, videos] = await Promise.all([
    Promise.all(cogUrls.map((u) => detectCog(u, t))),
    Promise.all(roots.map((u) => detectVideos(u, t))),
  ]);
  return {
    cog: cog.filter((c): c is DetectedCog => c !== undefined),
    videos: videos.filter((v): v is DetectedVideos => v !== undefined),
  };
}

/** How a configured instance reaches its backend. */
export type BackendConfig =
  /** A local server; `apis`: the text APIs setup found it serves besides chat (absent: by kind, see `nativeTextApis`). */
  | { kind: DetectedBackend["kind"]; baseUrl: string; apis?: NativeTextApi[] }
  /** A forwarded key; `keyName` names the sealed key in the node's key store. */
  | { kind: "openai" | "anthropic" | "gemini"; keyName: string; baseUrl?: string }
  /** A Cog server (`runs` jobs) at its root URL; `allowUrls` lets string inputs be `http(s)` URLs the model fetches (default false, SRP-JOB-052). */
  | { kind: "cog"; baseUrl: string; allowUrls?: boolean }
  /** A server of OpenAI's Videos API (`videos` jobs), base URL ending in `/v1`; `keyName` names a sealed bearer key, if it wants one. */
  | { kind: "videos"; baseUrl: string; keyName?: string };

/** One instance in `provider.json`. */
export interface InstanceFileConfig {
  backend: BackendConfig;
  model: string;
  /** The backend's own name for the model, when `model` is its canonical id. */
  upstreamModel?: string;
  digest?: string;
  /** Normalized quantization of the weights (offered, SRP-OFF-011). */
  quantization?: string;
  /** Per 1M units, USDC atomic units: tokens (`input`, `output`, `cachedInput`, `cacheWrite`), `image`, `character`, `second`. */
  price: Price;
  maxConcurrency?: number;
  tokensPerSecond?: number;
  contextLength?: number;
  capabilities?: Capability[];
  /** The declared input and output of a `runs` (Cog) instance, read from its `/openapi.json` at setup (SRP-OFF-021). */
  io?: InstanceIo;
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
  if (config.kind === "cog") return cogBackend({ baseUrl: config.baseUrl, ...(config.allowUrls ? { allowUrls: true } : {}) });
  if (config.kind === "videos") {
    if (config.keyName === undefined) return videosBackend({ baseUrl: config.baseUrl });
    const apiKey = keys.get(config.keyName);
    if (apiKey === undefined) throw new Error(`no key named ${config.keyName} in the key store`);
    return videosBackend({ baseUrl: config.baseUrl, apiKey });
  }
  const local = config as { kind: LocalBackendKind; baseUrl: string; apis?: NativeTextApi[] };
  return openAICompatibleBackend({ baseUrl: local.baseUrl, kind: local.kind, ...(local.apis ? { apis: local.apis } : {}) });
}

/** Turns `provider.json` into the instance list of `createProvider`. */
export function instancesFromConfig(config: NodeConfig, keys: KeyStore): InstanceConfig[] {
  const backends = new Map<string, Backend>();
  return config.instances.map((i) => {
    const id = JSON.stringify(i.backend);
    let backend = backends.get(id);
    if (!backend) backends.set(id, (backend = buildBackend(i.backend, keys)));
    const out: InstanceConfig = { backend, model: i.model, price: { ...i.price } };
    if (i.quantization !== undefined) out.quantization = i.quantization;
    if (i.upstreamModel !== undefined) out.upstreamModel = i.upstreamModel;
    if (i.digest !== undefined) out.digest = i.digest;
    if (i.maxConcurrency !== undefined) out.maxConcurrency = i.maxConcurrency;
    if (i.tokensPerSecond !== undefined) out.tokensPerSecond = i.tokensPerSecond;
    if (i.contextLength !== undefined) out.contextLength = i.contextLength;
    if (i.capabilities !== undefined) out.capabilities = i.capabilities;
    if (i.io !== undefined) out.io = i.io;
    return out;
  });
}

/** What {@link refreshIo} found for one `runs` instance. */
export interface IoRefresh {
  model: string;
  /** `same`: the backend declares the configured io; `updated`: it now declares another (offered instead); `unreachable`: it did not answer (the configured io is kept). */
  outcome: "same" | "updated" | "unreachable";
  /** Why the backend did not answer. */
  reason?: string;
}

/**
 * Re-reads the declared io of every `runs` instance from its backend (`backend.io()`,
 * bounded by `timeoutMs`) before the node offers it, so a node whose Cog model was replaced
 * since setup declares what the model takes now (SRP-OFF-021). A backend that does not
 * answer keeps the io from `provider.json`; an instance with neither is an error.
 */
export async function refreshIo(instances: InstanceConfig[], timeoutMs = 5000): Promise<IoRefresh[]> {
  const out: IoRefresh[] = [];
  for (const i of instances) {
    if (i.backend.asyncApi !== "runs" || !i.backend.io) continue;
    try {
      const io = await i.backend.io(AbortSignal.timeout(timeoutMs));
      const changed = i.io === undefined || canonicalize(i.io) !== canonicalize(io);
      i.io = io;
      out.push({ model: i.model, outcome: changed ? "updated" : "same" });
    } catch (error) {
      if (i.io === undefined)
        throw new Error(
          `${i.backend.label} did not declare the io of ${i.model} (${(error as Error).message}) and provider.json has none`,
          {
            cause: error,
          },
        );
      out.push({ model: i.model, outcome: "unreachable", reason: (error as Error).message });
    }
  }
  return out;
}

/** The key store of a node directory, sealed under the node identity. */
export function nodeKeyStore(dir: string, identity: Identity): KeyStore {
  return new KeyStore({ dir, identity });
}
