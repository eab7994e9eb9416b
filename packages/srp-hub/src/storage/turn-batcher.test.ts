import { describe, expect, it } from "vitest";
import { lostDatabase } from "./postgres-driver.js";
import { TurnBatcher } from "./turn-batcher.js";

/** A batch function whose batches end only when told to, recording what each batch held. */
function gatedBatches() {
  const batches: number[][] = [];
  const gates: Array<() => void> = [];
  const batch = (items: number[]) =>
    new Promise<number[]>((resolve) => {
      batches.push(items);
      gates.push(() => resolve(items.map((x) => x * 10)));
    });
  return { batches, batch, open: () => gates.shift()?.() };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("TurnBatcher", () => {
  it("runs the calls of one turn as one batch and answers each in order", async () => {
    const g = gatedBatches();
    const b = new TurnBatcher(g.batch, async (x: number) => -x);
    const out = Promise.all([b.push(1), b.push(2), b.push(3)]);
    await turn();
    expect(g.batches).toEqual([[1, 2, 3]]);
    g.open();
    expect(await out).toEqual([10, 20, 30]);
  });

  it("groups the calls made while the in-flight batches run into the next batch (group commit)", async () => {
    const g = gatedBatches();
    const b = new TurnBatcher(g.batch, async (x: number) => -x, { inFlight: 1 });
    const first = b.push(1);
    await turn();
    // The first batch is still running: these wait, over several turns, and then go together.
    const later = [b.push(2)];
    await turn();
    later.push(b.push(3));
    await turn();
    later.push(b.push(4));
    await turn();
    expect(g.batches).toEqual([[1]]);
    g.open();
    expect(await first).toBe(10);
    await turn();
    await turn();
    expect(g.batches).toEqual([[1], [2, 3, 4]]);
    g.open();
    expect(await Promise.all(later)).toEqual([20, 30, 40]);
  });

  it("runs up to `inFlight` batches at once, each at most `max` calls", async () => {
    const g = gatedBatches();
    const b = new TurnBatcher(g.batch, async (x: number) => -x, { inFlight: 2, max: 2 });
    const out = Promise.all([1, 2, 3, 4, 5].map((x) => b.push(x)));
    await turn();
    expect(g.batches).toEqual([
      [1, 2],
      [3, 4],
    ]);
    g.open();
    await turn();
    await turn();
    expect(g.batches).toEqual([[1, 2], [3, 4], [5]]);
    g.open();
    g.open();
    expect(await out).toEqual([10, 20, 30, 40, 50]);
  });

  it("runs the calls of a failed batch one at a time, so a bad call fails alone", async () => {
    const b = new TurnBatcher(
      async () => {
        throw new Error("the batch failed");
      },
      async (x: number) => {
        if (x === 2) throw new Error("bad call");
        return -x;
      },
    );
    const out = await Promise.allSettled([b.push(1), b.push(2), b.push(3)]);
    expect(out.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message))).toEqual([-1, "bad call", -3]);
    // And it keeps working afterwards.
    expect(await b.push(4)).toBe(-4);
  });

  it("fails every call of a batch at once when `oneByOne` says a smaller batch cannot help (the database is unreachable)", async () => {
    const unreachable = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
    let alone = 0;
    const b = new TurnBatcher(
      async () => {
        throw unreachable;
      },
      async (x: number) => (alone++, x),
      { oneByOne: (error) => !lostDatabase(error) },
    );
    const out = await Promise.allSettled([b.push(1), b.push(2), b.push(3)]);
    expect(out.map((r) => r.status === "rejected" && r.reason)).toEqual([unreachable, unreachable, unreachable]);
    expect(alone).toBe(0);
  });
});

describe("lostDatabase", () => {
  it("tells a database out of reach from one that refused a statement", () => {
    const coded = (code: string, message = "x") => Object.assign(new Error(message), { code });
    expect(lostDatabase(coded("ECONNREFUSED"))).toBe(true);
    expect(lostDatabase(coded("ECONNRESET"))).toBe(true);
    expect(lostDatabase(coded("08006"))).toBe(true);
    expect(lostDatabase(coded("57P01"))).toBe(true);
    expect(lostDatabase(new Error("timeout exceeded when trying to connect"))).toBe(true);
    expect(lostDatabase(new Error("Connection terminated unexpectedly"))).toBe(true);
    // Refusals a smaller batch can avoid: a duplicate, a check, a balance a batch would overdraw.
    expect(lostDatabase(coded("23505"))).toBe(false);
    expect(lostDatabase(coded("40001"))).toBe(false);
    expect(lostDatabase(new Error("a settlement batch moved 3 of 4 balances"))).toBe(false);
    expect(lostDatabase(new RangeError("bad terms"))).toBe(false);
  });
});
