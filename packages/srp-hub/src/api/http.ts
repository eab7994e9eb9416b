/**
 * Shared pieces of the hub's consumer HTTP surface: OpenAI-shaped error responses with
 * SRP codes, bearer-key authentication, and bounded JSON body reading.
 */
import { JSON_DEPTH_LIMITS, scanJson, SrpError, type ErrorCode } from "@srp/core";
import { openAIErrorType } from "@srp/core/metering";
import type { Account, AccountStore } from "../accounts.js";
import { markErrorCode } from "./error-code.js";

/**
 * Adds `Retry-After` (whole seconds, at least 1; from the error's `retryAfterMs`, else 1)
 * to the headers of a 503 or 429, unless they say no retry would help (`x-should-retry:
 * false`, SRP-CON-087).
 */
export function withRetryAfter(error: SrpError, headers: Record<string, string>): Record<string, string> {
  if (error.httpStatus !== 503 && error.httpStatus !== 429) return headers;
  if (headers["x-should-retry"] === "false") return headers;
  const retryAfterMs = error.details?.retryAfterMs;
  return { ...headers, "retry-after": String(Math.max(1, Math.ceil((typeof retryAfterMs === "number" ? retryAfterMs : 1000) / 1000))) };
}

/** An OpenAI-shaped error response for an SRP error; 503s and 429s carry `Retry-After` ({@link withRetryAfter}). */
export function errorResponse(error: SrpError, headers: Record<string, string> = {}): Response {
  const h = withRetryAfter(error, headers);
  // Billing errors carry their numbers (`required`, `available`) next to the message.
  const extra = error.code.startsWith("billing.") && error.details ? error.details : {};
  return markErrorCode(
    Response.json(
      { error: { message: error.message, type: openAIErrorType(error.httpStatus), param: null, code: error.code, ...extra } },
      { status: error.httpStatus, headers: h },
    ),
    error.code,
  );
}

/** Shorthand: an error response for a code and message. */
export function fail(code: ErrorCode, message?: string, headers?: Record<string, string>): Response {
  return errorResponse(new SrpError(code, message), headers);
}

/** The bearer token (or `x-api-key`) of a request. */
export function bearer(request: Request): string | undefined {
  const auth = request.headers.get("authorization");
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m?.[1];
  }
  return request.headers.get("x-api-key") ?? undefined;
}

/**
 * The account of a request's API key (with the key and its policy), or an `api.unauthorized`
 * error (`api.key_expired` for a key past its expiry, SRP-CON-084); `billing.unavailable`
 * (503, retry) when the account store cannot be read, such as a database that cannot be
 * reached (SRP-BIL-017), reported to `onError`.
 */
export async function authenticate(
  request: Request,
  accounts: AccountStore,
  onError?: (error: unknown) => void,
): Promise<Account | SrpError> {
  const key = bearer(request);
  if (!key) return new SrpError("api.unauthorized", "send your API key as `Authorization: Bearer <key>`");
  let account: Account | undefined;
  try {
    account = await accounts.findByApiKey(key);
  } catch (error) {
    onError?.(error);
    return new SrpError("billing.unavailable", "the hub cannot look up API keys now; retry shortly", { cause: error });
  }
  if (!account) return new SrpError("api.unauthorized", "the API key is not known to this hub");
  const expiresAt = account.key?.policy.expiresAt ?? null;
  if (expiresAt !== null && Date.now() >= expiresAt)
    return new SrpError("api.key_expired", `this API key expired at ${new Date(expiresAt).toISOString()}`);
  return account;
}

/** Reads a JSON object body of at most `maxBytes` bytes. */
export async function readJsonObject(request: Request, maxBytes: number): Promise<Record<string, unknown> | SrpError> {
  const type = request.headers.get("content-type");
  if (type !== null && !/^application\/(.+\+)?json\b/i.test(type))
    return new SrpError("api.unsupported_media_type", `content-type ${type} is not JSON`);
  const bytes = await readBody(request, maxBytes);
  if (bytes instanceof SrpError) return bytes;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return new SrpError("api.invalid_body", "the body is not valid UTF-8 JSON");
  }
  // SRP-CON-021: refused before the parse, so nothing recursive ever sees a deep body.
  const scan = scanJson(text, { maxDepth: JSON_DEPTH_LIMITS.body });
  if (!scan.ok) return new SrpError("api.invalid_body", `the body nests objects and arrays deeper than ${JSON_DEPTH_LIMITS.body} levels`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return new SrpError("api.invalid_body", "the body is not valid UTF-8 JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return new SrpError("api.invalid_body", "the body must be a JSON object");
  return value as Record<string, unknown>;
}

/** Reads a body of at most `maxBytes` bytes. */
export async function readBody(request: Request, maxBytes: number): Promise<Uint8Array | SrpError> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) return new SrpError("api.body_too_large", `the body may be at most ${maxBytes} bytes`);
  if (!request.body) return new SrpError("api.invalid_body", "the request has no body");
  const parts: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      // Not cancelled: the node adapter closes the connection after answering.
      reader.releaseLock();
      return new SrpError("api.body_too_large", `the body may be at most ${maxBytes} bytes`);
    }
    parts.push(value);
  }
  const bytes = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    bytes.set(p, o);
    o += p.byteLength;
  }
  return bytes;
}

/**
 * Reads a `multipart/form-data` body whose files travel on in base64 (a third larger inside a
 * job frame): at most three quarters of `maxBytes`, parsed as a form.
 */
export async function readMultipartForm(request: Request, maxBytes: number): Promise<FormData | SrpError> {
  const type = request.headers.get("content-type") ?? "";
  const bytes = await readBody(request, Math.floor((maxBytes * 3) / 4));
  if (bytes instanceof SrpError) return bytes;
  try {
    return await new Response(bytes, { headers: { "content-type": type } }).formData();
  } catch {
    return new SrpError("api.invalid_body", "the body is not a valid multipart form");
  }
}

/** Formats an integer as a decimal with `decimals` fraction digits, trailing zeros dropped. */
export function formatDecimal(value: bigint, decimals: number): string {
  const scale = 10n ** BigInt(decimals);
  const whole = value / scale;
  const frac = (value % scale).toString().padStart(decimals, "0").replace(/0+$/, "");
  return frac.length > 0 ? `${whole}.${frac}` : whole.toString();
}
