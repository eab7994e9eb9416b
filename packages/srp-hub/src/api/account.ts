/**
 * The consumer's money: `GET /v1/account` (balance, prepaid tier, spend, earnings),
 * `GET /v1/account/history` (the account's ledger, paginated), `POST /v1/account/refund`
 * (the unused prepaid balance back to the depositor; card money back to the cards), and the free `GET /v1/pricing`
 * and `POST /v1/estimate`. Amounts are `{ units, usd }`: USDC atomic units as a decimal
 * string, and the same in dollars.
 */
import { SrpError } from "@srp/core";
import type { AccountStore } from "../accounts.js";
import { ledgerId, type HistoryEntry, type LedgerBooks } from "../ledger/ledger.js";
import type { DiscountTier } from "../ledger/policy.js";
import { isRestricted } from "../keys/policy.js";
import { CARD_DEPOSIT_LIMITS } from "../cards/card-policy.js";
import type { Router } from "../routing/router.js";
import { authenticate, errorResponse, fail, formatDecimal, readJsonObject } from "./http.js";
import { cardShareView, refundWithCards, type CardApiContext } from "./cards.js";
import { estimateEndpoint } from "./estimate.js";
import { money, type Money } from "./money.js";
import type { ConsumerApiContext } from "./serve.js";
import { RefundPendingError } from "../ledger/errors.js";

export { money, type Money } from "./money.js";

/** What the account endpoints need. */
export interface AccountApiContext {
  accounts: AccountStore;
  books: LedgerBooks | undefined;
  router: Router;
  tiers: readonly DiscountTier[];
  signupCredits: bigint | undefined;
  /** The hub takes card deposits: refunds send card money back to the cards ({@link refundWithCards}). */
  cards?: CardApiContext;
}

const noLedger = () => fail("api.not_found", "this hub keeps no ledger (it bills nobody)");

/** `GET /v1/account`. */
export async function getAccount(request: Request, ctx: AccountApiContext): Promise<Response> {
  const account = await authenticate(request, ctx.accounts);
  if (account instanceof SrpError) return errorResponse(account);
  if (!ctx.books) return noLedger();
  const s = await ctx.books.summary(account.id);
  return Response.json({
    object: "srp.account",
    id: account.id,
    balance: money(s.balance),
    held: money(s.held),
    prepaid: money(s.prepaid),
    discount_bps: s.discountBps,
    // The prepaid tier in force (the highest the prepaid money reaches), or null.
    tier: tierOf(ctx.tiers, s.discountBps),
    spent: money(s.spent),
    earned: money(s.earned),
    deposited: money(s.deposited),
    refunded: money(s.refunded),
    requests: s.requests,
  });
}

function tierOf(tiers: readonly DiscountTier[], discountBps: number): { min_deposit: Money; discount_bps: number } | null {
  if (discountBps === 0) return null;
  const t = tiers.filter((x) => x.discountBps === discountBps).sort((a, b) => (a.minUnits < b.minUnits ? -1 : 1))[0];
  return t ? { min_deposit: money(t.minUnits), discount_bps: t.discountBps } : null;
}

function historyEntry(h: HistoryEntry) {
  return { id: h.txId, kind: h.kind, ref: h.ref, amount: money(h.amount), held: money(h.held), created_at: h.createdAt, memo: h.memo };
}

/** `GET /v1/account/history?limit=N&before=CURSOR`: newest first; `next` is the cursor of the following page. */
export async function getHistory(request: Request, ctx: AccountApiContext): Promise<Response> {
  const account = await authenticate(request, ctx.accounts);
  if (account instanceof SrpError) return errorResponse(account);
  if (!ctx.books) return noLedger();
  const url = new URL(request.url);
  const limitText = url.searchParams.get("limit");
  const limit = limitText === null ? 50 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) return fail("api.invalid_body", "`limit` is 1..500");
  const cursor = url.searchParams.get("before");
  let before: { createdAt: number; txId: string } | undefined;
  if (cursor !== null) {
    const m = /^([0-9]{1,16}):(tx_[A-Za-z0-9_-]{1,64})$/.exec(cursor);
    if (!m) return fail("api.invalid_body", "`before` is a cursor from a previous page's `next`");
    before = { createdAt: Number(m[1]), txId: m[2]! };
  }
  const page = await ctx.books.history(account.id, limit, before);
  const last = page.at(-1);
  return Response.json({
    object: "list",
    data: page.map(historyEntry),
    next: page.length === limit && last ? `${last.createdAt}:${last.txId}` : null,
  });
}

/**
 * `POST /v1/account/refund`: the account's unused prepaid balance (at most what it
 * deposited and has not had refunded) leaves the hub for its depositor, through the
 * channel the deposit came by. An `Idempotency-Key` header makes retries safe; it is
 * required while the account has card money to refund (a pending card refund is resumed
 * by it). A key held to spending controls may not refund (403 `api.forbidden`).
 */
export async function postRefund(request: Request, ctx: AccountApiContext): Promise<Response> {
  const account = await authenticate(request, ctx.accounts);
  if (account instanceof SrpError) return errorResponse(account);
  if (!ctx.books) return noLedger();
  // A key that may spend only so much must not move the whole account out (SRP-BIL-011).
  if (account.key && isRestricted(account.key.policy))
    return fail("api.forbidden", "a key held to spending controls may not refund the account: use an unrestricted key of the account");
  const key = request.headers.get("idempotency-key");
  if (key !== null && !/^[\x21-\x7e]{1,128}$/.test(key))
    return fail("api.invalid_body", "`Idempotency-Key` is 1-128 visible ASCII characters");
  if (ctx.cards && key === null) {
    let cardOpen: bigint;
    try {
      await ctx.cards.ledgerReady;
      cardOpen = await ctx.cards.book.cardMoneyOpen(account.id);
    } catch (error) {
      ctx.cards.storageError("card refund", error);
      return fail("billing.unavailable", "the ledger cannot refund now; retry shortly");
    }
    // Without a key a pending card refund could never be resumed (billing.md SRP-BIL-021).
    if (cardOpen > 0n)
      return fail("api.invalid_body", "an `Idempotency-Key` header is required to refund card money (retry with the same key to resume)");
  }
  const reference = `${account.id}:${key ?? ledgerId("refund")}`;
  if (ctx.cards) {
    // Card money goes back to the cards it came from, newest payment first (billing.md "Card deposits").
    const outcome = await refundWithCards(account.id, reference, ctx.cards);
    if (outcome instanceof SrpError) return errorResponse(outcome);
    return Response.json({
      object: "srp.refund",
      account: account.id,
      reference,
      refunded: money(outcome.amount),
      card_refunds: outcome.shares.map(cardShareView),
      other: money(outcome.rest),
      balance: money((await ctx.books.summary(account.id)).balance),
    });
  }
  let amount: bigint;
  try {
    amount = await ctx.books.refund(account.id, reference);
  } catch (error) {
    // Money credited before its x402 settlement is not yet money (billing.md "Deposits and refunds").
    if (error instanceof RefundPendingError)
      return fail("billing.refund_pending", "a payment credited to this account has not settled yet; refund after it settles");
    throw error;
  }
  return Response.json({
    object: "srp.refund",
    account: account.id,
    reference,
    refunded: money(amount),
    balance: money((await ctx.books.summary(account.id)).balance),
  });
}

/** `GET /v1/pricing` (free): prices per model, the split, the prepaid tiers and the signup credits. */
export function getPricing(ctx: AccountApiContext): Response {
  // Per-model summaries the router keeps: O(models) per request, whatever the instances.
  const models = ctx.router.summaries().map((m) => ({
    model: m.model,
    instances_online: m.instances,
    per_million_tokens: {
      input: { min: money(m.low.input ?? 0n), max: money(m.high.input ?? 0n) },
      output: { min: money(m.low.output ?? 0n), max: money(m.high.output ?? 0n) },
    },
  }));
  return Response.json({
    object: "srp.pricing",
    currency: "USDC",
    unit: "1 unit = 0.000001 USD",
    split: { provider_bps: 9000, protocol_bps: 1000, rounding: "the provider's share rounds down; the protocol keeps the remainder" },
    signup_credits: ctx.signupCredits === undefined ? null : money(ctx.signupCredits),
    // How prepaid balance can be bought: by card (a Checkout Session) when the hub takes cards.
    card_deposits: ctx.cards
      ? { path: "/v1/account/deposits/card", currency: "usd", min: money(CARD_DEPOSIT_LIMITS.min), max: money(CARD_DEPOSIT_LIMITS.max) }
      : null,
    prepaid_tiers: ctx.tiers.map((t) => ({
      min_deposit: money(t.minUnits),
      discount_bps: t.discountBps,
      discount: `${formatDecimal(BigInt(t.discountBps), 2)} %`,
    })),
    models: models.sort((a, b) => a.model.localeCompare(b.model)),
  });
}

/**
 * `POST /v1/estimate` (free; no payment, a key is optional and only adds the account's
 * discount): the maximum a request can cost (what admission reserves) and the expected
 * cost. A body with `endpoint` estimates that endpoint's `body` ({@link estimateEndpoint},
 * SRP-BIL-018); a body without `endpoint` is a chat completion's, estimated as
 * `/v1/chat/completions` admits it.
 */
export async function postEstimate(
  request: Request,
  ctx: AccountApiContext,
  maxBodyBytes: number,
  consumer: ConsumerApiContext,
): Promise<Response> {
  const body = await readJsonObject(request, maxBodyBytes);
  if (body instanceof SrpError) return errorResponse(body);
  // A body without `endpoint` is a chat completion's (the original form), estimated as that surface admits it.
  const given = body.endpoint !== undefined ? body : { endpoint: "/v1/chat/completions", body };
  return estimateEndpoint(request, given, { ...ctx, consumer });
}
