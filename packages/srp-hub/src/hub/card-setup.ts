/**
 * Card deposits in a hub: from the `cards` option and the storage's card book, the
 * processor (Stripe through its official library) and what the card endpoints need.
 */
import type { CardApiContext, CardMoneyEvent } from "../api/cards.js";
import { StripeCards, type CardProcessor } from "../cards/stripe-cards.js";
import type { HubParts } from "./api-contexts.js";

/** Room kept in a frame for a job's envelope (as the other surfaces): a deposit request is tiny anyway. */
const DEPOSIT_BODY_BYTES = 64 * 1024;

/**
 * The card endpoints' context, or undefined when the hub takes no cards. Throws when
 * `cards` is given without card books to keep deposits in.
 */
export function cardContext(p: HubParts, onEvent: (event: CardMoneyEvent) => void, processor?: CardProcessor): CardApiContext | undefined {
  const options = p.options.cards;
  if (!options) return undefined;
  const book = p.books.cards;
  if (!book || !p.books.books) throw new TypeError("`cards` needs `storage` that keeps card deposits and a ledger (a SqlStore)");
  return {
    accounts: p.options.accounts,
    book,
    processor: processor ?? new StripeCards(options),
    maxBodyBytes: DEPOSIT_BODY_BYTES,
    ledgerReady: p.ledgerReady,
    storageError: p.storageError,
    onEvent,
  };
}
