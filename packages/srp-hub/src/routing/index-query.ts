/**
 * A request's filters (`RouteNeeds` of `policy.ts`, the ones `eligible()` applies) in the
 * form the candidate index asks them: once per offer shape where the shape decides
 * (capabilities, context length, quantization, tier selectors), per instance otherwise
 * (price cap, `exclude`, node and key selectors, `within`).
 */
import type { IndexEntry, IndexQuery, Shape } from "./candidate-index.js";
import type { CandidateView, RouteNeeds } from "./policy.js";

/** Whether an entry matches a provider selector: its node id, its key or its tier (as `matchesSelector()` of `policy.ts`). */
function entryMatches<T>(e: IndexEntry<T>, selector: string): boolean {
  return selector === e.nodeId || selector === e.key || selector === e.shape.tier;
}

/** An index query that can be narrowed to the instances matching one more selector. */
export type RequestQuery<T> = IndexQuery<T> & { narrow(selector: string): RequestQuery<T> };

/**
 * The index query of a request. `view` builds an instance's full view, asked only when the
 * request has a `within` predicate; `selectors` are extra selectors every instance must
 * match (the chosen `provider.order` selector).
 */
export function indexQuery<T>(
  needs: RouteNeeds,
  view: (e: IndexEntry<T>) => CandidateView,
  selectors: readonly string[] = [],
): RequestQuery<T> {
  const { capabilities, contextTokens, quantizations, only, ignore, exclude, within } = needs;
  const maxIn = needs.maxPrice?.input;
  const maxOut = needs.maxPrice?.output;
  const perEntry = maxIn !== undefined || maxOut !== undefined || within !== undefined || (exclude !== undefined && exclude.size > 0);
  const memo: (0 | 1 | 2 | undefined)[] = [];
  const judge = (s: Shape): 0 | 1 | 2 => {
    if (!capabilities.every((c) => s.capabilities.includes(c))) return 0;
    if (s.contextLength < contextTokens) return 0;
    if (quantizations && (s.quantization === undefined || !quantizations.includes(s.quantization))) return 0;
    if (ignore?.some((x) => x === s.tier)) return 0;
    const check =
      perEntry ||
      (only !== undefined && !only.some((x) => x === s.tier)) ||
      (ignore !== undefined && ignore.length > 0) ||
      selectors.some((x) => x !== s.tier);
    return check ? 2 : 1;
  };
  return {
    shape(s) {
      let r = memo[s.id];
      if (r === undefined) memo[s.id] = r = judge(s);
      return r;
    },
    entry(e) {
      if (maxIn !== undefined && e.priceInput > maxIn) return false;
      if (maxOut !== undefined && e.priceOutput > maxOut) return false;
      if (exclude?.has(e.key)) return false;
      if (only && !only.some((s) => entryMatches(e, s))) return false;
      if (ignore?.some((s) => entryMatches(e, s))) return false;
      for (const s of selectors) if (!entryMatches(e, s)) return false;
      return !within || within(view(e));
    },
    narrow(selector) {
      return indexQuery(needs, view, [...selectors, selector]);
    },
  };
}
