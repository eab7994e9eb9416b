/**
 * The candidate index of one model: the Router's fast path for `route()`, so a decision
 * among 100,000 instances of a model costs about as much as among ten (`spec/v1/liveness.md`,
 * "Routing policy"; the policy itself is `eligible()` + `pick()` in `policy.ts`).
 *
 * Each instance that may take a job now (breaker closed, a free slot) sits in one *leaf*:
 * the instances with the same throughput side (above the floor, or measured below it), the
 * same load level (`active / capacity`, exact: capacities are at most 1024, so distinct
 * levels never fall within the policy's 1e-9 tie), the same class (its health bucket once
 * seasoned, or "ramping" during its first week) and the same *shape* (capabilities, context
 * length, tier, quantization). Leaves hang off their load level; levels are kept sorted per
 * side. A request's filters are judged once per shape where they can be (capabilities,
 * context, quantization, tier selectors), and per instance only where they must be (price
 * cap, `within`, `exclude`, node and key selectors).
 *
 * A decision walks the levels of the side upward to the first that holds an instance the
 * request accepts (the least loaded), finds the best health bucket there, and draws from
 * that bucket's leaves and the level's ramping leaves by rejection: an instance drawn
 * uniformly is kept with probability equal to its ramp-up weight and only when it passes the
 * request's per-instance filters. The result has exactly the distribution of `pick()` over
 * the same candidates; after {@link DRAW_ATTEMPTS} rejections the pool is listed and drawn
 * from directly (same distribution, linear in the level's size). Whether a leaf holds an
 * accepted instance is answered by a few random probes, then by a scan: requests whose
 * filters reject most instances of a model are correct, and slower.
 *
 * An index made with a *rank* (the sorts by throughput and latency, `sort-index.ts`) keeps
 * each leaf's instances in ascending order of it, so the instances of a leaf a sort keeps
 * are a prefix of the leaf, counted by a binary search ({@link keptCount}).
 *
 * The index knows nothing of sessions or stores: the Router classifies each entry
 * ({@link CandidateIndex.place}) when its load, capacity or routing state changes.
 */

/** What an instance offers, as far as request filters tell instances apart; shared by the instances that offer the same. */
export interface Shape {
  /** Small number, unique per shape within a Router. */
  readonly id: number;
  readonly capabilities: readonly string[];
  readonly contextLength: number;
  readonly tier: string | undefined;
  readonly quantization: string | undefined;
}

/** Throughput side: 0 for instances not measured below the floor, 1 for those below it. */
export type Side = 0 | 1;

/** Where an entry belongs now; undefined when it cannot take a job (breaker not closed, no free slot). */
export interface Placement {
  side: Side;
  /** `active / capacity`, below 1. */
  level: number;
  /** Health bucket 0..10 once seasoned; -1 while ramping up. */
  cls: number;
}

/** One live instance in the index. */
export interface IndexEntry<T> {
  readonly key: string;
  readonly item: T;
  /** The canonical model id it is indexed under. */
  readonly model: string;
  readonly nodeId: string;
  readonly shape: Shape;
  readonly priceInput: bigint;
  readonly priceOutput: bigint;
  /** When ramp-up started (Infinity when the store knows nothing of it: a brand-new instance at any time). */
  firstSeen: number;
  /** Whether its breaker is closed. */
  closed: boolean;
  /** Whether it is not measured below the throughput floor (side 0). */
  fast: boolean;
  /** Its class: health bucket 0..10 once seasoned, -1 while ramping up. */
  cls: number;
  /** When its classification must be made again (health cache expiry, end of ramp-up). */
  due: number;
  /** Its measured throughput in tokens per second (0 unmeasured), for sorts by throughput. */
  tps: number;
  /** Its measured time to first output in ms, and the jobs measured (0: unmeasured), for sorts by latency. */
  latencyMs: number;
  latencySamples: number;
  /** @internal */
  leaf: Leaf<T> | undefined;
  /** @internal */
  pos: number;
  /** The rank it was placed with, in an index made with a rank. @internal */
  rank: number;
}

/** Instances of one side, level, class and shape. @internal */
export interface Leaf<T> {
  readonly side: Side;
  readonly level: number;
  readonly cls: number;
  readonly shape: Shape;
  readonly entries: IndexEntry<T>[];
  readonly node: LevelNode<T>;
  /** In a ranked index: how many entries rank -Infinity (the first ones). */
  low: number;
  /** In a ranked index: the rank of the first entry ranked above -Infinity (Infinity when none). */
  head: number;
}

/** The leaves of one load level of one side, best health bucket first, ramping last. @internal */
export interface LevelNode<T> {
  readonly level: number;
  readonly leaves: Leaf<T>[];
}

/** A request's filters, as the index asks them. */
export interface IndexQuery<T> {
  /** 0: no instance of the shape passes; 1: every one does; 2: each must be asked with {@link IndexQuery.entry}. */
  shape(shape: Shape): 0 | 1 | 2;
  /** Whether one instance passes the filters that depend on more than its shape. */
  entry(e: IndexEntry<T>): boolean;
}

/** Rejections before a draw lists its pool instead. */
export const DRAW_ATTEMPTS = 64;
/** Random probes of a leaf before it is scanned for an accepted instance. */
const PROBES = 8;

/** Order of two entries of a ranked leaf: by rank, then by key (a total order, so an entry is found by a binary search). */
function before<T>(a: IndexEntry<T>, b: IndexEntry<T>): boolean {
  return a.rank < b.rank || (a.rank === b.rank && a.key < b.key);
}

/** Where `e` is, or belongs, in a ranked leaf's entries. */
function rankedPosition<T>(entries: readonly IndexEntry<T>[], e: IndexEntry<T>): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (before(entries[mid]!, e)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** How many leading entries of a ranked leaf have a rank at most `limit` (those a sort keeps). */
export function keptCount<T>(leaf: Leaf<T>, limit: number): number {
  const entries = leaf.entries;
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (entries[mid]!.rank <= limit) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The candidate index of one model. */
export class CandidateIndex<T> {
  readonly #rank: ((e: IndexEntry<T>) => number) | undefined;
  readonly #entries = new Map<string, IndexEntry<T>>();
  readonly #leaves = new Map<string, Leaf<T>>();
  readonly #levels: [LevelNode<T>[], LevelNode<T>[]] = [[], []];
  #closed = 0;
  /** Entries whose breaker is closed, per shape id: what says "busy" without a scan. */
  readonly #closedByShape = new Map<number, { shape: Shape; entries: Set<IndexEntry<T>> }>();

  /** An index whose leaves are kept in ascending order of `rank` (an instance's sort key), or unordered without one. */
  constructor(rank?: (e: IndexEntry<T>) => number) {
    this.#rank = rank;
  }

  /** Instances indexed. */
  get size(): number {
    return this.#entries.size;
  }

  /** Instances whose breaker is closed. */
  get closedCount(): number {
    return this.#closed;
  }

  /** The entry of a key. */
  get(key: string): IndexEntry<T> | undefined {
    return this.#entries.get(key);
  }

  /** Every entry (linear; for inspection, probes and bulk refreshes). */
  entries(): IterableIterator<IndexEntry<T>> {
    return this.#entries.values();
  }

  /** Adds an entry (replacing one with the same key); place it with {@link place}. */
  add(entry: IndexEntry<T>, closed: boolean): void {
    this.delete(entry.key);
    entry.closed = closed;
    if (closed) this.#countClosed(entry, true);
    this.#entries.set(entry.key, entry);
  }

  /** Removes an entry. */
  delete(key: string): void {
    const e = this.#entries.get(key);
    if (!e) return;
    this.#unplace(e);
    if (e.closed) this.#countClosed(e, false);
    this.#entries.delete(key);
  }

  #countClosed(e: IndexEntry<T>, closed: boolean): void {
    this.#closed += closed ? 1 : -1;
    let group = this.#closedByShape.get(e.shape.id);
    if (!group) this.#closedByShape.set(e.shape.id, (group = { shape: e.shape, entries: new Set() }));
    if (closed) group.entries.add(e);
    else group.entries.delete(e);
  }

  /** Sets an entry's breaker flag and moves it to the leaf of `p` (out of every leaf when undefined). */
  place(e: IndexEntry<T>, closed: boolean, p: Placement | undefined): void {
    if (e.closed !== closed) this.#countClosed(e, closed);
    e.closed = closed;
    const leaf = e.leaf;
    const rank = this.#rank;
    const same = p && leaf && leaf.side === p.side && leaf.level === p.level && leaf.cls === p.cls;
    if (same && (!rank || rank(e) === e.rank)) return;
    this.#unplace(e);
    if (!p) return;
    const id = `${p.side}|${p.level}|${p.cls}|${e.shape.id}`;
    let target = this.#leaves.get(id);
    if (!target) {
      target = {
        side: p.side,
        level: p.level,
        cls: p.cls,
        shape: e.shape,
        entries: [],
        node: this.#levelNode(p.side, p.level),
        low: 0,
        head: Infinity,
      };
      // A level's leaves stay ordered by class, best health bucket first and ramping last.
      const leaves = target.node.leaves;
      let at = leaves.length;
      while (at > 0 && leaves[at - 1]!.cls < p.cls) at--;
      leaves.splice(at, 0, target);
      this.#leaves.set(id, target);
    }
    e.leaf = target;
    if (rank) {
      e.rank = rank(e);
      target.entries.splice(rankedPosition(target.entries, e), 0, e);
      if (e.rank === Number.NEGATIVE_INFINITY) target.low++;
      target.head = target.entries[target.low]?.rank ?? Infinity;
    } else {
      e.pos = target.entries.length;
      target.entries.push(e);
    }
  }

  #levelNode(side: Side, level: number): LevelNode<T> {
    const list = this.#levels[side];
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.level < level) lo = mid + 1;
      else hi = mid;
    }
    if (list[lo]?.level === level) return list[lo]!;
    const node: LevelNode<T> = { level, leaves: [] };
    list.splice(lo, 0, node);
    return node;
  }

  #unplace(e: IndexEntry<T>): void {
    const leaf = e.leaf;
    if (!leaf) return;
    if (this.#rank) {
      leaf.entries.splice(rankedPosition(leaf.entries, e), 1);
      if (e.rank === Number.NEGATIVE_INFINITY) leaf.low--;
      leaf.head = leaf.entries[leaf.low]?.rank ?? Infinity;
    } else {
      const last = leaf.entries.pop()!;
      if (last !== e) {
        leaf.entries[e.pos] = last;
        last.pos = e.pos;
      }
    }
    e.leaf = undefined;
    if (leaf.entries.length > 0) return;
    this.#leaves.delete(`${leaf.side}|${leaf.level}|${leaf.cls}|${leaf.shape.id}`);
    const leaves = leaf.node.leaves;
    leaves.splice(leaves.indexOf(leaf), 1);
    if (leaves.length === 0) {
      const list = this.#levels[leaf.side];
      list.splice(list.indexOf(leaf.node), 1);
    }
  }

  /** The least loaded level of `side` holding an instance the query accepts. */
  firstLevel(side: Side, q: IndexQuery<T>, random: () => number): LevelNode<T> | undefined {
    for (const node of this.#levels[side]) for (const leaf of node.leaves) if (holds(leaf, q, random)) return node;
    return undefined;
  }

  /** The load levels of `side` holding an instance that may take a job, least loaded first. */
  levels(side: Side): readonly LevelNode<T>[] {
    return this.#levels[side];
  }

  /**
   * Whether an instance the query accepts has its breaker closed: with no instance free
   * ({@link firstLevel} undefined on both sides), that is the policy's "busy". Judged per
   * shape, then per instance where the query asks (stops at the first accepted).
   */
  anyClosed(q: IndexQuery<T>): boolean {
    for (const { shape, entries } of this.#closedByShape.values()) {
      const s = entries.size === 0 ? 0 : q.shape(shape);
      if (s === 1) return true;
      if (s === 2) for (const e of entries) if (q.entry(e)) return true;
    }
    return false;
  }

  /** Whether an entry is in the index's routable leaves on `side` and passes the query. */
  accepts(e: IndexEntry<T>, side: Side, q: IndexQuery<T>): boolean {
    if (!e.leaf || e.leaf.side !== side) return false;
    const s = q.shape(e.shape);
    return s === 1 || (s === 2 && q.entry(e));
  }
}

/**
 * Whether the first `n` entries of a leaf (all by default) hold an instance the query accepts:
 * by its shape, then a few random probes, then a scan.
 */
export function holds<T>(leaf: Leaf<T>, q: IndexQuery<T>, random: () => number, n = leaf.entries.length): boolean {
  const s = q.shape(leaf.shape);
  if (s !== 2 || n === 0) return s === 1 && n > 0;
  const entries = leaf.entries;
  if (n > PROBES) {
    for (let i = 0; i < PROBES; i++) if (q.entry(entries[Math.floor(random() * n)]!)) return true;
  }
  for (let i = 0; i < n; i++) if (q.entry(entries[i]!)) return true;
  return false;
}

/**
 * The leaves a decision draws from at `node` (the least loaded level with an accepted
 * instance): those of the best health bucket holding an accepted seasoned instance, and
 * every ramping leaf, as `pick()` does.
 */
export function poolLeaves<T>(node: LevelNode<T>, q: IndexQuery<T>, random: () => number): Leaf<T>[] {
  return poolLeavesOf([node], q, random);
}

/**
 * {@link poolLeaves} over several nodes of the same load level (one per partition of a
 * sorted index, `sort-index.ts`): the best health bucket among all of them decides.
 */
export function poolLeavesOf<T>(nodes: readonly LevelNode<T>[], q: IndexQuery<T>, random: () => number): Leaf<T>[] {
  let best = -1;
  for (const node of nodes) {
    // Leaves are ordered best bucket first: the first that holds an accepted instance sets the node's bucket.
    for (const leaf of node.leaves) {
      if (leaf.cls <= best) break;
      if (holds(leaf, q, random)) {
        best = leaf.cls;
        break;
      }
    }
  }
  return nodes.flatMap((node) => node.leaves.filter((l) => (l.cls === -1 || l.cls === best) && q.shape(l.shape) !== 0));
}

/**
 * Every accepted instance of the pool with its weight (linear in the pool's leaves). With
 * `counts`, only the first `counts[i]` entries of `leaves[i]` are in the pool (a sort's prefix).
 */
export function listPool<T>(
  leaves: readonly Leaf<T>[],
  q: IndexQuery<T>,
  weight: (e: IndexEntry<T>, cls: number) => number,
  counts?: readonly number[],
) {
  const out: { entry: IndexEntry<T>; weight: number }[] = [];
  leaves.forEach((leaf, i) => {
    const all = q.shape(leaf.shape) === 1;
    const n = counts ? counts[i]! : leaf.entries.length;
    for (let j = 0; j < n; j++) {
      const e = leaf.entries[j]!;
      if (all || q.entry(e)) out.push({ entry: e, weight: weight(e, leaf.cls) });
    }
  });
  return out;
}

/**
 * Draws one accepted instance from the pool's leaves with probability proportional to its
 * weight (at most 1): rejection sampling, then, after {@link DRAW_ATTEMPTS} rejections, a
 * draw from the listed pool. Undefined only when no instance is accepted. `counts` as for
 * {@link listPool}.
 */
export function drawFrom<T>(
  leaves: readonly Leaf<T>[],
  q: IndexQuery<T>,
  weight: (e: IndexEntry<T>, cls: number) => number,
  random: () => number,
  counts?: readonly number[],
): IndexEntry<T> | undefined {
  const sizeOf = (i: number) => (counts ? counts[i]! : leaves[i]!.entries.length);
  let total = 0;
  for (let i = 0; i < leaves.length; i++) total += sizeOf(i);
  if (total === 0) return undefined;
  for (let attempt = 0; attempt < DRAW_ATTEMPTS; attempt++) {
    let r = Math.floor(random() * total);
    let i = 0;
    while (i < leaves.length - 1 && r >= sizeOf(i)) r -= sizeOf(i++);
    const leaf = leaves[i]!;
    const e = leaf.entries[Math.min(r, sizeOf(i) - 1)]!;
    const w = weight(e, leaf.cls);
    if (w < 1 && random() >= w) continue;
    if (q.shape(leaf.shape) === 1 || q.entry(e)) return e;
  }
  const pool = listPool(leaves, q, weight, counts);
  let sum = 0;
  for (const p of pool) sum += p.weight;
  let r = random() * sum;
  for (const p of pool) {
    r -= p.weight;
    if (r < 0) return p.entry;
  }
  return pool.at(-1)?.entry;
}
