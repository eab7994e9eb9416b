/**
 * The hub's door for strangers: applies a {@link ClientLimiter} to the HTTP surface (sign-in
 * nonces, failed x402 payments) and to provider WebSocket upgrades, answering 429 with
 * `Retry-After` before any storage write, signature check or chain call (SRP-SEC-014..).
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { decodePaymentPayload, exactEvmPayload, SrpError } from "@srp/core";
import { anthropicError } from "./api/anthropic.js";
import { bearer, errorResponse } from "./api/http.js";
import { retryAfterSeconds, type ClientLimiter, type Refusal } from "./limits.js";
import type { ClientInfo } from "./node-adapter.js";

/** The wallet an x402 `PAYMENT-SIGNATURE` header says pays (lowercase), or undefined when it names none (pure). */
export function payerOf(header: string): string | undefined {
  try {
    const from = exactEvmPayload(decodePaymentPayload(header)).authorization.from;
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

/** Whether a response refuses a payment (402, or a `payment.*` error): such an attempt counts against the limit. */
async function paymentFailed(response: Response): Promise<boolean> {
  if (response.status === 402) return true;
  if (response.status !== 400 && response.status !== 403) return false;
  try {
    const body = (await response.clone().json()) as { error?: { code?: unknown } };
    return typeof body.error?.code === "string" && body.error.code.startsWith("payment.");
  } catch {
    return false;
  }
}

/**
 * Runs `route` for a request under the HTTP limits: `GET /v1/auth/nonce` takes a nonce
 * token; a request paying with x402 (a `PAYMENT-SIGNATURE` header and no API key) holds a
 * payment token of its client address and of its payer, kept when the payment fails.
 */
export async function gateHttp(limiter: ClientLimiter, request: Request, client: ClientInfo | undefined, route: (request: Request) => Promise<Response>): Promise<Response> {
  const path = new URL(request.url).pathname;
  const key = () => limiter.keyOf(client?.remoteAddress, request.headers.get("x-forwarded-for"));
  if (path === "/v1/auth/nonce" && request.method === "GET") {
    const refused = limiter.nonce(key());
    return refused ? refuse(path, refused) : route(request);
  }
  const header = request.method === "POST" ? request.headers.get("payment-signature") : null;
  if (header === null || bearer(request) !== undefined) return route(request);
  const who = key();
  const payer = payerOf(header);
  const refused = limiter.payment(who, payer);
  if (refused) return refuse(path, refused);
  let failed = true;
  try {
    const response = await route(request);
    failed = await paymentFailed(response);
    return response;
  } finally {
    limiter.paymentEnded(who, payer, failed);
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
