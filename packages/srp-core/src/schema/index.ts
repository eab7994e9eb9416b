/**
 * `@srp/core/schema`: the shape of everything SRP puts on the wire, as TypeBox schemas
 * with static types of the same names. The v1 protocol messages and their primitives
 * (spec/v1), the message registry, the JSON Schema builder behind `spec/v1/schema.json`,
 * and the bodies of the consumer API (chat completions, messages, responses, embeddings,
 * batches and the other modalities) with the checks hubs run on them.
 *
 * Every export of this entry is public API: a new export is a promise to keep it.
 * Most users need only the types: `import type { Job, Receipt } from "@srp/core/schema"`.
 *
 * @module @srp/core/schema
 */

// Primitives
export {
  SCHEMA_LIMITS,
  Id,
  ModelId,
  PublicKey,
  Signature,
  Nonce,
  Hash,
  Amount,
  Timestamp,
  Version,
  Ext,
  EXT_KEY_PATTERN,
  EXT_KEY_MAX_LENGTH,
  extKeyProblem,
  Price,
  Usage,
  ReceiptTotals,
} from "./primitives.js";

// Protocol messages
export {
  FRAME_LIMITS,
  Hello,
  Auth,
  Welcome,
  AccountBinding,
  ApiKeyBinding,
  WalletBinding,
  HelloLimits,
  SessionLimits,
} from "./handshake.js";
export { Offer, OfferAck, OfferResult, Withdraw, Instance, InstanceIo, SupplyTier, BackendKind, Capability } from "./offer.js";
export {
  Job,
  Chunk,
  Done,
  JobError,
  Cancel,
  JobApi,
  CancelReason,
  JsonObject,
  Progress,
  Result,
  Resume,
  Base64Part,
  ASYNC_APIS,
} from "./jobs.js";
export { ASYNC_JOB_LIMITS, AsyncJobsAnnouncement, ResultArtifact, ResultManifest } from "./async-jobs.js";
export { Heartbeat, Probe, ProbeResult, InstanceLoad } from "./liveness.js";
export { Receipt, ReceiptMessage } from "./attestation.js";
export { Statement, StatementMessage, Dispute, DisputeKind } from "./settlement.js";
export { ErrorMessage, Goodbye } from "./control.js";
export { Discovery, DISCOVERY_PATH } from "./discovery.js";
export { MESSAGES, MESSAGE_TYPES, isMessageType, type MessageType, type MessageOf, type SrpMessage, type Sender } from "./registry.js";
export { buildJsonSchema, SCHEMA_ID, type JsonSchemaDocument } from "./json-schema.js";

// Consumer API bodies
export {
  ProviderPreferences,
  SrpPreferences,
  ChatCompletionRequest,
  ChatMessage,
  ChatContentPart,
  AnthropicContentBlock,
  MessagesRequest,
  CountTokensRequest,
  ResponsesRequest,
  ResponsesInputItem,
  CompletionsRequest,
  ResponsesUsage,
  ResponseObject,
  CompletionObject,
  EmbeddingsRequest,
  ImageGenerationRequest,
  SpeechRequest,
  TranscriptionRequest,
  TranscriptionJobRequest,
  BatchRequest,
  BatchObject,
  BATCH_ENDPOINTS,
  ASYNC_REQUEST_LIMITS,
  VideoCreateRequest,
  RunCreateRequest,
  JobArtifact,
  AsyncJobObject,
  SrpUsage,
  OpenAIUsage as OpenAIUsageSchema,
  AnthropicUsage,
  ChatCompletionObject,
  MessageObject,
  ModalityObject,
  ModelEntry,
  ModelList,
  ReceiptObject,
  USD_COST_PATTERN,
  OpenAIError,
  AnthropicError,
  CONSUMER_SCHEMAS,
} from "./consumer.js";
export { checkConsumerBody, consumerOpenApi, anthropicBetas, ANTHROPIC_BETA_EXT } from "../consumer.js";
