/**
 * `@srp/provider/setup`: what `srp-provider setup` does, for tools that script it. Finding
 * local model servers through their own APIs (Ollama, LM Studio, llama.cpp, vLLM and other
 * OpenAI-compatible servers; Cog servers and OpenAI Videos API servers for async jobs) and
 * probing them for tool use; planning the instances a node offers from what was found or
 * from forwarded keys, with price and capability flags; the node's config file and paths;
 * and the key store that seals forwarded API keys at rest.
 *
 * Every export of this entry is public API: a new export is a promise to keep it.
 *
 * @module @srp/provider/setup
 */

// Local servers: detection and tool probes
export {
  detectServer,
  parseOllamaTags,
  parseOllamaModel,
  parseLmStudioModels,
  parseLlamaCppProps,
  parseLlamaCppModels,
  parseOpenAIModels,
  probeTools,
  toolProbeVerdict,
  toolProbeBody,
  withTextApis,
  DEFAULT_CONCURRENCY,
  type DetectOptions,
  type DetectedModel,
  type DetectedServer,
  type LocalKind,
  type OllamaTag,
  type LlamaCppProps,
  type ProbeVerdict,
  detectCog,
  detectVideos,
  parseCogOpenApi,
  parseCogHealth,
  parseVideoList,
  cogModelName,
  type DetectedCog,
  type DetectedVideos,
} from "./detect/index.js";

// The instances a node offers
export {
  planInstances,
  planForwardedInstances,
  forwardedCapabilities,
  FORWARDED_CAPABILITIES,
  parsePriceFlag,
  parseCapabilitiesFlag,
  namesModel,
  flagTargets,
  unmatchedFlags,
  describeInstance,
  planAsyncInstances,
  parseAsyncModelFlag,
  DEFAULT_RUN_PRICE,
  DEFAULT_VIDEO_PRICE,
  DEFAULT_ASYNC_CONCURRENCY,
  type AsyncModelFlag,
  type AsyncSupplySettings,
  type AsyncPlan,
  type SupplySettings,
  type PriceOverride,
  type CapabilityOverride,
} from "./supply.js";

// The node's config file
export {
  detectBackend,
  detectBackends,
  detectAsyncBackends,
  refreshIo,
  WELL_KNOWN_BACKENDS,
  WELL_KNOWN_COG,
  type DetectedAsyncBackends,
  type IoRefresh,
  readNodeConfig,
  writeNodeConfig,
  instancesFromConfig,
  buildBackend,
  nodeKeyStore,
  nodePaths,
  type DetectedBackend,
  type LocalBackendKind,
  type NodeConfig,
  type InstanceFileConfig,
  type BackendConfig,
} from "./node-config.js";

// Forwarded keys sealed at rest
export { KeyStore, KeyStoreError, sealSecret, openSecret, deriveKeyStoreKey, type KeyStoreOptions } from "./backends/keystore.js";
