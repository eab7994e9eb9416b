/**
 * The hub's part in a hub of several processes, when `options.cluster` asks for one: it
 * joins in the background (Redis, the link endpoint, the directory), then announces the
 * sessions already open; until it has joined, this process serves its own nodes only.
 */
import { SrpError, type Identity } from "@srp/core";
import { clusterRedis, newProcessId, startCluster, type ClusterOptions, type HubCluster } from "../cluster/cluster.js";
import { DIRECTORY_TIMINGS } from "../cluster/directory.js";
import { SharedHandshakeFailures, type HandshakeFailureGate } from "../cluster/shared-handshakes.js";
import { SharedLimits } from "../cluster/shared-limits.js";
import { RedisNonceStore } from "../cluster/shared-nonces.js";
import type { KeyLimits } from "../limits/key-limits.js";
import { RedisKeyLimits } from "../limits/redis-limits.js";
import { SharedWaitOrder } from "../cluster/shared-queue.js";
import type { ClientLimiter } from "../limits.js";
import type { NonceStore } from "../nonces.js";
import type { Router } from "../routing/router.js";
import type { WaitQueue } from "../routing/wait-queue.js";
import type { JobDispatch } from "./job-dispatch.js";
import type { SessionRegistry } from "./session-registry.js";
import type { StorageErrorSink } from "./types.js";

/** What joining the cluster needs. */
export interface ClusterSetupOptions {
  readonly options: ClusterOptions | undefined;
  readonly identity: Identity;
  readonly router: Router;
  readonly waiting: WaitQueue;
  readonly jobs: JobDispatch;
  /** The limits on strangers, whose spending the processes share. */
  readonly limiter: ClientLimiter;
  /** The registry is made after this part (it reports to it): looked up when the cluster starts. */
  readonly registry: () => SessionRegistry;
  readonly storageError: StorageErrorSink;
}

/** The hub's cluster part. */
export interface ClusterSetup {
  /** The nonce memory the hub's processes share (in Redis), when there is a cluster. */
  readonly nonces: NonceStore | undefined;
  /** The failed-handshake limit kept exact across the hub's processes (in Redis), when there is a cluster and the limit is on. */
  readonly handshakeFailures: HandshakeFailureGate | undefined;
  /** API keys' rate limits kept exact across the hub's processes (in Redis), when there is a cluster. */
  readonly keyLimits: KeyLimits | undefined;
  /** Resolves once this process has joined (at once without a cluster); rejects when it could not. */
  readonly ready: Promise<void>;
  /** The cluster, once joined. */
  current(): HubCluster | undefined;
  /** Waits for what other processes announced until a moment ago (see {@link HubCluster.catchUp}); undefined without a cluster. */
  readonly catchUp: ((models: readonly string[]) => Promise<void>) | undefined;
  /** Leaves the directory (first step of closing: other processes stop sending jobs here). */
  leave(): Promise<void>;
  /** Leaves the cluster (last step of closing). */
  close(): Promise<void>;
}

/** Joins the hub's cluster when the options ask for one. */
export function setUpCluster(o: ClusterSetupOptions): ClusterSetup {
  let cluster: HubCluster | undefined;
  let closed = false;
  if (!o.options)
    return {
      nonces: undefined,
      handshakeFailures: undefined,
      keyLimits: undefined,
      catchUp: undefined,
      ready: Promise.resolve(),
      current: () => undefined,
      leave: async () => {},
      close: async () => {},
    };
  const processId = o.options.processId ?? newProcessId();
  const redis = clusterRedis(o.options, o.identity.id, processId);
  const nonces = new RedisNonceStore(redis.commands, { onError: (op, error) => o.storageError(`cluster: nonce ${op}`, error) });
  const limits = new SharedLimits(o.limiter, redis.commands, {
    processId,
    onError: (op, error) => o.storageError(`cluster: limits ${op}`, error),
  });
  // API keys' rate limits (SRP-CON-087), one bucket per key hub-wide.
  const keyLimits = new RedisKeyLimits(redis.commands, {
    processId,
    onError: (op, error) => o.storageError(`cluster: key limits ${op}`, error),
  });
  const failureRate = o.limiter.rateOf("handshakeFailures");
  const handshakeFailures = failureRate
    ? new SharedHandshakeFailures(redis.commands, failureRate, (error) => o.storageError("cluster: handshake limit", error))
    : undefined;
  // First in, first out across the processes (SRP-CON-067), under the same bounds hub-wide (SRP-CON-068).
  const order = new SharedWaitOrder(redis.commands, {
    processId,
    deadAfterMs: o.options.timings?.deadAfterMs ?? DIRECTORY_TIMINGS.deadAfterMs,
    maxWaiters: o.waiting.options.maxWaiters,
    maxWaitersPerAccount: o.waiting.options.maxWaitersPerAccount,
    maxWaitMs: o.waiting.options.maxWaitMs,
    onError: (op, error) => o.storageError(`cluster: queue ${op}`, error),
  });
  const ready = startCluster(
    o.options,
    {
      identity: o.identity,
      processId,
      router: o.router,
      takeOwner: (jobId) => o.jobs.takeOwner(jobId),
      forgetPosition: (nodeId) => o.jobs.forgetPosition(nodeId),
      setJobOwner: (jobId, accountId, reservationId) => o.jobs.setJobOwner(jobId, accountId, reservationId),
      cancel: (live, jobId, reason, failed) => o.jobs.cancel(live, jobId, reason as Parameters<JobDispatch["cancel"]>[2], failed),
      session: (nodeId) => o.registry().session(nodeId),
      revalidate: () => o.registry().revalidate(),
      evict: (session) =>
        session.fail(new SrpError("session.replaced", "a newer session for this node id was opened on another process of this hub")),
      notify: (model) => o.waiting.notify(model),
      loadChanged: (host, instanceId) => o.router.loadChanged(host, instanceId),
      onError: (what, error) => o.storageError(`cluster: ${what}`, error),
    },
    redis,
    processId,
  ).then(async (c) => {
    if (closed) return void (await c.close());
    cluster = c;
    limits.start();
    o.waiting.order = order;
    for (const session of o.registry().byNode()) if (session.state === "open") void c.opened(session);
  });
  ready.catch((error: unknown) => {
    o.storageError("cluster: join", error);
    limits.stop();
    void redis.close();
  });
  return {
    nonces,
    handshakeFailures,
    keyLimits,
    catchUp: async (models) => cluster?.catchUp(models),
    ready,
    current: () => cluster,
    leave: async () => cluster?.leave(),
    async close() {
      closed = true;
      const c = cluster;
      cluster = undefined;
      if (o.waiting.order === order) o.waiting.order = undefined;
      await keyLimits.close();
      // Before joining the connection may not be up: nothing is written then.
      if (c) await limits.close();
      else limits.stop();
      await c?.close();
    },
  };
}
