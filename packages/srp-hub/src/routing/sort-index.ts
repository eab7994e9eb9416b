/**
 * Candidate indexes partitioned by a sort key, for the preference sorts of `reference.ts`
 * (price, throughput, latency) and for `model: "auto"` (`spec/v1/liveness.md`, "Routing
 * policy"): each partition is a {@link CandidateIndex} of the instances whose key falls in
 * it, walked best key first, so a sorted decision finds the best partition holding an
 * instance the request accepts, then applies the load policy inside the partitions the
 * sort keeps. Partitions hold *mirrors* of the Router's entries (an entry sits in one leaf
 * per index), kept where the entry is by {@link SortedPartitions.set}.
 *
 * The keys: the price (input + output per million tokens, exact) ascending; a coarse bucket
 * of the measured throughput descending; a coarse bucket of the measured latency ascending,
 * unmeasured last. Buckets only narrow where to look: the exact comparisons of the reference
 * are made per instance (`sortFilter()`), so the result is the reference's, exactly.
 */
import { CandidateIndex, type IndexEntry, type IndexQuery, type Placement, type Side } from "./candidate-index.js";

/** A partition's key: a price (bigint) or a bucket (number). */
export type SortKey = number | bigint;

/** Buckets per factor e of a throughput or latency: about 2 % wide. */
const BUCKETS_PER_E = 50;

/** The bucket of a positive measurement (throughput or latency), monotone in it; values at or below 0 share the lowest. */
export function bucketOf(value: number): number {
  return value > 0 ? Math.floor(Math.log(value) * BUCKETS_PER_E) : -1e9;
}

/** The key of a mirror in a partitioned index of a sort (`all` is one partition: the model "auto" over every model). */
export function sortKeyOf<T>(kind: SortKind, e: IndexEntry<T>): SortKey {
  if (kind === "price") return e.priceInput + e.priceOutput;
  if (kind === "throughput") return e.tps > 0 ? bucketOf(e.tps) : Number.NEGATIVE_INFINITY;
  if (kind === "latency") return e.latencySamples > 0 ? bucketOf(e.latencyMs) : Number.POSITIVE_INFINITY;
  return 0;
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
      this.#parts.set(k, (part = new CandidateIndex()));
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

  /** Partition keys best first (ascending; descending for throughput), with their indexes; empty partitions skipped. */
  *walk(): Generator<[SortKey, CandidateIndex<T>]> {
    this.#settle();
    const order = this.#order;
    const n = order.length;
    const descending = this.kind === "throughput";
    for (let i = 0; i < n; i++) {
      const k = order[descending ? n - 1 - i : i]!;
      const part = this.#parts.get(k);
      if (part) yield [k, part];
    }
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

/**
 * `q` narrowed by a per-instance condition of a sort (within 80 % of the best throughput,
 * within 1.25 × best + 5 ms of the best latency): every instance is asked.
 */
export function sortFilter<T>(q: IndexQuery<T>, keep: (e: IndexEntry<T>) => boolean): IndexQuery<T> {
  return {
    shape: (s) => (q.shape(s) === 0 ? 0 : 2),
    entry: (e) => keep(e) && (q.shape(e.shape) === 1 || q.entry(e)),
  };
}

/** The best (`better`) value of `measure` among the instances of `part` on `side` that `q` accepts, or undefined. */
export function bestOf<T>(
  part: CandidateIndex<T>,
  side: Side,
  q: IndexQuery<T>,
  measure: (e: IndexEntry<T>) => number,
  better: (a: number, b: number) => boolean,
): number | undefined {
  let best: number | undefined;
  for (const node of part.levels(side))
    for (const leaf of node.leaves) {
      const s = q.shape(leaf.shape);
      if (s === 0) continue;
      for (const e of leaf.entries) {
        const v = measure(e);
        // The per-instance filters are asked only of an instance that would improve the best.
        if ((best === undefined || better(v, best)) && (s === 1 || q.entry(e))) best = v;
      }
    }
  return best;
}
