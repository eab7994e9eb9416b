/**
 * Errors a hub answers to the consumer API, as the client surfaces them: the wire side of
 * the split between errors with a code from the spec's error table (spec/v1/errors.md)
 * and local errors (`LocalError` in `@srp/core`).
 */
import { errorInfo, isErrorCode, type ErrorCode } from "@srp/core";

/** Statuses a hub answers for transient refusals; used only for codes outside the error table. */
const TRANSIENT_STATUSES = new Set([408, 429, 502, 503, 504]);

/**
 * An error received from a hub over the wire: an HTTP error answer, or an in-band error
 * that ended a stream (spec/v1/consumer.md, SRP-CON-003 and SRP-CON-029). Its `code` comes
 * from the spec's error table (spec/v1/errors.md); `httpStatus` and `retryable` are that
 * table's values for the code.
 *
 * It is not an {@link @srp/core!SrpError}: an `SrpError` is raised by the side that sends
 * the error and always holds a code of this version's table, while a client must accept
 * codes it does not know (SRP-ERR-004: codes a newer hub adds, `x-` extension codes). So
 * `code` is typed `ErrorCode | (string & {})`: editors complete the table's codes, and an
 * unknown code is kept as sent, never rewritten. Narrow it with `isErrorCode` from
 * `@srp/core`. For an unknown code the consumer API sends no `retryable`, so `retryable`
 * is true when the hub sent `Retry-After` or answered 408, 429, 502, 503 or 504, and
 * `httpStatus` is `status`.
 *
 * Errors of local misuse (a client without a wallet asked to pay, bad options) are
 * `TypeError`s, never `SrpApiError`s.
 *
 * @example
 * try {
 *   await client.chat.create({ model: "llama3.1:8b", messages: [{ role: "user", content: "hi" }] });
 * } catch (error) {
 *   if (error instanceof SrpApiError && error.code === "billing.insufficient_credits") console.log("top up first");
 *   else if (error instanceof SrpApiError && error.retryable) console.log(`retry in ${error.retryAfter ?? 1} s`);
 * }
 */
export class SrpApiError extends Error {
  override readonly name = "SrpApiError";
  /** The error table's HTTP status for `code`, or `status` for a code outside the table. */
  readonly httpStatus: number;
  /** Whether the same request may succeed if tried again (the error table's value for a known code). */
  readonly retryable: boolean;

  constructor(
    /** HTTP status of the answer that carried the error (200 for an in-band stream error). */
    readonly status: number,
    /** SRP error code, e.g. `job.unknown_model`; possibly a code this version does not define. */
    readonly code: ErrorCode | (string & {}),
    message: string,
    /** Seconds to wait, from `Retry-After`, when given. */
    readonly retryAfter?: number,
  ) {
    super(message);
    const known = isErrorCode(code) ? errorInfo(code) : undefined;
    this.httpStatus = known?.http ?? status;
    this.retryable = known?.retryable ?? (retryAfter !== undefined || TRANSIENT_STATUSES.has(status));
  }
}

/**
 * Reads a hub's error answer (either surface's body: both carry `error.code` and
 * `error.message`) into an {@link SrpApiError}; a body that is not JSON gives `internal`
 * with the status text.
 */
export async function apiError(res: Response): Promise<SrpApiError> {
  const retry = res.headers.get("retry-after");
  let code = "internal";
  let message = res.statusText;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    code = body.error?.code ?? code;
    message = body.error?.message ?? message;
  } catch {
    /* not JSON */
  }
  return new SrpApiError(res.status, code, message, retry === null ? undefined : Number(retry));
}
