/**
 * What `srp-provider setup` (and `npm start`) offers from the local servers it found:
 * one instance per model under its canonical id, with the backend's own name kept as the
 * upstream model, the capabilities detection found (or the operator's override), the
 * operator's per-model prices and unit prices, and a concurrency fit for the server kind;
 * and one instance per model of a server of async jobs (a Cog server's one model, the
 * Videos API models the operator names). Pure functions over detection results and parsed
 * flags.
 */
import { resolveModelAlias } from "@srp/core";
import { Capability as CapabilitySchema, type Capability, type Price } from "@srp/core/schema";
import {
  cogUnhealthy,
  DEFAULT_CONCURRENCY,
  serverRoot,
  type DetectedCog,
  type DetectedModel,
  type DetectedServer,
  type DetectedVideos,
} from "./detect/index.js";
import { nativeTextApis, openAICompletionsModel } from "./backends/native-apis.js";
import type { InstanceFileConfig } from "./node-config.js";

/** Per-model price override from `--price MODEL=...`. */
export interface PriceOverride {
  model: string;
  price: Partial<Price>;
}

/** Per-model capabilities from `--capabilities MODEL=a,b,c`. */
export interface CapabilityOverride {
  model: string;
  capabilities: Capability[];
}

/** What the operator chose at setup. */
export interface SupplySettings {
  /** Price of models without an override (per 1M units, atomic units). */
  defaultPrice: Price;
  prices?: readonly PriceOverride[];
  capabilities?: readonly CapabilityOverride[];
  /** Jobs at once for every instance; default by server kind ({@link DEFAULT_CONCURRENCY}, llama.cpp's slot count). */
  maxConcurrency?: number;
}

const PRICE_KEYS = ["input", "output", "cachedInput", "cacheWrite", "image", "character", "second", "run"] as const;
const AMOUNT = /^(0|[1-9][0-9]{0,30})$/;
const CAPABILITIES: ReadonlySet<string> = new Set(CapabilitySchema.anyOf.map((s) => (s as { const: string }).const));

function splitModel(text: string, flag: string): [string, string] {
  const first = text.indexOf("=");
  if (first <= 0 || first === text.length - 1) throw new Error(`${flag} takes MODEL=VALUE, got ${JSON.stringify(text)}`);
  return [text.slice(0, first), text.slice(first + 1)];
}

/**
 * Parses `--price MODEL=IN:OUT[,key=N...]` or `--price MODEL=key=N,...`: atomic units per
 * 1M tokens for `IN`/`OUT`, and `cachedInput`, `cacheWrite` (per 1M tokens), `image`,
 * `character`, `second`, `run` (per 1M images, characters, seconds, runs of an async job).
 */
export function parsePriceFlag(text: string): PriceOverride {
  const [model, rest] = splitModel(text, "--price");
  const price: Partial<Price> = {};
  for (const [i, part] of rest.split(",").entries()) {
    const pair = /^([A-Za-z]+)=(.*)$/.exec(part);
    if (!pair && i === 0) {
      const m = /^([0-9]+):([0-9]+)$/.exec(part);
      if (!m || !AMOUNT.test(m[1]!) || !AMOUNT.test(m[2]!))
        throw new Error(`--price ${text}: IN:OUT are atomic units per 1M tokens, e.g. 200000:600000`);
      price.input = m[1]!;
      price.output = m[2]!;
      continue;
    }
    if (!pair) throw new Error(`--price ${text}: ${JSON.stringify(part)} is not key=units`);
    const key = pair[1] === "cachedinput" || pair[1] === "cacheRead" ? "cachedInput" : pair[1]!;
    if (!(PRICE_KEYS as readonly string[]).includes(key))
      throw new Error(`--price ${text}: ${pair[1]} is not one of ${PRICE_KEYS.join(", ")}`);
    if (!AMOUNT.test(pair[2]!)) throw new Error(`--price ${text}: ${pair[1]} takes atomic units (a whole number)`);
    price[key as keyof Price] = pair[2]!;
  }
  return { model, price };
}

/** Parses `--capabilities MODEL=chat,stream,tools`. */
export function parseCapabilitiesFlag(text: string): CapabilityOverride {
  const [model, rest] = splitModel(text, "--capabilities");
  const caps = rest
    .split(",")
    .map((c) => c.trim())
    .filter(Boolean);
  const bad = caps.filter((c) => !CAPABILITIES.has(c));
  if (caps.length === 0 || bad.length > 0)
    throw new Error(
      `--capabilities ${text}: unknown capability ${bad.join(", ") || "(none given)"}; one of ${[...CAPABILITIES].join(", ")}`,
    );
  return { model, capabilities: [...new Set(caps)] as Capability[] };
}

/** Whether a flag's MODEL names a detected model: its own name, its canonical id, or any alias of it. */
export function namesModel(flagModel: string, m: Pick<DetectedModel, "id" | "canonical">): boolean {
  return flagModel === m.id || flagModel === m.canonical || resolveModelAlias(flagModel) === m.canonical;
}

/**
 * The models a flag's MODEL applies to: the ones whose server calls them exactly that,
 * else every model of the canonical id it names (so `--price llama3.1:8b=...` prices that
 * tag, and `--price llama-3.1-8b-instruct=...` every quantization of it).
 */
export function flagTargets<M extends Pick<DetectedModel, "id" | "canonical">>(flagModel: string, models: readonly M[]): M[] {
  const exact = models.filter((m) => m.id === flagModel);
  return exact.length > 0 ? exact : models.filter((m) => namesModel(flagModel, m));
}

/** The instances to offer for the servers found. */
export function planInstances(servers: readonly DetectedServer[], settings: SupplySettings): InstanceFileConfig[] {
  const out: InstanceFileConfig[] = [];
  const all = servers.flatMap((s) => s.models);
  const applies = (flagModel: string, m: DetectedModel) => flagTargets(flagModel, all).includes(m);
  for (const s of servers) {
    const concurrency = settings.maxConcurrency ?? (s.kind === "llamacpp" && s.slots ? s.slots : DEFAULT_CONCURRENCY[s.kind]);
    for (const m of s.models) {
      const own = settings.capabilities?.filter((o) => applies(o.model, m)).at(-1)?.capabilities;
      const capabilities = own ?? m.capabilities;
      if (capabilities.length === 0) continue;
      let price: Price = { ...settings.defaultPrice };
      for (const o of settings.prices ?? []) if (applies(o.model, m)) price = { ...price, ...o.price } as Price;
      const i: InstanceFileConfig = {
        backend: { kind: s.kind, baseUrl: s.baseUrl, ...(s.apis ? { apis: [...s.apis] } : {}) },
        model: m.canonical,
        price,
        maxConcurrency: concurrency,
        capabilities,
      };
      if (m.canonical !== m.id) i.upstreamModel = m.id;
      if (m.quantization) i.quantization = m.quantization;
      if (m.digest) i.digest = m.digest;
      if (m.contextLength) i.contextLength = m.contextLength;
      out.push(i);
    }
  }
  return out;
}

/**
 * Capabilities of a forwarded-key instance (OpenAI, Anthropic, Gemini) without a
 * `--capabilities` override. Hosted models may reason without relaying it (o-series and
 * gpt-5 `reasoning_tokens`, Claude's extended thinking), so they offer `reasoning`: its
 * hidden tokens are then plausible up to the output limit (SRP-ATT-015).
 */
export const FORWARDED_CAPABILITIES: readonly Capability[] = Object.freeze(["chat", "stream", "tools", "reasoning"]);

/**
 * The default capabilities of a forwarded key's model: {@link FORWARDED_CAPABILITIES}, plus
 * `responses` for OpenAI's models (SRP-OFF-015). OpenAI's legacy completion models
 * (`gpt-3.5-turbo-instruct`, `davinci-002`, `babbage-002`) are served only on
 * `/v1/completions`, so they offer `completions` and `stream` alone; no other OpenAI model
 * offers `completions` (SRP-OFF-016).
 */
export function forwardedCapabilities(kind: "openai" | "anthropic" | "gemini", model: string): Capability[] {
  if (kind !== "openai") return [...FORWARDED_CAPABILITIES];
  if (openAICompletionsModel(model)) return ["stream", "completions"];
  return [...FORWARDED_CAPABILITIES, ...nativeTextApis("openai").filter((api) => api !== "completions")];
}

/** The instances of a forwarded key: one per model, with the operator's per-model price and capabilities, else the defaults ({@link FORWARDED_CAPABILITIES}). */
export function planForwardedInstances(
  kind: "openai" | "anthropic" | "gemini",
  models: readonly string[],
  settings: SupplySettings,
): InstanceFileConfig[] {
  return models.map((model) => {
    const own = settings.capabilities?.filter((o) => o.model === model).at(-1)?.capabilities;
    let price: Price = { ...settings.defaultPrice };
    for (const o of settings.prices ?? []) if (o.model === model) price = { ...price, ...o.price } as Price;
    return {
      backend: { kind, keyName: kind },
      model,
      price,
      maxConcurrency: settings.maxConcurrency ?? 8,
      capabilities: own ?? forwardedCapabilities(kind, model),
    };
  });
}

/** Flags that named no detected model (a typo the operator should hear about). */
export function unmatchedFlags(servers: readonly DetectedServer[], settings: SupplySettings): string[] {
  const models = servers.flatMap((s) => s.models);
  return [...(settings.prices ?? []), ...(settings.capabilities ?? [])]
    .map((o) => o.model)
    .filter((name) => !models.some((m) => namesModel(name, m)));
}

/**
 * Default price of a `runs` (Cog) instance, per 1M units in USDC atomic units:
 * `second` 1 000 000 000 ($0.001 a second of run time) and `run` 10 000 000 000 ($0.01 a run).
 */
export const DEFAULT_RUN_PRICE: Readonly<Price> = Object.freeze({ input: "0", output: "0", second: "1000000000", run: "10000000000" });

/**
 * Default price of a `videos` instance, per 1M units in USDC atomic units: `second`
 * 50 000 000 000 ($0.05 a second of video) and `run` 0.
 */
export const DEFAULT_VIDEO_PRICE: Readonly<Price> = Object.freeze({ input: "0", output: "0", second: "50000000000", run: "0" });

/** Default jobs at once of an async instance: a Cog server runs one prediction at a time; a Videos API server queues, 2. */
export const DEFAULT_ASYNC_CONCURRENCY: Readonly<{ cog: number; videos: number }> = Object.freeze({ cog: 1, videos: 2 });

/** `--run-model [URL=]NAME` or `--video-model [URL=]NAME`: a model name, for the server at URL only when one is given. */
export interface AsyncModelFlag {
  /** The server root the name is for; absent: every server of that kind found. */
  url?: string;
  model: string;
}

/** Model names a hub takes (`ModelId`). */
const MODEL_ID = /^[A-Za-z0-9._:/@+-]{1,256}$/;

/** Parses `--run-model` / `--video-model` (`flag` names it in errors): `NAME` or `URL=NAME`. */
export function parseAsyncModelFlag(text: string, flag: string): AsyncModelFlag {
  const m = /^(https?:\/\/[^=\s]+)=(.*)$/i.exec(text);
  const model = m ? m[2]! : text;
  if (!MODEL_ID.test(model))
    throw new Error(`${flag} ${text}: a model name is 1 to 256 of A-Z a-z 0-9 . _ : / @ + - (optionally after URL=)`);
  return m ? { url: serverRoot(m[1]!), model } : { model };
}

/** What the operator chose for servers of async jobs. */
export interface AsyncSupplySettings {
  /** `--run-model`: the name of a Cog server's model (else its OpenAPI title, when it names one). */
  runModels?: readonly AsyncModelFlag[];
  /** `--video-model`: the models a Videos API server makes. */
  videoModels?: readonly AsyncModelFlag[];
  /** `--price MODEL=second=U,run=U` overrides, by exact model name. */
  prices?: readonly PriceOverride[];
  /** Jobs at once for every instance; default {@link DEFAULT_ASYNC_CONCURRENCY}. */
  maxConcurrency?: number;
}

/** The instances of the async servers found, and one line per server skipped or flag unused (for setup to print). */
export interface AsyncPlan {
  instances: InstanceFileConfig[];
  notes: string[];
}

/**
 * The instances to offer for the servers of async jobs found: one `run` instance per Cog
 * server (named by `--run-model`, else by its OpenAPI title when that names the model; its
 * `io` from `/openapi.json`), one `video` instance per `--video-model` per Videos API
 * server; priced {@link DEFAULT_RUN_PRICE} / {@link DEFAULT_VIDEO_PRICE} unless `--price`
 * names the model. A Cog server without a name, with a failed setup or an `io` the hub
 * would refuse, and a Videos server without `--video-model`, are skipped with a note.
 */
export function planAsyncInstances(
  found: { cog: readonly DetectedCog[]; videos: readonly DetectedVideos[] },
  settings: AsyncSupplySettings,
): AsyncPlan {
  const instances: InstanceFileConfig[] = [];
  const notes: string[] = [];
  const named = (flags: readonly AsyncModelFlag[] | undefined, root: string): string[] => {
    const own = (flags ?? []).filter((f) => f.url === root).map((f) => f.model);
    return own.length > 0 ? own : (flags ?? []).filter((f) => f.url === undefined).map((f) => f.model);
  };
  const priced = (model: string, base: Readonly<Price>): Price => {
    let price: Price = { ...base };
    for (const o of settings.prices ?? []) if (o.model === model) price = { ...price, ...o.price } as Price;
    return price;
  };
  for (const c of found.cog) {
    const model = named(settings.runModels, c.baseUrl).at(-1) ?? c.model;
    if (cogUnhealthy(c.health)) {
      notes.push(`cog at ${c.baseUrl}: its health check says ${c.health}; skipped`);
      continue;
    }
    if (c.ioProblem) {
      notes.push(`cog at ${c.baseUrl}: its declared input and output cannot be offered (${c.ioProblem}); skipped`);
      continue;
    }
    if (!model) {
      notes.push(
        `cog at ${c.baseUrl}: its /openapi.json (title ${JSON.stringify(c.title ?? "")}) names no model; name it with --run-model NAME`,
      );
      continue;
    }
    instances.push({
      backend: { kind: "cog", baseUrl: c.baseUrl },
      model,
      price: priced(model, DEFAULT_RUN_PRICE),
      maxConcurrency: settings.maxConcurrency ?? DEFAULT_ASYNC_CONCURRENCY.cog,
      capabilities: ["run"],
      io: c.io,
    });
  }
  for (const v of found.videos) {
    const models = [...new Set(named(settings.videoModels, serverRoot(v.baseUrl)))];
    if (models.length === 0) {
      const seen = v.seenModels.length ? ` (its videos name ${v.seenModels.join(", ")})` : "";
      notes.push(`videos at ${v.baseUrl}: name the models it makes with --video-model NAME${seen}`);
      continue;
    }
    for (const model of models)
      instances.push({
        backend: { kind: "videos", baseUrl: v.baseUrl },
        model,
        price: priced(model, DEFAULT_VIDEO_PRICE),
        maxConcurrency: settings.maxConcurrency ?? DEFAULT_ASYNC_CONCURRENCY.videos,
        capabilities: ["video"],
      });
  }
  for (const [flags, kind, servers] of [
    [settings.runModels, "--run-model", found.cog.map((c) => c.baseUrl)],
    [settings.videoModels, "--video-model", found.videos.map((v) => serverRoot(v.baseUrl))],
  ] as const) {
    for (const f of flags ?? []) {
      if (f.url !== undefined && !servers.includes(f.url))
        notes.push(`warning: ${kind} ${f.url}=${f.model}: no ${kind === "--run-model" ? "Cog" : "Videos API"} server answers there`);
      if (f.url === undefined && servers.length === 0)
        notes.push(`warning: ${kind} ${f.model}: found no ${kind === "--run-model" ? "Cog" : "Videos API"} server`);
    }
  }
  return { instances, notes };
}

/** One line of setup's report for an instance. */
export function describeInstance(i: InstanceFileConfig): string {
  if (i.backend.kind === "cog" || i.backend.kind === "videos") {
    const price = Object.entries(i.price)
      .filter(([k]) => k === "second" || k === "run")
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    const io =
      i.io && typeof i.io.input === "object" && i.io.input !== null ? (i.io.input as { properties?: object }).properties : undefined;
    const parts = [
      (i.capabilities ?? []).join(","),
      `concurrency ${i.maxConcurrency ?? "?"}`,
      `price ${price || "free"}`,
      ...(io ? [`input ${Object.keys(io).join(",")}`] : []),
    ];
    return `${i.model}  ${parts.join("  ")}`;
  }
  const name = i.upstreamModel ? `${i.upstreamModel} -> ${i.model}` : i.model;
  const parts = [
    i.quantization ?? "quantization ?",
    `context ${i.contextLength ?? "?"}`,
    `concurrency ${i.maxConcurrency ?? "?"}`,
    (i.capabilities ?? []).join(","),
  ];
  return `${name}  ${parts.join("  ")}`;
}
