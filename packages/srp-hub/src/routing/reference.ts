/**
 * The linear reference implementation of a routing decision, as a pure function over the
 * views of a model's live instances: `eligible()`, then the request's `provider.order`,
 * then its sort. The Router uses it where its candidate index does not apply (sorts other
 * than load, `model: "auto"`, a clock that went back) and to say why no instance can take
 * a request; tests compare the index with it (the proof that both apply the same policy).
 */
import {
  eligible,
  matchesSelector,
  ROUTING_DEFAULTS,
  type CandidateView,
  type NoRoute,
  type RouteNeeds,
  type RoutingConfig,
} from "./policy.js";

/** Sort preference of a request: least loaded (default), cheapest, fastest stream, or quickest first output. */
export type RouteSort = "load" | "price" | "throughput" | "latency";

/** A request's `provider.order`: selectors tried in turn, and whether others may serve when none of them can. */
export interface RouteOrder {
  selectors: readonly string[];
  only: boolean;
}

/**
 * The instances `pick()` chooses among for a request, or why none can take it: the eligible
 * instances (model already resolved to its canonical id in `needs` and `views`), narrowed to
 * the first `order` selector that has any, then to the best by `sort` (`load` leaves the
 * choice to `pick()`). `asked` is the model as the request named it, for messages.
 */
export function referencePool(
  views: readonly CandidateView[],
  needs: RouteNeeds,
  sort: RouteSort,
  now: number,
  order?: RouteOrder,
  cfg: RoutingConfig = ROUTING_DEFAULTS,
  asked: string = needs.model,
): CandidateView[] | NoRoute {
  const result = eligible(views, needs, now, cfg);
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
        : { reason: "no_match", detail: `no instance of ${asked} matches provider.order, and allow_fallbacks is false` };
    }
  }
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
  return pool;
}
