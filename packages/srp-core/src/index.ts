/**
 * `@srp/core`: the Spare Relay Protocol, version 1. Message schemas (TypeBox), the frame
 * codec, the error table, Ed25519 signing over canonical JSON, the handshake rules,
 * money math and receipts. It knows nothing of hubs, providers or clients, and it has
 * no Node-only dependencies.
 *
 * @packageDocumentation
 * @module @srp/core
 */

// Encodings and canonical JSON
export { toBase64Url, fromBase64Url, utf8, fromUtf8, toHex, sha256Hex, randomBytes, randomNonce } from "./encoding.js";
export { canonicalize, CanonicalizationError } from "./canonical.js";
export { scanJson, JSON_DEPTH_LIMITS, type ScanJsonOptions, type ScanJsonResult } from "./json-scan.js";
export { requestHash, responseHash, StreamHasher } from "./hashing.js";
export { parseSse, formatSse, type SseEvent, type ParseSseOptions } from "./sse.js";
export { usageFromOpenAI, openAIErrorType, type OpenAIUsage, type OpenAIErrorBody } from "./openai.js";
export { usageFromAnthropic, usageFromResponses, measureResponse, StreamMeter } from "./usage.js";
export { OutputMeter, measureOutput, chatChoices, chatContentText, thinkingBudget, reasoningEffortBudget, REASONING_EFFORT_BUDGETS, checkUsagePlausibility, outputTokenLimit, PLAUSIBILITY_ALLOWANCE, CONTENT_KEYS, type OutputShape, type OutputMeasurer, type RelayedOutput, type UsageBounds, type PlausibilityVerdict } from "./plausibility.js";
export { checkConsumerBody, consumerOpenApi, anthropicBetas, ANTHROPIC_BETA_EXT } from "./consumer.js";
export { wavSeconds } from "./audio.js";
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
} from "./schema/consumer.js";

// Model names: the alias table, canonical ids, quantizations
export {
  MODEL_ALIASES,
  MODEL_ALIASES_VERSION,
  canonicalModel,
  knownModel,
  resolveModelAlias,
  modelAliases,
  normalizeQuantization,
  quantizationInName,
  ggufFileTypeQuantization,
  type ModelAliasEntry,
  type ModelMetadata,
  type CanonicalModel,
} from "./models.js";

// Crypto backend (portable by default; native in Node via @srp/core/node)
export { cryptoBackend, setCryptoBackend, PORTABLE_CRYPTO, type CryptoBackend } from "./crypto-backend.js";

// Identity and signatures
export { generateIdentity, identityFromSeed, exportIdentity, importIdentity, publicKeyFromId, type Identity } from "./identity.js";
export { SIGNATURE_DOMAINS, signingBytes, signDetached, verifyDetached, omitFields, type SignatureDomain } from "./signing.js";

// Errors
export { ERROR_TABLE, ERROR_CODES, SrpError, isErrorCode, errorInfo, type ErrorCode, type ErrorInfo, type SrpErrorOptions } from "./errors.js";

// Money
export {
  TOKENS_PER_PRICE_UNIT,
  UNITS_PER_USDC,
  PROVIDER_SHARE_BPS,
  BPS_DENOMINATOR,
  isAmount,
  parseAmount,
  formatAmount,
  formatUsdc,
  ceilDiv,
  cost,
  split,
  type PriceQuote,
  type BillableUsage,
  type Split,
} from "./money.js";

// Schemas
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
} from "./schema/primitives.js";
export { FRAME_LIMITS, Hello, Auth, Welcome, AccountBinding, ApiKeyBinding, WalletBinding, HelloLimits, SessionLimits } from "./schema/handshake.js";
export { Offer, OfferAck, OfferResult, Withdraw, Instance, SupplyTier, BackendKind, Capability } from "./schema/offer.js";
export { Job, Chunk, Done, JobError, Cancel, JobApi, CancelReason, JsonObject } from "./schema/jobs.js";
export { Heartbeat, Probe, ProbeResult, InstanceLoad } from "./schema/liveness.js";
export { Receipt, ReceiptMessage } from "./schema/attestation.js";
export { Statement, StatementMessage, Dispute, DisputeKind } from "./schema/settlement.js";
export { ErrorMessage, Goodbye } from "./schema/control.js";
export { Discovery, DISCOVERY_PATH } from "./schema/discovery.js";
export { fetchDiscovery } from "./discovery.js";
export { PaymentRequirements, PaymentRequired, PaymentPayload, PaymentResource, SettlementResponse, ExactEvmPayload, ExactEvmAuthorization, EvmAddress, EvmNetwork, Bytes32 } from "./schema/x402.js";
export {
  X402_HEADERS,
  X402_VERSION,
  encodeX402Header,
  decodeX402Header,
  decodePaymentRequired,
  decodePaymentPayload,
  decodeSettlementResponse,
  exactEvmPayload,
  sameRequirements,
  evmNetwork,
  evmChainId,
} from "./x402.js";
export { MESSAGES, MESSAGE_TYPES, isMessageType, type MessageType, type MessageOf, type SrpMessage, type Sender } from "./schema/registry.js";
export { buildJsonSchema, SCHEMA_ID, type JsonSchemaDocument } from "./schema/json-schema.js";

// Codec
export { PROTOCOL_VERSION, SUPPORTED_VERSIONS, decode, encode, validateMessage, errorMessage, frameHardCap, type DecodeOptions, type DecodeResult } from "./codec.js";

// Handshake
export {
  HANDSHAKE_TIMING,
  createHello,
  verifyHello,
  createAuth,
  checkAuth,
  nodeBindingText,
  type CreateHelloParameters,
  type VerifyHelloOptions,
  type CreateAuthParameters,
  type CheckAuthContext,
} from "./handshake.js";

// Receipts and statements
export {
  ZERO_TOTALS,
  INITIAL_POSITION,
  addToTotals,
  totalsEqual,
  receiptCost,
  createReceipt,
  countersignReceipt,
  verifyReceipt,
  verifyReceiptChain,
  type ReceiptPosition,
  type ReceiptDraft,
  type ReceiptProblem,
  type VerifyReceiptOptions,
} from "./receipts.js";
export { signStatement, verifyStatement, compareReceiptPositions } from "./statements.js";

// Texts wallets sign
export { payoutWalletMessage, refundMessage } from "./wallets.js";
