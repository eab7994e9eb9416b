/**
 * The base of errors that never cross the wire: local misuse, storage outcomes, failed
 * checks in a test harness. Errors with a code from the spec's error table are
 * {@link SrpError}s instead.
 */

/** Options of {@link LocalError}. */
export interface LocalErrorOptions {
  /** Machine-readable context (never secrets). */
  details?: Record<string, unknown>;
  /** The error that caused this one. */
  cause?: unknown;
}

/**
 * An error raised and handled inside one process. Its `name` is stable and ends in
 * `Error` (switch on it with `instanceof`, or on `name` across realms), `shortMessage`
 * is the one-line statement, `details` carries context, and {@link LocalError.walk}
 * follows the `cause` chain.
 *
 * @example
 * class QuotaError extends LocalError {
 *   override readonly name = "QuotaError";
 * }
 * const e = new QuotaError("quota reached", { details: { used: 10 } });
 * e.walk() === e; // true: no cause
 */
export class LocalError extends Error {
  override readonly name: string = "LocalError";
  /** The one-line statement, without details. */
  readonly shortMessage: string;
  /** Context of the error. */
  readonly details: Record<string, unknown> | undefined;

  constructor(shortMessage: string, options: LocalErrorOptions = {}) {
    super(shortMessage, options.cause === undefined ? undefined : { cause: options.cause });
    this.shortMessage = shortMessage;
    this.details = options.details;
  }

  /**
   * Follows the `cause` chain from this error: returns the first error for which
   * `match` is true, or the deepest cause when no `match` is given (`undefined` when a
   * `match` finds nothing).
   */
  walk(match?: (error: unknown) => boolean): unknown {
    let current: unknown = this;
    const seen = new Set<unknown>();
    while (current !== undefined && current !== null && !seen.has(current)) {
      if (match?.(current)) return current;
      seen.add(current);
      const next = (current as { cause?: unknown }).cause;
      if (next === undefined || next === null) return match ? undefined : current;
      current = next;
    }
    return match ? undefined : current;
  }
}
