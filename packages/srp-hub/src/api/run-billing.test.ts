import { describe, expect, it } from "vitest";
import type { JobEvent } from "../relay.js";
import { closeBilling, closeOnce, releaseReason, type BillingHub } from "./run-billing.js";

/** A hub that records what billing did with a reservation. */
function hub(ledger = true) {
  const log: string[] = [];
  const h: BillingHub = {
    ledger: ledger
      ? ({ release: async (id: string, why: string) => void log.push(`release ${id}: ${why}`) } as unknown as BillingHub["ledger"])
      : undefined,
    releaseAfterCancel: (id) => void log.push(`after cancel ${id}`),
    storageError: (what) => void log.push(`storage ${what}`),
  };
  return { h, log };
}

const done = (settled?: Promise<unknown>): JobEvent => ({
  type: "done",
  done: { usage: { promptTokens: 1, completionTokens: 1, measured: true } } as never,
  receipt: undefined,
  ...(settled ? { settled } : {}),
});

describe("closeBilling", () => {
  it("shows what was billed when the reservation was closed already by a receipt: this job's, stored by another process, or an earlier attempt's", async () => {
    // Another hub process stored the receipt and went away before saying so: the reservation is closed already.
    const log: string[] = [];
    const closures: Record<string, unknown> = {
      r1: { state: "settled", jobId: "job_1", charged: 42n },
      r2: { state: "settled", jobId: "job_other", charged: 42n },
      r3: { state: "released" },
    };
    const h: BillingHub = {
      ledger: {
        release: async (id: string) => (log.push(`release ${id}`), id === "r4"),
        closure: async (id: string) => closures[id],
      } as unknown as BillingHub["ledger"],
      releaseAfterCancel: (id) => void log.push(`after cancel ${id}`),
      storageError: (what) => void log.push(`storage ${what}`),
    };
    const unknown = (): JobEvent => ({
      type: "done",
      done: { jobId: "job_1", usage: { promptTokens: 1, completionTokens: 1, measured: true } } as never,
      receipt: undefined,
      settled: Promise.reject(new Error("the process holding the node went away")),
    });
    expect(await closeBilling(h, { reservationId: "r1" }, unknown())).toEqual({ charged: 42n, recorded: true });
    // Settled by an earlier attempt's receipt (its link was lost after the receipt was stored, and the request failed over): billed once, and shown.
    expect(await closeBilling(h, { reservationId: "r2" }, unknown())).toEqual({ charged: 42n, recorded: true });
    // Released, or released now by this call: nothing was billed.
    expect(await closeBilling(h, { reservationId: "r3" }, unknown())).toEqual({ charged: 0n, recorded: false });
    expect(await closeBilling(h, { reservationId: "r4" }, unknown())).toEqual({ charged: 0n, recorded: false });
    expect(log).toEqual(["release r1", "release r2", "release r3", "release r4"]);
  });

  it("charges what the receipt settled for this reservation, and releases nothing", async () => {
    const { h, log } = hub();
    expect(await closeBilling(h, { reservationId: "r1" }, done(Promise.resolve({ reservationId: "r1", charge: 42n })))).toEqual({
      charged: 42n,
      recorded: true,
    });
    expect(log).toEqual([]);
  });

  it("releases with the reason when nothing settled this reservation", async () => {
    const { h, log } = hub();
    expect(await closeBilling(h, { reservationId: "r1" }, done(Promise.resolve({ reservationId: "other", charge: 42n })))).toEqual({
      charged: 0n,
      recorded: true,
    });
    expect(await closeBilling(h, { reservationId: "r2" }, undefined)).toEqual({ charged: 0n, recorded: true });
    expect(await closeBilling(h, { reservationId: "r3" }, done(Promise.reject(new Error("disk"))))).toEqual({
      charged: 0n,
      recorded: false,
    });
    expect(log).toEqual(["release r1: no countersigned receipt", "release r2: not served", "release r3: no countersigned receipt"]);
  });

  it("keeps a cancelled job's reservation for a late done, unless the request releases on cancel", async () => {
    const { h, log } = hub();
    await closeBilling(h, { reservationId: "r1" }, { type: "lost", reason: "deadline" });
    await closeBilling(h, { reservationId: "r2" }, undefined, true);
    await closeBilling(h, { reservationId: "r3", releaseOnCancel: true }, { type: "lost", reason: "consumer_gone" });
    await closeBilling(h, { reservationId: "r4" }, { type: "lost", reason: "node_gone" });
    expect(log).toEqual([
      "after cancel r1",
      "after cancel r2",
      "release r3: the job ended: consumer_gone",
      "release r4: the job ended: node_gone",
    ]);
  });

  it("reports no charge on a hub that bills nobody", async () => {
    const { h, log } = hub(false);
    expect(await closeBilling(h, { reservationId: undefined }, undefined)).toEqual({ charged: undefined, recorded: true });
    expect(log).toEqual([]);
  });
});

describe("closeOnce", () => {
  it("closes once; later calls bill nothing", async () => {
    const { h, log } = hub();
    const end = closeOnce((e, left) => closeBilling(h, { reservationId: "r1" }, e, left));
    expect(await end(undefined)).toEqual({ charged: 0n, recorded: true });
    expect(await end(undefined, true)).toEqual({ charged: undefined, recorded: false });
    expect(log).toEqual(["release r1: not served"]);
  });
});

describe("releaseReason", () => {
  it("names why a reservation went back", () => {
    expect(releaseReason({ type: "error", error: { code: "job.upstream_error", message: "x" } } as JobEvent)).toBe("the provider failed");
    expect(releaseReason({ type: "chunk", chunk: {} as never, at: 0 })).toBe("the stream ended early");
  });
});
