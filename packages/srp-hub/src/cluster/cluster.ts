/**
 * One process's part in a hub of several processes (docs/deployment.md): it announces the
 * nodes connected here in the directory (Redis), keeps every node connected elsewhere in
 * its router as a {@link RemoteHost}, sends jobs for those over direct links, and runs the
 * jobs other processes send for its own nodes. Nodes that reconnect to another process
 * have their old session here ended (no ghost nodes).
 */
import { randomBytes, toBase64Url, type Identity } from "@srp/core";
import type { Router } from "../routing/router.js";
import type { ProviderSession } from "../session.js";
import { ModelWaiters, SharedBarrier } from "./catch-up.js";
import { ClusterDirectory, type DirectoryTimings } from "./directory.js";
import { ForwardedJobs, type ForwardedJobsDeps } from "./forwarded-jobs.js";
import { jobIdOf, linkKey, validProcessId, type JobEventOnLink, type JobOwner, type LinkMessage } from "./link-protocol.js";
import { PeerLinks, type Link } from "./links.js";
import { connectRedis, type RedisConnection } from "./redis.js";
import { RemoteHost, type RemoteHostDeps } from "./remote-host.js";
import { snapshotOf, type NodeSnapshot } from "./snapshot.js";

/** How a hub process joins the others of its hub. */
export interface ClusterOptions {
  /** The Redis server the processes share (`redis://host:port`). */
  redisUrl: string;
  /** This process's id (random by default; unique among the hub's processes). */
  processId?: string;
  /** Where this process listens for its peers' links: `127.0.0.1` and any free port by default. */
  link?: { host?: string; port?: number; advertiseHost?: string };
  /** Directory timings (tests shorten them). */
  timings?: Partial<DirectoryTimings>;
}

/** What the cluster needs from its hub. */
export interface ClusterDeps extends ForwardedJobsDeps {
  readonly identity: Identity;
  readonly router: Router;
  /** Takes the payer recorded for a job this process admitted. */
  takeOwner(jobId: string): JobOwner | undefined;
  /** Slots of a model may have freed or appeared: its first waiter retries. */
  notify(model: string): void;
  /** The load of an instance changed (the router's index follows it). */
  loadChanged(host: RemoteHost, instanceId: string): void;
  /** A node is connected to another process: the receipt position this process remembers for it may go stale. */
  forgetPosition(nodeId: string): void;
  /** Ends a session here whose node reconnected to another process (a ghost). */
  evict(session: ProviderSession): void;
  /** Checks this process's sessions' bindings again (SRP-SEC-022), at another process's request. */
  revalidate(): Promise<unknown>;
  /** Reports a failure of Redis or a link. */
  onError(what: string, error: unknown): void;
}

/** This process's part in its hub's cluster. */
export interface HubCluster {
  readonly processId: string;
  /** A session authenticated here: resolves once the node's session on another process (if any) has ended (at most 250 ms), with whether there was one. */
  opened(session: ProviderSession): Promise<boolean>;
  /** A session here changed its offers. */
  changed(session: ProviderSession): void;
  /** The load or reported capacity of a session here changed. */
  loaded(session: ProviderSession): void;
  /** A session here ended. */
  closed(session: ProviderSession): void;
  /** The nodes connected to other processes. */
  remotes(): Iterable<RemoteHost>;
  /**
   * Waits until one of `models` is served (resolving as soon as one is announced, here or by
   * another process), or for at most 250 ms: a request for a model no instance here serves
   * may be for one just offered on another process. Without models: until what the others
   * published on the bus before now has arrived (one round trip on the bus, shared by
   * concurrent callers).
   */
  catchUp(models: readonly string[]): Promise<void>;
  /** Has every other process check its sessions' bindings again now; resolves when they did (at most 2 s). */
  revalidateOthers(): Promise<void>;
  /** Leaves the directory: other processes stop sending jobs here (jobs they sent that run here go on). */
  leave(): Promise<void>;
  /** Leaves the cluster: this process's nodes removed from the directory, links and Redis closed. */
  close(): Promise<void>;
}

/** How long a new session waits for the node's old session on another process to end (ms). */
const EVICTION_WAIT_MS = 250;

/** How long a request for a model unknown here waits for it to be announced by another process (ms). */
const CATCH_UP_MS = 250;

/** The node id of an instance key (`nodeId/instanceId`; node ids are base64url). */
function nodeOf(key: string): string {
  return key.slice(0, key.indexOf("/"));
}

/** The cluster's state in one process. */
interface State {
  readonly processId: string;
  readonly remotes: Map<string, RemoteHost>;
  /** Which remote host each job sent from here (and not yet settled) belongs to. */
  readonly sentJobs: Map<string, RemoteHost>;
  peers: ReadonlyMap<string, string>;
  /** Local sessions by node id (open ones). */
  readonly local: Map<string, ProviderSession>;
  /** Requests waiting for a model to be announced ({@link HubCluster.catchUp}). */
  readonly waiters: ModelWaiters;
}

/** Adds, updates or replaces the remote host of a snapshot. */
function upsertRemote(d: ClusterDeps, s: State, snapshot: NodeSnapshot, hostDeps: RemoteHostDeps): void {
  if (s.local.has(snapshot.nodeId)) return;
  let host = s.remotes.get(snapshot.nodeId);
  if (host && host.sessionId === snapshot.sessionId) host.update(snapshot);
  else {
    if (host) dropRemote(d, s, snapshot.nodeId, "the node reconnected to another hub process");
    host = new RemoteHost(snapshot, hostDeps);
    s.remotes.set(snapshot.nodeId, host);
    d.forgetPosition(snapshot.nodeId);
    readStates(
      d,
      [...host.instances.keys()].map((id) => `${snapshot.nodeId}/${id}`),
    );
  }
  d.router.sync(host);
  for (const i of host.instances.values()) {
    d.notify(i.model);
    s.waiters.announced(i.model);
  }
}

/**
 * Reads the routing state of instances first seen here from a shared store (ramp-up and the
 * health window go on from where the process holding them wrote them), then re-classifies them.
 */
function readStates(d: ClusterDeps, keys: readonly string[]): void {
  const store = d.router.store;
  if (!store.refresh || keys.length === 0) return;
  store.refresh(keys).then(
    () => {
      for (const key of keys) d.router.stateChanged(key);
    },
    (error: unknown) => d.onError("read routing state", error),
  );
}

/** Removes a remote host: its jobs sent from here are lost. */
function dropRemote(d: ClusterDeps, s: State, nodeId: string, reason: string): void {
  const host = s.remotes.get(nodeId);
  if (!host) return;
  s.remotes.delete(nodeId);
  d.router.remove(host);
  host.close(reason);
}

/** Routes an event of a job sent from here to its remote host (which takes it only from the link the job went on). */
function deliver(s: State, e: JobEventOnLink, link: Link): void {
  const jobId = jobIdOf(e);
  const host = s.sentJobs.get(jobId);
  if (!host) return;
  host.deliver(e, jobId, link);
  // Its last message (`settled`, or an end that settles nothing) came: the job is forgotten.
  if (!host.pending(jobId)) s.sentJobs.delete(jobId);
}

/** The Redis connection of a hub's processes: keys under `srp:<hub id>:`. */
export function clusterRedis(o: ClusterOptions, hubId: string, processId: string): RedisConnection {
  return connectRedis(o.redisUrl, { keyPrefix: `srp:${hubId}:`, name: `srp-hub:${processId}` });
}

/** A new process id. */
export function newProcessId(): string {
  return `proc_${toBase64Url(randomBytes(9))}`;
}

/**
 * Joins the hub's cluster over `redis` ({@link clusterRedis}; closed with the cluster):
 * opens the link endpoint and reads the directory.
 */
export async function startCluster(o: ClusterOptions, d: ClusterDeps, redis: RedisConnection, processId: string): Promise<HubCluster> {
  if (!validProcessId(processId)) throw new RangeError(`a process id is 1 to 64 of A-Z a-z 0-9 _ -, got ${JSON.stringify(processId)}`);
  const s: State = { processId, remotes: new Map(), sentJobs: new Map(), peers: new Map(), local: new Map(), waiters: new ModelWaiters() };
  const forwarded = new ForwardedJobs(d);
  const onMessage = (m: LinkMessage, link: Link) => {
    if (m.t === "job") return forwarded.start(m, link);
    if (m.t === "cancel") return forwarded.cancel(m, link);
    if (m.t === "outcome") return d.router.outcome(m.key, m.model, m.outcome);
    if (m.t === "latency") return d.router.latency(m.key, m.ms);
    if (m.t === "throughput") return d.router.throughput(m.key, m.tokens, m.ms);
    deliver(s, m, link);
  };
  const links = new PeerLinks({
    processId,
    key: linkKey(d.identity.secretKey),
    onMessage,
    onClose(link) {
      forwarded.linkClosed(link);
      for (const host of s.remotes.values()) host.linkClosed(link);
      for (const [jobId, host] of [...s.sentJobs]) if (!host.pending(jobId)) s.sentJobs.delete(jobId);
    },
  });
  const linkUrl = await links.listen(o.link?.host ?? "127.0.0.1", o.link?.port ?? 0, o.link?.advertiseHost);
  const hostDeps: RemoteHostDeps = {
    link: (process) => {
      const url = s.peers.get(process);
      return url === undefined ? undefined : links.to(process, url);
    },
    sent: (host, jobId) => void s.sentJobs.set(jobId, host),
    refused(host, gone) {
      if (s.remotes.get(host.nodeId) !== host) return;
      if (gone) return dropRemote(d, s, host.nodeId, "the node is no longer connected to the process that held it");
      d.router.sync(host);
      for (const i of host.instances.values()) d.notify(i.model);
    },
    takeOwner: d.takeOwner,
    loadChanged: d.loadChanged,
  };
  const directory = new ClusterDirectory({
    redis,
    hubId: d.identity.id,
    processId,
    linkUrl,
    ...(o.timings ? { timings: o.timings } : {}),
    events: {
      onNode: (snapshot) => upsertRemote(d, s, snapshot, hostDeps),
      onLoad(_from, loads) {
        for (const [nodeId, load] of Object.entries(loads)) {
          const host = s.remotes.get(nodeId);
          if (!host) continue;
          host.updateLoad(load.active, load.capacity);
          for (const id of host.instances.keys()) d.loadChanged(host, id);
          for (const i of host.instances.values()) d.notify(i.model);
        }
      },
      onStates(_from, states) {
        const now = Date.now();
        for (const [key, state] of Object.entries(states)) {
          // Only the process holding the node writes its state; a node now held here keeps this process's.
          if (s.local.has(nodeOf(key))) continue;
          d.router.store.update(key, now, () => state);
          d.router.stateChanged(key, now);
        }
      },
      stateOf: (key) => d.router.store.get(key),
      onGone(_from, nodeId, sessionId) {
        if (s.remotes.get(nodeId)?.sessionId === sessionId) dropRemote(d, s, nodeId, "the node left");
      },
      onRevalidate: () => d.revalidate(),
      onEvict(nodeId, sessionId) {
        const session = s.local.get(nodeId);
        if (session?.sessionId !== sessionId) return;
        // Out of every process's routing at once (the newer session waits for this `gone`), then closed.
        s.local.delete(nodeId);
        d.router.remove(session);
        directory.release(nodeId, sessionId);
        d.evict(session);
      },
      onPeers(peers) {
        for (const peer of s.peers.keys()) if (!peers.has(peer)) goneProcess(d, s, links, peer);
        const met = [...peers.keys()].filter((peer) => !s.peers.has(peer));
        s.peers = peers;
        // Nodes of a process met just now can take jobs from here now: requests waiting for their models try again.
        for (const host of s.remotes.values()) if (met.includes(host.process)) for (const i of host.instances.values()) d.notify(i.model);
      },
      onResync(nodes) {
        const seen = new Set<string>();
        for (const { snapshot } of nodes) {
          seen.add(snapshot.nodeId);
          if (!s.local.has(snapshot.nodeId)) upsertRemote(d, s, snapshot, hostDeps);
        }
        for (const nodeId of [...s.remotes.keys()]) if (!seen.has(nodeId)) dropRemote(d, s, nodeId, "the node left");
      },
      onError: d.onError,
      loadOf(nodeId) {
        const session = s.local.get(nodeId);
        return session ? { active: Object.fromEntries(session.active), capacity: Object.fromEntries(session.reportedCapacity) } : undefined;
      },
    },
  });
  await redis.ready();
  await directory.start();
  const barrier = new SharedBarrier(() => directory.barrier());
  d.router.store.setOwner?.((key) => s.local.has(nodeOf(key)));
  d.router.cluster = {
    forward(live, record) {
      const process = (live.session as RemoteHost).process;
      hostDeps.link(process)?.send(record);
    },
    written(key) {
      if (s.local.has(nodeOf(key))) directory.stateChanged(key);
    },
  };
  return {
    processId,
    async opened(session) {
      const nodeId = session.nodeId!;
      const wasRemote = s.remotes.get(nodeId);
      s.local.set(nodeId, session);
      dropRemote(d, s, nodeId, "the node reconnected to this hub process");
      const previous = await directory.claim(snapshotOf(session, processId), Date.now());
      const before = previous ?? (wasRemote ? { process: wasRemote.process, sessionId: wasRemote.sessionId } : undefined);
      if (!before || before.process === processId) return false;
      // The old session there ends (evicted) before this one is welcomed, so no process routes to it meanwhile.
      await directory.gone(nodeId, before.sessionId, EVICTION_WAIT_MS);
      return true;
    },
    changed(session) {
      const nodeId = session.nodeId!;
      if (s.local.get(nodeId) !== session) return;
      directory.update(snapshotOf(session, processId));
      for (const id of session.instances.keys()) directory.stateChanged(`${nodeId}/${id}`);
      for (const i of session.instances.values()) s.waiters.announced(i.model);
    },
    loaded(session) {
      if (s.local.get(session.nodeId!) === session) directory.loadChanged(session.nodeId!);
    },
    closed(session) {
      const nodeId = session.nodeId;
      if (nodeId === undefined || s.local.get(nodeId) !== session) return;
      s.local.delete(nodeId);
      directory.release(nodeId, session.sessionId);
    },
    remotes: () => s.remotes.values(),
    async catchUp(models) {
      if (models.length === 0) return barrier.wait();
      // An offer that reached another process just before this request needs a moment to be handled and announced
      // there: the request waits for the announcement itself (no message of its own on the bus).
      if (models.some((m) => d.router.count(m) > 0)) return;
      await s.waiters.wait(models, CATCH_UP_MS);
    },
    revalidateOthers: () => directory.revalidateOthers(),
    leave: () => directory.withdrawAll(),
    async close() {
      d.router.cluster = undefined;
      s.waiters.clear();
      for (const nodeId of [...s.remotes.keys()]) dropRemote(d, s, nodeId, "shutdown");
      await directory.close();
      await links.close();
      await redis.close();
    },
  };
}

/** A process stopped: its nodes are gone from here and its link is closed (the jobs on it are lost). */
function goneProcess(d: ClusterDeps, s: State, links: PeerLinks, peer: string): void {
  for (const [nodeId, host] of [...s.remotes])
    if (host.process === peer) dropRemote(d, s, nodeId, "the hub process holding the node stopped");
  links.drop(peer);
}
