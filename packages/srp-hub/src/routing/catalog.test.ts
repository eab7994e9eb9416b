import type { Instance } from "@srp/core/schema";
import { describe, expect, it } from "vitest";
import type { JobHost } from "../session.js";
import { CATALOG_REFRESH_MS, needsRecount } from "./catalog.js";
import { Router } from "./router.js";
import { MemoryRoutingStore } from "./store.js";

const T0 = 1_700_000_000_000;

function instance(id: string, input: number, extra: Partial<Instance> = {}): Instance {
  return {
    instanceId: id,
    model: "m",
    tier: "gpu",
    backend: { kind: "ollama" },
    price: { input: String(input), output: "300000" },
    maxConcurrency: 2,
    tokensPerSecond: 30,
    contextLength: 8192,
    capabilities: ["chat", "stream"],
    ...extra,
  } as Instance;
}

function host(nodeId: string, instances: Instance[]): JobHost {
  return {
    state: "open",
    nodeId,
    local: true,
    instances: new Map(instances.map((i) => [i.instanceId, i])),
    active: new Map(),
    reportedCapacity: new Map(),
  } as unknown as JobHost;
}

/** What the full views say of each model: the linear answer the summaries must match once counted. */
function fromViews(router: Router, now: number) {
  return [...router.catalog(now)].map(([model, views]) => ({
    model,
    instances: views.length,
    capabilities: [...new Set(views.flatMap((v) => v.capabilities))].sort(),
    contextLength: Math.max(...views.map((v) => v.contextLength)),
    firstSeen: Math.min(...views.map((v) => v.firstSeen)),
    lowInput: views.map((v) => BigInt(v.price.input)).reduce((a, b) => (b < a ? b : a)),
    highInput: views.map((v) => BigInt(v.price.input)).reduce((a, b) => (b > a ? b : a)),
  }));
}

function fromSummaries(router: Router, now: number) {
  return router.summaries(now).map((s) => ({
    model: s.model,
    instances: s.instances,
    capabilities: [...s.capabilities],
    contextLength: s.contextLength,
    firstSeen: s.firstSeen,
    lowInput: s.low.input,
    highInput: s.high.input,
  }));
}

describe("per-model summaries for the free listings", () => {
  it("counts joins at once, departures' counts at once, and a departed extreme within the refresh time", () => {
    const router = new Router(new MemoryRoutingStore());
    const a = host("a", [instance("m.0", 100_000)]);
    const b = host("b", [instance("m.0", 400_000, { contextLength: 32_768, capabilities: ["chat", "tools"], quantization: "q4_k_m" })]);
    const c = host("c", [instance("n.0", 50_000, { model: "n" })]);
    router.sync(a, T0);
    expect(fromSummaries(router, T0)).toEqual(fromViews(router, T0));
    router.sync(b, T0 + 1000);
    router.sync(c, T0 + 2000);
    // Joins (a new model, a dearer price, more capabilities) are listed at once.
    expect(fromSummaries(router, T0 + 2000)).toEqual(fromViews(router, T0 + 2000));
    expect(router.summaries(T0 + 2000)[0]!.quantizations).toEqual(["q4_k_m"]);
    // The dearest instance leaves: its count and capabilities go at once; its price within the refresh time.
    router.remove(b);
    const soon = router.summaries(T0 + 2001).find((s) => s.model === "m")!;
    expect(soon.instances).toBe(1);
    expect(soon.capabilities).toEqual(["chat", "stream"]);
    expect(soon.quantizations).toEqual([]);
    expect(fromSummaries(router, T0 + 2000 + CATALOG_REFRESH_MS)).toEqual(fromViews(router, T0 + 2000 + CATALOG_REFRESH_MS));
    // A model whose last instance leaves is gone at once.
    router.remove(c);
    expect(router.summaries(T0 + 5000).map((s) => s.model)).toEqual(["m"]);
    // Asking again without a change returns the same summary (nothing rebuilt per request).
    expect(router.summaries(T0 + 6000)[0]).toBe(router.summaries(T0 + 7000)[0]);
  });

  it("recounts a stale tally only once the refresh time has passed since its last count", () => {
    expect(needsRecount(false, 0, 10_000)).toBe(false);
    expect(needsRecount(true, 0, CATALOG_REFRESH_MS - 1)).toBe(false);
    expect(needsRecount(true, 0, CATALOG_REFRESH_MS)).toBe(true);
    expect(needsRecount(true, -Infinity, 0)).toBe(true);
    // A clock that went back counts again rather than serve a stale tally indefinitely.
    expect(needsRecount(true, 5000, 4000)).toBe(true);
  });
});
