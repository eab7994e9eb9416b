/**
 * The embeddable hub. `createHub` returns a Web-standard `fetch` handler for the HTTP
 * surface, an `upgrade` handler for the provider WebSocket endpoint, and helpers to
 * attach both to a `node:http` server or to listen on a port. It wires the parts under
 * `src/hub/`, each of which owns its state and timers:
 *
 * - `storage.ts`: which book keeps what (`storage`, `receipts`, `ledger`, `admin`, …);
 * - `session-registry.ts`: the provider endpoint and its sessions;
 * - `job-dispatch.ts`: jobs' owners, receipts and the reservations of cancelled jobs;
 * - `probes.ts`, `statements.ts`, `maintenance.ts`: probes, statements, housekeeping;
 * - `x402-setup.ts`, `discovery.ts`: x402 payments and the discovery document;
 * - `endpoints.ts` and `routes.ts`: the HTTP route table and its dispatcher;
 * - `requests.ts`, `../metrics.ts` and `../tracing.ts`: request ids, the `request` event,
 *   Prometheus metrics and OpenTelemetry spans;
 * - `ledger-watch.ts`: the `ledger` event (reservations held, settled, released).
 */
import { EventEmitter } from "node:events";
import { SUPPORTED_VERSIONS } from "@srp/core";
import { ASYNC_JOB_LIMITS, FRAME_LIMITS, type AsyncJobsAnnouncement } from "@srp/core/schema";
import { useNodeCrypto } from "@srp/core/node";
import { Batches } from "./api/batch.js";
import { AsyncJobs } from "./api/async-jobs.js";
import { ByteBudget } from "./async-result.js";
import { SuspendedJobs } from "./hub/suspended-jobs.js";
import { gateHttp } from "./gate.js";
import { PayoutTracker } from "./ledger/payout-tracker.js";
import { PAYOUT_DEFAULTS } from "./ledger/payout-terms.js";
import { ClientLimiter } from "./limits.js";
import { Router } from "./routing/router.js";
import { MemoryRoutingStore } from "./routing/store.js";
import { WaitQueue } from "./routing/wait-queue.js";
import { consumerContext, type HubParts } from "./hub/api-contexts.js";
import { discoveryDocument } from "./hub/discovery.js";
import { hubRoutes } from "./hub/endpoints.js";
import { createJobDispatch } from "./hub/job-dispatch.js";
import { startMaintenance } from "./hub/maintenance.js";
import { nodeServers } from "./hub/node-server.js";
import type { HubOptions } from "./hub/options.js";
import { startProbes } from "./hub/probes.js";
import { dispatch } from "./hub/routes.js";
import { setUpCluster } from "./hub/cluster-setup.js";
import { createSessionRegistry } from "./hub/session-registry.js";
import { startStatements } from "./hub/statements.js";
import { hubBooks } from "./hub/storage.js";
import { observeRequests } from "./hub/requests.js";
import { createMetrics } from "./metrics.js";
import { LedgerWatch } from "./hub/ledger-watch.js";
import { MemoryKeyLimits } from "./limits/memory-limits.js";
import type { Hub, HubEvents } from "./hub/types.js";
import { x402Payments } from "./hub/x402-setup.js";
import { cardContext } from "./hub/card-setup.js";

export {
  PROVIDER_PATH,
  type Hub,
  type HubEvents,
  type HubMetrics,
  type LedgerEvent,
  type RequestEvent,
  type SessionInfo,
} from "./hub/types.js";
export type { HubMetricsOptions } from "./metrics.js";
export type { HubOptions, HubX402Options, HubResponsesOptions, HubAsyncJobOptions } from "./hub/options.js";

// Native Ed25519 (libsodium when it loads, else OpenSSL) and SHA-256 for everything this process signs and verifies.
useNodeCrypto();

/** The frame limit of a hub's options, checked against the protocol's bounds. */
function frameLimitOf(options: HubOptions): number {
  const maxFrameBytes = options.maxFrameBytes ?? FRAME_LIMITS.default;
  if (maxFrameBytes < FRAME_LIMITS.min || maxFrameBytes > FRAME_LIMITS.max)
    throw new RangeError(`maxFrameBytes must be within ${FRAME_LIMITS.min}..${FRAME_LIMITS.max}`);
  if (options.adminToken !== undefined && options.adminToken.length < 16) throw new RangeError("adminToken must be at least 16 characters");
  const metricsToken = options.metrics?.token;
  if (metricsToken !== undefined && metricsToken.length < 16) throw new RangeError("metrics.token must be at least 16 characters");
  return maxFrameBytes;
}

/**
 * What a hub announces of async jobs to nodes (SRP-JOB-039), checked against the protocol's
 * bounds and its frame limit (a part's base64 form, with the frame's other members, fits one
 * frame); undefined when it takes none. The resume window (default 2 minutes) keeps a node's
 * async jobs across a reconnect (SRP-JOB-045); past it they are failed over (SRP-JOB-050).
 */
export function asyncAnnouncement(options: Pick<HubOptions, "asyncJobs">, maxFrameBytes: number): AsyncJobsAnnouncement | undefined {
  if (options.asyncJobs === false) return undefined;
  const partBytes = options.asyncJobs?.partBytes ?? ASYNC_JOB_LIMITS.defaultPartBytes;
  const maxResultBytes = options.asyncJobs?.maxResultBytes ?? ASYNC_JOB_LIMITS.defaultMaxResultBytes;
  if (!Number.isSafeInteger(partBytes) || partBytes < ASYNC_JOB_LIMITS.minPartBytes || partBytes > ASYNC_JOB_LIMITS.maxPartBytes)
    throw new RangeError(`asyncJobs.partBytes must be within ${ASYNC_JOB_LIMITS.minPartBytes}..${ASYNC_JOB_LIMITS.maxPartBytes}`);
  if (Math.ceil(partBytes / 3) * 4 + 1024 > maxFrameBytes)
    throw new RangeError(`asyncJobs.partBytes ${partBytes} does not fit a ${maxFrameBytes}-byte frame in base64`);
  if (!Number.isSafeInteger(maxResultBytes) || maxResultBytes < partBytes || maxResultBytes > ASYNC_JOB_LIMITS.maxResultBytes)
    throw new RangeError(`asyncJobs.maxResultBytes must be within partBytes..${ASYNC_JOB_LIMITS.maxResultBytes}`);
  const resumeWindowMs = options.asyncJobs?.resumeWindowMs ?? ASYNC_JOB_LIMITS.defaultResumeWindowMs;
  if (!Number.isSafeInteger(resumeWindowMs) || resumeWindowMs < 0 || resumeWindowMs > ASYNC_JOB_LIMITS.maxResumeWindowMs)
    throw new RangeError(`asyncJobs.resumeWindowMs must be within 0..${ASYNC_JOB_LIMITS.maxResumeWindowMs}`);
  return { partBytes, maxResultBytes, resumeWindowMs };
}

/** What running async jobs' results may hold in memory at once (default 512 MiB), checked. */
function resultBudgetOf(options: Pick<HubOptions, "asyncJobs">): number {
  const max = (options.asyncJobs || undefined)?.maxHeldBytes ?? 512 * 1024 * 1024;
  if (!Number.isSafeInteger(max) || max < ASYNC_JOB_LIMITS.minPartBytes)
    throw new RangeError("asyncJobs.maxHeldBytes must be an integer of at least 65536");
  return max;
}

/**
 * Creates an embeddable hub.
 *
 * @example
 * import { createServer } from "node:http";
 * import { generateIdentity } from "@srp/core";
 * import { createHub, MemoryAccountStore, SqliteStore } from "@srp/hub";
 *
 * const store = new SqliteStore("./hub.db");
 * const accounts = new MemoryAccountStore();
 * accounts.add({ id: "acct_1", apiKeys: ["srp_example_key_123"] });
 * const hub = createHub({ identity: generateIdentity(), accounts, storage: store });
 * const server = createServer();
 * hub.attach(server);
 * server.listen(8787);
 */
export function createHub(options: HubOptions): Hub {
  const maxFrameBytes = frameLimitOf(options);
  const announcement = asyncAnnouncement(options, maxFrameBytes);
  // Async jobs kept between two sessions of their node for the resume window (SRP-JOB-045).
  const suspended = announcement ? new SuspendedJobs(announcement.resumeWindowMs) : undefined;
  const versions = options.versions ?? SUPPORTED_VERSIONS;
  const emitter = new EventEmitter<HubEvents>();
  const storageError = (what: string, error: unknown) =>
    emitter.emit("storage.error", { what, message: (error as Error)?.message ?? String(error) });
  // The books the hub's parts use: the ledger's holds and releases reported on the `ledger` event (`hub/ledger-watch.ts`).
  const stored = hubBooks(options);
  const ledgerWatch = new LedgerWatch(emitter);
  const books = { ...stored, ledger: stored.ledger && ledgerWatch.wrap(stored.ledger) };
  const payments = x402Payments({
    options: options.x402,
    requestTimeoutMs: options.requestTimeoutMs ?? 120_000,
    ledger: stored.ledger,
    book: books.payments,
    onEvent: (e) => emitter.emit("payment", e),
  });
  const limiter = new ClientLimiter(options.limits);
  const router = new Router(options.routing ?? new MemoryRoutingStore(), options.routingConfig ?? {}, options.random ?? Math.random);
  router.onBreakerChange = (change) => emitter.emit("breaker", change);
  const waiting = new WaitQueue(options.queue ?? {});
  waiting.onWaitEnd = (e) => emitter.emit("queue.wait", e);
  const unwatchPayouts = options.onchainPayouts?.watch((e) => emitter.emit("payout", e));
  const payouts = new PayoutTracker({ ...PAYOUT_DEFAULTS, ...options.payouts }, options.payoutState);
  const maintenance = startMaintenance({
    router,
    ledger: books.ledger,
    payments,
    limiter,
    wallets: books.wallets,
    paymentBook: books.payments,
    responses: books.responses,
    storageError,
  });
  const jobs = createJobDispatch({
    identity: options.identity,
    router,
    receipts: books.receipts,
    ledger: books.ledger,
    payouts,
    emitter,
    storageError,
    cancelGraceMs: options.cancelGraceMs ?? 30_000,
    ledgerWatch,
  });
  const probes = startProbes(router, options.probeTimeoutMs ?? 10_000);
  const statements = startStatements({
    identity: options.identity,
    book: books.statements,
    emitter,
    storageError,
    intervalMs: options.statementIntervalMs ?? 3_600_000,
    sessions: () => registry.byNode(),
  });
  const cluster = setUpCluster({
    options: options.cluster,
    identity: options.identity,
    router,
    waiting,
    jobs,
    limiter,
    registry: () => registry,
    storageError,
  });
  const registry = createSessionRegistry({
    settings: cluster.nonces && !options.nonces ? { ...options, nonces: cluster.nonces } : options,
    versions,
    maxFrameBytes,
    ...(announcement
      ? {
          asyncJobs: announcement,
          resultBudget: new ByteBudget(resultBudgetOf(options)),
          ...(suspended ? { suspended } : {}),
        }
      : {}),
    limiter,
    emitter,
    router,
    payouts,
    waiting,
    storageError,
    hooks: { ...jobs.sessionHooks, onProbeResult: probes.onResult, onDispute: statements.onDispute },
    observer: cluster.current,
    handshakeFailures: cluster.handshakeFailures,
  });
  // API keys' rate limits: shared in Redis by a hub of several processes, else in memory.
  const keyLimits = cluster.keyLimits ?? new MemoryKeyLimits();
  const parts: HubParts = {
    options,
    books,
    router,
    waiting,
    payouts,
    jobs,
    payments,
    maxFrameBytes,
    ledgerReady: maintenance.ledgerReady,
    storageError,
    connectedAccount: registry.connectedAccount,
    catchUp: cluster.catchUp,
    keyLimits,
  };
  const api = consumerContext(parts);
  const cards = cardContext(parts, (e) => emitter.emit("card", e));
  const batches = new Batches(api, { ...options.batches, store: books.batches });
  const asyncJobs = announcement
    ? new AsyncJobs(api, {
        ...(options.asyncJobs || {}),
        store: books.asyncJobs,
        ...(options.publicUrl ? { publicUrl: options.publicUrl } : {}),
      })
    : undefined;
  if (asyncJobs) api.asyncJobs = asyncJobs;
  const discovery = (baseUrl: string) =>
    discoveryDocument(
      {
        hubId: options.identity.id,
        versions,
        maxFrameBytes,
        batch: books.ledger?.reserveMany !== undefined,
        account: books.books !== undefined,
        wallet: books.wallets !== undefined,
        x402: payments !== undefined,
        cards: cards !== undefined,
        asyncJobs: asyncJobs !== undefined,
      },
      baseUrl,
    );
  // A revocation closes the revoked sessions on every process of the hub before it is answered (SRP-SEC-022).
  const revalidate = async () => {
    const closed = await registry.revalidate();
    await cluster.current()?.revalidateOthers();
    return closed;
  };
  const metrics = options.metrics ? createMetrics({ emitter, router, waiting, sessions: registry.sessions }) : undefined;
  const routes = hubRoutes({ ...parts, api, batches, asyncJobs, discovery, sessions: registry.sessions, revalidate, metrics, cards });
  let closing = false;
  // Every response carries `x-request-id`; the `request` event reports each request once (`hub/requests.ts`).
  const fetch: Hub["fetch"] = observeRequests(emitter, routes, (request, client) =>
    gateHttp(limiter, request, client, (r) => dispatch(routes, r, { draining: closing })),
  );
  const servers = nodeServers({ fetch, handleUpgrade: registry.handleUpgrade, maxBodyBytes: maxFrameBytes });

  const close = async (): Promise<void> => {
    closing = true;
    waiting.close();
    // A closing hub resumes nothing: jobs waiting for their node to come back are lost now, not drained.
    suspended?.close();
    // Other processes stop sending jobs here; the jobs they sent that run here drain with the others.
    await cluster.leave();
    const drainMs = options.drainTimeoutMs ?? 30_000;
    const until = Date.now() + drainMs;
    await Promise.all([batches.close(drainMs), asyncJobs?.close(drainMs)]);
    while (registry.busy() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    probes.stop();
    statements.stop();
    unwatchPayouts?.();
    maintenance.stop();
    registry.stopChecks();
    await cluster.close();
    await jobs.close();
    await registry.close(options.reconnectAfterMs ?? 5000);
    await servers.close();
    // Routing and payout state kept in a database is written out before the caller closes it.
    await router.store.flush?.().catch((error: unknown) => storageError("routing.flush", error));
    await payouts.state.flush?.().catch((error: unknown) => storageError("payouts.flush", error));
  };

  return Object.assign(emitter, {
    id: options.identity.id,
    fetch,
    handleUpgrade: registry.handleUpgrade,
    attach: servers.attach,
    listen: servers.listen,
    sessions: registry.sessions,
    discovery,
    router,
    payments,
    metrics,
    receipts: books.receipts,
    admin: books.admin,
    ledger: stored.ledger,
    books: books.books,
    responses: books.responses,
    waiting,
    issueStatements: statements.issue,
    revalidateSessions: revalidate,
    close,
    ready: () => cluster.ready,
  });
}
