/**
 * The hub's live routing table: which instances are online on which sessions, indexed
 * by model, joined with the routing state of each instance (breaker, health, throughput,
 * ramp-up) to answer "who takes this request". Decisions follow the pure functions of
 * `policy.ts`; this class only keeps the tables and the clock.
 *
 * Every model has a candidate index (`candidate-index.ts`): its instances ordered by load
 * level, grouped by health class and offer shape, so `route()` with the default sort costs
 * about the same at 100,000 instances as at ten. The index learns of changes from
 * {@link Router.loadChanged} (a job started or ended, a capacity reported: the session
 * calls it, and so does whatever tracks a node connected to another process), from
 * {@link Router.stateChanged} (routing state written to the store from elsewhere), from
 * this Router's own writes (outcomes, probes, throughput, online credit), and every 10 s
 * per instance (the health cache's life) while routing runs. The instance it returns is
 * checked against its session and the store first. Requests the index does not serve
 * (sorts by price, throughput or latency, `model: "auto"`, a `now` earlier than one already
 * seen) and every "no instance can take it" answer go through the linear reference
 * (`reference.ts`), which is the policy as written.
 */
import { resolveModelAlias } from "@srp/core";
import type { Instance, Price } from "@srp/core/schema";
import type { JobHost } from "../session.js";
import {
  belowFloor,
  breakerAfterOutcome,
  breakerAfterProbe,
  breakerProbeSent,
  breakerStatus,
  healthScore,
  pick,
  pickPool,
  rampFactor,
  recordHealth,
  recordThroughput,
  recordLatency,
  NO_LATENCY,
  ROUTING_DEFAULTS,
  type CandidateView,
  type NoRoute,
  type Outcome,
  type RouteNeeds,
  type RoutingConfig,
} from "./policy.js";
import { freshHealth, type InstanceHealth, type RoutingStore } from "./store.js";
import { AffinityTable } from "./affinity.js";
import {
  CandidateIndex,
  drawFrom,
  listPool,
  poolLeaves,
  type IndexEntry,
  type Leaf,
  type Placement,
  type Shape,
} from "./candidate-index.js";
import { DueHeap } from "./due-heap.js";
import { rankedPool, SortedPartitions, type SortKind } from "./sort-index.js";
import { indexQuery, type RequestQuery } from "./index-query.js";
import { summarizeOffers, type OfferSummary } from "./offers.js";
import { ModelTally, type ModelSummary, type TallyMember } from "./catalog.js";
import { referencePool, type RouteOrder, type RouteSort } from "./reference.js";

/** One instance online on one session. */
export interface LiveInstance {
  key: string;
  session: JobHost;
  instance: Instance;
}

export type { RouteOrder, RouteSort };

type Entry = IndexEntry<LiveInstance>;
type Sorted = SortedPartitions<LiveInstance>;
/** What the index decided: the preferred instance, leaves to draw from (`counts`: a sort's prefix of each), or the policy's "busy". */
type Plan = Entry | { leaves: Leaf<LiveInstance>[]; counts?: number[]; q: RequestQuery<LiveInstance> } | "busy";
/** The pseudo-model whose indexes hold every model's instances. */
const AUTO = "auto";
const NO_SORTS: readonly Sorted[] = [];

/** How long a computed health score is used (a shared store may change the window behind this Router). */
const HEALTH_TTL_MS = 10_000;
/** The routing state of an instance the store does not know. */
const NO_STATE: Pick<InstanceHealth, "window"> = { window: [] };
/** Decisions re-made when the instance drawn turns out to have changed unnoticed, before the reference decides. */
const CONFIRM_ATTEMPTS = 3;

const aliases = new Map<string, string>();
/** `resolveModelAlias`, remembered (it runs a few regular expressions; routing asks it on every request). */
function canonical(model: string): string {
  let name = aliases.get(model);
  if (name === undefined) {
    if (aliases.size >= 4096) aliases.clear();
    aliases.set(model, (name = resolveModelAlias(model)));
  }
  return name;
}

/** The price with the least input plus output among `prices` (the first of equals). */
function cheaper(prices: readonly (Price | undefined)[]): Price | undefined {
  let best: Price | undefined;
  let cost = 0n;
  for (const p of prices) {
    if (p === undefined) continue;
    const c = BigInt(p.input) + BigInt(p.output);
    if (best === undefined || c < cost) [best, cost] = [p, c];
  }
  return best;
}

/** An instance's slots now: jobs running, and the offer's `maxConcurrency` lowered by the node's last reported capacity. */
function loadOf(live: LiveInstance): { active: number; capacity: number } {
  const id = live.instance.instanceId;
  const reported = live.session.reportedCapacity.get(id);
  const max = live.instance.maxConcurrency;
  return { active: live.session.active.get(id) ?? 0, capacity: Math.max(0, Math.min(max, reported ?? max)) };
}

/** An observation of an instance (a job's outcome, a time to first output, a stream's speed), as recorded or passed on. */
export type RoutingRecord =
  | { t: "outcome"; key: string; model: string; outcome: Outcome }
  | { t: "latency"; key: string; ms: number }
  | { t: "throughput"; key: string; tokens: number; ms: number };

/**
 * A Router in one process of a hub of several: the routing state of an instance is written
 * by the process holding its node's session, which publishes it; the others pass their
 * observations of it on instead of recording them.
 */
export interface RouterCluster {
  /** An observation of an instance whose node is connected to another process: sent there. */
  forward(live: LiveInstance, record: RoutingRecord): void;
  /** This Router wrote the state of an instance whose node is connected here. */
  written(key: string): void;
}

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
  /** The candidate index of each model (canonical id). */
  readonly #index = new Map<string, CandidateIndex<LiveInstance>>();
  readonly #shapes = new Map<string, Shape>();
  /** When each entry's classification runs out (health cache, end of ramp-up). */
  readonly #due = new DueHeap<Entry>();
  /** Entries whose breaker is not closed, as last classified (for probes). */
  readonly #parked = new Set<Entry>();
  /** Each model's sorted indexes ("auto": over every model), made on its first sorted request and kept after. */
  readonly #sorts = new Map<string, Map<SortKind, Sorted>>();
  /** Each model's offers in short, made again after its instances change. */
  readonly #offers = new Map<string, OfferSummary[]>();
  /** Each model's cheapest price, made again after its instances change. */
  readonly #cheapest = new Map<string, Price | undefined>();
  /** Each model's live instances in short, for the free listings (`catalog.ts`). */
  readonly #tallies = new Map<string, ModelTally>();
  /** The latest `now` the index was classified at: a decision at an earlier time uses the reference. */
  #clock = -Infinity;
  /** Which instance served each long prompt prefix recently (prefix affinity). */
  readonly affinity: AffinityTable;
  /** Set in a hub of several processes (see {@link RouterCluster}). */
  cluster: RouterCluster | undefined;
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
      const name = canonical(instance.model);
      let models = this.#byModel.get(name);
      if (!models) this.#byModel.set(name, (models = new Map()));
      models.set(key, live);
      this.#offers.delete(name);
      this.#cheapest.delete(name);
      if (!this.#store.get(key)) this.#store.update(key, now, (h) => h);
      let tally = this.#tallies.get(name);
      if (!tally) this.#tallies.set(name, (tally = new ModelTally()));
      tally.add(this.#member(live, now));
      this.#indexLive(name, live, now);
    }
    this.#bySession.set(session, mine);
  }

  #indexLive(model: string, live: LiveInstance, now: number): void {
    let index = this.#index.get(model);
    if (!index) this.#index.set(model, (index = new CandidateIndex()));
    const old = index.get(live.key);
    if (old) this.#parked.delete(old);
    const entry: Entry = {
      key: live.key,
      item: live,
      model,
      nodeId: live.session.nodeId ?? "",
      shape: this.#shapeOf(live.instance),
      priceInput: BigInt(live.instance.price.input),
      priceOutput: BigInt(live.instance.price.output),
      firstSeen: Infinity,
      closed: true,
      fast: true,
      cls: -1,
      due: Infinity,
      tps: 0,
      latencyMs: 0,
      latencySamples: 0,
      leaf: undefined,
      pos: 0,
      rank: 0,
    };
    index.add(entry, true);
    this.#classify(entry, index, now, true);
  }

  #shapeOf(instance: Instance): Shape {
    const caps = [...new Set(instance.capabilities)].sort();
    const signature = JSON.stringify([caps, instance.contextLength, instance.tier ?? null, instance.quantization ?? null]);
    let shape = this.#shapes.get(signature);
    if (!shape) {
      shape = {
        id: this.#shapes.size,
        capabilities: caps,
        contextLength: instance.contextLength,
        tier: instance.tier,
        quantization: instance.quantization,
      };
      this.#shapes.set(signature, shape);
    }
    return shape;
  }

  /** Reads an entry's routing state and load again and moves it to its leaf (and its mirrors, when it changed or is `fresh`). */
  #classify(e: Entry, index: CandidateIndex<LiveInstance>, now: number, fresh = false): void {
    if (now > this.#clock) this.#clock = now;
    const { leaf, closed: wasClosed, fast, firstSeen, tps, latencyMs, latencySamples, cls } = e;
    const h = this.#store.get(e.key);
    const closed = !h || !h.breaker.needsProbe;
    e.fast = !h || !belowFloor(h.throughput, this.#cfg);
    e.firstSeen = h ? h.firstSeen : Infinity;
    e.tps = h ? h.throughput.tokensPerSecond : 0;
    const latency = h?.latency ?? NO_LATENCY;
    e.latencyMs = latency.ms;
    e.latencySamples = latency.samples;
    const score = this.#healthOf(e.key, h ?? NO_STATE, now, true);
    const at = this.#health.get(e.key)!.at;
    const seasoned = now - e.firstSeen >= this.#cfg.rampMs;
    e.cls = seasoned ? Math.floor(score * 10) : -1;
    const due = Math.min(at + HEALTH_TTL_MS, seasoned ? Infinity : e.firstSeen + this.#cfg.rampMs);
    if (due !== e.due) {
      e.due = due;
      this.#due.push(due, e);
    }
    if (closed) this.#parked.delete(e);
    else this.#parked.add(e);
    index.place(e, closed, this.#placement(e, closed));
    const same =
      e.leaf === leaf &&
      e.closed === wasClosed &&
      e.fast === fast &&
      e.firstSeen === firstSeen &&
      e.tps === tps &&
      e.latencyMs === latencyMs &&
      e.latencySamples === latencySamples &&
      e.cls === cls;
    // The sorted indexes copy these fields and the placement: nothing to copy when none changed.
    if (fresh || !same) this.#mirror(e);
  }

  /** Copies an entry's place to the sorted indexes of its model and of "auto", where they exist. */
  #mirror(e: Entry): void {
    for (const model of [e.model, AUTO]) {
      const sorts = this.#sorts.get(model);
      if (sorts) for (const s of sorts.values()) s.set(e, e.closed, e.leaf);
    }
  }

  /** The sorted index of a model ("auto": of every model) by `kind`, made and filled on first use. */
  #sorted(model: string, kind: SortKind): Sorted {
    let sorts = this.#sorts.get(model);
    if (!sorts) this.#sorts.set(model, (sorts = new Map()));
    let sorted = sorts.get(kind);
    if (!sorted) {
      sorts.set(kind, (sorted = new SortedPartitions(kind)));
      const indexes = model === AUTO ? [...this.#index.values()] : [this.#index.get(model)!];
      for (const index of indexes) for (const e of index.entries()) sorted.set(e, e.closed, e.leaf);
    }
    return sorted;
  }

  #placement(e: Entry, closed: boolean): Placement | undefined {
    if (!closed) return undefined;
    const { active, capacity } = loadOf(e.item);
    return active < capacity ? { side: e.fast ? 0 : 1, level: active / capacity, cls: e.cls } : undefined;
  }

  /** The index entry of a live key, with its model's index. */
  #entryOf(key: string): { entry: Entry; index: CandidateIndex<LiveInstance> } | undefined {
    const live = this.#byKey.get(key);
    if (!live) return undefined;
    const index = this.#index.get(canonical(live.instance.model));
    const entry = index?.get(key);
    return entry && entry.item === live ? { entry, index: index! } : undefined;
  }

  /**
   * Says that the load or capacity of an instance changed: a job started or ended on it, or
   * its node reported a capacity. A session connected to this process calls it through its
   * hub; whatever holds the load of a node connected to another process calls it too.
   */
  loadChanged(host: JobHost, instanceId: string): void {
    if (host.nodeId === undefined) return;
    const key = instanceKey(host.nodeId, instanceId);
    const live = this.#bySession.get(host)?.get(key);
    if (!live) return;
    const index = this.#index.get(canonical(live.instance.model));
    const e = index?.get(key);
    if (e?.item === live) {
      index!.place(e, e.closed, this.#placement(e, e.closed));
      this.#mirror(e);
    }
  }

  /**
   * Says that the routing state of an instance (breaker, health window, throughput,
   * first-seen) changed in the store other than through this Router (a shared store updated
   * by another process). Without it the Router sees such a change within 10 s while routing.
   */
  stateChanged(key: string, now = Date.now()): void {
    this.#health.delete(key);
    const found = this.#entryOf(key);
    if (found) {
      this.#classify(found.entry, found.index, Math.max(now, this.#clock));
      this.#tallies.get(found.entry.model)?.seen(found.entry.firstSeen);
    }
  }

  /** Re-classifies the entries whose classification ran out by `now`; false when `now` is earlier than the index's clock. */
  #advance(now: number): boolean {
    if (now < this.#clock) return false;
    this.#clock = now;
    for (let rec = this.#due.popDue(now); rec; rec = this.#due.popDue(now)) {
      const e = rec.item;
      if (rec.due !== e.due) continue;
      const index = this.#index.get(e.model);
      if (index?.get(e.key) !== e) continue;
      this.#classify(e, index, now);
    }
    return true;
  }

  /** Removes every instance of a session. */
  remove(session: JobHost): void {
    const mine = this.#bySession.get(session);
    if (!mine) return;
    for (const live of mine.values()) {
      this.#health.delete(live.key);
      if (this.#byKey.get(live.key) === live) this.#byKey.delete(live.key);
      const name = canonical(live.instance.model);
      const models = this.#byModel.get(name);
      if (models?.get(live.key) === live) {
        models.delete(live.key);
        this.#offers.delete(name);
        this.#cheapest.delete(name);
        this.#tallies.get(name)?.remove(this.#member(live, Infinity));
        const index = this.#index.get(name);
        const e = index?.get(live.key);
        if (e) this.#parked.delete(e);
        index?.delete(live.key);
        for (const model of [name, AUTO]) for (const s of this.#sorts.get(model)?.values() ?? NO_SORTS) s.delete(live.key);
        if (index?.size === 0) {
          this.#index.delete(name);
          this.#sorts.delete(name);
        }
      }
      if (models?.size === 0) {
        this.#byModel.delete(name);
        this.#tallies.delete(name);
      }
    }
    this.#bySession.delete(session);
  }

  #view(live: LiveInstance, now: number): CandidateView {
    const h = this.#store.get(live.key) ?? freshHealth(now);
    const { active, capacity } = loadOf(live);
    return {
      key: live.key,
      model: live.instance.model,
      capabilities: live.instance.capabilities,
      contextLength: live.instance.contextLength,
      price: live.instance.price,
      active,
      capacity,
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

  /** The health score of an instance, computed again when the cached one is 10 s old (or from a later `now`). */
  #healthOf(key: string, h: Pick<InstanceHealth, "window">, now: number, classifying = false): number {
    const cached = this.#health.get(key);
    if (cached && now - cached.at < HEALTH_TTL_MS && now >= cached.at) return cached.score;
    const score = healthScore(h.window, now, this.#cfg);
    this.#health.set(key, { score, at: now });
    if (!classifying) {
      // The index classifies this instance again on its next decision, with this score.
      const found = this.#entryOf(key);
      if (found && found.entry.due > now) this.#due.push((found.entry.due = now), found.entry);
    }
    return score;
  }

  /**
   * The offers of a model's live instances in short, asked for by any alias (every model for
   * `auto`): per capability set, the dearest prices and the longest context. Remembered until
   * the model's instances change, so asking on every request costs little.
   */
  offers(model: string): readonly OfferSummary[] {
    if (model === "auto") return [...this.#byModel.keys()].flatMap((m) => this.offers(m));
    const name = canonical(model);
    let summary = this.#offers.get(name);
    if (!summary) {
      const models = this.#byModel.get(name);
      if (!models) return [];
      summary = summarizeOffers([...models.values()].map((l) => l.instance));
      this.#offers.set(name, summary);
    }
    return summary;
  }

  /**
   * The cheapest price among a model's live instances (by input plus output per million
   * tokens), asked for by any alias (every model for `auto`); undefined when none is online.
   * Remembered until the model's instances change.
   */
  cheapest(model: string): Price | undefined {
    if (model === "auto") return cheaper([...this.#byModel.keys()].map((m) => this.cheapest(m)));
    const name = canonical(model);
    if (!this.#cheapest.has(name)) {
      const models = this.#byModel.get(name);
      if (!models) return undefined;
      this.#cheapest.set(name, cheaper([...models.values()].map((l) => l.instance.price)));
    }
    return this.#cheapest.get(name);
  }

  /** Live instances of a model, asked for by any alias (every model for `auto`): constant time. */
  count(model: string): number {
    if (model !== "auto") return this.#byModel.get(canonical(model))?.size ?? 0;
    let n = 0;
    for (const m of this.#byModel.values()) n += m.size;
    return n;
  }

  /** Views of the live instances of a model, asked for by any alias (every model for `auto`). */
  views(model: string, now = Date.now()): CandidateView[] {
    const lives =
      model === "auto"
        ? [...this.#byModel.values()].flatMap((m) => [...m.values()])
        : [...(this.#byModel.get(canonical(model))?.values() ?? [])];
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
  route(needs: RouteNeeds, sort: RouteSort = "load", now = Date.now(), order?: RouteOrder, prefer?: string): LiveInstance | NoRoute {
    const name = canonical(needs.model);
    const index = this.#indexFor(needs.model, name, now);
    if (index) {
      for (let attempt = 0; attempt < CONFIRM_ATTEMPTS; attempt++) {
        const plan = this.#plan(index, { ...needs, model: name }, this.#sortOf(needs.model, name, sort), now, order, prefer);
        if (plan === "busy") return { reason: "busy" };
        if (!plan) break;
        const chosen = "key" in plan ? plan : drawFrom(plan.leaves, plan.q, this.#weight(now), this.#random, plan.counts);
        if (chosen && this.#confirm(chosen, now)) return chosen.item;
      }
    }
    return this.#routeLinear(needs, sort, now, order, prefer);
  }

  /**
   * The instances a request could be routed to now, each with its relative chance (its
   * ramp-up weight among the ones `pick()` would choose from), or why none can take it: what
   * {@link Router.route} draws from, without the preferred instance. For inspection and tests.
   */
  candidates(
    needs: RouteNeeds,
    sort: RouteSort = "load",
    now = Date.now(),
    order?: RouteOrder,
  ): { key: string; weight: number }[] | NoRoute {
    const name = canonical(needs.model);
    const index = this.#indexFor(needs.model, name, now);
    const plan = index && this.#plan(index, { ...needs, model: name }, this.#sortOf(needs.model, name, sort), now, order, undefined);
    if (plan === "busy") return { reason: "busy" };
    if (plan && !("key" in plan))
      return listPool(plan.leaves, plan.q, this.#weight(now), plan.counts).map((p) => ({ key: p.entry.key, weight: p.weight }));
    const pool = this.#poolLinear(needs, sort, now, order);
    if (!Array.isArray(pool)) return pool;
    const { pool: chosen, weights } = pickPool(pool, now, this.#cfg);
    return chosen.map((v, i) => ({ key: v.key, weight: weights[i]! }));
  }

  /** The sort a request is decided by: `model: "auto"` sorts by price unless told otherwise. */
  #sortOf(asked: string, name: string, sort: RouteSort): RouteSort {
    return sort === "load" && (asked === AUTO || name === AUTO) ? "price" : sort;
  }

  /** The index that can decide this request (its model's; every model's for "auto"), unless the clock went back. */
  #indexFor(asked: string, name: string, now: number): CandidateIndex<LiveInstance> | undefined {
    if (asked === AUTO || name === AUTO) {
      if (this.#index.size === 0 || !this.#advance(now)) return undefined;
      for (const [, part] of this.#sorted(AUTO, "all").walk()) return part;
      return undefined;
    }
    const index = this.#index.get(name);
    return index && this.#advance(now) ? index : undefined;
  }

  #weight(now: number): (e: Entry, cls: number) => number {
    return (e, cls) => (cls === -1 ? rampFactor(e.firstSeen, now, this.#cfg) : 1);
  }

  /**
   * The index's decision for a request: the preferred instance when it may take the request
   * (sorting by load only), else the leaves to draw from, or "busy" when instances accept it
   * and none is free; undefined when the index cannot tell (the reference then decides).
   */
  #plan(
    index: CandidateIndex<LiveInstance>,
    needs: RouteNeeds,
    sort: RouteSort,
    now: number,
    order: RouteOrder | undefined,
    prefer: string | undefined,
  ): Plan | undefined {
    const random = this.#random;
    let q = indexQuery<LiveInstance>(needs, (e) => this.#view(e.item, now));
    // The throughput floor: instances measured below it only when no other may take the request.
    const fast = index.firstLevel(0, q, random);
    const side = fast ? 0 : 1;
    let node = fast ?? index.firstLevel(1, q, random);
    // None free: "busy" when one that accepts the request has its breaker closed (eligible()'s answer).
    if (!node) return index.anyClosed(q) ? "busy" : undefined;
    if (order && order.selectors.length > 0) {
      let found = false;
      for (const selector of order.selectors) {
        const narrowed = q.narrow(selector);
        const first = index.firstLevel(side, narrowed, random);
        if (first) {
          q = narrowed;
          node = first;
          found = true;
          break;
        }
      }
      if (!found && order.only) return undefined;
    }
    if (sort !== "load") return this.#sortedPlan(index === this.#index.get(needs.model) ? needs.model : AUTO, sort, q, side, node);
    if (prefer !== undefined) {
      const sticky = index.get(prefer);
      if (sticky && index.accepts(sticky, side, q)) return sticky;
    }
    return { leaves: poolLeaves(node, q, random), q };
  }

  /**
   * The leaves a sorted request draws from (`referencePool()`'s sorts): the cheapest price
   * holding an accepted instance; or the best throughput and every instance within 80 % of
   * it; or the best measured latency, every instance within 1.25 × it + 5 ms and every
   * unmeasured one; then the load policy over those. `node` is the least loaded level of
   * the whole pool, used when the sort keeps every instance.
   */
  #sortedPlan(
    model: string,
    sort: Exclude<RouteSort, "load">,
    q: RequestQuery<LiveInstance>,
    side: 0 | 1,
    node: ReturnType<CandidateIndex<LiveInstance>["firstLevel"]> & {},
  ): Plan | undefined {
    const random = this.#random;
    const parts = this.#sorted(model, sort);
    if (sort === "price") {
      for (const [, part] of parts.walk()) {
        const first = part.firstLevel(side, q, random);
        if (first) return { leaves: poolLeaves(first, q, random), q };
      }
      return undefined;
    }
    const ranked = parts.ranked;
    const pool = ranked && rankedPool(ranked, side, q, sort, random);
    if (pool === "all") return { leaves: poolLeaves(node, q, random), q };
    return pool ? { ...pool, q } : undefined;
  }

  /** Whether the entry drawn (or its mirror) is still where the index had it, after reading its session and store again. */
  #confirm(e: Entry, now: number): boolean {
    const found = this.#entryOf(e.key);
    if (!found || found.entry.item !== e.item) return false;
    const leaf = e.leaf;
    const rank = e.rank;
    this.#classify(found.entry, found.index, now);
    return leaf !== undefined && e.leaf === leaf && e.rank === rank;
  }

  /** The reference pool over every view of the model (linear). */
  #poolLinear(needs: RouteNeeds, sort: RouteSort, now: number, order?: RouteOrder): CandidateView[] | NoRoute {
    // Any alias of a model routes to its instances, whatever name each was offered under (SRP-CON-017).
    const name = canonical(needs.model);
    const views = this.views(name, now).map((v) => (v.model === name ? v : { ...v, model: name }));
    if (needs.model === "auto" && sort === "load") sort = "price";
    return referencePool(views, { ...needs, model: name }, sort, now, order, this.#cfg, needs.model);
  }

  /** {@link Router.route} by the linear reference. */
  #routeLinear(needs: RouteNeeds, sort: RouteSort, now: number, order?: RouteOrder, prefer?: string): LiveInstance | NoRoute {
    const pool = this.#poolLinear(needs, sort, now, order);
    if (!Array.isArray(pool)) return pool;
    const explicit = sort !== "load" || needs.model === "auto";
    const sticky = prefer !== undefined && !explicit ? pool.find((v) => v.key === prefer) : undefined;
    const chosen = sticky ?? pick(pool, now, this.#random, this.#cfg);
    if (!chosen) return { reason: "busy" };
    return this.#byKey.get(chosen.key) ?? { reason: "busy" };
  }

  /** Records a job outcome for an instance; may park it. */
  outcome(key: string, model: string, outcome: Outcome, now = Date.now()): void {
    if (this.#forwarded({ t: "outcome", key, model, outcome })) return;
    this.#health.delete(key);
    const before = this.#store.get(key)?.breaker;
    const after = this.#store.update(key, now, (h) => ({
      ...h,
      breaker: breakerAfterOutcome(h.breaker, outcome, now, this.#cfg),
      window: recordHealth(h.window, now, { [outcome]: 1 }, this.#cfg),
    }));
    const found = this.#restate(key, now);
    if (before && !before.needsProbe && after.breaker.needsProbe) {
      // Others with a closed breaker: the index's count when the instance is indexed under this model, else a scan.
      const others =
        found && found.entry.model === canonical(model)
          ? found.index.closedCount
          : this.views(model, now).filter((v) => v.key !== key && breakerStatus(v.breaker, now) === "closed").length;
      this.onBreakerChange?.({ key, model, status: "parked", lastForModel: others === 0 });
    }
    this.cluster?.written(key);
  }

  /** Passes an observation of an instance connected to another process on to it; false when it is recorded here. */
  #forwarded(record: RoutingRecord): boolean {
    const cluster = this.cluster;
    const live = cluster ? this.#byKey.get(record.key) : undefined;
    if (!cluster || !live || live.session.local) return false;
    cluster.forward(live, record);
    return true;
  }

  /** Classifies a key's entry again after this Router wrote its state. */
  #restate(key: string, now: number): { entry: Entry; index: CandidateIndex<LiveInstance> } | undefined {
    const found = this.#entryOf(key);
    if (found) this.#classify(found.entry, found.index, Math.max(now, this.#clock));
    return found;
  }

  /** Folds a measured time to first output into an instance's latency estimate. */
  latency(key: string, ms: number, now = Date.now()): void {
    if (this.#forwarded({ t: "latency", key, ms })) return;
    this.#store.update(key, now, (h) => ({ ...h, latency: recordLatency(h.latency ?? NO_LATENCY, ms) }));
    this.#restate(key, now);
    this.cluster?.written(key);
  }

  /** Folds a measured stream into an instance's throughput estimate. */
  throughput(key: string, tokens: number, ms: number, now = Date.now()): void {
    if (this.#forwarded({ t: "throughput", key, tokens, ms })) return;
    this.#store.update(key, now, (h) => ({ ...h, throughput: recordThroughput(h.throughput, tokens, ms) }));
    this.#restate(key, now);
    this.cluster?.written(key);
  }

  /** Instances of nodes connected to this process whose park is over and whose probe is due; marks them as probing. */
  dueProbes(now = Date.now()): LiveInstance[] {
    const due: LiveInstance[] = [];
    // Only instances whose breaker is not closed (as last classified) can be due: no scan of every instance.
    for (const e of [...this.#parked]) {
      const live = e.item;
      if (!live.session.local) continue;
      const h = this.#store.get(live.key);
      if (h && breakerStatus(h.breaker, now) === "probe_due") {
        this.#store.update(live.key, now, (x) => ({ ...x, breaker: breakerProbeSent(x.breaker) }));
        this.cluster?.written(live.key);
        due.push(live);
      } else if (!h || !h.breaker.needsProbe) this.#restate(live.key, now);
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
    this.#restate(key, now);
    this.cluster?.written(key);
    if (ok && !after.breaker.needsProbe) this.onBreakerChange?.({ key, model, status: "readmitted", lastForModel: false });
  }

  /** Credits online time to every live instance (uptime credit of the health window). */
  creditOnline(ms: number, now = Date.now()): void {
    this.#health.clear();
    for (const m of this.#byModel.values())
      for (const live of m.values())
        this.#store.update(live.key, now, (h) => ({ ...h, window: recordHealth(h.window, now, { onlineMs: ms }, this.#cfg) }));
    const at = Math.max(now, this.#clock);
    for (const index of this.#index.values()) for (const e of index.entries()) this.#classify(e, index, at);
  }

  #member(live: LiveInstance, now: number): TallyMember {
    return { instance: live.instance, firstSeen: this.#store.get(live.key)?.firstSeen ?? now };
  }

  /**
   * Every model online in short (instances, capabilities, lowest and highest prices, longest
   * context, earliest first-seen), sorted by id, for the free listings: O(models) per call.
   * Joins show at once; a departure's extremes within about a second (`catalog.ts`).
   */
  summaries(now = Date.now()): ModelSummary[] {
    const out: ModelSummary[] = [];
    for (const [name, tally] of this.#tallies) {
      const models = this.#byModel.get(name);
      if (!models || models.size === 0) continue;
      if (tally.due(now))
        tally.recount(
          [...models.values()].map((l) => this.#member(l, now)),
          now,
        );
      out.push(tally.summary(name));
    }
    return out.sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : 0));
  }

  /** Live instances grouped by model, each with its full view (linear in instances: for inspection; listings use {@link summaries}). */
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
