/**
 * The operator's lists of money that crossed the hub's edge (docs/dashboard.md), read-only,
 * with the admin token:
 *
 *   GET /admin/v1/payments?limit=N&before=CURSOR   x402 payments, newest first
 *   GET /admin/v1/payouts?limit=N&before=CURSOR    on-chain payout vouchers, newest first
 *
 * Both page as `GET /v1/account/history` does: `limit` is 1..500 (default 50), `next` is the
 * cursor of the following page (null on the last) and goes back as `before`. Each page is
 * one bounded, indexed query on the books.
 */
import type { PaymentBook, PaymentRecord } from "../payments/book.js";
import type { PayoutList, PayoutRecord } from "../storage/payout-book.js";
import { money } from "../api/account.js";
import { adminAuthorized } from "../api/admin.js";
import { fail } from "../api/http.js";

/** What the lists read. */
export interface MoneyViewsContext {
  /** The x402 payment book; undefined (or one that cannot list): the list is empty. */
  readonly payments: PaymentBook | undefined;
  /** The payout vouchers; undefined: the list is empty. */
  readonly payouts: PayoutList | undefined;
  /** The admin token; undefined: the lists are 404 like the rest of the admin API. */
  readonly adminToken: string | undefined;
}

/** A page's position: strictly before this creation time and id. */
export interface PageCursor {
  readonly createdAt: number;
  readonly id: string;
}

/** A page request: how many rows, and before which one. */
export interface PageQuery {
  readonly limit: number;
  readonly before: PageCursor | undefined;
}

/** Rows per page when the request names no `limit`. */
export const DEFAULT_PAGE_LIMIT = 50;
/** The most rows one page lists. */
export const MAX_PAGE_LIMIT = 500;

/** The page a request asks for, or the reason it is refused (pure). */
export function pageQuery(url: URL): PageQuery | string {
  const limitText = url.searchParams.get("limit");
  const limit = limitText === null ? DEFAULT_PAGE_LIMIT : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) return `\`limit\` is 1..${MAX_PAGE_LIMIT}`;
  const cursor = url.searchParams.get("before");
  if (cursor === null) return { limit, before: undefined };
  const m = /^([0-9]{1,16}):([A-Za-z0-9_-]{1,100})$/.exec(cursor);
  if (!m) return "`before` is a cursor from a previous page's `next`";
  return { limit, before: { createdAt: Number(m[1]), id: m[2]! } };
}

/** The cursor of the page after `rows` (pure): null when the page was not full. */
export function nextCursor(rows: readonly { createdAt: number; id: string }[], limit: number): string | null {
  const last = rows.at(-1);
  return rows.length === limit && last ? `${last.createdAt}:${last.id}` : null;
}

/** One x402 payment in the list's JSON (pure); the signed authorization itself is left out. */
export function paymentJson(p: PaymentRecord) {
  return {
    id: p.id,
    payer: p.payer,
    account_id: p.accountId,
    amount: money(p.amount),
    state: p.state,
    mode: p.mode,
    network: p.network,
    asset: p.asset,
    credited: p.credited,
    served: p.served,
    tx_hash: p.txHash,
    error: p.error,
    created_at: p.createdAt,
    updated_at: p.updatedAt,
  };
}

/** Where a voucher is (pure): issued, its money being moved into the contract, moved there, or claimed on-chain. */
export function payoutState(p: Pick<PayoutRecord, "fundedTx" | "claimTx">): "issued" | "funding" | "funded" | "claimed" {
  if (p.claimTx !== null) return "claimed";
  if (p.fundedTx === null) return "issued";
  // A funding in progress marks its vouchers `pending:…` until its transaction is known.
  return p.fundedTx.startsWith("pending:") ? "funding" : "funded";
}

/** One payout voucher in the list's JSON (pure); the signature is left out. */
export function payoutJson(p: PayoutRecord) {
  const state = payoutState(p);
  return {
    id: p.id,
    account_id: p.accountId,
    payee: p.payee,
    amount: money(p.amount),
    fee: money(p.fee),
    total: money(p.total),
    state,
    chain_id: p.chainId,
    settlement: p.settlement,
    funded_tx: state === "funding" ? null : p.fundedTx,
    claim_tx: p.claimTx,
    created_at: p.createdAt,
  };
}

/** The admin check both lists make first: undefined when the request may go on. */
function refusal(request: Request, adminToken: string | undefined): Response | undefined {
  if (adminToken === undefined) return fail("api.not_found", "this hub has no admin API");
  if (!adminAuthorized(request, adminToken)) return fail("api.unauthorized", "the admin API needs `Authorization: Bearer <admin token>`");
  return undefined;
}

/** A list page: the rows as JSON and the cursor of the next page. */
async function listPage<R extends { createdAt: number; id: string }>(
  request: Request,
  adminToken: string | undefined,
  read: ((limit: number, before?: PageCursor) => Promise<R[]>) | undefined,
  json: (row: R) => unknown,
): Promise<Response> {
  const refused = refusal(request, adminToken);
  if (refused) return refused;
  const query = pageQuery(new URL(request.url));
  if (typeof query === "string") return fail("api.invalid_body", query);
  const rows = read ? await read(query.limit, query.before) : [];
  return Response.json({ object: "list", data: rows.map(json), next: nextCursor(rows, query.limit) });
}

/** `GET /admin/v1/payments`. */
export function getPayments(request: Request, ctx: MoneyViewsContext): Promise<Response> {
  const book = ctx.payments;
  return listPage(request, ctx.adminToken, book?.page ? (limit, before) => book.page!(limit, before) : undefined, paymentJson);
}

/** `GET /admin/v1/payouts`. */
export function getPayouts(request: Request, ctx: MoneyViewsContext): Promise<Response> {
  const book = ctx.payouts;
  return listPage(request, ctx.adminToken, book ? (limit, before) => book.page(limit, before) : undefined, payoutJson);
}
