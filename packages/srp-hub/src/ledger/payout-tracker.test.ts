import { describe, expect, it } from "vitest";
import { PAYOUT_DEFAULTS } from "./payout-terms.js";
import { PayoutTracker } from "./payout-tracker.js";

const HOUR = 3_600_000;
const key = (id: string) => `node.${id}`;
const standing = { tenureMs: 30 * 24 * HOUR, health: 1 };

describe("PayoutTracker", () => {
  it("sees a switch when an instance id serves another model, or a model is dropped for a new one; not when a model is added", () => {
    const t = new PayoutTracker(PAYOUT_DEFAULTS);
    const t0 = 1_000_000;
    t.noteOffers("node", [{ instanceId: "i1", model: "a" }], key, t0);
    expect(t.terms(key("i1"), "a", standing, 1, t0).reductionBps).toBe(0);
    // Same id, other model: a switch, 50 % at first.
    t.noteOffers("node", [{ instanceId: "i1", model: "b" }], key, t0);
    expect(t.terms(key("i1"), "b", standing, 1, t0).reductionBps).toBe(5000);
    expect(t.terms(key("i1"), "b", standing, 1, t0 + 36 * HOUR).reductionBps).toBe(2500);
    expect(t.terms(key("i1"), "b", standing, 1, t0 + 72 * HOUR).reductionBps).toBe(0);
    // Dropping b for c under a new id (ids often name their model): a switch.
    t.noteOffers("node", [{ instanceId: "c.0", model: "c" }], key, t0);
    expect(t.terms(key("c.0"), "c", standing, 1, t0).reductionBps).toBe(5000);
    // Adding d while keeping c: not a switch.
    t.noteOffers(
      "node",
      [
        { instanceId: "c.0", model: "c" },
        { instanceId: "d.0", model: "d" },
      ],
      key,
      t0,
    );
    expect(t.terms(key("d.0"), "d", standing, 1, t0).reductionBps).toBe(0);
    // Withdrawing everything first does not reset what the node served.
    t.noteOffers("node", [], key, t0);
    t.noteOffers("node", [{ instanceId: "e.0", model: "e" }], key, t0);
    expect(t.terms(key("e.0"), "e", standing, 1, t0).reductionBps).toBe(5000);
  });

  it("derives a multiplier from the last 15 minutes of demand when enabled, and the operator's multiplier wins", () => {
    const t = new PayoutTracker({ ...PAYOUT_DEFAULTS, derive: true, multipliers: { fixed: 11000 } });
    const now = 50 * 60_000;
    for (let i = 0; i < 15 * 20; i++) t.noteDemand("hot", now);
    expect(t.demandPerMinute("hot", now)).toBe(20);
    // 20 requests a minute on one instance, 10 balanced: +0.5× (capped by trust at 2×).
    expect(t.terms(key("x"), "hot", standing, 1, now).multiplierBps).toBe(15000);
    expect(t.terms(key("x"), "fixed", standing, 1, now).multiplierBps).toBe(11000);
    // Demand older than 15 minutes is forgotten.
    expect(t.demandPerMinute("hot", now + 15 * 60_000)).toBe(0);
    // A newcomer's trust allows no bounty yet.
    expect(t.terms(key("x"), "hot", { tenureMs: 0, health: 1 }, 1, now).multiplierBps).toBe(10000);
  });

  it("forgets a model whose demand left the window (memory bounded by the models asked for lately)", () => {
    const t = new PayoutTracker(PAYOUT_DEFAULTS);
    const now = 50 * 60_000;
    for (let i = 0; i < 100; i++) t.noteDemand(`model-${i}`, now);
    expect(t.demandModels).toBe(100);
    t.noteDemand("model-0", now + 14 * 60_000);
    expect(t.demandModels).toBe(100);
    // 15 minutes on, only the model asked for since is remembered.
    t.noteDemand("fresh", now + 15 * 60_000);
    expect(t.demandModels).toBe(2);
    expect(t.demandPerMinute("model-0", now + 15 * 60_000)).toBeCloseTo(1 / 15);
  });
});
