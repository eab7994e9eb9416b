/**
 * The state payout terms depend on, kept by a hub: consumer demand per model (for derived
 * bounty multipliers) and when each instance switched model (anti-flapping). The rules
 * themselves are the pure functions of `payout-terms.ts`; what happened is kept in a
 * {@link PayoutState} (memory by default, a database with `SqlPayoutState`).
 */
import { derivedMultiplier, flapReduction, trustCap, type PayoutConfig, type PayoutTerms } from "./payout-terms.js";
import { MemoryPayoutState, type PayoutState } from "./payout-state.js";

const MINUTE = 60_000;
/** Minutes of demand remembered. */
export const DEMAND_MINUTES = 15;

/** An instance a node offers, as far as payouts care. */
export interface OfferedInstance {
  instanceId: string;
  model: string;
}

/** Remembers demand and model switches, and turns them into a job's {@link PayoutTerms}. */
export class PayoutTracker {
  readonly #cfg: PayoutConfig;
  readonly #state: PayoutState;

  constructor(cfg: PayoutConfig, state: PayoutState = new MemoryPayoutState()) {
    this.#cfg = cfg;
    this.#state = state;
  }

  /** The minute the state was last swept of what it no longer remembers. */
  #sweptMinute = Number.NEGATIVE_INFINITY;

  /** Where demand and switches are kept. */
  get state(): PayoutState {
    return this.#state;
  }

  /** Models whose demand is remembered now (a model without requests in the window is forgotten). */
  get demandModels(): number {
    return this.#state.demandModels;
  }

  /** Counts a consumer request for a model. */
  noteDemand(model: string, now = Date.now()): void {
    const minute = Math.floor(now / MINUTE);
    if (minute !== this.#sweptMinute) {
      // Once a minute: forget minutes out of the window, and switches whose reduction has decayed.
      this.#sweptMinute = minute;
      this.#state.forgetDemand(minute - DEMAND_MINUTES);
      this.#state.forgetSwitches(now - this.#cfg.flapDecayMs);
    }
    this.#state.addDemand(model, minute, 1);
  }

  /** Consumer requests per minute for a model, over the remembered window. */
  demandPerMinute(model: string, now = Date.now()): number {
    const minute = Math.floor(now / MINUTE);
    let n = 0;
    for (const [k, v] of this.#state.demand(model) ?? []) if (k > minute - DEMAND_MINUTES) n += v;
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
    const last = this.#state.offers(nodeId);
    if (last) {
      const lastModels = new Set(last.values());
      const dropped = [...lastModels].some((m) => !models.has(m));
      for (const i of offered) {
        const before = last.get(i.instanceId);
        if ((before !== undefined && before !== i.model) || (before === undefined && dropped && !lastModels.has(i.model)))
          this.#state.setSwitchedAt(keyOf(i.instanceId), now);
      }
    }
    const byInstance = new Map(offered.map((i) => [i.instanceId, i.model]));
    if (!last || !sameOffers(last, byInstance)) this.#state.setOffers(nodeId, byInstance);
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
    const switched = this.#state.switchedAt(key);
    return {
      multiplierBps: Math.max(10000, Math.min(wanted, cap)),
      reductionBps: flapReduction(switched === undefined ? undefined : now - switched, cfg),
      poolFundingBps: cfg.poolFundingBps,
    };
  }
}

/** Whether two offers map the same instance ids to the same models. */
function sameOffers(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [id, model] of a) if (b.get(id) !== model) return false;
  return true;
}
