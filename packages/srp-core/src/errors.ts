/**
 * The SRP error table: every error that crosses the wire has a stable code, an HTTP
 * status (for HTTP surfaces and for operators' logs), a WebSocket close code when the
 * error ends the session, and a retryable flag. The spec's error table
 * (`spec/v1/errors.md`) is generated from this table and checked against it.
 */

/** One row of the error table. */
export interface ErrorInfo {
  /** HTTP status used when this error is reported over HTTP. */
  readonly http: number;
  /** WebSocket close code when the error ends the session; `null` when the session continues. */
  readonly close: number | null;
  /** Whether the same request may succeed if tried again (possibly elsewhere or later). */
  readonly retryable: boolean;
  /** One-line meaning, also the default message. */
  readonly title: string;
}

/**
 * The SRP v1 error table. Codes are `family.reason`; a code never changes meaning
 * within a protocol version.
 */
export const ERROR_TABLE = {
  // Frames: any of these ends the session.
  "frame.malformed": { http: 400, close: 1007, retryable: false, title: "Frame is not a UTF-8 JSON object" },
  "frame.binary": { http: 415, close: 1003, retryable: false, title: "Binary frames are not part of SRP v1" },
  "frame.too_large": { http: 413, close: 1009, retryable: false, title: "Frame exceeds the negotiated size limit" },
  "frame.unknown_type": { http: 400, close: 4400, retryable: false, title: "Message type is not defined by the negotiated version" },
  "frame.invalid": { http: 400, close: 4422, retryable: false, title: "Message does not match its schema" },
  // Protocol state.
  "protocol.unexpected_message": { http: 409, close: 1002, retryable: false, title: "Message is not allowed in the current session state" },
  "protocol.handshake_timeout": { http: 408, close: 4408, retryable: true, title: "Handshake did not complete in time" },
  "protocol.heartbeat_timeout": { http: 408, close: 4408, retryable: true, title: "No heartbeat within three intervals" },
  "version.unsupported": { http: 426, close: 4426, retryable: false, title: "No protocol version in common" },
  // Authentication.
  "auth.bad_signature": { http: 401, close: 4401, retryable: false, title: "Signature does not verify" },
  "auth.stale_timestamp": { http: 401, close: 4401, retryable: true, title: "Timestamp outside the freshness window" },
  "auth.nonce_mismatch": { http: 401, close: 4401, retryable: true, title: "Nonce was not issued for this session" },
  "auth.replayed_nonce": { http: 401, close: 4401, retryable: false, title: "Nonce was already used" },
  "auth.wrong_hub": { http: 401, close: 4401, retryable: false, title: "Message is addressed to another hub" },
  "auth.unknown_account": { http: 403, close: 4403, retryable: false, title: "Account credential is not known to this hub" },
  "auth.bad_account_proof": { http: 403, close: 4403, retryable: false, title: "Wallet signature does not prove the account" },
  "auth.revoked": { http: 403, close: 4403, retryable: false, title: "The credential the session was bound with was revoked" },
  // Sessions.
  "session.replaced": { http: 409, close: 4409, retryable: false, title: "A newer session for the same node replaced this one" },
  "session.shutdown": { http: 503, close: 1001, retryable: true, title: "Peer is shutting down" },
  "session.rate_limited": { http: 429, close: 4429, retryable: true, title: "Too many connections or messages" },
  // Offers (per instance, in offer_ack; the session continues).
  "offer.invalid": { http: 400, close: null, retryable: false, title: "Instance offer is inconsistent" },
  "offer.duplicate_instance": { http: 409, close: null, retryable: false, title: "Instance id offered twice" },
  "offer.tier_refused": { http: 403, close: null, retryable: false, title: "Supply tier refused by hub policy" },
  "offer.model_refused": { http: 403, close: null, retryable: false, title: "Model refused by hub policy" },
  "offer.too_many_instances": { http: 413, close: null, retryable: false, title: "More instances than the session limit" },
  // Jobs (the session continues).
  "job.unknown": { http: 404, close: null, retryable: false, title: "No such job on this session" },
  "job.unknown_model": { http: 404, close: null, retryable: false, title: "Model is not served" },
  "job.unknown_instance": { http: 404, close: null, retryable: false, title: "Instance is not offered on this session" },
  "job.invalid_request": { http: 400, close: null, retryable: false, title: "Request rejected because of the consumer's input" },
  "job.context_length_exceeded": { http: 400, close: null, retryable: false, title: "Request exceeds the model's context length" },
  "job.no_capacity": { http: 503, close: null, retryable: true, title: "No instance can take the job now" },
  "job.busy": { http: 503, close: null, retryable: true, title: "Instance is at its concurrency limit" },
  "job.deadline_exceeded": { http: 504, close: null, retryable: true, title: "Job passed its deadline" },
  "job.cancelled": { http: 499, close: null, retryable: false, title: "Job was cancelled by the hub" },
  "job.upstream_error": { http: 502, close: null, retryable: true, title: "Backend model server failed" },
  "job.lost": {
    http: 502,
    close: null,
    retryable: true,
    title: "The node no longer has the async job (it restarted, or the resume window passed)",
  },
  "job.result_too_large": { http: 502, close: null, retryable: false, title: "The async job's result exceeds the hub's maxResultBytes" },
  "job.upstream_timeout": { http: 504, close: null, retryable: true, title: "Backend model server did not answer in time" },
  "job.upstream_rate_limited": { http: 429, close: null, retryable: true, title: "Backend refused for its own rate limit" },
  "job.unsupported_api": { http: 502, close: null, retryable: true, title: "Instance does not serve this job's API" },
  "job.stream_interrupted": { http: 502, close: null, retryable: false, title: "Stream failed after content was delivered" },
  // Attestation and settlement.
  "receipt.bad_node_signature": { http: 422, close: null, retryable: false, title: "Receipt node signature does not verify" },
  "receipt.bad_hub_signature": { http: 422, close: null, retryable: false, title: "Receipt hub countersignature does not verify" },
  "receipt.missing_hub_signature": { http: 422, close: null, retryable: false, title: "Receipt is not countersigned" },
  "receipt.cost_mismatch": { http: 422, close: null, retryable: false, title: "Receipt cost differs from usage times price" },
  "receipt.sequence_gap": { http: 422, close: null, retryable: false, title: "Receipt sequence number is not the next one" },
  "receipt.totals_mismatch": { http: 422, close: null, retryable: false, title: "Receipt running totals do not add up" },
  "receipt.field_mismatch": { http: 422, close: null, retryable: false, title: "Receipt does not describe the job it answers" },
  "receipt.implausible_usage": {
    http: 422,
    close: null,
    retryable: false,
    title: "Receipt usage exceeds what the job admitted or the hub relayed",
  },
  "statement.bad_signature": { http: 422, close: null, retryable: false, title: "Statement signature does not verify" },
  "statement.totals_mismatch": { http: 422, close: null, retryable: false, title: "Statement totals differ from the node's receipts" },
  // Consumer HTTP API (hub to consumer; never on the provider WebSocket).
  "api.unauthorized": { http: 401, close: null, retryable: false, title: "Missing or unknown API key" },
  "api.forbidden": { http: 403, close: null, retryable: false, title: "Credential may not perform this operation" },
  "api.invalid_body": { http: 400, close: null, retryable: false, title: "Request body is not valid for this endpoint" },
  "api.not_found": { http: 404, close: null, retryable: false, title: "No such route or resource" },
  "api.method_not_allowed": { http: 405, close: null, retryable: false, title: "Method not allowed on this route" },
  "api.body_too_large": { http: 413, close: null, retryable: false, title: "Request body exceeds the hub's limit" },
  "api.rate_limited": { http: 429, close: null, retryable: true, title: "Too many requests, or results kept, for this account" },
  "api.unsupported_media_type": { http: 415, close: null, retryable: false, title: "Request body must be application/json" },
  "api.key_expired": { http: 401, close: null, retryable: false, title: "The API key has expired" },
  "api.model_not_allowed": { http: 403, close: null, retryable: false, title: "The API key may not use this model" },
  "api.key_budget_exceeded": { http: 402, close: null, retryable: false, title: "The request would exceed the API key's budget" },
  // Billing (hub to consumer).
  "billing.insufficient_credits": { http: 402, close: null, retryable: false, title: "Balance cannot cover the request's maximum cost" },
  "billing.unavailable": { http: 503, close: null, retryable: true, title: "The ledger cannot take the request now" },
  "billing.refund_pending": {
    http: 409,
    close: null,
    retryable: true,
    title: "A payment to the account has not settled yet: refund after it settles",
  },
  // Payments (x402 and wallets; hub to consumer).
  "payment.required": { http: 402, close: null, retryable: true, title: "Payment required: pay with x402 or send an API key" },
  "payment.invalid": {
    http: 400,
    close: null,
    retryable: false,
    title: "Payment header is not a valid x402 document (version 2, or version 1 in `X-PAYMENT`)",
  },
  "payment.wrong_network": {
    http: 402,
    close: null,
    retryable: false,
    title: "Payment is for a network or scheme the hub does not accept",
  },
  "payment.requirements_mismatch": {
    http: 402,
    close: null,
    retryable: false,
    title: "Accepted requirements differ from what the hub offered",
  },
  "payment.wrong_recipient": {
    http: 402,
    close: null,
    retryable: false,
    title: "Authorization pays someone other than the hub's treasury",
  },
  "payment.wrong_amount": { http: 402, close: null, retryable: false, title: "Authorization value differs from the amount required" },
  "payment.wrong_asset": { http: 402, close: null, retryable: false, title: "Payment transfers a token other than the offered asset" },
  "payment.wrong_fee_payer": {
    http: 402,
    close: null,
    retryable: false,
    title: "Transaction is not paid by the offered fee payer, or uses it for more than fees",
  },
  "payment.not_yet_valid": { http: 402, close: null, retryable: true, title: "Authorization is not valid yet" },
  "payment.expired": { http: 402, close: null, retryable: false, title: "Authorization expires before the request can settle" },
  "payment.bad_signature": { http: 402, close: null, retryable: false, title: "Authorization signature does not verify" },
  "payment.insufficient_funds": { http: 402, close: null, retryable: false, title: "Payer's token balance cannot cover the authorization" },
  "payment.replayed": { http: 402, close: null, retryable: false, title: "Authorization was already used or is in use" },
  "payment.settlement_failed": { http: 402, close: null, retryable: false, title: "Payment could not be settled on-chain" },
  "payment.settlement_pending": {
    http: 503,
    close: null,
    retryable: true,
    title: "Settlement outcome is not known yet: retry with the same payment",
  },
  "payment.wallet_blocked": { http: 403, close: null, retryable: false, title: "Wallet owes an unsettled payment" },
  "payment.unavailable": { http: 503, close: null, retryable: true, title: "The chain or the settler cannot be reached" },
  "payment.card_signature_invalid": {
    http: 400,
    close: null,
    retryable: false,
    title: "The card webhook's Stripe-Signature does not verify with the webhook secret",
  },
  "payment.card_unavailable": { http: 503, close: null, retryable: true, title: "The card processor cannot be reached" },

  // Anything else.
  internal: { http: 500, close: 1011, retryable: true, title: "Internal error" },
} as const satisfies Record<string, ErrorInfo>;

/** A stable SRP error code, such as `auth.bad_signature` or `frame.too_large`. */
export type ErrorCode = keyof typeof ERROR_TABLE;

/** All defined error codes, in table order. */
export const ERROR_CODES = Object.keys(ERROR_TABLE) as ErrorCode[];

/** Whether a string is an error code defined by this version. */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_TABLE, code);
}

/** Looks up the table row of a code. */
export function errorInfo(code: ErrorCode): ErrorInfo {
  return ERROR_TABLE[code];
}

/** Options for {@link SrpError}. */
export interface SrpErrorOptions {
  /** Extra machine-readable context (never secrets). */
  details?: Record<string, unknown>;
  /** The job the error is about, when there is one. */
  jobId?: string;
  /** Underlying cause. */
  cause?: unknown;
}

/**
 * An error with a wire code from the SRP error table (spec/v1/errors.md, "Error table";
 * the table is {@link ERROR_TABLE}). Protocol errors that cross the wire are always
 * `SrpError`s, raised by the side that sends them. Errors that never cross the wire
 * (local misuse, storage outcomes, failed checks) extend {@link LocalError} instead, and
 * plain misuse of an argument throws a `TypeError`.
 *
 * @example
 * const err = new SrpError("auth.bad_signature");
 * err.closeCode; // 4401
 */
export class SrpError extends Error {
  override readonly name = "SrpError";
  /** Stable code from the error table. */
  readonly code: ErrorCode;
  /** HTTP status for this code. */
  readonly httpStatus: number;
  /** WebSocket close code, or `null` when the session continues. */
  readonly closeCode: number | null;
  /** Whether trying again may succeed. */
  readonly retryable: boolean;
  /** Extra context. */
  readonly details: Record<string, unknown> | undefined;
  /** The job the error is about, if any. */
  readonly jobId: string | undefined;

  constructor(code: ErrorCode, message?: string, options: SrpErrorOptions = {}) {
    const info = ERROR_TABLE[code];
    super(message ?? info.title, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.httpStatus = info.http;
    this.closeCode = info.close;
    this.retryable = info.retryable;
    this.details = options.details;
    this.jobId = options.jobId;
  }
}
