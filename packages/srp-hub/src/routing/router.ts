/**
 * The hub's live routing table: which instances are online on which sessions, indexed
 * by model, joined with the routing state of each instance (breaker, health, throughput,
 * ramp-up) to answer "who takes this request". Decisions are the pure functions of
 * `policy.ts`; this class only keeps the tables and the clock.
 */
import { resolveModelAlias } from "@srp/core";
import type { Instance } from "@srp/core/schema";
import type { JobHost } from "../session.js";
import {
  breakerAfterOutcome,
  breakerAfterProbe,
  breakerProbeSent,
  breakerStatus,
  eligible,
  healthScore,
  pick,
  recordHealth,
  recordThroughput,
  recordLatency,
  matchesSelector,
  NO_LATENCY,
  ROUTING_DEFAULTS,
  type CandidateView,
  type NoRoute,
  type Outcome,
  type RouteNeeds,
  type RoutingConfig,
} from "./policy.js";
import { freshHealth, type RoutingStore } from "./store.js";
import { AffinityTable } from "./affinity.js";

/** One instance online on one session. */
export interface LiveInstance {
  key: string;
  session: JobHost;
  instance: Instance;
}

/** Sort preference of a request: least loaded (default), cheapest, fastest stream, or quickest first output. */
export type RouteSort = "load" | "price" | "throughput" | "latency";

/** What happened to an instance's breaker, for events and logs. */
export interface BreakerChange {
  key: string;
  model: string;
  status: "parked" | "readmitted";
  /** True when parking left the model without any instance that takes jobs. */
  lastForModel: boolean;
}

/** The key of an instance in routing tables and stores. */
export function instanceKey(nodeId: string, instanceId: string): string {
  return `${nodeId}/${instanceId}`;
}

/** Live routing table of one hub. */
export class Router {
  readonly #byModel = new Map<string, Map<string, LiveInstance>>();
  readonly #bySession = new Map<JobHost, Map<string, LiveInstance>>();
  readonly #byKey = new Map<string, LiveInstance>();
  readonly #store: RoutingStore;
  /** Health scores, recomputed after this hub records an outcome, or after 10 s (a shared store may change them). */
  readonly #health = new Map<string, { score: number; at: number }>();
  readonly #cfg: RoutingConfig;
  readonly #random: () => number;
  /** Which instance served each long prompt prefix recently (prefix affinity). */
  readonly affinity: AffinityTable;
  /** Called when a breaker parks or readmits an instance. */
  onBreakerChange: ((change: BreakerChange) => void) | undefined;

  constructor(store: RoutingStore, cfg: Partial<RoutingConfig> = {}, random: () => number = Math.random) {
    this.#store = store;
    this.#cfg = { ...ROUTING_DEFAULTS, ...cfg };
    this.#random = random;
    this.affinity = new AffinityTable({ ttlMs: this.#cfg.affinityTtlMs, maxEntries: this.#cfg.affinityMaxEntries });
  }

  /** Replaces the instances of a session with its current offers. */
  sync(session: JobHost, now = Date.now()): void {
    this.remove(session);
    if (session.state !== "open" || session.nodeId === undefined) return;
    const mine = new Map<string, LiveInstance>();
    for (const instance of session.instances.values()) {
      const key = instanceKey(session.nodeId, instance.instanceId);
      const live = { key, session, instance };
      mine.set(key, live);
      this.#byKey.set(key, live);
      // Indexed by canonical id: every alias of a model routes to the same instances (SRP-CON-017).
      const name = resolveModelAlias(instance.model);
      let models = this.#byModel.get(name);
      if (!models) this.#byModel.set(name, (models = new Map()));
      models.set(key, live);
      if (!this.#store.get(key)) this.#store.update(key, now, (h) => h);
    }
    this.#bySession.set(session, mine);
  }

  /** Removes every instance of a session. */
  remove(session: JobHost): void {
    const mine = this.#bySession.get(session);
    if (!mine) return;
    for (const live of mine.values()) {
      this.#health.delete(live.key);
      if (this.#byKey.get(live.key) === live) this.#byKey.delete(live.key);
      const name = resolveModelAlias(live.instance.model);
      const models = this.#byModel.get(name);
      if (models?.get(live.key) === live) models.delete(live.key);
      if (models?.size === 0) this.#byModel.delete(name);
    }
    this.#bySession.delete(session);
  }

  #view(live: LiveInstance, now: number): CandidateView {
    const h = this.#store.get(live.key) ?? freshHealth(now);
    const reported = live.session.reportedCapacity.get(live.instance.instanceId);
    return {
      key: live.key,
      model: live.instance.model,
      capabilities: live.instance.capabilities,
      contextLength: live.instance.contextLength,
      price: live.instance.price,
      active: live.session.active.get(live.instance.instanceId) ?? 0,
      capacity: Math.max(0, Math.min(live.instance.maxConcurrency, reported ?? live.instance.maxConcurrency)),
      breaker: h.breaker,
      health: this.#healthOf(live.key, h, now),
      throughput: h.throughput,
      firstSeen: h.firstSeen,
      nodeId: live.session.nodeId ?? "",
      tier: live.instance.tier,
      latency: h.latency ?? NO_LATENCY,
      ...(live.instance.quantization === undefined ? {} : { quantization: live.instance.quantization }),
    };
  }

  #healthOf(key: string, h: { window: Parameters<typeof healthScore>[0] }, now: number): number {
    const cached = this.#health.get(key);
    if (cached && now - cached.at < 10_000 && now >= cached.at) return cached.score;
    const score = healthScore(h.window, now, this.#cfg);
    this.#health.set(key, { score, at: now });
    return score;
  }

  /** Views of the live instances of a model, asked for by any alias (every model for `auto`). */
  views(model: string, now = Date.now()): CandidateView[] {
    const lives =
      model === "auto"
        ? [...this.#byModel.values()].flatMap((m) => [...m.values()])
        : [...(this.#byModel.get(resolveModelAlias(model))?.values() ?? [])];
    return lives.map((l) => this.#view(l, now));
  }

  /**
   * Picks the instance for a request, or says why none can take it. With `order`, the
   * instances matching its first selector that can take the request are preferred, then
   * the next selector's, then (unless `orderOnly`) any other. `model: "auto"` considers
   * every model and, unless told otherwise, the cheapest.
   *
   * `prefer` (prefix affinity: the instance that served the request's prefix recently) is
   * taken instead of the least-loaded pick when it is among the instances that may take the
   * request now (right capabilities, breaker closed, a free slot, within `only`, `ignore`
   * and `order`), and only when sorting by load: an explicit `sort` decides over it.
   */
  route(
    needs: RouteNeeds,
    sort: RouteSort = "load",
    now = Date.now(),
    order?: { selectors: readonly string[]; only: boolean },
    prefer?: string,
  ): LiveInstance | NoRoute {
    // Any alias of a model routes to its instances, whatever name each was offered under (SRP-CON-017).
    const name = resolveModelAlias(needs.model);
    const views = this.views(name, now).map((v) => (v.model === name ? v : { ...v, model: name }));
    const result = eligible(views, { ...needs, model: name }, now, this.#cfg);
    if (!Array.isArray(result)) return result;
    let pool = result;
    if (order && order.selectors.length > 0) {
      const first = order.selectors.map((s) => pool.filter((v) => matchesSelector(v, s))).find((p) => p.length > 0);
      if (first) pool = first;
      else if (order.only) {
        // Ordered instances that exist but cannot take it now are busy; none at all is no match.
        const exists = views.some((v) => order.selectors.some((s) => matchesSelector(v, s)));
        return exists
          ? { reason: "busy" }
          : { reason: "no_match", detail: `no instance of ${needs.model} matches provider.order, and allow_fallbacks is false` };
      }
    }
    if (needs.model === "auto" && sort === "load") sort = "price";
    if (sort === "latency") {
      const measured = pool.filter((v) => (v.latency?.samples ?? 0) > 0);
      const best = Math.min(...measured.map((v) => v.latency!.ms));
      if (measured.length > 0) pool = pool.filter((v) => (v.latency?.samples ?? 0) === 0 || v.latency!.ms <= best * 1.25 + 5);
    } else if (sort === "price") {
      const cost = (v: CandidateView) => BigInt(v.price.input) + BigInt(v.price.output);
      const min = pool.reduce((m, v) => (cost(v) < m ? cost(v) : m), cost(pool[0]!));
      pool = pool.filter((v) => cost(v) === min);
    } else if (sort === "throughput") {
      const best = Math.max(...pool.map((v) => v.throughput.tokensPerSecond));
      pool = pool.filter((v) => v.throughput.tokensPerSecond >= best * 0.8);
    }
    const sticky = prefer !== undefined && sort === "load" ? pool.find((v) => v.key === prefer) : undefined;
    const chosen = sticky ?? pick(pool, now, this.#random, this.#cfg);
    if (!chosen) return { reason: "busy" };
    return this.#byKey.get(chosen.key) ?? { reason: "busy" };
  }

  /** Records a job outcome for an instance; may park it. */
  outcome(key: string, model: string, outcome: Outcome, now = Date.now()): void {
    this.#health.delete(key);
    const before = this.#store.get(key)?.breaker;
    const after = this.#store.update(key, now, (h) => ({
      ...h,
      breaker: breakerAfterOutcome(h.breaker, outcome, now, this.#cfg),
      window: recordHealth(h.window, now, { [outcome]: 1 }, this.#cfg),
    }));
    if (before && !before.needsProbe && after.breaker.needsProbe) {
      const others = this.views(model, now).filter((v) => v.key !== key && breakerStatus(v.breaker, now) === "closed");
      this.onBreakerChange?.({ key, model, status: "parked", lastForModel: others.length === 0 });
    }
  }

  /** Folds a measured time to first output into an instance's latency estimate. */
  latency(key: string, ms: number, now = Date.now()): void {
    this.#store.update(key, now, (h) => ({ ...h, latency: recordLatency(h.latency ?? NO_LATENCY, ms) }));
  }

  /** Folds a measured stream into an instance's throughput estimate. */
  throughput(key: string, tokens: number, ms: number, now = Date.now()): void {
    this.#store.update(key, now, (h) => ({ ...h, throughput: recordThroughput(h.throughput, tokens, ms) }));
  }

  /** Instances of nodes connected to this process whose park is over and whose probe is due; marks them as probing. */
  dueProbes(now = Date.now()): LiveInstance[] {
    const due: LiveInstance[] = [];
    for (const m of this.#byModel.values()) {
      for (const live of m.values()) {
        if (!live.session.local) continue;
        const h = this.#store.get(live.key);
        if (h && breakerStatus(h.breaker, now) === "probe_due") {
          this.#store.update(live.key, now, (x) => ({ ...x, breaker: breakerProbeSent(x.breaker) }));
          due.push(live);
        }
      }
    }
    return due;
  }

  /** Records a probe's result: success readmits the instance, failure parks it again. */
  probeResult(key: string, model: string, ok: boolean, now = Date.now()): void {
    this.#health.delete(key);
    const after = this.#store.update(key, now, (h) => ({
      ...h,
      breaker: breakerAfterProbe(h.breaker, ok, now, this.#cfg),
      window: recordHealth(h.window, now, ok ? { probeOk: 1 } : { probeFail: 1 }, this.#cfg),
    }));
    if (ok && !after.breaker.needsProbe) this.onBreakerChange?.({ key, model, status: "readmitted", lastForModel: false });
  }

  /** Credits online time to every live instance (uptime credit of the health window). */
  creditOnline(ms: number, now = Date.now()): void {
    this.#health.clear();
    for (const m of this.#byModel.values())
      for (const live of m.values())
        this.#store.update(live.key, now, (h) => ({ ...h, window: recordHealth(h.window, now, { onlineMs: ms }, this.#cfg) }));
  }

  /** Live instances grouped by model. */
  catalog(now = Date.now()): Map<string, CandidateView[]> {
    const out = new Map<string, CandidateView[]>();
    for (const model of this.#byModel.keys()) out.set(model, this.views(model, now));
    return out;
  }

  /** Every live instance. */
  all(): LiveInstance[] {
    return [...this.#byModel.values()].flatMap((m) => [...m.values()]);
  }

  /** The config in force. */
  get config(): Readonly<RoutingConfig> {
    return this.#cfg;
  }

  /** The store (for inspection and tests). */
  get store(): RoutingStore {
    return this.#store;
  }

  /** Breaker status of an instance now. */
  /** An instance's standing for payouts: time since it was first seen, and its 14-day health score. */
  standing(key: string, now = Date.now()): { tenureMs: number; health: number } {
    const h = this.#store.get(key) ?? freshHealth(now);
    return { tenureMs: Math.max(0, now - h.firstSeen), health: this.#healthOf(key, h, now) };
  }

  status(key: string, now = Date.now()) {
    const h = this.#store.get(key);
    return h ? breakerStatus(h.breaker, now) : "closed";
  }
}

export type { Outcome };
