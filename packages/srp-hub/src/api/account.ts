/**
 * The consumer's money: `GET /v1/account` (balance, prepaid tier, spend, earnings),
 * `GET /v1/account/history` (the account's ledger, paginated), `POST /v1/account/refund`
 * (the unused prepaid balance back to the depositor), and the free `GET /v1/pricing`
 * and `POST /v1/estimate`. Amounts are `{ units, usd }`: USDC atomic units as a decimal
 * string, and the same in dollars.
 */
import { formatUsdc, SrpError } from "@srp/core";
import type { AccountStore } from "../accounts.js";
import { ledgerId, type HistoryEntry, type LedgerBooks } from "../ledger/ledger.js";
import { discounted, worstCase, type DiscountTier } from "../ledger/policy.js";
import { estimatePromptTokens } from "../routing/policy.js";
import type { Router } from "../routing/router.js";
import { authenticate, errorResponse, fail, formatDecimal, readJsonObject } from "./http.js";
import { maximumCost, outputLimit, preferences, promptTokenBound } from "./openai.js";

/** An amount in both forms. */
export interface Money {
  /** USDC atomic units (1e-6 USD), decimal string. */
  units: string;
  /** The same in USD, decimal string. */
  usd: string;
}

/** An amount in both forms. */
export function money(units: bigint): Money {
  return { units: units.toString(), usd: formatUsdc(units) };
}

/** What the account endpoints need. */
export interface AccountApiContext {
  accounts: AccountStore;
  books: LedgerBooks | undefined;
  router: Router;
  tiers: readonly DiscountTier[];
  signupCredits: bigint | undefined;
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
 * channel the deposit came by. An `Idempotency-Key` header makes retries safe.
 */
export async function postRefund(request: Request, ctx: AccountApiContext): Promise<Response> {
  const account = await authenticate(request, ctx.accounts);
  if (account instanceof SrpError) return errorResponse(account);
  if (!ctx.books) return noLedger();
  const key = request.headers.get("idempotency-key");
  if (key !== null && !/^[\x21-\x7e]{1,128}$/.test(key))
    return fail("api.invalid_body", "`Idempotency-Key` is 1-128 visible ASCII characters");
  const reference = `${account.id}:${key ?? ledgerId("refund")}`;
  const amount = await ctx.books.refund(account.id, reference);
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
    prepaid_tiers: ctx.tiers.map((t) => ({
      min_deposit: money(t.minUnits),
      discount_bps: t.discountBps,
      discount: `${formatDecimal(BigInt(t.discountBps), 2)} %`,
    })),
    models: models.sort((a, b) => a.model.localeCompare(b.model)),
  });
}

/** Output tokens assumed by the expected cost when the request sets no limit. */
const EXPECTED_OUTPUT_WITHOUT_LIMIT = 512;

/**
 * `POST /v1/estimate` (free; no payment, a key is optional and only adds the account's
 * discount): the maximum a chat request can cost (what admission reserves) and the
 * expected cost (estimated prompt tokens, half the output limit, cheapest price online).
 */
export async function postEstimate(request: Request, ctx: AccountApiContext, maxBodyBytes: number): Promise<Response> {
  const body = await readJsonObject(request, maxBodyBytes);
  if (body instanceof SrpError) return errorResponse(body);
  if (typeof body.model !== "string" || body.model.length === 0) return fail("api.invalid_body", "`model` is a required string");
  if (!Array.isArray(body.messages)) return fail("api.invalid_body", "`messages` must be an array");
  // The cheapest price online, remembered by the router: no scan of every instance per request.
  const cheapest = ctx.router.cheapest(body.model);
  if (cheapest === undefined) return fail("job.unknown_model", `model ${body.model} is not served by any online provider`);
  let discountBps = 0;
  if (request.headers.has("authorization") || request.headers.has("x-api-key")) {
    const account = await authenticate(request, ctx.accounts);
    if (account instanceof SrpError) return errorResponse(account);
    discountBps = ctx.books ? await ctx.books.discountOf(account.id) : 0;
  }
  const limit = outputLimit(body);
  if (limit instanceof SrpError) return errorResponse(limit);
  const prefs = preferences(body);
  if (prefs instanceof SrpError) return errorResponse(prefs);
  const max = maximumCost(ctx.router, body.model, { promptTokens: promptTokenBound(body), completionTokens: limit }, prefs.maxPrice, [
    "chat",
  ])!;
  const promptExpected = estimatePromptTokens(body);
  const outExpected = limit > 0 ? Math.ceil(limit / 2) : EXPECTED_OUTPUT_WITHOUT_LIMIT;
  const expected = discounted(worstCase(promptExpected, outExpected, cheapest), discountBps);
  return Response.json({
    object: "srp.estimate",
    model: body.model,
    maximum: money(max.cost),
    expected: money(expected),
    discount_bps: discountBps,
    basis: {
      maximum: {
        prompt_tokens: max.promptTokens,
        completion_tokens: max.completionTokens,
        price_per_million: max.price,
        note: "what admission reserves: the prompt's byte length bounds its tokens; the output limit, or the largest context online; the dearest instance",
      },
      expected: {
        prompt_tokens: promptExpected,
        completion_tokens: outExpected,
        price_per_million: { input: cheapest.input, output: cheapest.output },
        note: "about 4 characters per token; half the output limit; the cheapest instance online; your discount applied",
      },
    },
  });
}
