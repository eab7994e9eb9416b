/**
 * Card deposits (spec/v1/billing.md "Card deposits"): `POST /v1/account/deposits/card`
 * opens a Checkout Session for an amount of prepaid balance; `POST /v1/stripe/webhook`
 * takes the processor's signed events and credits a paid session's recorded amount once;
 * and the card part of `POST /v1/account/refund` goes back to the cards it came from.
 */
import { SrpError } from "@srp/core";
import type { AccountStore } from "../accounts.js";
import { CARD_OPEN_LIMIT, CARD_REFUND_LOOKUP_AFTER_MS, CARD_SESSION_TTL_MS, parseCardAmount } from "../cards/card-policy.js";
import { CardSignatureError, type CardEvent, type CardProcessor, type CardRefundCall } from "../cards/stripe-cards.js";
import { RefundPendingError } from "../ledger/errors.js";
import { ledgerId } from "../ledger/ledger.js";
import type { CardBook, StoredCardRefund } from "../storage/card-book.js";
import { authenticate, errorResponse, fail, readBody, readJsonObject } from "./http.js";
import { money } from "./money.js";

/** Path of the card deposit endpoint. */
export const CARD_DEPOSIT_PATH = "/v1/account/deposits/card";
/** Path of the card processor's webhook (the URL an operator registers with Stripe). */
export const CARD_WEBHOOK_PATH = "/v1/stripe/webhook";

/** Largest webhook delivery read (events are a few kilobytes). */
const MAX_WEBHOOK_BYTES = 512 * 1024;

/** What happened to a card deposit or a refund of card money (the hub's `card` event). */
export type CardMoneyEvent =
  | { kind: "session"; depositId: string; accountId: string; sessionId: string; amount: bigint }
  | { kind: "credited"; depositId: string; accountId: string; sessionId: string; amount: bigint; eventId: string }
  | { kind: "refused"; sessionId: string; eventId: string; reason: string; depositId?: string }
  | { kind: "refund"; shareId: string; accountId: string; amount: bigint; state: "sent" | "failed" | "unknown"; reason?: string };

/** What the card endpoints need. */
export interface CardApiContext {
  accounts: AccountStore;
  book: CardBook;
  processor: CardProcessor;
  /** Largest deposit request body accepted. */
  maxBodyBytes: number;
  /** Resolves when the ledger has reconciled at start. */
  ledgerReady: Promise<void>;
  /** Reports a storage (or processor) failure an answer cannot carry. */
  storageError(what: string, error: unknown): void;
  /** Reports what happened (the hub's `card` event). */
  onEvent(event: CardMoneyEvent): void;
}

/**
 * `POST /v1/account/deposits/card` with `{ amount: "<atomic units>" }` (a whole number of
 * cents, $0.50 to $999,999.99), with an API key: records the deposit, creates a Checkout
 * Session for it (payable for an hour), and answers `{ object: "srp.card_deposit", id,
 * session, url, amount }`. The balance is credited only when the processor's signed
 * completion arrives. An account with 5 uncredited deposits created in the last 24 hours is
 * refused with 429 `api.rate_limited` and `Retry-After`.
 */
export async function postCardDeposit(request: Request, ctx: CardApiContext): Promise<Response> {
  const account = await authenticate(request, ctx.accounts);
  if (account instanceof SrpError) return errorResponse(account);
  const body = await readJsonObject(request, ctx.maxBodyBytes);
  if (body instanceof SrpError) return errorResponse(body);
  const amount = parseCardAmount(body.amount);
  if (typeof amount === "string") return fail("api.invalid_body", amount);
  const deposit = { id: ledgerId("cdep"), accountId: account.id, ...amount };
  const now = Date.now();
  let opened: Awaited<ReturnType<CardBook["open"]>>;
  try {
    await ctx.ledgerReady;
    opened = await ctx.book.open(deposit, now);
  } catch (error) {
    ctx.storageError("card deposit", error);
    return fail("billing.unavailable", "the ledger cannot take deposits now; retry shortly");
  }
  if (!opened.ok) {
    return errorResponse(
      new SrpError(
        "api.rate_limited",
        `this account has ${CARD_OPEN_LIMIT.count} unpaid card deposits from the last 24 hours; pay one or retry later`,
        { details: { retryAfterMs: opened.retryAfterMs } },
      ),
    );
  }
  let session: { id: string; url: string };
  try {
    session = await ctx.processor.createSession(deposit, now + CARD_SESSION_TTL_MS);
  } catch (error) {
    // The deposit stays open and harmless: a session created after all still credits it by its metadata.
    ctx.storageError(`card deposit ${deposit.id}: the Checkout Session could not be created`, error);
    return fail("payment.card_unavailable", "the card processor cannot be reached now; retry shortly");
  }
  try {
    await ctx.book.attachSession(deposit.id, session.id);
  } catch (error) {
    // Not fatal: the completion finds the deposit by the id in the session's metadata.
    ctx.storageError(`card deposit ${deposit.id}: session ${session.id} not recorded`, error);
  }
  ctx.onEvent({ kind: "session", depositId: deposit.id, accountId: account.id, sessionId: session.id, amount: deposit.units });
  return Response.json({ object: "srp.card_deposit", id: deposit.id, session: session.id, url: session.url, amount: money(deposit.units) });
}

/**
 * `POST /v1/stripe/webhook` (no API key): the raw body's `Stripe-Signature` must verify
 * with the webhook secret (400 `payment.card_signature_invalid` otherwise, and nothing is
 * written). A paid session's completion credits its recorded deposit once; a repeat, an
 * unknown session or a mismatch (or an account that no longer exists) credits nothing and
 * answers 200; `checkout.session.expired` marks its deposit expired; `refund.failed` credits a
 * failed card refund back (found by its refund id, else by the share id in its metadata);
 * other events are acknowledged and ignored.
 */
export async function postCardWebhook(request: Request, ctx: CardApiContext): Promise<Response> {
  const signature = request.headers.get("stripe-signature");
  if (!signature) return fail("payment.card_signature_invalid", "the delivery has no Stripe-Signature header");
  const bytes = await readBody(request, MAX_WEBHOOK_BYTES);
  if (bytes instanceof SrpError) return errorResponse(bytes);
  let event: CardEvent;
  try {
    // The exact bytes received: the signature covers them, not a re-encoding of them.
    event = await ctx.processor.verify(Buffer.from(bytes), signature);
  } catch (error) {
    if (error instanceof CardSignatureError)
      return fail("payment.card_signature_invalid", `the Stripe-Signature does not verify: ${error.message}`);
    throw error;
  }
  try {
    await ctx.ledgerReady;
    return Response.json({ received: true, ...(await handleEvent(event, ctx)) });
  } catch (error) {
    // Not acknowledged: the processor delivers the event again later.
    ctx.storageError(`card webhook ${event.id}`, error);
    return fail("billing.unavailable", "the ledger cannot take the event now; it will be delivered again");
  }
}

/** Acts on one verified event; what it did, for the answer. */
async function handleEvent(event: CardEvent, ctx: CardApiContext): Promise<{ credited?: boolean; ignored?: boolean }> {
  if (event.type === "other") return { ignored: true };
  if (event.type === "checkout.session.expired") {
    await ctx.book.expire({ sessionId: event.sessionId, depositId: event.depositId });
    return { credited: false };
  }
  if (event.type === "refund.failed") {
    const share = await ctx.book.refundFailed(
      { refundId: event.refundId, shareId: event.shareId },
      `the refund failed: ${event.reason ?? "no reason given"}`,
    );
    if (share) ctx.onEvent({ kind: "refund", shareId: share.id, accountId: share.accountId, amount: share.units, state: "failed" });
    return { credited: share !== undefined };
  }
  const session = event.session;
  // An unpaid completion (a delayed payment method) is credited by its `async_payment_succeeded` event.
  if (session.paymentStatus !== "paid") return { credited: false };
  const outcome = await ctx.book.credit(session, event.id);
  switch (outcome.kind) {
    case "credited":
      ctx.onEvent({
        kind: "credited",
        depositId: outcome.deposit.id,
        accountId: outcome.deposit.accountId,
        sessionId: session.sessionId,
        amount: outcome.deposit.units,
        eventId: event.id,
      });
      return { credited: true };
    case "mismatch":
      ctx.onEvent({
        kind: "refused",
        sessionId: session.sessionId,
        eventId: event.id,
        reason: outcome.reason,
        depositId: outcome.deposit.id,
      });
      return { credited: false };
    case "unknown":
      ctx.onEvent({
        kind: "refused",
        sessionId: session.sessionId,
        eventId: event.id,
        reason: "no card deposit of this hub has this session",
      });
      return { credited: false };
    case "duplicate":
      return { credited: false };
  }
}

/** A refund with card money: the amount, the card shares and the rest, or why it cannot be made now. */
export interface CardRefundOutcome {
  amount: bigint;
  rest: bigint;
  shares: StoredCardRefund[];
}

/**
 * The refund of `POST /v1/account/refund` on a hub that takes cards: the unused prepaid
 * balance leaves the books (idempotent by `reference`), its card part split over the card
 * payments newest first, and each share is refunded through the processor (idempotency key:
 * the share's id, the share's id also in the refund's metadata as `srp_refund`). A share the
 * processor refuses is credited back; one whose outcome is unknown stays pending, and a retry
 * with the same reference sends it again (503 `payment.settlement_pending` until then). A
 * pending share older than 23 hours (the processor keeps idempotency keys 24) is first looked
 * up among its payment's refunds by that metadata, and sent only when none is found.
 */
export async function refundWithCards(accountId: string, reference: string, ctx: CardApiContext): Promise<CardRefundOutcome | SrpError> {
  let plan: Awaited<ReturnType<CardBook["refund"]>>;
  try {
    await ctx.ledgerReady;
    plan = await ctx.book.refund(accountId, reference);
  } catch (error) {
    if (error instanceof RefundPendingError) {
      return new SrpError("billing.refund_pending", "a payment credited to this account has not settled yet; refund after it settles");
    }
    ctx.storageError("card refund", error);
    return new SrpError("billing.unavailable", "the ledger cannot refund now; retry shortly");
  }
  let unknown = false;
  const shares: StoredCardRefund[] = [];
  for (const share of plan.shares) {
    if (share.state !== "pending") {
      shares.push(share);
      continue;
    }
    const call = await sendShare(share, accountId, ctx);
    try {
      if (call.kind === "made") {
        await ctx.book.refundSent(share.id, call.refundId);
        shares.push({ ...share, state: "sent", refundId: call.refundId });
        ctx.onEvent({ kind: "refund", shareId: share.id, accountId, amount: share.units, state: "sent" });
      } else if (call.kind === "refused") {
        await ctx.book.refundFailed({ shareId: share.id }, call.reason);
        shares.push({ ...share, state: "failed", note: call.reason });
        ctx.onEvent({ kind: "refund", shareId: share.id, accountId, amount: share.units, state: "failed", reason: call.reason });
      } else {
        unknown = true;
        shares.push(share);
        ctx.onEvent({ kind: "refund", shareId: share.id, accountId, amount: share.units, state: "unknown", reason: call.reason });
      }
    } catch (error) {
      unknown = true;
      shares.push(share);
      ctx.storageError(`card refund ${share.id}: the processor answered ${call.kind}, not recorded`, error);
    }
  }
  if (unknown) {
    return new SrpError(
      "payment.settlement_pending",
      "a refund to a card has an unknown outcome; retry with the same Idempotency-Key to send it again safely",
      { details: { reference } },
    );
  }
  const failed = shares.filter((s) => s.state === "failed").reduce((sum, s) => sum + s.units, 0n);
  return { amount: plan.amount - failed, rest: plan.rest, shares };
}

/**
 * Sends one pending share to the processor; a share older than {@link CARD_REFUND_LOOKUP_AFTER_MS}
 * is looked up first (a resend past the idempotency window could refund twice).
 */
async function sendShare(share: StoredCardRefund, accountId: string, ctx: CardApiContext, now = Date.now()): Promise<CardRefundCall> {
  if (now - share.createdAt >= CARD_REFUND_LOOKUP_AFTER_MS) {
    const found = await ctx.processor.findRefund(share.paymentIntent, share.id);
    if (found.kind !== "none") return found;
  }
  return ctx.processor.refund(share.paymentIntent, share.cents, share.id, {
    srp_account: accountId,
    srp_deposit: share.depositId,
    srp_refund: share.id,
  });
}

/** A card share as `POST /v1/account/refund` shows it. */
export function cardShareView(s: StoredCardRefund) {
  return { id: s.id, deposit: s.depositId, amount: money(s.units), state: s.state, refund: s.refundId };
}
