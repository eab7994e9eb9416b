/**
 * The provider WebSocket endpoint and its sessions (spec/v1/handshake.md): accepts
 * upgrades under the connection limits, runs each `ProviderSession`, keeps the current
 * session of each node, keeps the router, payout tracker and wait queue told of what the
 * sessions offer, re-checks bindings for revocations (SRP-SEC-022), and says goodbye on close.
 */
import type { AsyncJobsAnnouncement } from "@srp/core/schema";
import type { ByteBudget } from "../async-result.js";
import type { SuspendedJobs } from "./suspended-jobs.js";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { frameHardCap, HANDSHAKE_TIMING, type Identity, type SrpError } from "@srp/core";
import type { Corkable } from "@srp/core/node";
import { verifyMessage } from "viem";
import { WebSocketServer } from "ws";
import type { AccountStore } from "../accounts.js";
import type { HandshakeFailureGate } from "../cluster/shared-handshakes.js";
import { refusalError, refuseUpgrade, upgradeKey } from "../gate.js";
import type { PayoutTracker } from "../ledger/payout-tracker.js";
import type { ClientLimiter } from "../limits.js";
import { NonceMemory, type NonceStore } from "../nonces.js";
import { instanceKey, type Router } from "../routing/router.js";
import type { WaitQueue } from "../routing/wait-queue.js";
import { ProviderSession, type SessionContext } from "../session.js";
import type { HubOptions } from "./options.js";
import { PROVIDER_PATH, type HubEmitter, type SessionInfo, type StorageErrorSink } from "./types.js";

/** What the hub's other parts answer for its sessions: receipts, job ends, probes and disputes. */
export type SessionHooks = Pick<SessionContext, "settleReceipt" | "receiptPosition" | "onCancelledEnd" | "onProbeResult" | "onDispute">;

/** What the session registry works with. */
export interface SessionRegistryOptions {
  /** Session settings (identity, accounts, timings, limits per session). */
  readonly settings: Pick<
    HubOptions,
    "heartbeatIntervalMs" | "handshakeTimeoutMs" | "maxInstances" | "maxConcurrentJobs" | "refusedTiers" | "nonces"
  > & { identity: Identity; accounts: AccountStore };
  readonly versions: readonly number[];
  readonly maxFrameBytes: number;
  /** The async jobs the hub takes (SRP-JOB-039); absent: none. */
  readonly asyncJobs?: AsyncJobsAnnouncement;
  /** What running async jobs' results may hold in memory at once, across sessions. */
  readonly resultBudget?: ByteBudget;
  /** Async jobs kept between two sessions of their node for the resume window (SRP-JOB-045); absent: none kept. */
  readonly suspended?: SuspendedJobs;
  readonly limiter: ClientLimiter;
  readonly emitter: HubEmitter;
  readonly router: Router;
  readonly payouts: PayoutTracker;
  readonly waiting: WaitQueue;
  readonly storageError: StorageErrorSink;
  readonly hooks: SessionHooks;
  /** Told of sessions opening, changing, loading and closing (the hub's cluster part, once it has joined). */
  readonly observer?: () => SessionObserver | undefined;
  /** In a hub of several processes: the failed-handshake limit kept exact across them (SRP-SEC-018); absent: this process's own. */
  readonly handshakeFailures?: HandshakeFailureGate | undefined;
}

/** What another part of the hub learns of the registry's sessions. */
export interface SessionObserver {
  /** A session authenticated: resolves once the node's session on another process (if any) has ended, with whether there was one. */
  opened(session: ProviderSession): Promise<boolean>;
  /** A session's offers changed. */
  changed(session: ProviderSession): void;
  /** A session's load (jobs running, capacity reported) changed. */
  loaded(session: ProviderSession): void;
  /** A session ended. */
  closed(session: ProviderSession): void;
}

/** The provider endpoint's sessions. */
export interface SessionRegistry {
  /** Handles a `node:http` upgrade request; false if the path is not the provider endpoint. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Open, authenticated sessions, as the hub reports them. */
  sessions(): SessionInfo[];
  /** The current session of each node (open or closing). */
  byNode(): Iterable<ProviderSession>;
  /** The current open session of a node connected here. */
  session(nodeId: string): ProviderSession | undefined;
  /** The account a node is connected under now, or undefined when it is not connected. */
  connectedAccount(nodeId: string): string | undefined;
  /** Closes the open sessions whose API key or wallet binding was revoked; resolves with how many. */
  revalidate(): Promise<number>;
  /** Whether any session still runs a job. */
  busy(): boolean;
  /** Stops the periodic re-check of bindings (first step of closing, with the other timers). */
  stopChecks(): void;
  /** Stops the binding re-checks, says goodbye to every session and closes the endpoint. */
  close(reconnectAfterMs: number): Promise<void>;
}

/** A session as the hub reports it (pure). */
export function sessionInfo(s: ProviderSession): SessionInfo {
  return {
    sessionId: s.sessionId,
    nodeId: s.nodeId ?? "",
    accountId: s.account?.id ?? "",
    version: s.version ?? 0,
    instances: s.instances.size,
    lastSeen: s.lastSeen,
  };
}

/** Whether a wallet signed a message (false on any malformed input). */
async function verifyWallet(address: string, message: string, signature: string): Promise<boolean> {
  try {
    return await verifyMessage({ address: address as `0x${string}`, message, signature: signature as `0x${string}` });
  } catch {
    return false;
  }
}

/** The sessions' state. */
interface Registry {
  readonly byNode: Map<string, ProviderSession>;
  readonly all: Set<ProviderSession>;
  /** The client key of each provider connection still in its handshake. */
  readonly handshaking: Map<ProviderSession, string>;
  /**
   * Counts re-checks of bindings: a handshake whose account look-up straddles one (a
   * revocation may have gone through after it read the credential) looks it up again
   * before its welcome, as it is not yet among the sessions re-checked.
   */
  revocationEpoch: number;
}

/** The settings every session shares (pure). */
function sessionSettings(o: SessionRegistryOptions, nonces: NonceStore) {
  const s = o.settings;
  return {
    identity: s.identity,
    accounts: s.accounts,
    nonces,
    versions: o.versions,
    maxFrameBytes: o.maxFrameBytes,
    heartbeatIntervalMs: s.heartbeatIntervalMs ?? 15_000,
    handshakeTimeoutMs: s.handshakeTimeoutMs ?? HANDSHAKE_TIMING.handshakeTimeoutMs,
    maxInstances: s.maxInstances ?? 64,
    maxConcurrentJobs: s.maxConcurrentJobs ?? 256,
    refusedTiers: new Set(s.refusedTiers ?? ["subscription"]),
    verifyWalletSignature: verifyWallet,
    ...(o.asyncJobs ? { asyncJobs: o.asyncJobs } : {}),
    ...(o.resultBudget ? { resultBudget: o.resultBudget } : {}),
    ...(o.limiter.sessionMessages ? { messageRate: o.limiter.sessionMessages } : {}),
  };
}

/**
 * The hooks that keep a node's async jobs across its sessions (SRP-JOB-045, SRP-JOB-046): a
 * job of a session that ended is suspended, or resumed at once on the node's newer session
 * when that one has already had its first offer acknowledged; the node's next session takes
 * its suspended jobs after its first offer; a cancel reaches a job wherever it moved.
 */
function resumeHooks(
  suspended: SuspendedJobs,
  r: Registry,
): Pick<SessionContext, "suspendJob" | "onFirstOffer" | "cancelMoved" | "onAdoptedEnded"> {
  return {
    suspendJob(session, state) {
      // The node's newer session already took its first offer (and may have jobs): too late to resume in order; lost now.
      const newer = r.byNode.get(session.nodeId!);
      if (newer && newer !== session && newer.offered) return false;
      return suspended.suspend(session.nodeId!, state);
    },
    onFirstOffer(session) {
      for (const state of suspended.take(session.nodeId!)) {
        // Resumed only under the same credential and on an instance the node still offers; otherwise lost (failed over).
        if (state.binding !== session.bindingKey || !session.instances.has(state.job.instanceId)) {
          state.result.release();
          state.handle.onLost("the node came back without the job's binding or instance");
          continue;
        }
        session.adopt(state);
        suspended.moved(state.job.jobId, session);
      }
    },
    cancelMoved: (jobId, reason, message) => suspended.cancel(jobId, reason, message),
    onAdoptedEnded: (jobId) => suspended.ended(jobId),
  };
}

/** What every session tells its hub, kept in the registry's state. */
function sessionContext(o: SessionRegistryOptions, r: Registry): SessionContext {
  const { limiter, emitter, router } = o;
  const shared = o.handshakeFailures;
  const handshakeEnded = (session: ProviderSession, failed: boolean) => {
    const key = r.handshaking.get(session);
    if (key === undefined) return;
    r.handshaking.delete(session);
    limiter.handshakeEnded(key, failed);
    // The hub-wide count: every failure is charged (an honest handshake takes nothing).
    if (failed) shared?.charge(key);
  };
  /** Slots of a session's models may be free (instances came online, capacity reported): their first waiters retry. */
  const notifyWaiters = (session: ProviderSession) => {
    for (const instance of session.instances.values()) o.waiting.notify(instance.model);
  };
  return {
    ...sessionSettings(o, o.settings.nonces ?? new NonceMemory(2 * HANDSHAKE_TIMING.freshnessWindowMs)),
    ...o.hooks,
    revocationEpoch: () => r.revocationEpoch,
    replacedElsewhere: async (session) => (await o.observer?.()?.opened(session)) ?? false,
    admitAuth(session) {
      const key = r.handshaking.get(session);
      const refused = key === undefined ? undefined : limiter.auth(key);
      if (refused) return refusalError("session.rate_limited", refused);
      if (key === undefined || !shared) return undefined;
      return admitShared(shared, key);
    },
    onAuthenticated(session) {
      handshakeEnded(session, false);
      const nodeId = session.nodeId!;
      const previous = r.byNode.get(nodeId);
      r.byNode.set(nodeId, session);
      emitter.emit("session.open", { ...sessionInfo(session), replaced: previous !== undefined });
      return previous;
    },
    ...(o.suspended ? resumeHooks(o.suspended, r) : {}),
    onInstancesChanged(session) {
      router.sync(session);
      const nodeId = session.nodeId!;
      o.payouts.noteOffers(nodeId, [...session.instances.values()], (instanceId) => instanceKey(nodeId, instanceId));
      notifyWaiters(session);
      o.observer?.()?.changed(session);
    },
    onCapacityReported(session) {
      for (const id of session.instances.keys()) router.loadChanged(session, id);
      notifyWaiters(session);
      o.observer?.()?.loaded(session);
    },
    onLoadChanged(session, instanceId) {
      router.loadChanged(session, instanceId);
      o.observer?.()?.loaded(session);
    },
    onClosed(session, code, reason) {
      handshakeEnded(session, false);
      r.all.delete(session);
      router.remove(session);
      o.observer?.()?.closed(session);
      if (session.nodeId !== undefined && r.byNode.get(session.nodeId) === session) r.byNode.delete(session.nodeId);
      emitter.emit("session.close", { ...sessionInfo(session), code, reason });
    },
    onRejected(session, error) {
      handshakeEnded(session, error.code !== "session.rate_limited");
      r.all.delete(session);
      emitter.emit("handshake.rejected", { sessionId: session.sessionId, code: error.code, message: error.message });
    },
  };
}

/**
 * Asks the hub-wide failed-handshake limit whether an `auth` may be checked (SRP-SEC-018);
 * when the shared limit cannot answer, this process's own (already passed) decides.
 */
async function admitShared(shared: HandshakeFailureGate, key: string): Promise<SrpError | undefined> {
  const answer = await shared.reserve(key);
  if (answer === "unknown" || answer === undefined) return undefined;
  return refusalError("session.rate_limited", answer);
}

/** Accepts a provider connection under the connection and handshake limits (SRP-SEC-014..). */
function upgrade(
  o: SessionRegistryOptions,
  r: Registry,
  wss: WebSocketServer,
  ctx: SessionContext,
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): boolean {
  const path = (request.url ?? "/").split("?")[0];
  if (path !== PROVIDER_PATH) return false;
  const key = upgradeKey(o.limiter, request);
  const refused = o.limiter.connect(key);
  if (refused) {
    refuseUpgrade(socket, refused);
    return true;
  }
  let counted = true;
  const release = () => {
    if (counted) o.limiter.handshakeEnded(key, false);
    counted = false;
  };
  socket.once("close", release);
  wss.handleUpgrade(request, socket, head, (ws) => {
    socket.off("close", release);
    if (!counted) return ws.terminate();
    counted = false;
    const session = new ProviderSession(ws, ctx, socket as Duplex & Corkable);
    if (session.state === "await_auth") r.handshaking.set(session, key);
    else o.limiter.handshakeEnded(key, false);
    r.all.add(session);
  });
  return true;
}

/** Closes the open sessions whose binding was revoked (SRP-SEC-022). */
async function revalidate(o: SessionRegistryOptions, r: Registry): Promise<number> {
  r.revocationEpoch++;
  let closed = 0;
  for (const session of [...r.byNode.values()]) {
    try {
      if (await session.stillBound()) continue;
    } catch (e) {
      o.storageError(`check the binding of ${session.nodeId}`, e);
      continue;
    }
    session.revoke();
    closed++;
  }
  return closed;
}

/** Opens the provider endpoint; bindings are re-checked every `limits.bindingCheckIntervalMs`. */
export function createSessionRegistry(o: SessionRegistryOptions): SessionRegistry {
  const r: Registry = { byNode: new Map(), all: new Set(), handshaking: new Map(), revocationEpoch: 0 };
  // The codec, not ws, judges every frame up to the hard cap, so each gets its coded
  // `error` first (SRP-FRM-014, SRP-FRM-015): UTF-8 is checked in `decode`, and ws closes
  // (1009) only frames over twice the limit, before buffering them.
  const wss = new WebSocketServer({ noServer: true, maxPayload: frameHardCap(o.maxFrameBytes), skipUTF8Validation: true });
  const ctx = sessionContext(o, r);
  const interval = o.limiter.bindingCheckIntervalMs;
  const bindingTimer = interval > 0 ? setInterval(() => void revalidate(o, r), interval) : undefined;
  bindingTimer?.unref();
  return {
    handleUpgrade: (request, socket, head) => upgrade(o, r, wss, ctx, request, socket, head),
    sessions: () => [...r.byNode.values()].filter((s) => s.state === "open").map(sessionInfo),
    byNode: () => r.byNode.values(),
    session(nodeId) {
      const s = r.byNode.get(nodeId);
      return s?.state === "open" ? s : undefined;
    },
    connectedAccount(nodeId) {
      const s = r.byNode.get(nodeId);
      return s?.state === "open" ? s.account?.id : undefined;
    },
    revalidate: () => revalidate(o, r),
    busy: () => [...r.all].some((s) => s.jobCount > 0),
    stopChecks: () => clearInterval(bindingTimer),
    async close(reconnectAfterMs) {
      clearInterval(bindingTimer);
      // Nothing is kept for a resume once the hub closes: suspended jobs are lost now, and the sessions' jobs with them.
      o.suspended?.close();
      for (const s of r.all) s.goodbye("hub is shutting down", reconnectAfterMs);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
