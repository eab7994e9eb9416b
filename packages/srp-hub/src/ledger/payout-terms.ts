/**
 * Provider payout adjustments as pure functions (SRP-SET-006 allows them): bounties on
 * under-supplied models, paid from the bounty pool (funded from the protocol's share,
 * never by the consumer) up to what an instance's trust unlocks, and the anti-flapping
 * reduction after an instance switches model, which decays to zero over 72 hours.
 * Multipliers and reductions are basis points (10000 = 1×, 2500 = 25 %).
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** A trust level: an instance with at least this tenure and health may earn up to `maxMultiplierBps`. */
export interface TrustLevel {
  minTenureMs: number;
  minHealth: number;
  maxMultiplierBps: number;
}

/** Payout configuration of a hub. */
export interface PayoutConfig {
  /** Bounty multipliers per model set by the operator (basis points, e.g. 15000 = 1.5×). */
  multipliers: Readonly<Record<string, number>>;
  /** Derive multipliers from demand over supply (operator multipliers still win). */
  derive: boolean;
  /** With `derive`: consumer requests per online instance per minute that count as balanced supply. */
  balancedRequestsPerInstancePerMinute: number;
  /** With `derive`: multiplier gained per unit of demand above balance, and its ceiling. */
  derivedSlopeBps: number;
  derivedMaxBps: number;
  /** Trust levels, any order: the highest cap an instance qualifies for applies; below all of them, no bounty. */
  trust: readonly TrustLevel[];
  /** Share of each job's protocol fee that goes into the bounty pool (basis points). */
  poolFundingBps: number;
  /** The anti-flapping reduction right after a model switch, decaying linearly to 0 over `flapDecayMs`. */
  flapReductionBps: number;
  flapDecayMs: number;
}

/** Defaults: no operator multipliers, derivation off, trust over 1 / 7 / 14 days, 20 % of fees fund the pool, a 50 % reduction decaying over 72 h. */
export const PAYOUT_DEFAULTS: PayoutConfig = Object.freeze({
  multipliers: Object.freeze({}),
  derive: false,
  balancedRequestsPerInstancePerMinute: 10,
  derivedSlopeBps: 5000,
  derivedMaxBps: 20000,
  trust: Object.freeze([
    { minTenureMs: DAY, minHealth: 0.8, maxMultiplierBps: 12500 },
    { minTenureMs: 7 * DAY, minHealth: 0.9, maxMultiplierBps: 15000 },
    { minTenureMs: 14 * DAY, minHealth: 0.95, maxMultiplierBps: 20000 },
  ]),
  poolFundingBps: 2000,
  flapReductionBps: 5000,
  flapDecayMs: 72 * HOUR,
});

/** The multiplier an instance's trust allows: tenure since first seen and its 14-day health score. */
export function trustCap(tenureMs: number, health: number, levels: readonly TrustLevel[]): number {
  let cap = 10000;
  for (const l of levels) if (tenureMs >= l.minTenureMs && health >= l.minHealth && l.maxMultiplierBps > cap) cap = l.maxMultiplierBps;
  return cap;
}

/**
 * A multiplier from demand over supply: at or below balance 1×; above it, `slope` per unit
 * of excess demand, up to `max`. `demandPerMinute` is consumer requests for the model.
 */
export function derivedMultiplier(
  demandPerMinute: number,
  instancesOnline: number,
  cfg: Pick<PayoutConfig, "balancedRequestsPerInstancePerMinute" | "derivedSlopeBps" | "derivedMaxBps">,
): number {
  if (demandPerMinute <= 0) return 10000;
  const supply = Math.max(instancesOnline, 0) * cfg.balancedRequestsPerInstancePerMinute;
  const ratio = supply === 0 ? Infinity : demandPerMinute / supply;
  if (ratio <= 1) return 10000;
  const m = 10000 + Math.floor((ratio - 1) * cfg.derivedSlopeBps);
  return Math.min(Number.isFinite(m) ? m : cfg.derivedMaxBps, cfg.derivedMaxBps);
}

/** The anti-flapping reduction (basis points) `sinceSwitchMs` after a model switch: linear decay to 0. */
export function flapReduction(sinceSwitchMs: number | undefined, cfg: Pick<PayoutConfig, "flapReductionBps" | "flapDecayMs">): number {
  if (sinceSwitchMs === undefined || sinceSwitchMs >= cfg.flapDecayMs) return 0;
  const left = cfg.flapDecayMs - Math.max(0, sinceSwitchMs);
  return Math.ceil((cfg.flapReductionBps * left) / cfg.flapDecayMs);
}

/** The adjustments of one settled job, as the hub decides them before recording the receipt. */
export interface PayoutTerms {
  /** Bounty multiplier granted (after the trust cap), basis points ≥ 10000. */
  multiplierBps: number;
  /** Anti-flapping reduction, basis points 0..10000. */
  reductionBps: number;
  /** Share of the protocol fee that funds the bounty pool. */
  poolFundingBps: number;
}

/** No adjustments. */
export const PLAIN_TERMS: PayoutTerms = Object.freeze({ multiplierBps: 10000, reductionBps: 0, poolFundingBps: 0 });

/** What the terms move for one job, given the base provider share, the protocol's take and the pool's balance. */
export interface Payout {
  /** Credited to the provider: base − reduction + bounty. */
  provider: bigint;
  /** Withheld from the base share by the anti-flapping reduction (stays with the platform). */
  reduction: bigint;
  /** Paid from the bounty pool. */
  bounty: bigint;
  /** Moved from the platform's take into the bounty pool. */
  poolFunding: bigint;
}

/**
 * Applies payout terms. The reduction rounds up (in the platform's favour, against a
 * flapping instance), the bounty rounds down and never exceeds the pool's balance (plus
 * this job's own funding), and only a positive protocol take funds the pool.
 */
export function payout(baseShare: bigint, protocolTake: bigint, poolBalance: bigint, terms: PayoutTerms): Payout {
  if (baseShare < 0n || poolBalance < 0n) throw new RangeError("shares and balances are non-negative");
  const reduction = (baseShare * BigInt(terms.reductionBps) + 9999n) / 10000n;
  const reduced = baseShare - (reduction > baseShare ? baseShare : reduction);
  const poolFunding = protocolTake > 0n ? (protocolTake * BigInt(terms.poolFundingBps)) / 10000n : 0n;
  const wanted = terms.multiplierBps > 10000 ? (reduced * BigInt(terms.multiplierBps - 10000)) / 10000n : 0n;
  const available = poolBalance + poolFunding;
  const bounty = wanted < available ? wanted : available;
  return { provider: reduced + bounty, reduction: baseShare - reduced, bounty, poolFunding };
}
