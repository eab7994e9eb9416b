/**
 * `@srp/core`: the Spare Relay Protocol, version 1, for anyone implementing a hub, a
 * provider node or a client in TypeScript. The root entry holds the functions of the
 * protocol: the frame codec, canonical JSON and Ed25519 signing, identities, the
 * handshake, receipts and statements, money math, the error table, model names, SSE and
 * the discovery fetch. It knows nothing of hubs, providers or clients, and it has no
 * Node-only dependencies.
 *
 * Subpath entries:
 * - `@srp/core/schema`: TypeBox schemas and types of every message, primitive and consumer body.
 * - `@srp/core/metering`: reading usage from upstream responses and checking its plausibility.
 * - `@srp/core/x402`: x402 payment header documents and their codec.
 * - `@srp/core/chain`: settlement contracts, EIP-712 typed data, deploy and sign helpers (viem).
 * - `@srp/core/node`: Node-only helpers (native crypto, identity files, CLI runner).
 *
 * Every export of every entry is public API: a new export is a promise to keep it.
 *
 * @packageDocumentation
 * @module @srp/core
 */

// Encodings, canonical JSON, hashing, SSE
export { toBase64Url, fromBase64Url, utf8, fromUtf8, toHex, sha256Hex, randomBytes, randomNonce } from "./encoding.js";
export { canonicalize, CanonicalizationError } from "./canonical.js";
export { scanJson, JSON_DEPTH_LIMITS, type ScanJsonOptions, type ScanJsonResult } from "./json-scan.js";
export { requestHash, responseHash, StreamHasher } from "./hashing.js";
export { parseSse, formatSse, type SseEvent, type ParseSseOptions } from "./sse.js";

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
export {
  ERROR_TABLE,
  ERROR_CODES,
  SrpError,
  isErrorCode,
  errorInfo,
  type ErrorCode,
  type ErrorInfo,
  type SrpErrorOptions,
} from "./errors.js";
export { LocalError, type LocalErrorOptions } from "./local-error.js";

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

// Codec
export {
  PROTOCOL_VERSION,
  SUPPORTED_VERSIONS,
  decode,
  encode,
  validateMessage,
  errorMessage,
  frameHardCap,
  type DecodeOptions,
  type DecodeResult,
} from "./codec.js";

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

// Discovery
export { fetchDiscovery } from "./discovery.js";

// Async jobs: announcement, async instances, result frames and manifests (jobs.md#async-jobs)
export {
  ASYNC_CAPABILITY,
  IO_SCHEMA_KEYWORDS,
  isAsyncApi,
  isAsyncInstance,
  asyncJobsOf,
  asyncJobsExt,
  asyncInstanceProblem,
  ioSchemaProblem,
  toBase64,
  fromBase64,
  resultFrames,
  artifactRanges,
  manifestProblem,
  type AsyncApi,
  type ArtifactRange,
} from "./async-jobs.js";

// Request id and trace context of a job (SRP-JOB-037)
export { JOB_TRACE_EXT, jobRequestId, jobTraceHeaders } from "./job-ext.js";

// Texts wallets sign
export { payoutWalletMessage, refundMessage } from "./wallets.js";
