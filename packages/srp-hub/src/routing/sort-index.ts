/**
 * Candidate indexes for the preference sorts of `reference.ts` (price, throughput, latency)
 * and for `model: "auto"` (`spec/v1/liveness.md`, "Routing policy"). They hold *mirrors* of
 * the Router's entries (an entry sits in one leaf per index), kept where the entry is by
 * {@link SortedPartitions.set}.
 *
 * By price (and "all", the model "auto" over every model): partitions of the instances with
 * the same price (input + output per million tokens, exact), each a {@link CandidateIndex},
 * walked cheapest first: a decision takes the cheapest partition holding an instance the
 * request accepts and applies the load policy inside it.
 *
 * By throughput and by latency: one index whose leaves are ordered by the instance's measure
 * (its *rank*: throughput negated, so the fastest come first; measured latency, unmeasured
 * first since the sort always keeps them). {@link rankedPool} finds the exact best measure
 * from the head of each leaf, then the instances the sort keeps are a prefix of each leaf:
 * the load policy runs over leaves and prefix lengths, never over instances.
 */
import {
  CandidateIndex,
  holds,
  keptCount,
  type IndexEntry,
  type IndexQuery,
  type Leaf,
  type Placement,
  type Side,
} from "./candidate-index.js";

/** A partition's key: a price (bigint), or 0 (the one partition of the other sorts). */
export type SortKey = number | bigint;

/** The key of a mirror in a partitioned index of a sort: its price; one partition for the other sorts. */
export function sortKeyOf<T>(kind: SortKind, e: IndexEntry<T>): SortKey {
  return kind === "price" ? e.priceInput + e.priceOutput : 0;
}

/** The rank of an instance in the index of a sort by throughput or latency (ascending is best first); undefined for others. */
export function rankOf<T>(kind: SortKind): ((e: IndexEntry<T>) => number) | undefined {
  if (kind === "throughput") return (e) => -e.tps;
  if (kind === "latency") return (e) => (e.latencySamples > 0 ? e.latencyMs : Number.NEGATIVE_INFINITY);
  return undefined;
}

/** What a partitioned index orders by. */
export type SortKind = "price" | "throughput" | "latency" | "all";

const ascending = (a: SortKey, b: SortKey) => (a < b ? -1 : a > b ? 1 : 0);

/** Pending new keys merged one by one into the order; more make it sorted again whole. */
const MERGE_LIMIT = 64;

/** Mirrors of a set of entries, partitioned by a sort key and walked best key first. */
export class SortedPartitions<T> {
  readonly kind: SortKind;
  readonly #parts = new Map<SortKey, CandidateIndex<T>>();
  /** The mirror of each key, with the partition it is in. */
  readonly #mirrors = new Map<string, { mirror: IndexEntry<T>; at: SortKey }>();
  /** Partition keys in walking order; may hold keys whose partition is gone (skipped, dropped when many). */
  #order: SortKey[] = [];
  readonly #listed = new Set<SortKey>();
  #pending: SortKey[] = [];

  constructor(kind: SortKind) {
    this.kind = kind;
  }

  /** Mirrors `e` (its key, breaker flag and placement) into its partition. */
  set(e: IndexEntry<T>, closed: boolean, p: Placement | undefined): void {
    const k = sortKeyOf(this.kind, e);
    let m = this.#mirrors.get(e.key);
    if (m && m.mirror.item !== e.item) {
      this.delete(e.key);
      m = undefined;
    }
    if (!m) {
      m = { mirror: { ...e, leaf: undefined, pos: 0 }, at: k };
      this.#mirrors.set(e.key, m);
      this.#partition(k).add(m.mirror, closed);
    } else if (m.at !== k) {
      this.#drop(m.at, e.key);
      m.at = k;
      this.#partition(k).add(m.mirror, closed);
    }
    const mirror = m.mirror;
    mirror.firstSeen = e.firstSeen;
    mirror.fast = e.fast;
    mirror.cls = e.cls;
    mirror.tps = e.tps;
    mirror.latencyMs = e.latencyMs;
    mirror.latencySamples = e.latencySamples;
    this.#parts.get(k)!.place(mirror, closed, p);
  }

  /** Forgets the mirror of a key. */
  delete(key: string): void {
    const m = this.#mirrors.get(key);
    if (!m) return;
    this.#mirrors.delete(key);
    this.#drop(m.at, key);
  }

  /** Mirrors held. */
  get size(): number {
    return this.#mirrors.size;
  }

  #partition(k: SortKey): CandidateIndex<T> {
    let part = this.#parts.get(k);
    if (!part) {
      this.#parts.set(k, (part = new CandidateIndex(rankOf<T>(this.kind))));
      if (!this.#listed.has(k)) {
        this.#listed.add(k);
        this.#pending.push(k);
      }
    }
    return part;
  }

  #drop(k: SortKey, key: string): void {
    const part = this.#parts.get(k);
    part?.delete(key);
    if (part?.size === 0) this.#parts.delete(k);
  }

  /** Partition keys best (lowest) first, with their indexes; empty partitions skipped. */
  *walk(): Generator<[SortKey, CandidateIndex<T>]> {
    this.#settle();
    for (const k of this.#order) {
      const part = this.#parts.get(k);
      if (part) yield [k, part];
    }
  }

  /** The only partition of a sort by throughput or latency (undefined when it holds no mirror). */
  get ranked(): CandidateIndex<T> | undefined {
    return this.#parts.get(0);
  }

  /** Merges new keys into the order, or sorts it again (dropping gone keys) when many changed. */
  #settle(): void {
    const pending = this.#pending;
    if (pending.length === 0 && this.#order.length <= 2 * this.#parts.size + MERGE_LIMIT) return;
    if (pending.length > MERGE_LIMIT || this.#order.length > 2 * this.#parts.size + MERGE_LIMIT) {
      this.#order = [...this.#parts.keys()].sort(ascending);
      this.#listed.clear();
      for (const k of this.#order) this.#listed.add(k);
    } else {
      for (const k of pending) {
        let lo = 0;
        let hi = this.#order.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (this.#order[mid]! < k) lo = mid + 1;
          else hi = mid;
        }
        this.#order.splice(lo, 0, k);
      }
    }
    this.#pending = [];
  }
}

/** The leaves a sorted decision draws from, and how many leading entries of each the sort keeps. */
export interface RankedPool<T> {
  leaves: Leaf<T>[];
  counts: number[];
}

/**
 * The pool of a sort by throughput or latency (`referencePool()` then `pick()`'s pool) among
 * the instances of `index` (made with {@link rankOf}) on `side` that `q` accepts: the best
 * measure (the highest throughput; the lowest measured latency), the rank limit it sets
 * (80 % of that throughput; 1.25 × that latency + 5 ms, unmeasured always kept), then the
 * least loaded level holding a kept accepted instance and, there, the best health bucket
 * and the ramping leaves. "all" when no latency is measured (the sort keeps every instance:
 * the caller applies the load policy to the whole pool); undefined when no instance is accepted.
 * Cost: a binary search per leaf of the side, plus per-instance filters where `q` asks them.
 */
export function rankedPool<T>(
  index: CandidateIndex<T>,
  side: Side,
  q: IndexQuery<T>,
  kind: "throughput" | "latency",
  random: () => number,
): RankedPool<T> | "all" | undefined {
  const levels = index.levels(side);
  // The best rank: at the head of each leaf (after its unmeasured latencies), or the first accepted from there.
  let best = Number.POSITIVE_INFINITY;
  for (const node of levels)
    for (const leaf of node.leaves) {
      const s = q.shape(leaf.shape);
      if (s === 0) continue;
      const start = kind === "latency" ? leaf.low : 0;
      if (s === 1) {
        const head = start < leaf.low ? Number.NEGATIVE_INFINITY : leaf.head;
        if (head < best) best = head;
        continue;
      }
      const entries = leaf.entries;
      for (let i = start; i < entries.length; i++) {
        const e = entries[i]!;
        if (e.rank >= best) break;
        if (q.entry(e)) {
          best = e.rank;
          break;
        }
      }
    }
  if (best === Number.POSITIVE_INFINITY) return kind === "latency" ? "all" : undefined;
  // The same arithmetic as the reference: tps >= best × 0.8 is -tps <= -(best × 0.8).
  const limit = kind === "throughput" ? -(-best * 0.8) : best * 1.25 + 5;
  for (const node of levels) {
    const pool = keptAt(node.leaves, q, limit, random);
    if (pool) return pool;
  }
  return undefined;
}

/** The pool of one load level (leaves ordered best bucket first, ramping last), or undefined when it keeps no accepted instance. */
function keptAt<T>(leaves: readonly Leaf<T>[], q: IndexQuery<T>, limit: number, random: () => number): RankedPool<T> | undefined {
  // The first leaf holding a kept accepted instance sets the bucket (-1: only ramping instances are kept).
  let cls: number | undefined;
  for (const leaf of leaves) {
    if (q.shape(leaf.shape) !== 0 && holds(leaf, q, random, keptCount(leaf, limit))) {
      cls = leaf.cls;
      break;
    }
  }
  if (cls === undefined) return undefined;
  const pool: RankedPool<T> = { leaves: [], counts: [] };
  for (const leaf of leaves) {
    if ((leaf.cls !== cls && leaf.cls !== -1) || q.shape(leaf.shape) === 0) continue;
    const n = keptCount(leaf, limit);
    if (n > 0) {
      pool.leaves.push(leaf);
      pool.counts.push(n);
    }
  }
  return pool;
}
