/**
 * Read-only views the dashboard shows that no other endpoint gives (docs/dashboard.md):
 *
 *   GET /v1/provider/nodes     (an account's API key) the account's connected nodes: their
 *                              instances with load, breaker and health, payout wallet,
 *                              recent statements; and the disputes its nodes raised
 *   GET /admin/v1/network      (admin token) supply and demand per model: instances, slots,
 *                              jobs running, requests waiting, breakers; every instance
 *   GET /admin/v1/disputes     (admin token) the disputes nodes raised, newest first
 *
 * Each walks the live routing table once (linear in instances): for people, not for load.
 */
import { SrpError } from "@srp/core";
import type { Dispute, Statement } from "@srp/core/schema";
import type { AccountStore } from "../accounts.js";
import { money } from "../api/account.js";
import { adminAuthorized } from "../api/admin.js";
import { authenticate, errorResponse, fail } from "../api/http.js";
import type { StatementBook } from "../ledger/statements.js";
import { breakerStatus, type BreakerStatus, type CandidateView } from "../routing/policy.js";
import type { Router } from "../routing/router.js";
import type { WaitQueue } from "../routing/wait-queue.js";
import type { WalletBook } from "../storage/wallet-book.js";

/** A connected provider session as the views need it. */
export interface ViewSession {
  readonly sessionId: string;
  readonly nodeId: string;
  readonly accountId: string;
  readonly version: number;
  readonly lastSeen: number;
}

/** What the views read. */
export interface ViewsContext {
  readonly accounts: AccountStore;
  readonly router: Router;
  readonly waiting: WaitQueue;
  readonly statements: StatementBook | undefined;
  readonly wallets: WalletBook | undefined;
  /** The admin token; undefined: the admin views are 404 like the rest of the admin API. */
  readonly adminToken: string | undefined;
  sessions(): readonly ViewSession[];
}

/** Statements listed per node (the newest). */
const STATEMENTS_PER_NODE = 10;
/** Disputes listed. */
const DISPUTES_LISTED = 100;

/** One instance in the views' JSON (pure). */
export function instanceJson(v: CandidateView, now: number) {
  return {
    key: v.key,
    node_id: v.nodeId ?? null,
    model: v.model,
    capabilities: v.capabilities,
    context_length: v.contextLength,
    price: v.price,
    active: v.active,
    capacity: v.capacity,
    breaker: breakerStatus(v.breaker, now),
    health: v.health,
    first_seen: v.firstSeen,
  };
}

/** One statement in the views' JSON (pure). */
function statementJson(s: Statement) {
  return {
    statement_id: s.statementId,
    period: s.period,
    receipts: s.receipts,
    earned: money(BigInt(s.earned)),
    paid: money(BigInt(s.paid)),
    balance: money(BigInt(s.balance)),
    issued_at: s.issuedAt,
  };
}

/** One dispute in the views' JSON (pure). */
function disputeJson(d: { nodeId: string; accountId: string; receivedAt: number; dispute: Dispute }) {
  return { node_id: d.nodeId, account_id: d.accountId, received_at: d.receivedAt, dispute: d.dispute };
}

/** Every live instance's view, grouped by model. */
function liveViews(router: Router, now: number): Map<string, CandidateView[]> {
  return router.catalog(now);
}

/** `GET /v1/provider/nodes`. */
export async function getProviderNodes(request: Request, ctx: ViewsContext): Promise<Response> {
  const account = await authenticate(request, ctx.accounts);
  if (account instanceof SrpError) return errorResponse(account);
  const now = Date.now();
  const mine = ctx.sessions().filter((s) => s.accountId === account.id);
  const views = [...liveViews(ctx.router, now).values()].flat();
  const nodes = await Promise.all(
    mine.map(async (s) => {
      const binding = await ctx.wallets?.payoutBinding(s.nodeId);
      const statements = ctx.statements ? await ctx.statements.statementsOf(s.nodeId, STATEMENTS_PER_NODE) : [];
      return {
        node_id: s.nodeId,
        session_id: s.sessionId,
        version: s.version,
        last_seen: s.lastSeen,
        instances: views.filter((v) => v.nodeId === s.nodeId).map((v) => instanceJson(v, now)),
        payout_wallet: binding ? { address: binding.address, bound_at: binding.boundAt } : null,
        statements: statements.slice(-STATEMENTS_PER_NODE).reverse().map(statementJson),
      };
    }),
  );
  const disputes = ctx.statements ? (await ctx.statements.disputes(DISPUTES_LISTED)).filter((d) => d.accountId === account.id) : [];
  return Response.json({ object: "list", data: nodes, disputes: disputes.map(disputeJson) });
}

/** Instances per breaker status (pure). */
function breakerCounts(views: readonly CandidateView[], now: number): Record<BreakerStatus, number> {
  const out: Record<BreakerStatus, number> = { closed: 0, parked: 0, probe_due: 0, probing: 0 };
  for (const v of views) out[breakerStatus(v.breaker, now)] += 1;
  return out;
}

/** The refusal of an admin view without the admin token. */
function unauthorized(): Response {
  return fail("api.unauthorized", "the admin API needs `Authorization: Bearer <admin token>`");
}

/** `GET /admin/v1/network`. */
export function getNetwork(request: Request, ctx: ViewsContext): Response {
  if (ctx.adminToken === undefined) return fail("api.not_found", "this hub has no admin API");
  if (!adminAuthorized(request, ctx.adminToken)) return unauthorized();
  const now = Date.now();
  const catalog = liveViews(ctx.router, now);
  const models = [...catalog.entries()]
    .filter(([, views]) => views.length > 0)
    .map(([model, views]) => ({
      model,
      instances: views.length,
      capacity: views.reduce((n, v) => n + v.capacity, 0),
      active: views.reduce((n, v) => n + v.active, 0),
      waiting: ctx.waiting.size(model),
      breakers: breakerCounts(views, now),
    }))
    .sort((a, b) => a.model.localeCompare(b.model));
  const instances = [...catalog.values()].flat().map((v) => instanceJson(v, now));
  return Response.json({ object: "srp.network", at: now, sessions: ctx.sessions().length, models, instances });
}

/** `GET /admin/v1/disputes`. */
export async function getDisputes(request: Request, ctx: ViewsContext): Promise<Response> {
  if (ctx.adminToken === undefined) return fail("api.not_found", "this hub has no admin API");
  if (!adminAuthorized(request, ctx.adminToken)) return unauthorized();
  const disputes = ctx.statements ? await ctx.statements.disputes(DISPUTES_LISTED) : [];
  return Response.json({ object: "list", data: disputes.map(disputeJson) });
}
