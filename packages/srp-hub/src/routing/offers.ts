/**
 * A model's offers in short: per set of capabilities, the dearest price of each kind and the
 * longest context among its live instances. Admission asks "the most this request can cost
 * on any instance that could serve it" on every billed request (`maximumCost` in
 * `api/serve.ts`); maxima over these summaries equal maxima over the instances, at the cost
 * of a few summaries instead of every instance.
 */
import type { Instance, Price } from "@srp/core/schema";
import type { CandidateView } from "./policy.js";

/** The dearest terms of the live instances of one model that offer the same capabilities. */
export type OfferSummary = Pick<CandidateView, "capabilities" | "price" | "contextLength">;

const UNIT_PRICES = ["image", "character", "second", "run"] as const;

const max = (a: string | undefined, b: string | undefined): string | undefined =>
  b === undefined ? a : a === undefined || BigInt(b) > BigInt(a) ? b : a;

/**
 * Summarizes instances by capability set: `price.input` is the larger of input and cache
 * write (every prompt token may be a cache write), `output` and the unit prices are the
 * largest offered, `contextLength` the longest.
 */
export function summarizeOffers(instances: Iterable<Pick<Instance, "capabilities" | "price" | "contextLength">>): OfferSummary[] {
  const groups = new Map<string, { capabilities: Instance["capabilities"]; price: Price; contextLength: number }>();
  for (const i of instances) {
    const capabilities = [...new Set(i.capabilities)].sort();
    const id = capabilities.join(",");
    const input = max(i.price.input, i.price.cacheWrite)!;
    const g = groups.get(id);
    if (!g) {
      const price: Price = { input, output: i.price.output };
      for (const u of UNIT_PRICES) if (i.price[u] !== undefined) price[u] = i.price[u];
      groups.set(id, { capabilities, price, contextLength: i.contextLength });
      continue;
    }
    g.price.input = max(g.price.input, input)!;
    g.price.output = max(g.price.output, i.price.output)!;
    for (const u of UNIT_PRICES) {
      const m = max(g.price[u], i.price[u]);
      if (m !== undefined) g.price[u] = m;
    }
    if (i.contextLength > g.contextLength) g.contextLength = i.contextLength;
  }
  return [...groups.values()];
}
