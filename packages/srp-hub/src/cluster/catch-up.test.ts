import { describe, expect, it } from "vitest";
import { SrpError } from "@srp/core";
import { relay, type RelayContext, type RelayRequest } from "../relay.js";
import { Router } from "../routing/router.js";
import { MemoryRoutingStore } from "../routing/store.js";
import { ModelWaiters, SharedBarrier } from "./catch-up.js";

describe("ModelWaiters", () => {
  it("resolves true when one of the models is announced, and only those waiting for it", async () => {
    const w = new ModelWaiters();
    const ab = w.wait(["a", "b"], 60_000);
    const c = w.wait(["c"], 60_000);
    expect(w.size).toBe(2);
    w.announced("b");
    expect(await ab).toBe(true);
    expect(w.size).toBe(1);
    w.announced("b");
    w.clear();
    expect(await c).toBe(false);
    expect(w.size).toBe(0);
  });

  it("resolves false when nothing is announced in time", async () => {
    const w = new ModelWaiters();
    expect(await w.wait(["a"], 1)).toBe(false);
    expect(w.size).toBe(0);
  });
});

describe("SharedBarrier", () => {
  it("runs at most two barriers for any number of concurrent callers, and none joins one already under way", async () => {
    const runs: (() => void)[] = [];
    const barrier = new SharedBarrier(() => new Promise<void>((resolve) => runs.push(resolve)));
    const done: number[] = [];
    const first = barrier.wait().then(() => done.push(1));
    const later = Array.from({ length: 20 }, (_, i) => barrier.wait().then(() => done.push(i + 2)));
    expect(runs).toHaveLength(1);
    runs[0]!();
    await first;
    // The callers that came while the first was under way wait for the second, which starts now.
    expect(done).toEqual([1]);
    await Promise.resolve();
    expect(runs).toHaveLength(2);
    runs[1]!();
    await Promise.all(later);
    expect(done).toHaveLength(21);
    // Nothing under way: the next caller starts a barrier of its own.
    const next = barrier.wait();
    expect(runs).toHaveLength(3);
    runs[2]!();
    await next;
  });
});

describe("the relay's catch-up", () => {
  function setup(): { ctx: RelayContext; calls: string[][] } {
    const calls: string[][] = [];
    const ctx: RelayContext = {
      router: new Router(new MemoryRoutingStore()),
      cancel: () => undefined,
      catchUp: async (models) => void calls.push([...models]),
    };
    return { ctx, calls };
  }
  const request = (o: Partial<RelayRequest> = {}): RelayRequest => ({
    prepare: () => ({ api: "chat.completions", body: {} }),
    stream: false,
    needs: { model: "m1", capabilities: [], contextTokens: 10 },
    deadline: Date.now() + 10_000,
    signal: new AbortController().signal,
    ...o,
  });
  const code = (p: Promise<unknown>) =>
    p.then(
      () => "served",
      (e: unknown) => (e instanceof SrpError ? e.code : String(e)),
    );

  it("waits at most once per request, whichever of its models asks", async () => {
    const { ctx, calls } = setup();
    expect(await code(relay(ctx, request({ models: ["m1", "m2", "m3"] })))).toBe("job.unknown_model");
    expect(calls).toEqual([["m1"]]);
  });

  it("does not wait again for a request its caller already caught up", async () => {
    const { ctx, calls } = setup();
    expect(await code(relay(ctx, request({ caughtUp: true })))).toBe("job.unknown_model");
    expect(calls).toEqual([]);
  });
});
