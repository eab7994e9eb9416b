/**
 * `@srp/provider`: the provider node. It dials out to a hub, verifies the hub's signed
 * hello, authenticates with the node's Ed25519 key and an account binding, offers its
 * instances, runs jobs on local model servers or forwarded keys, relays their output in
 * order, and ends every job with a signed receipt or a coded error.
 *
 * The root entry holds what running a node in code needs: `createProvider` and its
 * options, the hub connection, the backends (local OpenAI-compatible servers, forwarded
 * Anthropic, OpenAI and Gemini keys) with the `Backend` interface for writing your own, and
 * receipt stores. Subpath entries:
 * - `@srp/provider/setup`: server detection, instance planning, the node config file and key store.
 * - `@srp/provider/simulator`: an OpenAI- and Anthropic-compatible model simulator for tests.
 *
 * Every export of every entry is public API: a new export is a promise to keep it.
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
export {
  createProvider,
  Provider,
  type ProviderOptions,
  type InstanceConfig,
  type ProviderEvents,
  type ProviderStats,
  type JobOutcome,
} from "./provider.js";
export { MemoryReceiptStore, FileReceiptStore, type ReceiptStore } from "./receipt-store.js";

// Backends: local OpenAI-compatible servers, forwarded API keys, and the interface for your own
export { openAICompatibleBackend, type OpenAICompatibleOptions } from "./backends/openai-compatible.js";
export type { NativeTextApi } from "./backends/native-apis.js";
export { anthropicBackend, type AnthropicOptions } from "./backends/anthropic.js";
export { openAIBackend, type ForwardedKeyOptions } from "./backends/forwarded.js";
export { geminiBackend } from "./backends/gemini.js";
export { videosBackend, failedVideoCode, type VideosBackendOptions } from "./backends/videos.js";
export { cogBackend, cogIo, outputArtifacts, urlInInput, type CogBackendOptions } from "./backends/cog.js";
export {
  BackendError,
  type Backend,
  type BackendApi,
  type BackendModel,
  type ChatCallOptions,
  type ChatResult,
  type AsyncCallOptions,
  type AsyncArtifact,
  type AsyncResult,
} from "./backends/types.js";
