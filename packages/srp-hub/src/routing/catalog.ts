/**
 * The free listings' view of a model (`GET /v1/models`, `GET /v1/pricing`, x402 discovery):
 * its live instances in short, kept per model as instances come and go, so a listing costs
 * O(models) per request instead of a view of every instance.
 *
 * Exactness: an instance joining is counted at once, exactly. An instance leaving is
 * subtracted at once from the count and the sets (capabilities, quantizations, names
 * offered); only when it held an extreme (a lowest or highest price, the longest context,
 * the earliest first-seen) is the tally marked stale, and it is counted again from the
 * model's instances on the next listing at least {@link CATALOG_REFRESH_MS} after its last
 * count: a departed instance's price or context may show for up to that long.
 */
import type { Instance, Price } from "@srp/core/schema";

/** How long a stale tally may be served before it is counted again from the instances. */
export const CATALOG_REFRESH_MS = 1000;

/** The members of a price that a listing reports. */
export type PriceKey = keyof Price;

/** A model's live instances in short. */
export interface ModelSummary {
  /** The canonical model id. */
  readonly model: string;
  /** Live instances. */
  readonly instances: number;
  /** Every capability some instance offers, sorted. */
  readonly capabilities: readonly string[];
  /** Every quantization some instance declares, sorted. */
  readonly quantizations: readonly string[];
  /** The model names instances were offered under (aliases of `model`, or `model`). */
  readonly names: readonly string[];
  /** The longest context. */
  readonly contextLength: number;
  /** The earliest first-seen time (ms) of its instances. */
  readonly firstSeen: number;
  /** The lowest of each price member some instance sets, per million units. */
  readonly low: Readonly<Partial<Record<PriceKey, bigint>>>;
  /** The highest of each price member some instance sets, per million units. */
  readonly high: Readonly<Partial<Record<PriceKey, bigint>>>;
}

/** One instance as a tally counts it. */
export interface TallyMember {
  /** What it offers. */
  instance: Pick<Instance, "model" | "capabilities" | "contextLength" | "price" | "quantization">;
  /** When its routing state was first seen. */
  firstSeen: number;
}

function bump(counts: Map<string, number>, key: string, by: 1 | -1): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}

const sortedKeys = (counts: Map<string, number>) => [...counts.keys()].sort();

/** Whether a tally must be counted again from its instances now (pure policy). */
export function needsRecount(stale: boolean, countedAt: number, now: number, refreshMs = CATALOG_REFRESH_MS): boolean {
  return stale && (now - countedAt >= refreshMs || now < countedAt);
}

/** The running summary of one model's live instances. */
export class ModelTally {
  #instances = 0;
  readonly #caps = new Map<string, number>();
  readonly #quants = new Map<string, number>();
  readonly #names = new Map<string, number>();
  #context = 0;
  #firstSeen = Infinity;
  #low: Partial<Record<PriceKey, bigint>> = {};
  #high: Partial<Record<PriceKey, bigint>> = {};
  #stale = false;
  #countedAt = -Infinity;
  #summary: ModelSummary | undefined;

  /** Counts an instance joining (exact). */
  add(m: TallyMember): void {
    this.#summary = undefined;
    this.#instances++;
    this.#sets(m, 1);
    const i = m.instance;
    if (i.contextLength > this.#context) this.#context = i.contextLength;
    if (m.firstSeen < this.#firstSeen) this.#firstSeen = m.firstSeen;
    for (const [k, v] of Object.entries(i.price) as [PriceKey, string | undefined][]) {
      if (v === undefined) continue;
      const p = BigInt(v);
      const lo = this.#low[k];
      const hi = this.#high[k];
      if (lo === undefined || p < lo) this.#low[k] = p;
      if (hi === undefined || p > hi) this.#high[k] = p;
    }
  }

  /** Subtracts an instance leaving; marks the tally stale when it held an extreme. */
  remove(m: TallyMember): void {
    this.#summary = undefined;
    this.#instances--;
    this.#sets(m, -1);
    const i = m.instance;
    let extreme = i.contextLength >= this.#context || m.firstSeen <= this.#firstSeen;
    for (const [k, v] of Object.entries(i.price) as [PriceKey, string | undefined][]) {
      if (v === undefined) continue;
      const p = BigInt(v);
      if (p === this.#low[k] || p === this.#high[k]) extreme = true;
    }
    if (extreme) this.#stale = true;
  }

  /** Lowers the earliest first-seen when an instance's routing state turns out older than when it joined (read from a shared store). */
  seen(firstSeen: number): void {
    if (firstSeen < this.#firstSeen) {
      this.#firstSeen = firstSeen;
      this.#summary = undefined;
    }
  }

  #sets(m: TallyMember, by: 1 | -1): void {
    for (const c of new Set(m.instance.capabilities)) bump(this.#caps, c, by);
    if (m.instance.quantization !== undefined) bump(this.#quants, m.instance.quantization, by);
    bump(this.#names, m.instance.model, by);
  }

  /** Whether it is stale and due for a count again at `now`. */
  due(now: number): boolean {
    return needsRecount(this.#stale, this.#countedAt, now);
  }

  /** Counts every instance again (linear: at most once per {@link CATALOG_REFRESH_MS} per model, see {@link due}). */
  recount(members: Iterable<TallyMember>, now: number): void {
    this.#instances = 0;
    this.#caps.clear();
    this.#quants.clear();
    this.#names.clear();
    this.#context = 0;
    this.#firstSeen = Infinity;
    this.#low = {};
    this.#high = {};
    for (const m of members) this.add(m);
    this.#stale = false;
    this.#countedAt = now;
  }

  /** Live instances counted. */
  get instances(): number {
    return this.#instances;
  }

  /** The summary (the same object until the tally changes). */
  summary(model: string): ModelSummary {
    this.#summary ??= {
      model,
      instances: this.#instances,
      capabilities: sortedKeys(this.#caps),
      quantizations: sortedKeys(this.#quants),
      names: sortedKeys(this.#names),
      contextLength: this.#context,
      firstSeen: this.#firstSeen,
      low: { ...this.#low },
      high: { ...this.#high },
    };
    return this.#summary;
  }
}
