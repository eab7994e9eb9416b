/**
 * API key rate limits in one hub process (`key-limits.ts` for the policy): per key, a token
 * bucket per minute for requests and one for tokens (a token bucket rather than a sliding
 * window: two numbers per key whatever the traffic, a give-back is a subtraction, and the
 * reset headers read as OpenAI's do), and a count of the requests in flight.
 *
 * Memory is bounded: a key whose buckets are full again and that has nothing in flight is
 * the same as one never seen, so such idle keys are dropped from the least recently used end
 * (a few at each admission); beyond `maxKeys`, the least recently used keys with nothing in
 * flight are dropped even when not idle (they then start over with full buckets).
 */
import {
  type Admission,
  type BucketState,
  CONCURRENCY_RETRY_MS,
  decide,
  drain,
  type KeyLimits,
  limitHeaders,
  normalizeLimits,
  type RateLimits,
  tokenCount,
  WINDOW_MS,
} from "./key-limits.js";

/** How a {@link MemoryKeyLimits} behaves. */
export interface MemoryKeyLimitsOptions {
  /** Most keys tracked (see the module comment); 100 000 by default. */
  maxKeys?: number;
  /** The wait suggested when only the concurrency limit refuses (ms); 1000 by default. */
  concurrencyRetryMs?: number;
  /** Clock (ms); `Date.now` by default. */
  now?: () => number;
}

/** One key's state: its buckets (with the limit each was last drained at) and its requests in flight. */
interface KeyEntry {
  requests?: BucketState & { limit: number };
  tokens?: BucketState & { limit: number };
  inFlight: number;
}

/** Idle entries checked from the least recently used end at each admission. */
const SWEEP_PER_ADMISSION = 8;

/** Whether an entry is the same as none at `now` (pure): both buckets full again, nothing in flight. */
function isIdle(entry: KeyEntry, now: number): boolean {
  return (
    entry.inFlight === 0 &&
    (!entry.requests || drain(entry.requests, entry.requests.limit, now) === 0) &&
    (!entry.tokens || drain(entry.tokens, entry.tokens.limit, now) === 0)
  );
}

/** API key rate limits kept in this process's memory. */
export class MemoryKeyLimits implements KeyLimits {
  readonly #maxKeys: number;
  readonly #concurrencyRetryMs: number;
  readonly #now: () => number;
  /** In least-recently-admitted order (an admission moves a key to the end). */
  readonly #keys = new Map<string, KeyEntry>();

  /** @param options Bounds, the concurrency retry hint and the clock. */
  constructor(options: MemoryKeyLimitsOptions = {}) {
    this.#maxKeys = Math.max(1, options.maxKeys ?? 100_000);
    this.#concurrencyRetryMs = options.concurrencyRetryMs ?? CONCURRENCY_RETRY_MS;
    this.#now = options.now ?? Date.now;
  }

  /** Keys tracked now. */
  get size(): number {
    return this.#keys.size;
  }

  /** Admits or refuses at once (see {@link KeyLimits.admit}). */
  admit(keyId: string, limits: RateLimits, estimatedTokens: number, now?: number): Promise<Admission> {
    return Promise.resolve(this.admitNow(keyId, limits, estimatedTokens, now));
  }

  /** {@link admit}, synchronously. */
  admitNow(keyId: string, limits: RateLimits, estimatedTokens: number, now = this.#now()): Admission {
    const l = normalizeLimits(limits);
    const tokens = tokenCount(estimatedTokens);
    const entry = this.#keys.get(keyId) ?? { inFlight: 0 };
    const loads = {
      requests: l.rpm ? drain(entry.requests, l.rpm, now) : 0,
      tokens: l.tpm ? drain(entry.tokens, l.tpm, now) : 0,
    };
    const decision = decide(l, { ...loads, inFlight: entry.inFlight }, tokens, this.#concurrencyRetryMs);
    if (!decision.ok) {
      this.#touch(keyId, entry, now);
      return { ...decision, headers: limitHeaders(l, loads, decision) };
    }
    if (l.rpm) entry.requests = { load: (loads.requests += WINDOW_MS), at: now, limit: l.rpm };
    if (l.tpm) entry.tokens = { load: (loads.tokens += tokens * WINDOW_MS), at: now, limit: l.tpm };
    const counted = l.concurrency !== undefined;
    if (counted) entry.inFlight++;
    this.#touch(keyId, entry, now);
    let released = false;
    return {
      ok: true,
      headers: limitHeaders(l, loads),
      release: (actualTokens, at = this.#now()) => {
        if (released) return;
        released = true;
        this.#release(keyId, counted, l.tpm, tokenCount(actualTokens) - tokens, at);
      },
    };
  }

  /** Frees a slot and corrects the tokens charged by `correction` (negative: given back) under `tpm`. */
  #release(keyId: string, counted: boolean, tpm: number | undefined, correction: number, now: number): void {
    let entry = this.#keys.get(keyId);
    if (!entry) {
      // Dropped as idle meanwhile (so nothing was in flight): only an underestimate still matters.
      if (!tpm || correction <= 0) return;
      entry = { inFlight: 0 };
      this.#keys.set(keyId, entry);
    }
    if (counted) entry.inFlight = Math.max(0, entry.inFlight - 1);
    if (tpm && correction !== 0) {
      entry.tokens = { load: Math.max(0, drain(entry.tokens, tpm, now) + correction * WINDOW_MS), at: now, limit: tpm };
    }
  }

  /** Moves a key to the most recently used end, then drops idle keys and keeps within `maxKeys`. */
  #touch(keyId: string, entry: KeyEntry, now: number): void {
    this.#keys.delete(keyId);
    this.#keys.set(keyId, entry);
    let checked = 0;
    for (const [key, e] of this.#keys) {
      if (checked++ >= SWEEP_PER_ADMISSION || key === keyId) break;
      this.#keys.delete(key);
      // A busy key goes to the end, so that it does not stop the sweep.
      if (!isIdle(e, now)) this.#keys.set(key, e);
    }
    if (this.#keys.size <= this.#maxKeys) return;
    for (const [key, e] of this.#keys) {
      if (this.#keys.size <= this.#maxKeys || key === keyId) break;
      if (e.inFlight === 0) this.#keys.delete(key);
    }
  }

  /** Drops every idle key now (a sweep over all keys); returns how many. */
  sweep(now = this.#now()): number {
    let dropped = 0;
    for (const [key, e] of this.#keys) {
      if (isIdle(e, now)) {
        this.#keys.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  /** Nothing to stop. */
  async close(): Promise<void> {}
}
