/**
 * Billing policy as pure functions: what a request reserves at admission, what the
 * consumer is charged at settlement, how a charge divides between provider, protocol and
 * the consumer's refund, and the prepaid-deposit discount tiers. All amounts are USDC
 * atomic units (1e-6 USD) as `bigint`; nothing here touches a database.
 */
import { BPS_DENOMINATOR, ceilDiv, cost, split, type PriceQuote } from "@srp/core";

/** A prepaid discount tier: deposits of at least `minUnits` draw at `discountBps` off. */
export interface DiscountTier {
  /** Smallest prepaid balance (atomic units) for this tier. */
  minUnits: bigint;
  /** Discount in basis points (500 = 5 %). */
  discountBps: number;
}

/** The default prepaid discount tiers of SRP-BIL-010: $10+ 5 %, $50+ 10 %, $200+ 15 %. */
export const DEFAULT_DISCOUNT_TIERS: readonly DiscountTier[] = Object.freeze([
  { minUnits: 10_000_000n, discountBps: 500 },
  { minUnits: 50_000_000n, discountBps: 1000 },
  { minUnits: 200_000_000n, discountBps: 1500 },
]);

/** The discount (basis points) of the highest tier `prepaidUnits` reaches; 0 below the first. */
export function discountFor(prepaidUnits: bigint, tiers: readonly DiscountTier[] = DEFAULT_DISCOUNT_TIERS): number {
  let bps = 0;
  for (const t of tiers) if (prepaidUnits >= t.minUnits && t.discountBps > bps) bps = t.discountBps;
  return bps;
}

/**
 * The most a request can cost: every prompt token at the input price plus `maxOutputTokens`
 * at the output price, rounded up once. Reserved at admission, before routing.
 *
 * @example
 * worstCase(1000, 500, { input: "150000", output: "600000" }); // 450n
 */
export function worstCase(promptTokens: number, maxOutputTokens: number, price: PriceQuote): bigint {
  // A cache read is never dearer than the input price it discounts; a cache write may be (Anthropic bills it at 1.25 to 2 times).
  const input = price.cacheWrite !== undefined && BigInt(price.cacheWrite) > BigInt(price.input) ? price.cacheWrite : price.input;
  return cost({ promptTokens, completionTokens: maxOutputTokens }, { input, output: price.output });
}

/** The consumer's price after a discount: rounds up, so the consumer never pays less than the discount allows. */
export function discounted(amount: bigint, discountBps: number): bigint {
  if (amount < 0n) throw new RangeError("amount must be non-negative");
  if (!Number.isInteger(discountBps) || discountBps < 0 || discountBps > 10_000)
    throw new RangeError("discountBps must be an integer within 0..10000");
  return ceilDiv(amount * (BPS_DENOMINATOR - BigInt(discountBps)), BPS_DENOMINATOR);
}

/**
 * The prepaid part of what an account holds: money deposited (and not refunded) that is
 * still there, so at most `holds`; nothing when the account was never funded.
 *
 * @example
 * prepaidOf(700n, 1000n); // 700n: 300 of the deposit was spent
 */
export function prepaidOf(holds: bigint, funded: bigint): bigint {
  if (funded <= 0n) return 0n;
  return holds < funded ? holds : funded;
}

/** How a job's charge divides, per party. `charge = provider + protocol`, `charge + refund = reserved`. */
export interface ChargeSplit {
  /** What the consumer pays: the receipt's cost after discount, never more than was reserved. */
  charge: bigint;
  /** What the consumer gets back from the reservation. */
  refund: bigint;
  /** The serving provider's share: 90 % of the receipt's cost (of at most the reservation), rounded down (SRP-MON-007), before payout adjustments. */
  provider: bigint;
  /** The protocol's take, `charge - provider`: negative when a discount or a cap is larger than the fee, funded by the platform. */
  protocol: bigint;
  /** The part of the receipt's cost above the reservation that the consumer is not charged (the platform absorbs it). */
  overrun: bigint;
}

/**
 * Splits a job's charge from the cost on its countersigned receipt. The consumer pays the
 * discounted cost, capped at the reservation (the maximum the consumer was quoted). The
 * provider's share is 90 % of the receipt's cost, but of at most the reservation (which is
 * the undiscounted maximum): a node reporting more usage than the request allowed cannot
 * draw money from the platform beyond what was admitted.
 *
 * @example
 * splitCharge(1000n, 2000n, 0); // { charge: 1000n, refund: 1000n, provider: 900n, protocol: 100n, overrun: 0n }
 */
export function splitCharge(receiptCost: bigint, reserved: bigint, discountBps: number): ChargeSplit {
  if (receiptCost < 0n || reserved < 0n) throw new RangeError("amounts must be non-negative");
  const price = discounted(receiptCost, discountBps);
  const charge = price < reserved ? price : reserved;
  const provider = split(receiptCost < reserved ? receiptCost : reserved).provider;
  return { charge, refund: reserved - charge, provider, protocol: charge - provider, overrun: price - charge };
}
