/**
 * The rules of card deposits (spec/v1/billing.md "Card deposits"), as pure functions: which
 * amounts a card deposit may be, whether a completed Checkout Session is the one the hub
 * recorded, and how a refund of unused prepaid money is split over the card payments that
 * brought it (newest first, whole cents).
 */

/** Atomic USDC units in one US cent (1 USD = 1,000,000 units). */
export const UNITS_PER_CENT = 10_000n;

/**
 * Smallest and largest card deposit, atomic units: $0.50 (the card processor's smallest
 * charge in USD) to $999,999.99 (its largest).
 */
export const CARD_DEPOSIT_LIMITS = { min: 500_000n, max: 999_999_990_000n } as const;

/** A card deposit amount: atomic units and the same in cents. */
export interface CardAmount {
  units: bigint;
  cents: bigint;
}

const AMOUNT = /^[1-9][0-9]{0,12}$/;

/**
 * The amount of a card deposit request (`{ amount: "<atomic units>" }`), or why it is not
 * one: a decimal string of units within {@link CARD_DEPOSIT_LIMITS} and a whole number of cents.
 */
export function parseCardAmount(value: unknown): CardAmount | string {
  const units = typeof value === "string" && AMOUNT.test(value) ? BigInt(value) : undefined;
  if (units === undefined || units < CARD_DEPOSIT_LIMITS.min || units > CARD_DEPOSIT_LIMITS.max) {
    return `\`amount\` is a decimal string of atomic USDC units, ${CARD_DEPOSIT_LIMITS.min} ($0.50) to ${CARD_DEPOSIT_LIMITS.max} ($999,999.99)`;
  }
  if (units % UNITS_PER_CENT !== 0n) return "`amount` is a whole number of cents (a multiple of 10000 units)";
  return { units, cents: units / UNITS_PER_CENT };
}

/** A card deposit as the hub recorded it when it created the Checkout Session. */
export interface RecordedCardDeposit {
  id: string;
  accountId: string;
  units: bigint;
  cents: bigint;
}

/** What a `checkout.session.completed` event says about its session (the fields the hub checks). */
export interface CompletedSession {
  sessionId: string;
  /** `client_reference_id`. */
  accountId: string | null;
  /** `metadata.srp_deposit`. */
  depositId: string | null;
  /** `amount_total`, cents. */
  amountTotal: number | null;
  currency: string | null;
  mode: string | null;
  paymentStatus: string | null;
  paymentIntent: string | null;
}

/**
 * Why a completed session may not credit the recorded deposit (undefined: it may): it must
 * be paid, in USD, in payment mode, for the recorded account and deposit, for exactly the
 * recorded cents, with a payment intent to refund against. The credit is always the recorded
 * amount, never one read from the event.
 */
export function sessionMismatch(recorded: RecordedCardDeposit, session: CompletedSession): string | undefined {
  if (session.paymentStatus !== "paid") return `payment_status is ${session.paymentStatus}, not paid`;
  if (session.mode !== "payment") return `mode is ${session.mode}, not payment`;
  if (session.currency !== "usd") return `currency is ${session.currency}, not usd`;
  if (session.accountId !== recorded.accountId) return `client_reference_id ${session.accountId} is not account ${recorded.accountId}`;
  if (session.depositId !== null && session.depositId !== recorded.id)
    return `metadata names deposit ${session.depositId}, not ${recorded.id}`;
  if (session.amountTotal === null || BigInt(session.amountTotal) !== recorded.cents) {
    return `amount_total ${session.amountTotal} differs from the recorded ${recorded.cents} cents`;
  }
  if (!session.paymentIntent) return "the session has no payment_intent";
  return undefined;
}

/**
 * How much of an account's prepaid money a refund returns when card money is part of it:
 * all of it when the unrefunded card money is covered (the card part goes back to the cards,
 * the rest by its own channel), else the prepaid money rounded down to whole cents (a card
 * refund is in cents; the sub-cent rest stays in the account).
 */
export function refundableWithCards(prepaid: bigint, cardOpen: bigint): bigint {
  if (prepaid >= cardOpen) return prepaid;
  return prepaid - (prepaid % UNITS_PER_CENT);
}

/**
 * How much of an account's prepaid money a refund by another channel (on-chain, the admin
 * API, the CLI) may pay out: what is beyond the card money still refundable to the cards.
 * Card money never leaves by another channel; while it is open, spending draws on the rest first.
 */
export function refundableWithoutCards(prepaid: bigint, cardOpen: bigint): bigint {
  return prepaid > cardOpen ? prepaid - cardOpen : 0n;
}

/** How long a Checkout Session the hub creates stays payable (its `expires_at`): one hour. */
export const CARD_SESSION_TTL_MS = 3_600_000;

/** A deposit still `open` this long after it was created is marked `expired` (its session expired an hour before). */
export const CARD_DEPOSIT_EXPIRE_MS = 2 * CARD_SESSION_TTL_MS;

/** At most `count` uncredited (open or expired) card deposits per account created within `windowMs`. */
export const CARD_OPEN_LIMIT = { count: 5, windowMs: 86_400_000 } as const;

/** Uncredited card deposits (open or expired) are deleted this long after they were created. */
export const CARD_DEPOSIT_RETENTION_MS = 30 * 86_400_000;

/**
 * A pending refund share older than this is not sent again blindly: the processor keeps an
 * idempotency key 24 hours, so the hub first looks the refund up by the share id in its metadata.
 */
export const CARD_REFUND_LOOKUP_AFTER_MS = 23 * 3_600_000;

/**
 * Whether an account may open another card deposit, given the creation times of its
 * uncredited deposits within {@link CARD_OPEN_LIMIT}'s window: undefined when it may, else
 * the milliseconds until the oldest of them leaves the window.
 */
export function cardDepositRetryAfter(uncreditedCreatedAt: readonly number[], now: number): number | undefined {
  if (uncreditedCreatedAt.length < CARD_OPEN_LIMIT.count) return undefined;
  const oldest = Math.min(...uncreditedCreatedAt);
  return Math.max(1000, oldest + CARD_OPEN_LIMIT.windowMs - now);
}

/** A card payment that can still take refunds: its deposit, and what it brought less what was refunded. */
export interface RefundableCardDeposit {
  id: string;
  open: bigint;
}

/** One card payment's part of a refund. */
export interface CardRefundShare {
  depositId: string;
  units: bigint;
  cents: bigint;
}

/**
 * Splits `amount` over the card payments (given newest first): each takes up to what it
 * can still refund, newest first, in whole cents. Returns the shares and what is left for
 * other channels.
 */
export function allocateCardRefund(
  amount: bigint,
  deposits: readonly RefundableCardDeposit[],
): { shares: CardRefundShare[]; rest: bigint } {
  const shares: CardRefundShare[] = [];
  let left = amount;
  for (const d of deposits) {
    const take = min(left, d.open);
    const units = take - (take % UNITS_PER_CENT);
    if (units <= 0n) continue;
    shares.push({ depositId: d.id, units, cents: units / UNITS_PER_CENT });
    left -= units;
  }
  return { shares, rest: left };
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
