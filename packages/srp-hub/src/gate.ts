/**
 * The hub's door for strangers: applies a {@link ClientLimiter} to the HTTP surface (sign-in
 * nonces, failed x402 payments) and to provider WebSocket upgrades, answering 429 with
 * `Retry-After` before any storage write, signature check or chain call (SRP-SEC-014..).
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { SrpError } from "@srp/core";
import { decodePaymentPayload, decodePaymentPayloadV1, exactEvmPayload, paymentHeaderOf } from "@srp/core/x402";
import { anthropicError } from "./api/anthropic.js";
import { bearer, errorResponse } from "./api/http.js";
import { DEPOSIT_PATH } from "./api/futures.js";
import { failureProvesPayer, retryAfterSeconds, type ClientLimiter, type Refusal } from "./limits.js";
import type { ClientInfo } from "./node-adapter.js";

/**
 * The wallet an x402 `PAYMENT-SIGNATURE` header (or, with `version` 1, an `X-PAYMENT`
 * header) says pays (an EVM address lowercase, a Solana one as given), or undefined when it
 * names none (pure but for loading Solana's libraries for a Solana payment).
 */
export async function payerOf(header: string, version: 1 | 2 = 2): Promise<string | undefined> {
  try {
    const payment = version === 2 ? decodePaymentPayload(header) : decodePaymentPayloadV1(header);
    // A Solana payment's payer is its transfer's authority, base58 and case-sensitive (Solana's libraries load only then).
    if (version === 2 && (payment as { accepted: { network: string } }).accepted.network.startsWith("solana:"))
      return (await import("./payments/svm-check.js")).svmTransferOf(payment)?.payer;
    const from = exactEvmPayload(payment).authorization.from;
    return typeof from === "string" ? from.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}

/** The error of a refusal: `api.rate_limited` on HTTP, `session.rate_limited` for provider connections. */
export function refusalError(code: "api.rate_limited" | "session.rate_limited", refusal: Refusal): SrpError {
  return new SrpError(code, refusal.reason, { details: { retryAfterMs: refusal.retryAfterMs } });
}

/** A 429 response in the shape of the surface asked (Anthropic Messages, or OpenAI-style). */
function refuse(path: string, refusal: Refusal): Response {
  const error = refusalError("api.rate_limited", refusal);
  const headers = { "retry-after": String(retryAfterSeconds(refusal.retryAfterMs)) };
  return path.startsWith("/v1/messages") ? anthropicError(error, headers) : errorResponse(error, headers);
}

/** The error code of a JSON error response, if it has one. */
async function errorCode(response: Response): Promise<string | undefined> {
  try {
    const body = (await response.clone().json()) as { error?: { code?: unknown } };
    return typeof body.error?.code === "string" ? body.error.code : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether a response refuses a payment (402, or a `payment.*` error): such an attempt
 * counts against the limit; and whether that failure proves the payer signed it.
 */
async function paymentFailed(response: Response): Promise<{ failed: boolean; payerProven: boolean }> {
  if (response.status !== 402 && response.status !== 400 && response.status !== 403) return { failed: false, payerProven: false };
  const code = await errorCode(response);
  const failed = response.status === 402 || (code?.startsWith("payment.") ?? false);
  return { failed, payerProven: failed && failureProvesPayer(code) };
}

/**
 * Whether a request's x402 payment is exempt from the failed-payment limit (pure): it
 * carries an API key, which the route then uses instead of the payment. Not on the deposit
 * path, which takes the payment whatever `Authorization` says.
 */
function paysWithApiKey(path: string, request: Request): boolean {
  return path !== DEPOSIT_PATH && bearer(request) !== undefined;
}

/**
 * Runs `route` for a request under the HTTP limits: `GET /v1/auth/nonce` takes a nonce
 * token; a request paying with x402 (a `PAYMENT-SIGNATURE` or `X-PAYMENT` header and no API key, or any
 * deposit) holds a payment token of its client address and of its payer, kept when the
 * payment fails (the payer's only when the failure proves the payer signed it).
 */
export async function gateHttp(
  limiter: ClientLimiter,
  request: Request,
  client: ClientInfo | undefined,
  route: (request: Request) => Promise<Response>,
): Promise<Response> {
  const path = new URL(request.url).pathname;
  const key = () => limiter.keyOf(client?.remoteAddress, request.headers.get("x-forwarded-for"));
  if (path === "/v1/auth/nonce" && request.method === "GET") {
    const refused = limiter.nonce(key());
    return refused ? refuse(path, refused) : route(request);
  }
  const header = request.method === "POST" ? paymentHeaderOf(request.headers) : undefined;
  if (header === undefined || paysWithApiKey(path, request)) return route(request);
  const who = key();
  const payer = await payerOf(header.value, header.version);
  const refused = limiter.payment(who, payer);
  if (refused) return refuse(path, refused);
  let outcome = { failed: true, payerProven: false };
  try {
    const response = await route(request);
    outcome = await paymentFailed(response);
    return response;
  } finally {
    limiter.paymentEnded(who, payer, outcome.failed, outcome.payerProven);
  }
}

/** The client key of a provider upgrade request. */
export function upgradeKey(limiter: ClientLimiter, request: IncomingMessage): string {
  const xff = request.headers["x-forwarded-for"];
  return limiter.keyOf(request.socket.remoteAddress, Array.isArray(xff) ? xff.join(",") : xff);
}

/**
 * Refuses a provider upgrade with HTTP 429, `Retry-After` and a `session.rate_limited`
 * error body (SRP-ERR-008), then closes the socket: no WebSocket, no `hello`, no signature.
 */
export function refuseUpgrade(socket: Duplex, refusal: Refusal): void {
  const body = JSON.stringify({ error: { code: "session.rate_limited", message: refusal.reason, retryable: true } });
  socket.end(
    `HTTP/1.1 429 Too Many Requests\r\nRetry-After: ${retryAfterSeconds(refusal.retryAfterMs)}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  socket.once("error", () => socket.destroy());
  setTimeout(() => socket.destroy(), 1000).unref();
}
