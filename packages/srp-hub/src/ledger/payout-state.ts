/**
 * What the payout terms remember between jobs (spec/v1/money.md, bounties and
 * anti-flapping): consumer requests per model per minute, the models each node offered
 * last, and when each instance switched model. Behind an interface read synchronously on
 * the settlement path: the in-memory state serves one process; `SqlPayoutState` of
 * `@srp/hub/storage` keeps the same memory in front of a database, so a restart does not
 * forget a switch (and its 72-hour reduction) or the last minutes of demand.
 */

/** The state behind `PayoutTracker`; every method is synchronous (memory in front). */
export interface PayoutState {
  /** Requests for a model by minute (`Math.floor(ms / 60000)`), as remembered. */
  demand(model: string): ReadonlyMap<number, number> | undefined;
  /** Counts `n` requests for a model in a minute. */
  addDemand(model: string, minute: number, n: number): void;
  /** Forgets the demand of every minute at or before `minute`, and models left with none. */
  forgetDemand(minute: number): void;
  /** Models with demand remembered. */
  readonly demandModels: number;
  /** The model each instance of a node offered last, by instance id. */
  offers(nodeId: string): ReadonlyMap<string, string> | undefined;
  /** Records what a node offers now (instance id to model). */
  setOffers(nodeId: string, byInstance: ReadonlyMap<string, string>): void;
  /** When an instance (by routing key) last switched model. */
  switchedAt(key: string): number | undefined;
  /** Records a model switch of an instance. */
  setSwitchedAt(key: string, at: number): void;
  /** Forgets switches made before `before` (their reduction has decayed). */
  forgetSwitches(before: number): void;
  /** Writes what is only in memory so far (a durable state); the hub calls it when it closes. */
  flush?(): Promise<void>;
}

/** Payout state in memory, bounded: at most `maxNodes` nodes' offers (least recently noted forgotten first). */
export class MemoryPayoutState implements PayoutState {
  readonly #demand = new Map<string, Map<number, number>>();
  readonly #offers = new Map<string, ReadonlyMap<string, string>>();
  readonly #switches = new Map<string, number>();
  readonly #maxNodes: number;

  constructor(maxNodes = 100_000) {
    this.#maxNodes = maxNodes;
  }

  demand(model: string): ReadonlyMap<number, number> | undefined {
    return this.#demand.get(model);
  }

  addDemand(model: string, minute: number, n: number): void {
    let m = this.#demand.get(model);
    if (!m) this.#demand.set(model, (m = new Map()));
    m.set(minute, (m.get(minute) ?? 0) + n);
  }

  forgetDemand(minute: number): void {
    for (const [name, m] of this.#demand) {
      for (const k of m.keys()) if (k <= minute) m.delete(k);
      if (m.size === 0) this.#demand.delete(name);
    }
  }

  get demandModels(): number {
    return this.#demand.size;
  }

  /** The demand remembered, by model (for a durable state to replace or extend). */
  demandEntries(): IterableIterator<[string, Map<number, number>]> {
    return this.#demand.entries();
  }

  /** Replaces a model's demand (a durable state's totals read back). */
  setDemand(model: string, byMinute: ReadonlyMap<number, number>): void {
    if (byMinute.size === 0) this.#demand.delete(model);
    else this.#demand.set(model, new Map(byMinute));
  }

  offers(nodeId: string): ReadonlyMap<string, string> | undefined {
    return this.#offers.get(nodeId);
  }

  setOffers(nodeId: string, byInstance: ReadonlyMap<string, string>): void {
    this.#offers.delete(nodeId); // re-insert: Map order is then least recently noted first
    this.#offers.set(nodeId, byInstance);
    if (this.#offers.size > this.#maxNodes) this.#offers.delete(this.#offers.keys().next().value as string);
  }

  switchedAt(key: string): number | undefined {
    return this.#switches.get(key);
  }

  setSwitchedAt(key: string, at: number): void {
    this.#switches.set(key, at);
  }

  forgetSwitches(before: number): void {
    for (const [key, at] of this.#switches) if (at < before) this.#switches.delete(key);
  }
}
