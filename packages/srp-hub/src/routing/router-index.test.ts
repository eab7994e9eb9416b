import type { Capability, Instance } from "@srp/core/schema";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { JobHost } from "../session.js";
import { CLOSED_BREAKER, NO_THROUGHPUT, pickPool, recordHealth, type NoRoute, type RouteNeeds } from "./policy.js";
import { referencePool, type RouteOrder, type RouteSort } from "./reference.js";
import { instanceKey, Router } from "./router.js";
import { MemoryRoutingStore, type InstanceHealth } from "./store.js";

// The Router's candidate index against the linear reference (eligible() + order + pick's pool):
// the same instances, with the same weights, for every request, while loads, breakers,
// throughput, health and the clock change. This is the proof that the index applies the policy.

const DAY = 24 * 3600_000;
const T0 = 1_700_000_000_000 - (1_700_000_000_000 % DAY) + DAY / 2;
const CAPS: Capability[] = ["chat", "stream", "tools", "vision"];

/** What the test sets of one instance. */
interface Spec {
  caps: boolean[];
  context: number;
  tier: "gpu" | "key";
  quant: 0 | 1 | 2;
  price: number;
  max: number;
  reported: number | undefined;
  active: number;
  parked: boolean;
  slow: boolean;
  /** Measured throughput (tokens/s) when not slow; undefined: unmeasured. */
  tps?: number | undefined;
  /** Measured time to first output (ms); undefined: unmeasured. */
  latency?: number | undefined;
  /** Offered under the second model (for `model: "auto"`). */
  other?: boolean;
  successes: number;
  failures: number;
  ageDays: number;
  /** Seconds taken off the age, so that ramp-ups end between two health refreshes. */
  youngerBySeconds: number;
}

/** True in about `percent` % of cases. */
const chance = (percent: number) => fc.integer({ min: 0, max: 99 }).map((x) => x < percent);
/** Undefined in three cases of four (most requests use few filters). */
const rarely = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary: arb, weight: 1 });

const spec: fc.Arbitrary<Spec> = fc.record({
  caps: fc.array(chance(70), { minLength: 3, maxLength: 3 }),
  context: fc.constantFrom(4096, 8192, 32_768),
  tier: fc.constantFrom("gpu" as const, "key" as const),
  quant: fc.constantFrom(0 as const, 1 as const, 2 as const),
  price: fc.integer({ min: 1, max: 4 }),
  max: fc.integer({ min: 1, max: 4 }),
  reported: rarely(fc.integer({ min: 0, max: 4 })),
  active: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 4 })),
  parked: chance(15),
  slow: chance(25),
  tps: rarely(fc.constantFrom(20, 50, 60, 80, 100)),
  latency: fc.oneof(fc.constant(undefined), fc.constantFrom(0, 20, 30, 31, 100)),
  other: chance(20),
  successes: fc.integer({ min: 0, max: 40 }),
  failures: fc.integer({ min: 0, max: 20 }),
  ageDays: fc.oneof(fc.constant(7), fc.integer({ min: 0, max: 12 })),
  youngerBySeconds: fc.constantFrom(0, 3, 8),
});

/** A session as routing sees it, whose load changes are told to the router as a ProviderSession's are. */
interface FakeHost {
  state: "open";
  nodeId: string;
  local: boolean;
  instances: Map<string, Instance>;
  active: Map<string, number>;
  reportedCapacity: Map<string, number>;
}

function instanceOf(s: Spec): Instance {
  return {
    instanceId: "m.0",
    model: s.other ? "n" : "m",
    tier: s.tier,
    backend: { kind: "ollama" },
    price: { input: String(s.price * 100_000), output: "300000" },
    maxConcurrency: s.max,
    tokensPerSecond: 30,
    contextLength: s.context,
    capabilities: ["chat", ...CAPS.slice(1).filter((_, i) => s.caps[i])],
    ...(s.quant === 0 ? {} : { quantization: s.quant === 1 ? "q4_k_m" : "q8_0" }),
  } as Instance;
}

function stateOf(s: Spec, now: number): InstanceHealth {
  return {
    breaker: s.parked ? { failures: [], parkedUntil: now + 15_000, probing: false, needsProbe: true } : CLOSED_BREAKER,
    window: recordHealth([], now - DAY, { success: s.successes, failure: s.failures }),
    throughput: s.slow ? { tokensPerSecond: 2, samples: 5 } : s.tps === undefined ? NO_THROUGHPUT : { tokensPerSecond: s.tps, samples: 5 },
    ...(s.latency === undefined ? {} : { latency: { ms: s.latency, samples: 2 } }),
    firstSeen: now - s.ageDays * DAY + s.youngerBySeconds * 1000,
  };
}

function build(specs: readonly Spec[], seed = 1) {
  let x = seed >>> 0;
  const random = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const store = new MemoryRoutingStore();
  const router = new Router(store, {}, random);
  const hosts: FakeHost[] = [];
  specs.forEach((s, i) => {
    const nodeId = `node${i}`;
    store.update(instanceKey(nodeId, "m.0"), T0, () => stateOf(s, T0));
    const host: FakeHost = {
      state: "open",
      nodeId,
      local: true,
      instances: new Map([["m.0", instanceOf(s)]]),
      active: new Map(s.active > 0 ? [["m.0", s.active]] : []),
      reportedCapacity: new Map(s.reported === undefined ? [] : [["m.0", s.reported]]),
    };
    router.sync(host as unknown as JobHost, T0);
    hosts.push(host);
  });
  const setActive = (i: number, n: number) => {
    hosts[i]!.active.set("m.0", n);
    router.loadChanged(hosts[i] as unknown as JobHost, "m.0");
  };
  return { router, hosts, setActive };
}

interface Req {
  caps: boolean[];
  contextTokens: number;
  maxInput: number | undefined;
  exclude: number[];
  only: string[] | undefined;
  ignore: string[] | undefined;
  quantizations: string[] | undefined;
  withinMaxPrice: number | undefined;
  order: RouteOrder | undefined;
  sort: RouteSort;
  auto: boolean;
  /** The instance prefix affinity prefers (`route()`'s `prefer`), if any. */
  prefer: number | undefined;
}

const selector = (n: number) =>
  fc.oneof(
    fc.constantFrom("gpu", "key"),
    fc.integer({ min: 0, max: n }).map((i) => `node${i}`),
  );

const request = (n: number): fc.Arbitrary<Req> =>
  fc.record({
    caps: fc.array(chance(20), { minLength: 3, maxLength: 3 }),
    contextTokens: fc.constantFrom(100, 100, 6000, 20_000),
    maxInput: rarely(fc.integer({ min: 1, max: 4 }).map((p) => p * 100_000)),
    exclude: fc.array(fc.integer({ min: 0, max: n }), { maxLength: 2 }),
    only: rarely(fc.array(selector(n), { minLength: 1, maxLength: 2 })),
    ignore: rarely(fc.array(selector(n), { minLength: 1, maxLength: 2 })),
    quantizations: rarely(fc.subarray(["q4_k_m", "q8_0"], { minLength: 1 })),
    withinMaxPrice: rarely(fc.integer({ min: 1, max: 4 }).map((p) => p * 100_000)),
    order: rarely(fc.record({ selectors: fc.array(selector(n), { minLength: 1, maxLength: 2 }), only: fc.boolean() })),
    sort: fc.constantFrom("load" as const, "load" as const, "price" as const, "throughput" as const, "latency" as const),
    auto: chance(20),
    prefer: rarely(fc.integer({ min: 0, max: n })),
  });

function needsOf(r: Req): RouteNeeds {
  const within = r.withinMaxPrice;
  return {
    model: r.auto ? "auto" : "m",
    capabilities: ["chat", ...CAPS.slice(1).filter((_, i) => r.caps[i])],
    contextTokens: r.contextTokens,
    ...(r.maxInput === undefined ? {} : { maxPrice: { input: BigInt(r.maxInput) } }),
    exclude: new Set(r.exclude.map((i) => instanceKey(`node${i}`, "m.0"))),
    ...(r.only ? { only: r.only } : {}),
    ...(r.ignore ? { ignore: r.ignore } : {}),
    ...(r.quantizations ? { quantizations: r.quantizations } : {}),
    ...(within === undefined ? {} : { within: (v: { price: { input: string } }) => BigInt(v.price.input) <= BigInt(within) }),
  };
}

/** The reference's answer, sorted: pick()'s pool with weights, or why none ("auto": every model, cheapest unless told otherwise). */
function reference(router: Router, needs: RouteNeeds, now: number, order: RouteOrder | undefined, sort: RouteSort = "load") {
  const auto = needs.model === "auto";
  const views = router.views(needs.model, now).map((v) => (auto ? { ...v, model: "auto" } : v));
  const pool = referencePool(views, needs, auto && sort === "load" ? "price" : sort, now, order, router.config);
  if (!Array.isArray(pool)) return pool;
  const { pool: chosen, weights } = pickPool(pool, now, router.config);
  return sorted(chosen.map((v, i) => ({ key: v.key, weight: weights[i]! })));
}

const sorted = (r: { key: string; weight: number }[] | NoRoute) =>
  Array.isArray(r) ? [...r].sort((a, b) => a.key.localeCompare(b.key)) : r;

/** One change to the routing table between requests. */
type Step =
  | { kind: "load"; i: number; active: number }
  | { kind: "outcome"; i: number; outcome: "success" | "failure" | "neutral" }
  | { kind: "probe"; i: number; ok: boolean }
  | { kind: "throughput"; i: number; tokens: number }
  | { kind: "latency"; i: number; ms: number }
  | { kind: "time"; ms: number };

const step = (n: number): fc.Arbitrary<Step> =>
  fc.oneof(
    fc.record({ kind: fc.constant("load" as const), i: fc.integer({ min: 0, max: n - 1 }), active: fc.integer({ min: 0, max: 4 }) }),
    fc.record({
      kind: fc.constant("outcome" as const),
      i: fc.integer({ min: 0, max: n - 1 }),
      outcome: fc.constantFrom("success" as const, "failure" as const, "neutral" as const),
    }),
    fc.record({ kind: fc.constant("probe" as const), i: fc.integer({ min: 0, max: n - 1 }), ok: fc.boolean() }),
    fc.record({
      kind: fc.constant("throughput" as const),
      i: fc.integer({ min: 0, max: n - 1 }),
      tokens: fc.integer({ min: 4, max: 400 }),
    }),
    fc.record({ kind: fc.constant("latency" as const), i: fc.integer({ min: 0, max: n - 1 }), ms: fc.constantFrom(0, 10, 25, 40, 300) }),
    fc.record({ kind: fc.constant("time" as const), ms: fc.constantFrom(1, 4_000, 5_000, 10_000, 60_000, DAY) }),
  );

describe("Router's candidate index against the linear reference", () => {
  it("offers the same instances with the same weights as eligible() + sort + pick(), for every sort and for auto, as the table changes (property)", () => {
    fc.assert(
      fc.property(
        fc
          .array(spec, { minLength: 1, maxLength: 24 })
          .chain((specs) =>
            fc.tuple(
              fc.constant(specs),
              fc.array(fc.tuple(fc.array(step(specs.length), { maxLength: 4 }), request(specs.length)), { minLength: 1, maxLength: 8 }),
            ),
          ),
        ([specs, rounds]) => {
          const { router, setActive } = build(specs);
          let now = T0;
          for (const [steps, req] of rounds) {
            for (const s of steps) {
              const key = instanceKey(`node${"i" in s ? s.i : 0}`, "m.0");
              if (s.kind === "load") setActive(s.i, s.active);
              else if (s.kind === "outcome") router.outcome(key, "m", s.outcome, now);
              else if (s.kind === "probe") router.probeResult(key, "m", s.ok, now);
              else if (s.kind === "throughput") router.throughput(key, s.tokens, 1000, now);
              else if (s.kind === "latency") router.latency(key, s.ms, now);
              else now += s.ms;
            }
            const needs = needsOf(req);
            const got = sorted(router.candidates(needs, req.sort, now, req.order));
            expect(got).toEqual(reference(router, needs, now, req.order, req.sort));
            // route() takes one of them, or answers as the reference does.
            const routed = router.route(needs, req.sort, now, req.order);
            if (Array.isArray(got)) expect(got.map((c) => c.key)).toContain("key" in routed ? routed.key : routed);
            else expect(routed).toEqual(got);
            // With a preferred instance (prefix affinity): taken when sorting by load and the reference's pool
            // (before pick()'s least-loaded choice) holds it, else the same answer as without.
            if (req.prefer !== undefined) {
              const prefer = instanceKey(`node${req.prefer}`, "m.0");
              const sticky = router.route(needs, req.sort, now, req.order, prefer);
              const pool = req.sort === "load" && !req.auto ? referencePool(router.views("m", now), needs, "load", now, req.order) : [];
              if (Array.isArray(pool) && pool.some((v) => v.key === prefer)) expect("key" in sticky && sticky.key).toBe(prefer);
              else if (Array.isArray(got)) expect(got.map((c) => c.key)).toContain("key" in sticky ? sticky.key : sticky);
              else expect(sticky).toEqual(got);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("draws each candidate in proportion to its ramp-up weight", () => {
    // Seasoned healthy instances (weight 1), ramping ones (weight 0.1..1), some filtered out by price or within.
    const specs: Spec[] = Array.from({ length: 12 }, (_, i) => ({
      caps: [true, false, false],
      context: 8192,
      tier: "gpu",
      quant: 0,
      price: i % 4 === 3 ? 4 : 1,
      max: 4,
      reported: undefined,
      active: 0,
      parked: false,
      slow: false,
      successes: 30,
      failures: 0,
      ageDays: i % 3 === 0 ? 8 : i % 3 === 1 ? 1 : 5,
      youngerBySeconds: 0,
    }));
    const { router } = build(specs, 7);
    const needs: RouteNeeds = { model: "m", capabilities: ["chat"], contextTokens: 100, maxPrice: { input: 300_000n } };
    const pool = router.candidates(needs, "load", T0) as { key: string; weight: number }[];
    expect(pool.length).toBe(9);
    const total = pool.reduce((a, p) => a + p.weight, 0);
    const draws = 20_000;
    const counts = new Map<string, number>();
    for (let i = 0; i < draws; i++) {
      const r = router.route(needs, "load", T0);
      if (!("key" in r)) throw new Error(r.reason);
      counts.set(r.key, (counts.get(r.key) ?? 0) + 1);
    }
    for (const p of pool) {
      const expected = (draws * p.weight) / total;
      const sigma = Math.sqrt(expected * (1 - p.weight / total));
      expect(Math.abs((counts.get(p.key) ?? 0) - expected)).toBeLessThan(5 * sigma);
    }
    expect([...counts.keys()].every((k) => pool.some((p) => p.key === k))).toBe(true);
  });

  it("follows the load a session reports, and forgets instances whose session is gone", () => {
    const base: Spec = {
      caps: [true, false, false],
      context: 8192,
      tier: "gpu",
      quant: 0,
      price: 1,
      max: 2,
      reported: undefined,
      active: 0,
      parked: false,
      slow: false,
      successes: 30,
      failures: 0,
      ageDays: 30,
      youngerBySeconds: 0,
    };
    const { router, hosts, setActive } = build([base, base]);
    const needs: RouteNeeds = { model: "m", capabilities: ["chat"], contextTokens: 100 };
    const keys = (r: ReturnType<Router["candidates"]>) => (Array.isArray(r) ? r.map((c) => c.key).sort() : r);
    expect(keys(router.candidates(needs, "load", T0))).toEqual(["node0/m.0", "node1/m.0"]);
    setActive(0, 1);
    expect(keys(router.candidates(needs, "load", T0))).toEqual(["node1/m.0"]);
    // A heartbeat lowering capacity to the running job count leaves no free slot there.
    hosts[1]!.reportedCapacity.set("m.0", 0);
    router.loadChanged(hosts[1] as unknown as JobHost, "m.0");
    expect(keys(router.candidates(needs, "load", T0))).toEqual(["node0/m.0"]);
    setActive(0, 2);
    expect(router.route(needs, "load", T0)).toEqual({ reason: "busy" });
    router.remove(hosts[0] as unknown as JobHost);
    expect(router.count("m")).toBe(1);
    expect(router.route(needs, "load", T0)).toEqual({ reason: "busy" });
    router.remove(hosts[1] as unknown as JobHost);
    expect(router.count("m")).toBe(0);
    expect(router.route(needs, "load", T0)).toEqual({ reason: "unknown_model" });
  });
});
