import { describe, expect, it } from "vitest";
import { queueWaitOf, WaitQueue, WAIT_QUEUE_DEFAULTS, type QueueWaitEvent, type WaitOrder, type Waiter } from "./wait-queue.js";

const never = new AbortController().signal;
const far = () => Date.now() + 60_000;

describe("queueWaitOf", () => {
  it("takes a decimal ms value capped at the maximum, 0 meaning no wait, and ignores anything else", () => {
    const o = { waitMs: 30_000, maxWaitMs: 300_000 };
    expect(queueWaitOf("2500", o)).toBe(2500);
    expect(queueWaitOf("0", o)).toBe(0);
    expect(queueWaitOf(" 10 ", o)).toBe(10);
    expect(queueWaitOf("999999999", o)).toBe(300_000);
    expect(queueWaitOf("99999999999999999999", o)).toBe(300_000);
    for (const bad of [null, undefined, "", "-1", "1e4", "0x10", "abc", "01", "1.5"]) expect(queueWaitOf(bad, o)).toBe(30_000);
    expect(queueWaitOf(null)).toBe(WAIT_QUEUE_DEFAULTS.waitMs);
  });
});

describe("WaitQueue", () => {
  it("is first in, first out per model: a wake-up goes to the first waiter only", async () => {
    const q = new WaitQueue({ pollMs: 60_000 });
    const a = q.join("m")!;
    const b = q.join("m")!;
    const other = q.join("n")!;
    expect([a.position, b.position, other.position]).toEqual([0, 1, 0]);
    expect(q.size("m")).toBe(2);
    const woken: string[] = [];
    const pa = a.wait(far(), never).then((o) => woken.push(`a:${o}`));
    const pb = b.wait(Date.now() + 200, never).then((o) => woken.push(`b:${o}`));
    q.notify("m");
    await pa;
    expect(woken).toEqual(["a:woken"]);
    await pb;
    expect(woken).toEqual(["a:woken", "b:timeout"]);
    // The waiter of another model was not woken.
    expect(await other.wait(Date.now() + 20, never)).toBe("timeout");
  });

  it("a woken waiter that cannot get a slot keeps its place and hands the wake-up on", async () => {
    const q = new WaitQueue({ pollMs: 60_000 });
    const a = q.join("m")!;
    const b = q.join("m")!;
    q.notify("m");
    expect(await a.wait(far(), never)).toBe("woken"); // a wake-up that came before the wait counts
    a.pass();
    expect(await b.wait(far(), never)).toBe("woken");
    expect(a.position).toBe(0);
    a.leave();
    expect(b.position).toBe(0);
    expect(q.size("m")).toBe(1);
  });

  it("is bounded: a full queue refuses a newcomer; leaving frees a place", () => {
    const q = new WaitQueue({ maxWaiters: 2 });
    const a = q.join("m")!;
    expect(q.join("m")).toBeDefined();
    expect(q.join("m")).toBeUndefined();
    a.leave();
    expect(q.join("m")).toBeDefined();
  });

  it("ends a wait when the consumer leaves, and when the hub closes", async () => {
    const q = new WaitQueue();
    const ac = new AbortController();
    const a = q.join("m")!;
    const p = a.wait(far(), ac.signal);
    ac.abort();
    expect(await p).toBe("aborted");
    const b = q.join("m")!;
    const pb = b.wait(far(), never);
    q.close();
    expect(await pb).toBe("closed");
    expect(q.size("m")).toBe(0);
    expect(q.join("m")).toBeUndefined();
  });

  it("names a model by any alias, and wakes waiters for auto with any model", async () => {
    const q = new WaitQueue({ pollMs: 60_000 });
    const auto = q.join("auto")!;
    q.notify("some-model");
    expect(await auto.wait(far(), never)).toBe("woken");
  });

  it("the first waiter retries on its own every pollMs (a safety net); the others do not", async () => {
    const q = new WaitQueue({ pollMs: 20 });
    const a = q.join("m")!;
    const b = q.join("m")!;
    expect(await a.wait(far(), never)).toBe("woken");
    expect(await b.wait(Date.now() + 100, never)).toBe("timeout");
  });
});

describe("WaitQueue with a hub-wide order", () => {
  /** An order that says how many waiters of other processes are ahead, and records what it was told. */
  function fakeOrder(ahead: number, room: "ok" | "full" | "account" = "ok") {
    const log: string[] = [];
    const order: WaitOrder = {
      enter: async (w: Waiter, _until: number, again?: boolean) => (log.push(`${again ? "again" : "enter"} ${w.seq}`), room),
      ahead: async () => ahead,
      leave: (w: Waiter) => void log.push(`leave ${w.seq}`),
    };
    return { order, log };
  }

  it("enters each waiter, drops one the hub-wide bounds refuse, and tells the order of each leaving", async () => {
    const q = new WaitQueue();
    const ok = fakeOrder(0);
    q.order = ok.order;
    const a = q.join("m")!;
    expect(await q.enter(a, far())).toBe("ok");
    a.leave();
    q.order = fakeOrder(0, "account").order;
    const b = q.join("m")!;
    expect(await q.enter(b, far())).toBe("account");
    expect(b.left).toBe(true);
    expect(q.size("m")).toBe(0);
    expect(ok.log).toEqual(["enter 0", "leave 0"]);
  });

  it("lets the first waiter hub-wide take a slot at once, and one with others ahead only once the signal or its wait ends", async () => {
    const q = new WaitQueue({ turnGraceMs: 60_000 });
    const w = q.join("m")!;
    await q.turn(w, far(), never); // no order: at once
    q.order = fakeOrder(0).order;
    await q.turn(w, far(), never);
    q.order = fakeOrder(2).order;
    const stop = new AbortController();
    const turn = q.turn(w, far(), stop.signal);
    stop.abort();
    await turn;
    await q.turn(w, Date.now() - 1, never); // its wait is over: no grace
  });

  it("puts a waiter whose job could not start back at its place, ahead of those who joined after it", () => {
    const q = new WaitQueue();
    const a = q.join("m")!;
    const b = q.join("m")!;
    const c = q.join("m")!;
    b.leave();
    expect(q.rejoin(b)).toBe(true);
    expect([a, b, c].map((w) => w.position)).toEqual([0, 1, 2]);
    a.leave();
    expect(q.rejoin(a)).toBe(true);
    expect(a.position).toBe(0);
    expect(q.rejoin(a)).toBe(false); // not left
    q.close();
    expect(q.rejoin(c)).toBe(false);
  });

  it("reports each waiter's first end once: served, timed out (its wait ran out) or left", async () => {
    const q = new WaitQueue({ pollMs: 60_000 });
    const ends: QueueWaitEvent[] = [];
    q.onWaitEnd = (e) => ends.push(e);
    const served = q.join("m")!;
    served.leave("served");
    const late = q.join("m")!;
    expect(await late.wait(Date.now() + 20, never)).toBe("timeout");
    late.leave();
    const gone = q.join("m")!;
    const consumer = new AbortController();
    const waiting = gone.wait(far(), consumer.signal);
    consumer.abort();
    expect(await waiting).toBe("aborted");
    gone.leave();
    // Back in the queue after its job could not start: not reported again.
    expect(q.rejoin(served)).toBe(true);
    served.leave("served");
    expect(ends.map((e) => [e.model, e.outcome])).toEqual([
      ["m", "served"],
      ["m", "timed_out"],
      ["m", "left"],
    ]);
    expect(ends[1]!.waitedMs).toBeGreaterThanOrEqual(20);
  });
});
