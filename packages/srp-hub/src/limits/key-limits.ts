/**
 * Rate limits on API keys (issue 19): requests per minute, tokens per minute and requests in
 * flight, checked at admission. This module holds the interface both implementations share
 * (`memory-limits.ts` for one hub process, `redis-limits.ts` for several) and the pure policy:
 * the per-minute bucket arithmetic, the admission decision and the response headers.
 *
 * A per-minute limit `L` is a token bucket holding `L`, refilled continuously at `L` per
 * minute: this is how the `x-ratelimit-reset-*` headers read (the time until the bucket is
 * full again, e.g. `12ms` after one request under 5000 requests per minute), its state is two
 * numbers per key whatever the traffic, and tokens given back after a request are simply
 * returned to it. The price is a burst: after a quiet minute a key may send `L` at once and
 * then `L` more over the next minute. The sustained rate is `L` per minute.
 *
 * The state is kept as a "load" (what the bucket lacks, times 60 000): it drains by `L` per
 * millisecond, so with whole milliseconds and whole tokens every figure is an integer and
 * the same in JavaScript and in Redis's Lua.
 */
import { retryAfterSeconds } from "../limits.js";

/** A key's rate limits; a missing or `null` member (or one below 1) is no limit. */
export interface RateLimits {
  /** Requests per minute. */
  rpm?: number | null | undefined;
  /** Tokens per minute (the estimate at admission, corrected to the actual count at release). */
  tpm?: number | null | undefined;
  /** Requests in flight at once. */
  concurrency?: number | null | undefined;
}

/** Which limit refused a request. */
export type LimitReason = "requests" | "tokens" | "concurrency";

/** Response headers, lower-case names: OpenAI's `x-ratelimit-*` for the limits that are set, and `retry-after` on a refusal. */
export type LimitHeaders = Record<string, string>;

/** A request admitted: it holds its share of the limits until {@link Admitted.release}. */
export interface Admitted {
  ok: true;
  /**
   * Ends the request: frees its concurrency slot and replaces its estimated tokens by
   * `actualTokens` (an overestimate is given back, an underestimate charged). Idempotent:
   * only the first call counts. `now` (ms) is for tests; the limiter's clock by default.
   */
  release(actualTokens: number, now?: number): void;
  /** The headers to send with the response. */
  headers: LimitHeaders;
}

/** A request refused: nothing was charged. */
export interface Refused {
  ok: false;
  /** The limit that refused it (the one with the longest wait when several did). */
  reason: LimitReason;
  /** Milliseconds until the request could be admitted (a hint for `concurrency`); infinite when `tooLarge`. */
  retryAfterMs: number;
  /** The estimate alone exceeds the tokens per minute: no wait would help (the headers then carry `x-should-retry: false` instead of `retry-after`). */
  tooLarge: boolean;
  /** The headers to send with the 429. */
  headers: LimitHeaders;
}

/** The answer to {@link KeyLimits.admit}. */
export type Admission = Admitted | Refused;

/**
 * Rate limits per API key, in one process or shared by the processes of a hub.
 *
 * @example
 * ```ts
 * const limits: KeyLimits = new MemoryKeyLimits();
 * const admission = await limits.admit("key_abc", { rpm: 60, tpm: 100_000, concurrency: 4 }, 1200);
 * if (!admission.ok) {
 *   // 429 api.rate_limited, with admission.headers (retry-after included)
 * } else {
 *   // ... serve, sending admission.headers, then:
 *   admission.release(830);
 * }
 * ```
 */
export interface KeyLimits {
  /**
   * Admits one request for `keyId` under `limits`, charging one request and
   * `estimatedTokens` (e.g. prompt + max_tokens) at once, or refuses it charging nothing.
   * `now` (ms) is for tests; the limiter's clock by default.
   */
  admit(keyId: string, limits: RateLimits, estimatedTokens: number, now?: number): Promise<Admission>;
  /** Stops the limiter's timers (slots still held are then freed by their release or their expiry). */
  close(): Promise<void>;
}

/** The length of a rate window: limits are per minute. */
export const WINDOW_MS = 60_000;

/** A default for {@link Refused.retryAfterMs} when only the concurrency limit refused. */
export const CONCURRENCY_RETRY_MS = 1000;

/** One per-minute bucket's state: its load (see the module comment) when last updated, and when (ms). */
export interface BucketState {
  load: number;
  at: number;
}

/** A limit when it is set (a whole number, at least 1), else undefined (pure). */
export function limitOf(value: number | null | undefined): number | undefined {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 1) return undefined;
  return Math.floor(value);
}

/** The limits that are set, as whole numbers (pure). */
export function normalizeLimits(limits: RateLimits): { rpm?: number; tpm?: number; concurrency?: number } {
  const rpm = limitOf(limits.rpm);
  const tpm = limitOf(limits.tpm);
  const concurrency = limitOf(limits.concurrency);
  return { ...(rpm ? { rpm } : {}), ...(tpm ? { tpm } : {}), ...(concurrency ? { concurrency } : {}) };
}

/** A token count as the buckets take it: a whole number, at least 0 (pure). */
export function tokenCount(tokens: number): number {
  return Number.isFinite(tokens) && tokens > 0 ? Math.ceil(tokens) : 0;
}

/** A bucket's load at `now` under `limit` per minute (pure): drained by `limit` per ms since it was last updated. */
export function drain(state: BucketState | undefined, limit: number, now: number): number {
  if (!state) return 0;
  return Math.max(0, state.load - Math.max(0, now - state.at) * limit);
}

/** Ms until a bucket with `load` can take `cost` under `limit` (pure): 0 when it can now, infinite when `cost` exceeds `limit`. */
export function waitMs(load: number, cost: number, limit: number): number {
  const over = load + cost * WINDOW_MS - limit * WINDOW_MS;
  if (over <= 0) return 0;
  if (cost > limit) return Number.POSITIVE_INFINITY;
  return Math.ceil(over / limit);
}

/** What a bucket with `load` still holds under `limit` (pure), at least 0. */
export function remaining(load: number, limit: number): number {
  return Math.max(0, Math.floor((limit * WINDOW_MS - load) / WINDOW_MS));
}

/** Ms until a bucket with `load` is full again under `limit` (pure). */
export function resetMs(load: number, limit: number): number {
  return Math.ceil(load / limit);
}

/**
 * A duration as OpenAI writes `x-ratelimit-reset-*` (pure): `0s`, `12ms` below a second,
 * else hours, minutes and seconds with up to three decimals, e.g. `1s`, `1.5s`, `6m0s`, `1h0m0s`.
 */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.ceil(ms));
  if (total === 0) return "0s";
  if (total < 1000) return `${total}ms`;
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor((total % 3_600_000) / 60_000);
  const millis = total % 60_000;
  const seconds = `${Math.floor(millis / 1000)}${
    millis % 1000
      ? `.${String(millis % 1000)
          .padStart(3, "0")
          .replace(/0+$/, "")}`
      : ""
  }s`;
  if (hours > 0) return `${hours}h${minutes}m${seconds}`;
  if (minutes > 0) return `${minutes}m${seconds}`;
  return seconds;
}

/** The loads of a key's buckets, as the headers report them (those of limits not set are ignored). */
export interface Loads {
  requests: number;
  tokens: number;
}

/**
 * The `x-ratelimit-*` headers (pure) for the per-minute limits that are set, from the loads
 * after the admission (or, on a refusal, as they are); with `refusal`, also `retry-after`
 * (whole seconds, at least 1), or `x-should-retry: false` when the request is too large.
 */
export function limitHeaders(
  limits: { rpm?: number; tpm?: number },
  loads: Loads,
  refusal?: { retryAfterMs: number; tooLarge: boolean },
): LimitHeaders {
  const headers: LimitHeaders = {};
  if (limits.rpm) {
    headers["x-ratelimit-limit-requests"] = String(limits.rpm);
    headers["x-ratelimit-remaining-requests"] = String(remaining(loads.requests, limits.rpm));
    headers["x-ratelimit-reset-requests"] = formatDuration(resetMs(loads.requests, limits.rpm));
  }
  if (limits.tpm) {
    headers["x-ratelimit-limit-tokens"] = String(limits.tpm);
    headers["x-ratelimit-remaining-tokens"] = String(remaining(loads.tokens, limits.tpm));
    headers["x-ratelimit-reset-tokens"] = formatDuration(resetMs(loads.tokens, limits.tpm));
  }
  if (refusal?.tooLarge) headers["x-should-retry"] = "false";
  else if (refusal) headers["retry-after"] = String(retryAfterSeconds(refusal.retryAfterMs));
  return headers;
}

/** What a key holds now, as {@link decide} reads it. */
export interface KeyState extends Loads {
  /** Requests in flight (counted while a concurrency limit is set). */
  inFlight: number;
}

/** The outcome of {@link decide}: admitted, or refused with its reason and wait. */
export type Decision = { ok: true } | { ok: false; reason: LimitReason; retryAfterMs: number; tooLarge: boolean };

/**
 * Whether a request costing one request and `tokens` fits a key's `state` under `limits`
 * (pure). When several limits refuse, the one with the longest wait is named, so that
 * retrying after `retryAfterMs` is not refused again by another; an estimate above the
 * tokens per minute is refused as `tokens`, for good.
 */
export function decide(
  limits: { rpm?: number; tpm?: number; concurrency?: number },
  state: KeyState,
  tokens: number,
  concurrencyRetryMs = CONCURRENCY_RETRY_MS,
): Decision {
  const waits: [LimitReason, number][] = [];
  if (limits.rpm) waits.push(["requests", waitMs(state.requests, 1, limits.rpm)]);
  if (limits.tpm) waits.push(["tokens", waitMs(state.tokens, tokens, limits.tpm)]);
  if (limits.concurrency) waits.push(["concurrency", state.inFlight >= limits.concurrency ? Math.max(1, concurrencyRetryMs) : 0]);
  let worst: [LimitReason, number] | undefined;
  for (const w of waits) if (w[1] > 0 && (!worst || w[1] > worst[1])) worst = w;
  if (!worst) return { ok: true };
  return { ok: false, reason: worst[0], retryAfterMs: worst[1], tooLarge: !Number.isFinite(worst[1]) };
}
