/**
 * The hub's HTTP surface as one route table: discovery, the consumer APIs, batches, async jobs,
 * accounts, wallets, futures, payouts, receipts, stored responses, the admin API and the
 * web dashboard.
 * Adding an endpoint is adding a line here.
 */
import { consumerOpenApi, DISCOVERY_PATH, type Discovery } from "@srp/core/schema";
import { getAccount, getHistory, getPricing, postEstimate, postRefund } from "../api/account.js";
import { CARD_DEPOSIT_PATH, CARD_WEBHOOK_PATH, postCardDeposit, postCardWebhook, type CardApiContext } from "../api/cards.js";
import { ADMIN_PREFIX, handleAdmin } from "../api/admin.js";
import { createKey, getSpend, KEYS_PATH, listKeys, revokeKey, updateKey } from "../api/keys.js";
import { countTokens, postMessages } from "../api/anthropic.js";
import { BATCH_PATH, type Batches } from "../api/batch.js";
import { serve, type ConsumerApiContext } from "../api/serve.js";
import type { AsyncJobs } from "../api/async-jobs.js";
import { RUNS_PATH, runsSurface, VIDEOS_PATH, videosSurface } from "../api/async-surfaces.js";
import { postCompletions } from "../api/completions.js";
import { DEPOSIT_PATH, postDeposit, postFuturesRefund } from "../api/futures.js";
import { fail } from "../api/http.js";
import { MODALITY_SURFACES, postModality } from "../api/modalities.js";
import { chatCompletions, getReceipt, listModels } from "../api/openai.js";
import { postPayoutVoucher } from "../api/payout-voucher.js";
import { postSolanaPayout, SOLANA_PAYOUT_PATH } from "../api/payout-solana.js";
import { handleStoredResponse, RESPONSES_PREFIX } from "../api/response-store.js";
import { postResponses } from "../api/responses.js";
import { getNonce, getPayoutWallet, postPayoutWallet, postWalletSignIn } from "../api/wallet.js";
import { X402_DISCOVERY_JSON_PATH, X402_DISCOVERY_PATH, x402Discovery } from "../api/x402-discovery.js";
import {
  accountContext,
  baseUrlOf,
  futuresContext,
  keysContext,
  solanaPayoutContext,
  walletContext,
  type HubParts,
} from "./api-contexts.js";
import type { Route } from "./routes.js";
import { METRICS_PATH, metricsResponse } from "../metrics.js";
import { DASHBOARD_PATH, dashboardResponse } from "../dashboard/assets.js";
import { getDisputes, getNetwork, getProviderNodes, type ViewsContext } from "../dashboard/views.js";
import { getPayments, getPayouts, type MoneyViewsContext } from "../dashboard/money-views.js";
import { PROVIDER_PATH, type HubMetrics, type SessionInfo } from "./types.js";

/** What the routes use beyond the hub's parts. */
export interface EndpointParts extends HubParts {
  /** What the consumer APIs run on (the batches run on the same). */
  readonly api: ConsumerApiContext;
  readonly batches: Batches;
  /** Async jobs (videos, runs), when the hub takes them. */
  readonly asyncJobs?: AsyncJobs | undefined;
  /** The discovery document for a base URL. */
  discovery(baseUrl: string): Discovery;
  /** Open provider sessions (admin API). */
  sessions(): SessionInfo[];
  /** Re-checks bindings after a revocation (admin API). */
  revalidate(): Promise<unknown>;
  /** The hub's metrics, when on (`GET /metrics` with a token). */
  metrics?: HubMetrics | undefined;
  /** Card deposits, when the hub takes them (`cards` option). */
  cards?: CardApiContext | undefined;
}

/** A public JSON document, cacheable and readable from any origin. */
function publicJson(body: unknown, maxAgeSeconds: number): Response {
  return Response.json(body, { headers: { "cache-control": `public, max-age=${maxAgeSeconds}`, "access-control-allow-origin": "*" } });
}

/** The 426 of the provider endpoint to a plain HTTP request. */
function websocketOnly(): Response {
  return Response.json(
    { error: { code: "protocol.unexpected_message", message: "this endpoint speaks WebSocket only" } },
    { status: 426, headers: { upgrade: "websocket" } },
  );
}

/** Discovery documents and the provider endpoint's plain-HTTP answer. */
function discoveryRoutes(p: EndpointParts): Route[] {
  const { payments, router } = p;
  return [
    { method: ["GET", "HEAD"], path: DISCOVERY_PATH, handle: (r) => publicJson(p.discovery(baseUrlOf(p.options, r)), 60) },
    ...[X402_DISCOVERY_PATH, X402_DISCOVERY_JSON_PATH].map(
      (path): Route => ({
        method: ["GET", "HEAD"],
        path,
        handle: (r) =>
          payments
            ? publicJson(x402Discovery(payments, baseUrlOf(p.options, r), router, { deposits: p.books.books !== undefined }), 60)
            : fail("api.not_found", "this hub takes no x402 payments"),
      }),
    ),
    { method: ["GET", "HEAD"], path: "/openapi.json", handle: (r) => publicJson(consumerOpenApi(baseUrlOf(p.options, r)), 300) },
    { method: "*", path: PROVIDER_PATH, handle: websocketOnly },
  ];
}

/** The consumer APIs that run jobs (refused while the hub drains), and what serves them. */
function consumerRoutes(p: EndpointParts): Route[] {
  const { api } = p;
  return [
    { method: "POST", path: "/v1/chat/completions", draining: "refuse", handle: (r) => chatCompletions(r, api) },
    { method: "POST", path: "/v1/messages", draining: "refuse", handle: (r) => postMessages(r, api) },
    { method: "POST", path: "/v1/messages/count_tokens", handle: (r) => countTokens(r, api) },
    { method: "POST", path: "/v1/responses", draining: "refuse", handle: (r) => postResponses(r, api) },
    { method: "POST", path: "/v1/completions", draining: "refuse", handle: (r) => postCompletions(r, api) },
    ...Object.keys(MODALITY_SURFACES).map(
      (path): Route => ({ method: "POST", path, draining: "refuse", handle: (r) => postModality(r, api, path) }),
    ),
    { method: "POST", path: BATCH_PATH, draining: "refuse", handle: (r) => p.batches.create(r) },
    ...asyncJobRoutes(p),
    {
      method: "GET",
      path: "/v1/models",
      // A hub of several processes: what the others announced until now is listed too (an offer acknowledged a moment ago).
      handle: async () => (await p.catchUp?.([]), listModels(p.router)),
    },
    { method: "GET", path: { prefix: "/v1/receipts/" }, handle: (r, { id }) => getReceipt(r, id, api) },
    {
      method: "*",
      path: { prefix: RESPONSES_PREFIX },
      handle: (r, { path }) =>
        handleStoredResponse(r, path, { accounts: p.options.accounts, responses: p.books.responses, storageError: p.storageError }),
    },
  ];
}

/**
 * Jobs: `GET /v1/jobs/{id}` for batches and async jobs alike (by the id's prefix), an async
 * job's artifacts and deletion; videos in OpenAI's Videos API shape; runs.
 */
function asyncJobRoutes(p: EndpointParts): Route[] {
  const { api, asyncJobs: jobs } = p;
  const none = () => fail("api.not_found", "this hub runs no async jobs");
  const jobRoute = (r: Request, id: string): Promise<Response> | Response => {
    const [jobId = "", part, name] = id.split("/");
    if (jobId.startsWith("batch_") && part === undefined)
      return r.method === "GET" ? p.batches.get(r, jobId) : fail("api.method_not_allowed", "use GET");
    if (!jobs) return none();
    if (part === undefined) return r.method === "DELETE" ? jobs.remove(r, jobId) : jobs.get(r, jobId);
    if (part === "artifacts" && name !== undefined && r.method === "GET") return jobs.artifact(r, jobId, name);
    return fail("api.not_found", `no route for ${r.method} /v1/jobs/${id}`);
  };
  const videoRoute = (r: Request, id: string): Promise<Response> | Response => {
    if (!jobs) return none();
    const [videoId = "", part] = id.split("/");
    if (!videoId.startsWith("video_")) return fail("api.not_found", `no video ${videoId}`);
    if (part === undefined) return r.method === "DELETE" ? jobs.remove(r, videoId) : jobs.get(r, videoId);
    if (part === "content" && r.method === "GET") return jobs.content(r, videoId);
    return fail("api.not_found", `no route for ${r.method} /v1/videos/${id}`);
  };
  return [
    { method: ["GET", "DELETE"], path: { prefix: "/v1/jobs/" }, handle: (r, { id }) => jobRoute(r, id) },
    {
      method: ["GET", "POST"],
      path: VIDEOS_PATH,
      draining: "refuse",
      handle: (r) => (r.method === "POST" ? serve(r, api, videosSurface) : jobs ? jobs.listVideos(r) : none()),
    },
    { method: ["GET", "DELETE"], path: { prefix: `${VIDEOS_PATH}/` }, handle: (r, { id }) => videoRoute(r, id) },
    { method: "POST", path: RUNS_PATH, draining: "refuse", handle: (r) => serve(r, api, runsSurface) },
  ];
}

/** Accounts, wallets, futures and payouts. */
function accountRoutes(p: EndpointParts): Route[] {
  const account = { ...accountContext(p), ...(p.cards ? { cards: p.cards } : {}) };
  const wallet = walletContext(p);
  const futures = futuresContext(p);
  const voucher = { accounts: p.options.accounts, payouts: p.options.onchainPayouts, storageError: p.storageError };
  const solanaPayout = solanaPayoutContext(p);
  const keys = keysContext(p, () => p.revalidate());
  return [
    { method: "GET", path: "/v1/pricing", handle: () => getPricing(account) },
    { method: "POST", path: "/v1/estimate", handle: (r) => postEstimate(r, account, wallet.maxBodyBytes, p.api) },
    { method: "GET", path: "/v1/account", handle: (r) => getAccount(r, account) },
    { method: "GET", path: "/v1/account/history", handle: (r) => getHistory(r, account) },
    { method: "POST", path: "/v1/account/refund", handle: (r) => postRefund(r, account) },
    { method: ["GET", "POST"], path: KEYS_PATH, handle: (r) => (r.method === "POST" ? createKey(r, keys) : listKeys(r, keys)) },
    {
      method: ["PATCH", "DELETE"],
      path: { prefix: `${KEYS_PATH}/` },
      handle: (r, { id }) => (r.method === "PATCH" ? updateKey(r, id, keys) : revokeKey(r, id, keys)),
    },
    { method: "GET", path: "/v1/account/spend", handle: (r) => getSpend(r, keys) },
    { method: "POST", path: "/v1/payouts/voucher", handle: (r) => postPayoutVoucher(r, voucher) },
    { method: "POST", path: SOLANA_PAYOUT_PATH, handle: (r) => postSolanaPayout(r, solanaPayout) },
    { method: "GET", path: "/v1/auth/nonce", handle: () => getNonce(wallet) },
    { method: "POST", path: "/v1/auth/wallet", handle: (r) => postWalletSignIn(r, wallet) },
    {
      method: ["GET", "POST"],
      path: "/v1/nodes/payout-wallet",
      handle: (r) => (r.method === "POST" ? postPayoutWallet(r, wallet) : getPayoutWallet(r, wallet)),
    },
    { method: "POST", path: DEPOSIT_PATH, draining: "refuse", handle: (r) => postDeposit(r, futures) },
    { method: "POST", path: "/v1/futures/refund", handle: (r) => postFuturesRefund(r, futures) },
    ...cardRoutes(p.cards),
  ];
}

/** Card deposits and the card processor's webhook, when the hub takes cards. */
function cardRoutes(cards: CardApiContext | undefined): Route[] {
  if (!cards) return [];
  return [
    { method: "POST", path: CARD_DEPOSIT_PATH, draining: "refuse", handle: (r) => postCardDeposit(r, cards) },
    { method: "POST", path: CARD_WEBHOOK_PATH, handle: (r) => postCardWebhook(r, cards) },
  ];
}

/** The admin API (its own sub-dispatch), only when the hub has an admin token. */
function adminRoutes(p: EndpointParts): Route[] {
  const token = p.options.adminToken;
  if (token === undefined) return [];
  const ctx = { token, admin: p.books.admin, books: p.books.books, sessions: () => p.sessions(), revoked: () => p.revalidate() };
  return [{ method: "*", path: { prefix: ADMIN_PREFIX }, handle: (r, { path }) => handleAdmin(r, path, ctx) }];
}

/** `GET /metrics`, only when the hub keeps metrics and serves them to a token. */
function metricsRoutes(p: EndpointParts): Route[] {
  const { metrics } = p;
  const token = p.options.metrics?.token;
  if (metrics === undefined || token === undefined) return [];
  return [{ method: ["GET", "HEAD"], path: METRICS_PATH, handle: (r) => metricsResponse(r, metrics, token) }];
}

/** The web dashboard (its page and assets) and the read-only views it shows; before the admin API, whose prefix they share. */
function dashboardRoutes(p: EndpointParts): Route[] {
  const views: ViewsContext = {
    accounts: p.options.accounts,
    router: p.router,
    waiting: p.waiting,
    statements: p.books.statements,
    wallets: p.books.wallets,
    adminToken: p.options.adminToken,
    sessions: () => p.sessions(),
  };
  const money: MoneyViewsContext = { payments: p.books.payments, payouts: p.books.payouts, adminToken: p.options.adminToken };
  return [
    { method: ["GET", "HEAD"], path: { prefix: DASHBOARD_PATH }, handle: (r) => dashboardResponse(r) },
    { method: "GET", path: "/v1/provider/nodes", handle: (r) => getProviderNodes(r, views) },
    { method: "GET", path: "/admin/v1/network", handle: (r) => getNetwork(r, views) },
    { method: "GET", path: "/admin/v1/disputes", handle: (r) => getDisputes(r, views) },
    { method: "GET", path: "/admin/v1/payments", handle: (r) => getPayments(r, money) },
    { method: "GET", path: "/admin/v1/payouts", handle: (r) => getPayouts(r, money) },
  ];
}

/** Every route of the hub. */
export function hubRoutes(p: EndpointParts): Route[] {
  return [...discoveryRoutes(p), ...consumerRoutes(p), ...accountRoutes(p), ...dashboardRoutes(p), ...adminRoutes(p), ...metricsRoutes(p)];
}
