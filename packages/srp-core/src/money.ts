/**
 * Money in SRP: USDC atomic units (6 decimals: 1 unit = 1 micro-dollar), decimal
 * strings on the wire, `bigint` in code, never floating point. Prices are per one
 * million tokens. The consumer's charge rounds up, the provider's 90 % rounds down and
 * the protocol keeps the remainder, so a split never creates or loses a unit.
 */

const AMOUNT_PATTERN = /^(0|[1-9][0-9]{0,38})$/;

/** Tokens per price unit: prices are quoted per 1M tokens. */
export const TOKENS_PER_PRICE_UNIT = 1_000_000n;

/** Atomic units per whole USDC. */
export const UNITS_PER_USDC = 1_000_000n;

/** Basis points of every charge that go to the serving provider (90 %). */
export const PROVIDER_SHARE_BPS = 9_000n;

/** Basis points in a whole. */
export const BPS_DENOMINATOR = 10_000n;

/** Whether a string is a well-formed wire amount: a non-negative decimal integer without leading zeros. */
export function isAmount(text: string): boolean {
  return AMOUNT_PATTERN.test(text);
}

/**
 * Parses a wire amount into atomic units.
 * @throws TypeError when the string is not a canonical non-negative decimal integer.
 */
export function parseAmount(text: string): bigint {
  if (!AMOUNT_PATTERN.test(text)) throw new TypeError(`not an SRP amount: ${JSON.stringify(text)}`);
  return BigInt(text);
}

/**
 * Formats atomic units for the wire.
 * @throws RangeError for negative amounts.
 */
export function formatAmount(units: bigint): string {
  if (units < 0n) throw new RangeError("amounts on the wire are never negative");
  return units.toString(10);
}

/**
 * Formats atomic units as a human-readable USDC decimal, e.g. `1500000n` -> `"1.50"`.
 * Keeps at least two decimals and drops trailing zeros beyond them; for display only.
 */
export function formatUsdc(units: bigint): string {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const whole = abs / UNITS_PER_USDC;
  let frac = (abs % UNITS_PER_USDC).toString().padStart(6, "0").replace(/0+$/, "");
  if (frac.length < 2) frac = frac.padEnd(2, "0");
  return `${negative ? "-" : ""}${whole}.${frac}`;
}

/** Integer division rounding towards positive infinity, for non-negative operands. */
export function ceilDiv(numerator: bigint, denominator: bigint): bigint {
  if (denominator <= 0n || numerator < 0n) throw new RangeError("ceilDiv takes a non-negative numerator and a positive denominator");
  return (numerator + denominator - 1n) / denominator;
}

/** A price per one million tokens, in atomic units, as on the wire. */
export interface PriceQuote {
  /** Per 1M prompt tokens. */
  input: string;
  /** Per 1M completion tokens. */
  output: string;
  /** Per 1M cached prompt tokens; the input price applies when absent. */
  cachedInput?: string;
  /** Per 1M prompt tokens written to a cache; the input price applies when absent. */
  cacheWrite?: string;
  /** Per 1M generated images; zero when absent. */
  image?: string;
  /** Per 1M characters synthesized to speech; zero when absent. */
  character?: string;
  /** Per 1M seconds (of audio transcribed, video delivered, run time); zero when absent. */
  second?: string;
  /** Per 1M runs of an async job; zero when absent. */
  run?: string;
}

/** Token counts that a charge is computed from. */
export interface BillableUsage {
  /** Prompt tokens, cached ones included. */
  promptTokens: number;
  /** Completion tokens, reasoning tokens included. */
  completionTokens: number;
  /** The part of `promptTokens` served from a prompt cache. */
  cachedTokens?: number;
  /** The part of `promptTokens` written to a prompt cache. */
  cacheWriteTokens?: number;
  /** Images generated. */
  images?: number;
  /** Characters synthesized to speech. */
  characters?: number;
  /** Seconds of audio transcribed, of video delivered, or of run time. */
  seconds?: number;
  /** Runs of an async job (`videos`, `runs`). */
  runs?: number;
}

function tokens(n: number | undefined, what: string): bigint {
  if (n === undefined) return 0n;
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} must be a non-negative safe integer`);
  return BigInt(n);
}

/**
 * The consumer's charge for a usage at a price: the exact sum of every unit count times
 * its price per 1M units (tokens, images, characters, seconds, runs), rounded up to a whole
 * atomic unit once (never per unit class).
 *
 * @example
 * cost({ promptTokens: 1000, completionTokens: 500 }, { input: "150000", output: "600000" }); // 450n
 */
export function cost(usage: BillableUsage, price: PriceQuote): bigint {
  const prompt = tokens(usage.promptTokens, "promptTokens");
  const completion = tokens(usage.completionTokens, "completionTokens");
  const cached = tokens(usage.cachedTokens, "cachedTokens");
  const written = tokens(usage.cacheWriteTokens, "cacheWriteTokens");
  if (cached + written > prompt) throw new RangeError("cachedTokens and cacheWriteTokens together cannot exceed promptTokens");
  const input = parseAmount(price.input);
  const cachedInput = price.cachedInput === undefined ? input : parseAmount(price.cachedInput);
  const cacheWrite = price.cacheWrite === undefined ? input : parseAmount(price.cacheWrite);
  const output = parseAmount(price.output);
  const unit = (n: number | undefined, p: string | undefined, what: string) =>
    n === undefined || n === 0 ? 0n : tokens(n, what) * (p === undefined ? 0n : parseAmount(p));
  const micro =
    (prompt - cached - written) * input +
    cached * cachedInput +
    written * cacheWrite +
    completion * output +
    unit(usage.images, price.image, "images") +
    unit(usage.characters, price.character, "characters") +
    unit(usage.seconds, price.second, "seconds") +
    unit(usage.runs, price.run, "runs");
  return ceilDiv(micro, TOKENS_PER_PRICE_UNIT);
}

/** How one charge divides between the serving provider and the protocol. */
export interface Split {
  /** The provider's share, rounded down. */
  provider: bigint;
  /** The protocol's share: the rest, so `provider + protocol === charge`. */
  protocol: bigint;
}

/**
 * Splits a charge: the provider gets `providerBps` basis points (default 9000, i.e. 90 %)
 * rounded down, the protocol keeps the remainder.
 *
 * @example
 * split(455n); // { provider: 409n, protocol: 46n }
 */
export function split(charge: bigint, providerBps: bigint = PROVIDER_SHARE_BPS): Split {
  if (charge < 0n) throw new RangeError("cannot split a negative charge");
  if (providerBps < 0n || providerBps > BPS_DENOMINATOR) throw new RangeError("providerBps must be within 0..10000");
  const provider = (charge * providerBps) / BPS_DENOMINATOR;
  return { provider, protocol: charge - provider };
}
