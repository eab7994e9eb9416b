/**
 * `@srp/provider`: the provider node. It dials out to a hub, verifies the hub's signed
 * hello, authenticates with the node's Ed25519 key and an account binding, offers its
 * instances, runs jobs on local model servers or forwarded keys, relays their output in
 * order, and ends every job with a signed receipt or a coded error.
 *
 * @packageDocumentation
 * @module @srp/provider
 */
export {
  backoffDelay,
  connectToHub,
  discoverHub,
  HubConnection,
  mayReconnect,
  type SessionEnd,
  type ConnectOptions,
  type ConnectionState,
  type HubConnectionEvents,
  type ReconnectPolicy,
} from "./connection.js";
export { createProvider, Provider, type ProviderOptions, type InstanceConfig, type ProviderEvents, type ProviderStats, type JobOutcome } from "./provider.js";
export { openAICompatibleBackend, mirrorsMaxTokens, type OpenAICompatibleOptions } from "./backends/openai-compatible.js";
// Which OpenAI text APIs a server serves natively (responses, completions), and a chat job's reasoning switch per server kind.
export { nativeTextApis, honoursSuffix, wantsSuffix, openAICompletionsModel, type NativeTextApi } from "./backends/native-apis.js";
export { reasoningSwitch, responsesReasoningSwitch } from "./backends/reasoning-switch.js";
export { BackendError, classifyUpstreamStatus, type Backend, type BackendApi, type BackendModel, type ChatCallOptions, type ChatResult } from "./backends/types.js";
export { MemoryReceiptStore, FileReceiptStore, type ReceiptStore } from "./receipt-store.js";
// Forwarded API keys: Anthropic (translated), OpenAI and Gemini (OpenAI-compatible), sealed at rest.
export { anthropicBackend, EFFORT_THINKING_BUDGETS, thinkingForEffort, type AnthropicOptions } from "./backends/anthropic.js";
export { openAIBackend, type ForwardedKeyOptions } from "./backends/forwarded.js";
export { geminiBackend } from "./backends/gemini.js";
export { KeyStore, KeyStoreError, sealSecret, openSecret, deriveKeyStoreKey, type KeyStoreOptions } from "./backends/keystore.js";
export {
  detectBackend,
  detectBackends,
  WELL_KNOWN_BACKENDS,
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
// What local servers offer: detection through their own APIs, and the instances setup plans from it.
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
} from "./detect/index.js";
export { planInstances, planForwardedInstances, forwardedCapabilities, FORWARDED_CAPABILITIES, parsePriceFlag, parseCapabilitiesFlag, namesModel, flagTargets, unmatchedFlags, describeInstance, type SupplySettings, type PriceOverride, type CapabilityOverride } from "./supply.js";
