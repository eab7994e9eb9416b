/**
 * The directory of one hub's processes, in Redis (docs/deployment.md): which processes are
 * alive and where their links listen, which node is connected to which process (with its
 * offers and load), and the messages that keep every process's copy current. Everything
 * here is live state: it is rebuilt from the processes themselves after a Redis restart.
 *
 * Keys (under the connection's prefix `srp:<hub id>:`): `procs` (sorted set: process id by
 * last heartbeat), `links` (hash: process id to link URL), `nodes` (hash: node id to its
 * snapshot). Channel `srp:<hub id>:bus`: node announcements, load, departures, evictions.
 */
import type { Redis } from "ioredis";
import type { RedisConnection } from "./redis.js";
import type { InstanceHealth } from "../routing/store.js";
import type { NodeSnapshot } from "./snapshot.js";

/** A message on the bus. */
export type BusMessage =
  | { t: "node"; from: string; snapshot: NodeSnapshot; authAt: number }
  | { t: "nodes"; from: string; nodes: { snapshot: NodeSnapshot; authAt: number }[] }
  | { t: "load"; from: string; loads: Record<string, { active: Record<string, number>; capacity: Record<string, number> }> }
  | { t: "state"; from: string; states: Record<string, InstanceHealth> }
  | { t: "gone"; from: string; nodeId: string; sessionId: string }
  | { t: "evict"; from: string; to: string; nodeId: string; sessionId: string }
  | { t: "sync"; from: string; id: number }
  | { t: "revalidate"; from: string; id: number }
  | { t: "revalidated"; from: string; to: string; id: number };

/** What the directory tells its process. */
export interface DirectoryEvents {
  /** A node on another process appeared or changed its offers. */
  onNode(snapshot: NodeSnapshot, authAt: number): void;
  /** Load of nodes on another process. */
  onLoad(from: string, loads: Extract<BusMessage, { t: "load" }>["loads"]): void;
  /** Routing state of instances on another process, as that process wrote it. */
  onStates(from: string, states: Record<string, InstanceHealth>): void;
  /** The routing state of an instance of this process. */
  stateOf(key: string): InstanceHealth | undefined;
  /** A node left another process. */
  onGone(from: string, nodeId: string, sessionId: string): void;
  /** A node connected to this process reconnected to another: its session here is a ghost. */
  onEvict(nodeId: string, sessionId: string): void;
  /** Another process asks every process to check its sessions' bindings again now (a key or wallet was revoked, SRP-SEC-022). */
  onRevalidate?(): Promise<unknown>;
  /** The live processes and their link URLs (this one excluded), after each check. */
  onPeers(peers: ReadonlyMap<string, string>): void;
  /** A full read of the directory: every node on another live process (after start and each resync). */
  onResync(nodes: readonly { snapshot: NodeSnapshot; authAt: number }[]): void;
  /** Redis failed a command (the process goes on with what it knows). */
  onError(what: string, error: unknown): void;
  /** The current load of a node connected to this process. */
  loadOf(nodeId: string): { active: Record<string, number>; capacity: Record<string, number> } | undefined;
}

/** Timings of the directory. */
export interface DirectoryTimings {
  /** How often this process says it is alive (ms). */
  heartbeatMs: number;
  /** A process silent this long is dead (ms). */
  deadAfterMs: number;
  /** How often the whole directory is read again (ms). */
  resyncMs: number;
  /** How often load changes are published (ms). */
  loadFlushMs: number;
}

/** Default timings. */
export const DIRECTORY_TIMINGS: DirectoryTimings = Object.freeze({
  heartbeatMs: 1000,
  deadAfterMs: 5000,
  resyncMs: 30_000,
  loadFlushMs: 20,
});

/** A stored snapshot with the time its session authenticated. */
interface StoredNode {
  snapshot: NodeSnapshot;
  authAt: number;
}

/** Parses a stored node; undefined when malformed. */
function parseNode(text: string | null | undefined): StoredNode | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as StoredNode;
    return typeof v?.snapshot?.nodeId === "string" && typeof v.snapshot.process === "string" ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Deletes `nodes[ARGV[1]]` only while it names the session `ARGV[2]` (a `"sessionId":"…"` fragment of its JSON). */
const RELEASE_SCRIPT =
  "local v = redis.call('HGET', KEYS[1], ARGV[1]) if v and string.find(v, ARGV[2], 1, true) then return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0";

/**
 * Removes at most ARGV[2] processes whose last heartbeat is older than ARGV[1] (a score bound, `(` for exclusive) from
 * `procs` (KEYS[1]) and their link URLs from `links` (KEYS[2]), in one step, so a process beating again meanwhile is never removed.
 */
const PRUNE_SCRIPT =
  "local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2])) for _, id in ipairs(dead) do redis.call('ZREM', KEYS[1], id) redis.call('HDEL', KEYS[2], id) end return #dead";

/** How many dead processes one heartbeat removes from `procs` and `links` at most (bounded work per beat). */
export const PRUNE_PER_BEAT = 32;

/** Whether a session that authenticated at `a` on process `pa` is newer than one at `b` on `pb` (pure; ties broken by process id). */
export function newerSession(a: number, pa: string, b: number, pb: string): boolean {
  return a > b || (a === b && pa > pb);
}

/** One process's view of, and voice in, the hub's directory. */
export class ClusterDirectory {
  readonly processId: string;
  readonly #redis: RedisConnection;
  readonly #channel: string;
  readonly #events: DirectoryEvents;
  readonly #t: DirectoryTimings;
  readonly #linkUrl: string;
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  /** This process's nodes: their current snapshot and auth time. */
  readonly #mine = new Map<string, StoredNode>();
  readonly #dirtyLoad = new Set<string>();
  /** Nodes here whose offers changed since the last flush. */
  readonly #dirtyNodes = new Set<string>();
  /** When offers were last published. */
  #nodesFlushedAt = 0;
  readonly #dirtyState = new Set<string>();
  #closed = false;
  /** An early heartbeat in flight ({@link #meet}). */
  #meeting: Promise<void> | undefined;
  /** Waiters for the end of a node's session on another process, by `nodeId sessionId`. */
  readonly #goneWaiters = new Map<string, (() => void)[]>();
  /** Revalidations asked by this process, waiting for the others' answers. */
  readonly #revalidations = new Map<number, (from: string) => void>();
  /** Barriers waiting for their own `sync` message to come back. */
  readonly #barriers = new Map<number, () => void>();
  #nextBarrier = 0;
  /** Set by {@link withdrawAll}: nodes that authenticate here now are not announced. */
  #leaving = false;
  /** When the connection to Redis last came back (0: never lost). */
  #rejoinedAt = 0;
  /** The peers last reported to `onPeers`. */
  #peers: ReadonlyMap<string, string> = new Map();

  constructor(o: {
    redis: RedisConnection;
    hubId: string;
    processId: string;
    linkUrl: string;
    events: DirectoryEvents;
    timings?: Partial<DirectoryTimings>;
  }) {
    this.processId = o.processId;
    this.#redis = o.redis;
    this.#channel = `srp:${o.hubId}:bus`;
    this.#events = o.events;
    this.#linkUrl = o.linkUrl;
    this.#t = { ...DIRECTORY_TIMINGS, ...o.timings };
  }

  get #cmd(): Redis {
    return this.#redis.commands;
  }

  /** Subscribes, registers this process and reads the directory; heartbeats and resyncs run until `close()`. */
  async start(): Promise<void> {
    const sub = this.#redis.subscriber;
    sub.on("message", (channel: string, text: string) => {
      if (channel === this.#channel) this.#onBus(text);
    });
    await sub.subscribe(this.#channel);
    // After Redis comes back (restarted, emptied): say again who this process is and what it holds, then read the rest.
    this.#cmd.on("ready", () => {
      this.#rejoinedAt = Date.now();
      void this.#rejoin();
    });
    await this.#rejoin();
    const every = (ms: number, fn: () => Promise<unknown> | void) => {
      const timer = setInterval(() => void fn(), ms);
      timer.unref();
      this.#timers.push(timer);
    };
    every(this.#t.heartbeatMs, () => this.#heartbeat());
    every(this.#t.resyncMs, () => this.resync());
    every(this.#t.loadFlushMs, () => this.#flushLoad());
  }

  async #rejoin(): Promise<void> {
    if (this.#closed) return;
    await this.#heartbeat();
    await this.#attempt("announce this process's nodes", async () => {
      const pipeline = this.#cmd.pipeline();
      for (const [nodeId, stored] of this.#mine) pipeline.hset("nodes", nodeId, JSON.stringify(stored));
      await pipeline.exec();
    });
    // The others learn of them now rather than at their next resync.
    for (const stored of this.#mine.values()) this.#publish({ t: "node", from: this.processId, ...stored });
    await this.resync();
  }

  /**
   * Whether Redis came back less than a dead-process delay before `now`: a
   * restarted Redis is empty, and the other processes may not have registered again yet, so
   * their absence from it proves nothing until every live one has had time to heartbeat.
   */
  #settling(now: number): boolean {
    return now - this.#rejoinedAt < this.#t.deadAfterMs;
  }

  async #attempt<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (error) {
      if (!this.#closed) this.#events.onError(what, error);
      return undefined;
    }
  }

  #publish(message: BusMessage): void {
    this.#cmd.publish(this.#channel, JSON.stringify(message)).catch((e: unknown) => this.#events.onError("publish", e));
  }

  /** An early heartbeat (at most one in flight), to learn of a process that just appeared. */
  #meet(): void {
    if (this.#meeting) return;
    this.#meeting = this.#heartbeat().finally(() => {
      this.#meeting = undefined;
    });
  }

  /** Says this process is alive, and tells which processes are. */
  async #heartbeat(): Promise<void> {
    const now = Date.now();
    // Processes that died without closing are removed a few per beat (none just after Redis came back: see #settling).
    const prune = this.#settling(now) ? 0 : PRUNE_PER_BEAT;
    const result = await this.#attempt("heartbeat", async () => {
      const [, , , live, links] = (await this.#cmd
        .multi()
        .zadd("procs", now, this.processId)
        .hset("links", this.processId, this.#linkUrl)
        .eval(PRUNE_SCRIPT, 2, "procs", "links", `(${now - this.#t.deadAfterMs}`, prune)
        .zrangebyscore("procs", now - this.#t.deadAfterMs, "+inf")
        .hgetall("links")
        .exec()) as [unknown, unknown, unknown, [Error | null, string[]], [Error | null, Record<string, string>]];
      return { live: live[1], links: links[1] };
    });
    if (!result) return;
    // Just after Redis came back, peers known before are kept until they had time to register again.
    const peers = new Map<string, string>(this.#settling(now) ? this.#peers : []);
    for (const id of result.live) if (id !== this.processId && result.links[id]) peers.set(id, result.links[id]);
    this.#peers = peers;
    this.#events.onPeers(peers);
  }

  /** Reads every node of the live processes; forgets the nodes of dead ones (in Redis too). */
  async resync(): Promise<void> {
    const now = Date.now();
    const read = await this.#attempt("read the directory", async () => {
      const [live, all] = await Promise.all([
        this.#cmd.zrangebyscore("procs", now - this.#t.deadAfterMs, "+inf"),
        this.#cmd.hgetall("nodes"),
      ]);
      return { live: new Set(live), all };
    });
    if (!read) return;
    const nodes: StoredNode[] = [];
    const stale: string[] = [];
    const ghosts: StoredNode[] = [];
    // Just after Redis came back, what it lacks is not gone yet: add what it holds, forget nothing.
    const settling = this.#settling(now);
    for (const [nodeId, text] of Object.entries(read.all)) {
      const stored = parseNode(text);
      if (stored?.snapshot.process === this.processId) {
        // This process knows what it holds: an entry naming it for a session it no longer holds is a ghost, whatever else.
        if (this.#mine.get(nodeId)?.snapshot.sessionId !== stored.snapshot.sessionId) ghosts.push(stored);
      } else if (!stored || !read.live.has(stored.snapshot.process)) stale.push(nodeId);
      else nodes.push(stored);
    }
    await this.#forgetGhosts(ghosts);
    if (settling) {
      for (const stored of nodes) this.#events.onNode(stored.snapshot, stored.authAt);
      return;
    }
    // (The dead processes themselves leave `procs` and `links` with the heartbeats: see PRUNE_SCRIPT.)
    if (stale.length > 0) await this.#attempt("forget the nodes of dead processes", () => this.#cmd.hdel("nodes", ...stale));
    this.#events.onResync(nodes);
  }

  /**
   * Removes entries naming this process for sessions it no longer holds (their release
   * failed, e.g. while Redis was unreachable), and tells the others they are gone. A node
   * this process holds under a newer session is written again instead.
   */
  async #forgetGhosts(ghosts: readonly StoredNode[]): Promise<void> {
    for (const { snapshot } of ghosts) {
      const mine = this.#mine.get(snapshot.nodeId);
      if (mine) {
        await this.#attempt("announce a node again", () => this.#cmd.hset("nodes", snapshot.nodeId, JSON.stringify(mine)));
        continue;
      }
      const removed = await this.#attempt("forget a node that left", () => this.#forget(snapshot.nodeId, snapshot.sessionId));
      if (removed !== undefined) this.#publish({ t: "gone", from: this.processId, nodeId: snapshot.nodeId, sessionId: snapshot.sessionId });
    }
  }

  /**
   * Resolves once every message other processes published on the bus before now has
   * arrived here (a message of this process's own has made the round trip), or after
   * `timeoutMs` (Redis unreachable).
   */
  /**
   * Asks every other live process to check its sessions' bindings again now (SRP-SEC-022)
   * and resolves once each has answered that it did, or after `timeoutMs`.
   */
  revalidateOthers(timeoutMs = 2000): Promise<void> {
    const id = this.#nextBarrier++;
    const waiting = new Set(this.#peers.keys());
    if (waiting.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#revalidations.delete(id);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      this.#revalidations.set(id, (from) => {
        waiting.delete(from);
        if (waiting.size === 0) done();
      });
      this.#publish({ t: "revalidate", from: this.processId, id });
    });
  }

  barrier(timeoutMs = 250): Promise<void> {
    const id = this.#nextBarrier++;
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#barriers.delete(id);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      this.#barriers.set(id, done);
      this.#publish({ t: "sync", from: this.processId, id });
    });
  }

  /**
   * A node authenticated here: it is recorded as this process's, and the process that held
   * it before (if another) is told to end its old session there.
   */
  async claim(snapshot: NodeSnapshot, authAt: number): Promise<NodeSnapshot | undefined> {
    if (this.#leaving) return undefined;
    const stored: StoredNode = { snapshot, authAt };
    this.#mine.set(snapshot.nodeId, stored);
    const previous = await this.#attempt("claim a node", async () => {
      const [[, before]] = (await this.#cmd
        .multi()
        .hget("nodes", snapshot.nodeId)
        .hset("nodes", snapshot.nodeId, JSON.stringify(stored))
        .exec()) as [[Error | null, string | null]];
      return parseNode(before);
    });
    const elsewhere = previous && previous.snapshot.process !== this.processId ? previous.snapshot : undefined;
    if (elsewhere)
      this.#publish({ t: "evict", from: this.processId, to: elsewhere.process, nodeId: snapshot.nodeId, sessionId: elsewhere.sessionId });
    this.#publish({ t: "node", from: this.processId, snapshot, authAt });
    // A session held by a process that is no longer alive has nobody to end it.
    return elsewhere && this.#peers.has(elsewhere.process) ? elsewhere : undefined;
  }

  /** Resolves once the session `sessionId` of `nodeId` is announced gone (by the process that held it), or after `timeoutMs`. */
  gone(nodeId: string, sessionId: string, timeoutMs: number): Promise<void> {
    const key = `${nodeId} ${sessionId}`;
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        const left = (this.#goneWaiters.get(key) ?? []).filter((w) => w !== done);
        if (left.length > 0) this.#goneWaiters.set(key, left);
        else this.#goneWaiters.delete(key);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      this.#goneWaiters.set(key, [...(this.#goneWaiters.get(key) ?? []), done]);
    });
  }

  /**
   * A node here changed its offers: written and published at once when no offer was
   * published in the last flush interval, else with the next flush, so offers sent in a
   * burst (by one node or many) cost at most one write and one message per flush interval.
   */
  update(snapshot: NodeSnapshot): void {
    const mine = this.#mine.get(snapshot.nodeId);
    if (!mine || mine.snapshot.sessionId !== snapshot.sessionId) return;
    mine.snapshot = snapshot;
    this.#dirtyNodes.add(snapshot.nodeId);
    if (Date.now() - this.#nodesFlushedAt >= this.#t.loadFlushMs) this.#flushNodes();
  }

  /**
   * Writes and publishes the current snapshot of every node whose offers changed: one HSET
   * and one message. A node released meanwhile is skipped (its `gone` already left, and
   * nothing may follow it), so a stale update never overtakes a departure.
   */
  #flushNodes(): void {
    if (this.#dirtyNodes.size === 0) return;
    const nodes: StoredNode[] = [];
    const fields: Record<string, string> = {};
    for (const nodeId of this.#dirtyNodes) {
      const mine = this.#mine.get(nodeId);
      if (!mine) continue;
      nodes.push({ snapshot: mine.snapshot, authAt: mine.authAt });
      fields[nodeId] = JSON.stringify(mine);
    }
    this.#dirtyNodes.clear();
    if (nodes.length === 0) return;
    this.#nodesFlushedAt = Date.now();
    this.#cmd.hset("nodes", fields).catch((e: unknown) => this.#events.onError("update nodes", e));
    this.#publish({ t: "nodes", from: this.processId, nodes });
  }

  /** The load of a node here changed: published with the next flush. */
  loadChanged(nodeId: string): void {
    if (this.#mine.has(nodeId)) this.#dirtyLoad.add(nodeId);
  }

  /** The routing state of an instance here changed: published with the next flush. */
  stateChanged(key: string): void {
    if (!this.#leaving) this.#dirtyState.add(key);
  }

  #flushState(): void {
    if (this.#dirtyState.size === 0) return;
    const states: Record<string, InstanceHealth> = {};
    for (const key of this.#dirtyState) {
      const state = this.#events.stateOf(key);
      if (state) states[key] = state;
    }
    this.#dirtyState.clear();
    this.#publish({ t: "state", from: this.processId, states });
  }

  #flushLoad(): void {
    this.#flushNodes();
    this.#flushState();
    if (this.#dirtyLoad.size === 0) return;
    const loads: Extract<BusMessage, { t: "load" }>["loads"] = {};
    for (const nodeId of this.#dirtyLoad) {
      const mine = this.#mine.get(nodeId);
      const load = mine ? this.#events.loadOf(nodeId) : undefined;
      if (!mine || !load) continue;
      mine.snapshot = { ...mine.snapshot, ...load };
      loads[nodeId] = load;
    }
    this.#dirtyLoad.clear();
    this.#publish({ t: "load", from: this.processId, loads });
  }

  /** A node's session here ended: it is removed from the directory unless a newer session (here or elsewhere) holds it. */
  release(nodeId: string, sessionId: string): void {
    const mine = this.#mine.get(nodeId);
    if (mine?.snapshot.sessionId === sessionId) {
      this.#mine.delete(nodeId);
      this.#dirtyNodes.delete(nodeId);
    }
    this.#dirtyLoad.delete(nodeId);
    this.#forget(nodeId, sessionId).catch((e: unknown) => this.#events.onError("release a node", e));
    this.#publish({ t: "gone", from: this.processId, nodeId, sessionId });
  }

  /** Deletes a node's entry if it is still the session's (a newer session's, here or elsewhere, stays). */
  #forget(nodeId: string, sessionId: string): Promise<unknown> {
    return this.#cmd.eval(RELEASE_SCRIPT, 1, "nodes", nodeId, `"sessionId":"${sessionId}"`);
  }

  #onBus(text: string): void {
    let m: BusMessage;
    try {
      m = JSON.parse(text) as BusMessage;
    } catch {
      return;
    }
    if (m.t === "sync") {
      if (m.from === this.processId) this.#barriers.get(m.id)?.();
      return;
    }
    if (m.from === this.processId) return;
    // A process this one has not met yet (it started since the last heartbeat): learn its link address now.
    if (!this.#peers.has(m.from) && !this.#closed) this.#meet();
    switch (m.t) {
      case "node":
        return this.#onNode(m.snapshot, m.authAt);
      case "nodes":
        for (const n of m.nodes) this.#onNode(n.snapshot, n.authAt);
        return;
      case "load":
        return this.#events.onLoad(m.from, m.loads);
      case "state":
        return this.#events.onStates(m.from, m.states);
      case "gone":
        for (const done of this.#goneWaiters.get(`${m.nodeId} ${m.sessionId}`) ?? []) done();
        return this.#events.onGone(m.from, m.nodeId, m.sessionId);
      case "evict":
        if (m.to === this.processId) this.#events.onEvict(m.nodeId, m.sessionId);
        return;
      case "revalidate": {
        const ack = () => this.#publish({ t: "revalidated", from: this.processId, to: m.from, id: m.id });
        (this.#events.onRevalidate?.() ?? Promise.resolve()).then(ack, ack);
        return;
      }
      case "revalidated":
        if (m.to === this.processId) this.#revalidations.get(m.id)?.(m.from);
        return;
    }
  }

  #onNode(snapshot: NodeSnapshot, authAt: number): void {
    const mine = this.#mine.get(snapshot.nodeId);
    if (mine && !newerSession(authAt, snapshot.process, mine.authAt, this.processId)) {
      // Two processes claimed the node at once and the newer session is here: the directory says so again.
      this.#cmd.hset("nodes", snapshot.nodeId, JSON.stringify(mine)).catch((e: unknown) => this.#events.onError("claim a node again", e));
      this.#publish({ t: "node", from: this.processId, snapshot: mine.snapshot, authAt: mine.authAt });
      return;
    }
    if (mine) {
      this.#mine.delete(snapshot.nodeId);
      this.#events.onEvict(snapshot.nodeId, mine.snapshot.sessionId);
    }
    this.#events.onNode(snapshot, authAt);
  }

  /** Removes this process's nodes from the directory (it is leaving; its heartbeat goes on until `close()`), and takes no more. */
  async withdrawAll(): Promise<void> {
    this.#leaving = true;
    const mine = [...this.#mine];
    this.#mine.clear();
    this.#dirtyLoad.clear();
    this.#dirtyNodes.clear();
    for (const [nodeId, stored] of mine) this.#publish({ t: "gone", from: this.processId, nodeId, sessionId: stored.snapshot.sessionId });
    if (mine.length > 0) await this.#attempt("withdraw this process's nodes", () => this.#cmd.hdel("nodes", ...mine.map(([id]) => id)));
  }

  /** Stops the timers and removes this process and its nodes from the directory. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    const mine = [...this.#mine.keys()];
    for (const [nodeId, stored] of this.#mine)
      this.#publish({ t: "gone", from: this.processId, nodeId, sessionId: stored.snapshot.sessionId });
    try {
      const m = this.#cmd.multi().zrem("procs", this.processId).hdel("links", this.processId);
      if (mine.length > 0) m.hdel("nodes", ...mine);
      await m.exec();
    } catch {
      // Redis is down: the others forget this process when its heartbeat goes stale.
    }
  }
}
