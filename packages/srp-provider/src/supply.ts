/**
 * What `srp-provider setup` (and `npm start`) offers from the local servers it found:
 * one instance per model under its canonical id, with the backend's own name kept as the
 * upstream model, the capabilities detection found (or the operator's override), the
 * operator's per-model prices and unit prices, and a concurrency fit for the server kind.
 * Pure functions over detection results and parsed flags.
 */
import { resolveModelAlias } from "@srp/core";
import { Capability as CapabilitySchema, type Capability, type Price } from "@srp/core/schema";
import { DEFAULT_CONCURRENCY, type DetectedModel, type DetectedServer } from "./detect/index.js";
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

const PRICE_KEYS = ["input", "output", "cachedInput", "cacheWrite", "image", "character", "second"] as const;
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
 * `character`, `second` (per 1M images, characters, seconds).
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

/** One line of setup's report for an instance. */
export function describeInstance(i: InstanceFileConfig): string {
  const name = i.upstreamModel ? `${i.upstreamModel} -> ${i.model}` : i.model;
  const parts = [
    i.quantization ?? "quantization ?",
    `context ${i.contextLength ?? "?"}`,
    `concurrency ${i.maxConcurrency ?? "?"}`,
    (i.capabilities ?? []).join(","),
  ];
  return `${name}  ${parts.join("  ")}`;
}
