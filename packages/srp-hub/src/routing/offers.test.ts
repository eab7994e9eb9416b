import type { Capability, Price } from "@srp/core/schema";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { summarizeOffers } from "./offers.js";

const CAPS: Capability[] = ["chat", "stream", "tools", "vision"];
const amount = fc.integer({ min: 0, max: 900_000 }).map(String);
const offer = fc.record({
  capabilities: fc.subarray(CAPS, { minLength: 1 }),
  contextLength: fc.integer({ min: 512, max: 200_000 }),
  price: fc.record(
    { input: amount, output: amount, cacheWrite: amount, image: amount, character: amount, second: amount },
    { requiredKeys: ["input", "output"] },
  ),
});

/** The dearest terms among instances offering every capability of `needs`, the way admission reads them. */
function dearest(views: readonly { capabilities: readonly Capability[]; price: Price; contextLength: number }[], needs: Capability[]) {
  const able = views.filter((v) => needs.every((c) => v.capabilities.includes(c)));
  const big = (s: string | undefined) => (s === undefined ? 0n : BigInt(s));
  const most = (f: (v: (typeof able)[number]) => bigint) => able.reduce((m, v) => (f(v) > m ? f(v) : m), 0n);
  return {
    count: able.length > 0,
    input: most((v) => (big(v.price.cacheWrite) > big(v.price.input) ? big(v.price.cacheWrite) : big(v.price.input))),
    output: most((v) => big(v.price.output)),
    image: most((v) => big(v.price.image)),
    character: most((v) => big(v.price.character)),
    second: most((v) => big(v.price.second)),
    context: able.reduce((m, v) => Math.max(m, v.contextLength), 0),
  };
}

describe("summarizeOffers", () => {
  it("keeps, for every set of needed capabilities, the same dearest prices and longest context as the instances (property)", () => {
    fc.assert(
      fc.property(fc.array(offer, { maxLength: 30 }), fc.subarray(CAPS), (offers, needs) => {
        const summary = summarizeOffers(offers);
        expect(summary.length).toBeLessThanOrEqual(15);
        expect(dearest(summary, needs)).toEqual(dearest(offers, needs));
      }),
    );
  });
});
