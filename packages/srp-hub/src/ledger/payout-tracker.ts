/**
 * The state payout terms depend on, kept by a hub: consumer demand per model (for derived
 * bounty multipliers) and when each instance switched model (anti-flapping). The rules
 * themselves are the pure functions of `payout-terms.ts`; this only remembers what happened.
 */
import { derivedMultiplier, flapReduction, trustCap, type PayoutConfig, type PayoutTerms } from "./payout-terms.js";

const MINUTE = 60_000;
/** Minutes of demand remembered. */
const DEMAND_MINUTES = 15;

/** An instance a node offers, as far as payouts care. */
export interface OfferedInstance {
  instanceId: string;
  model: string;
}

/** Remembers demand and model switches, and turns them into a job's {@link PayoutTerms}. */
export class PayoutTracker {
  readonly #cfg: PayoutConfig;
  /** Requests per model per minute (the last {@link DEMAND_MINUTES}). */
  readonly #demand = new Map<string, Map<number, number>>();
  /** The models each node served last, by instance. */
  readonly #nodeModels = new Map<string, { models: Set<string>; byInstance: Map<string, string> }>();
  /** When each instance (by routing key) switched model. */
  readonly #switchedAt = new Map<string, number>();

  constructor(cfg: PayoutConfig) {
    this.#cfg = cfg;
  }

  /** The minute demand was last swept of what it no longer remembers. */
  #sweptMinute = Number.NEGATIVE_INFINITY;

  /** Models whose demand is remembered now (a model without requests in the window is forgotten). */
  get demandModels(): number {
    return this.#demand.size;
  }

  /** Counts a consumer request for a model. */
  noteDemand(model: string, now = Date.now()): void {
    const minute = Math.floor(now / MINUTE);
    if (minute !== this.#sweptMinute) {
      // Once a minute: forget minutes out of the window, and models with none left.
      this.#sweptMinute = minute;
      for (const [name, m] of this.#demand) {
        for (const k of m.keys()) if (k <= minute - DEMAND_MINUTES) m.delete(k);
        if (m.size === 0) this.#demand.delete(name);
      }
    }
    let m = this.#demand.get(model);
    if (!m) this.#demand.set(model, (m = new Map()));
    m.set(minute, (m.get(minute) ?? 0) + 1);
    for (const k of m.keys()) if (k <= minute - DEMAND_MINUTES) m.delete(k);
  }

  /** Consumer requests per minute for a model, over the remembered window. */
  demandPerMinute(model: string, now = Date.now()): number {
    const minute = Math.floor(now / MINUTE);
    let n = 0;
    for (const [k, v] of this.#demand.get(model) ?? []) if (k > minute - DEMAND_MINUTES) n += v;
    return n / DEMAND_MINUTES;
  }

  /**
   * Records what a node offers now. A switch is an instance id now serving another model,
   * or a node that dropped a model and offers a new one (instance ids often name their
   * model); adding models is not a switch. An empty offer is not remembered, so
   * withdrawing everything first does not dodge the rule. `keyOf` gives an instance's
   * routing key.
   */
  noteOffers(nodeId: string, offered: readonly OfferedInstance[], keyOf: (instanceId: string) => string, now = Date.now()): void {
    if (offered.length === 0) return;
    const models = new Set(offered.map((i) => i.model));
    const last = this.#nodeModels.get(nodeId);
    if (last) {
      const dropped = [...last.models].some((m) => !models.has(m));
      for (const i of offered) {
        const before = last.byInstance.get(i.instanceId);
        if ((before !== undefined && before !== i.model) || (before === undefined && dropped && !last.models.has(i.model)))
          this.#switchedAt.set(keyOf(i.instanceId), now);
      }
    }
    this.#nodeModels.set(nodeId, { models, byInstance: new Map(offered.map((i) => [i.instanceId, i.model])) });
  }

  /**
   * The terms of a job served now by the instance `key`: the operator's multiplier for the
   * model (or one derived from demand over `instancesOnline`), capped by the instance's
   * trust (`tenureMs`, `health`), the anti-flapping reduction, and the pool's funding share.
   */
  terms(
    key: string,
    model: string,
    standing: { tenureMs: number; health: number },
    instancesOnline: number,
    now = Date.now(),
  ): PayoutTerms {
    const cfg = this.#cfg;
    const wanted =
      cfg.multipliers[model] ?? (cfg.derive ? derivedMultiplier(this.demandPerMinute(model, now), instancesOnline, cfg) : 10000);
    const cap = trustCap(standing.tenureMs, standing.health, cfg.trust);
    const switched = this.#switchedAt.get(key);
    return {
      multiplierBps: Math.max(10000, Math.min(wanted, cap)),
      reductionBps: flapReduction(switched === undefined ? undefined : now - switched, cfg),
      poolFundingBps: cfg.poolFundingBps,
    };
  }
}
